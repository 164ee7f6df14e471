//! BFD benchmark (needs root, FRR): in a testbed star (router `r` running FRR, nodes n1 and
//! n2 running Berth's `bgp` and `bfd` drivers), how long after node 1 goes silent its next
//! hop leaves the router's kernel FIB — with BFD at 300 ms × 3, at 100 ms × 3, and without
//! BFD (BGP hold 9 s) — and how much CPU 50 BFD sessions at 100 ms cost Berth.
//!
//! `cargo run --release -p benches --bin bfd -- detect 300 20` (or `100 20`, `nobfd 20`),
//! `cargo run --release -p benches --bin bfd -- cpu 50 30` (sessions, seconds).

use std::net::{IpAddr, Ipv4Addr};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bfd::{Bfd, SessionConfig, State, Timers};
use bgp::driver::{BfdGate, PeerConfig, Speaker, SpeakerConfig, Target};
use bgp::rib::{Prefix, RouteAttrs};
use bgp::wire::Family;
use ipnetwork::IpNetwork;
use testbed::Lab;
use testbed::Netns;
use testbed::router::frr::{Daemons, Frr};
use testbed::router::{Neighbor, Router, RouterConfig};
use tokio::sync::{mpsc, oneshot};

const ROUTER_AS: u32 = 65000;
const NODE_AS: u32 = 65001;
const SETUP: Duration = Duration::from_secs(60);

fn vip() -> IpNetwork {
    IpNetwork::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)), 32).expect("vip")
}

fn addresses(i: usize) -> (IpAddr, IpAddr) {
    (
        IpAddr::V4(Ipv4Addr::new(10, 1, i as u8, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 1, i as u8, 2)),
    )
}

fn host(address: IpAddr) -> IpNetwork {
    IpNetwork::new(address, 32).expect("host route")
}

enum Command {
    BfdUp(oneshot::Sender<usize>),
    Shutdown(oneshot::Sender<()>),
}

/// A Berth node in its namespace: BGP to the router (IPv4) with `hold`, announcing the VIP,
/// and a BFD session beside it when `bfd` is set.
struct Node {
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl Node {
    fn start(netns: &Netns, i: usize, hold: u16, bfd: Option<Timers>) -> Node {
        let (router, local) = addresses(i);
        let router_id = Ipv4Addr::new(10, 255, 1, i as u8);
        let (commands, mut inbox) = mpsc::channel(8);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let thread = netns
            .spawn_thread(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    let sessions = Bfd::new();
                    let gate = bfd.map(|timers| {
                        let handle = sessions
                            .add_session(SessionConfig::single_hop(router, Some(local), timers))
                            .expect("BFD session");
                        BfdGate(handle.gate())
                    });
                    let speaker = Speaker::start(SpeakerConfig::new(NODE_AS, router_id))
                        .await
                        .expect("speaker");
                    let mut config = PeerConfig::new(router, NODE_AS, ROUTER_AS, router_id);
                    config.transport.local = Some(local);
                    config.session.hold_time = hold;
                    config.session.connect_retry = Duration::from_secs(1);
                    config.session.idle_hold = Duration::from_millis(200);
                    config.session.families = vec![Family::IPV4_UNICAST];
                    config.bfd_gate = gate;
                    if bfd.is_none() {
                        // With graceful restart (RFC 8538), FRR keeps a silent node's paths
                        // as stale for the restart time after the hold timer expires: not
                        // what "hold time alone" is meant to show.
                        config.session.graceful_restart = None;
                    }
                    speaker.add_peer(config).expect("peer");
                    let prefix = Prefix::new(vip().ip(), vip().prefix()).expect("prefix");
                    speaker
                        .announce(vec![prefix], RouteAttrs::default(), Target::Peer(router))
                        .await
                        .expect("announce");
                    let _ = ready_tx.send(());
                    while let Some(command) = inbox.recv().await {
                        match command {
                            Command::BfdUp(reply) => {
                                let up = sessions
                                    .statuses()
                                    .iter()
                                    .filter(|s| s.state == State::Up)
                                    .count();
                                let _ = reply.send(up);
                            }
                            Command::Shutdown(reply) => {
                                sessions.shutdown().await;
                                speaker.shutdown("bench", Duration::ZERO).await;
                                let _ = reply.send(());
                                return;
                            }
                        }
                    }
                });
            })
            .expect("node thread");
        ready_rx.recv().expect("node started");
        Node {
            commands,
            thread: Some(thread),
        }
    }

    fn bfd_up(&self) -> usize {
        let (tx, rx) = oneshot::channel();
        if self.commands.blocking_send(Command::BfdUp(tx)).is_err() {
            return 0;
        }
        rx.blocking_recv().unwrap_or(0)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.blocking_send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.blocking_recv();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Router `r` with nodes n1, n2 on their own links.
fn star(label: &str, nodes: usize) -> Lab {
    let mut lab = Lab::new(label).expect("lab (root needed)");
    lab.add_router("r").expect("router");
    for i in 1..=nodes {
        let node = format!("n{i}");
        let rif = format!("eth{i}");
        lab.add_namespace(&node).expect("node");
        lab.link(("r", &rif), (&node, "eth0")).expect("link");
        let (r, n) = addresses(i);
        lab.add_address("r", &rif, IpNetwork::new(r, 24).expect("net"))
            .expect("address");
        lab.add_address(&node, "eth0", IpNetwork::new(n, 24).expect("net"))
            .expect("address");
    }
    lab
}

/// FRR with one BFD profile for every session (`neighbor X bfd profile berth`).
fn frr_config(config: &RouterConfig, interval_ms: u64, extra: &str) -> String {
    let mut text = testbed::router::frr::render(config);
    for neighbor in &config.neighbors {
        let plain = format!(" neighbor {} bfd\n", neighbor.address);
        let profiled = format!(" neighbor {} bfd profile berth\n", neighbor.address);
        text = text.replace(&plain, &profiled);
    }
    text.push_str(&format!(
        "bfd\n profile berth\n  detect-multiplier 3\n  receive-interval {interval_ms}\n  transmit-interval {interval_ms}\n !\n{extra}!\n"
    ));
    text
}

fn next_hops(netns: &Netns) -> usize {
    netns
        .fib()
        .ok()
        .and_then(|fib| fib.route(vip()).map(|r| r.next_hops.len()))
        .unwrap_or(0)
}

fn wait(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn summary(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = if samples.len() % 2 == 1 {
        ms(samples[samples.len() / 2])
    } else {
        (ms(samples[samples.len() / 2 - 1]) + ms(samples[samples.len() / 2])) / 2.0
    };
    println!(
        "{label}: {} trials, median {median:.0} ms, min {:.0} ms, max {:.0} ms",
        samples.len(),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
    );
}

/// `mode` is "300", "100" (BFD interval, × 3) or "nobfd" (BGP hold 9 s alone).
fn detect(mode: &str, trials: usize) {
    let (interval, hold) = match mode {
        "nobfd" => (None, 9u16),
        ms => (Some(ms.parse::<u64>().expect("interval in ms")), 90u16),
    };
    let lab = star(&format!("bfd-bench-{mode}"), 2);
    let mut config = RouterConfig::new("r", Ipv4Addr::new(10, 255, 0, 1), ROUTER_AS);
    config.timers.hold = hold;
    for i in 1..=2 {
        let mut neighbor = Neighbor::new(addresses(i).1, NODE_AS);
        if interval.is_some() {
            neighbor = neighbor.bfd();
        }
        config = config.neighbor(neighbor);
    }
    let router_ns = lab.netns("r").expect("r");
    let frr = match interval {
        Some(ms) => Frr::start_with_config(
            router_ns,
            &frr_config(&config, ms, ""),
            Daemons {
                bfdd: true,
                ..Daemons::default()
            },
        ),
        None => Frr::start(router_ns, &config),
    }
    .expect("FRR");
    let timers = interval.map(|ms| Timers::new(Duration::from_millis(ms), 3));
    let nodes: Vec<Node> = (1..=2)
        .map(|i| Node::start(lab.netns(&format!("n{i}")).expect("node"), i, hold, timers))
        .collect();
    let n1 = lab.netns("n1").expect("n1");
    let router_address = addresses(1).0;
    // Cost of one FIB read: the resolution of every figure below.
    let probe = Instant::now();
    for _ in 0..20 {
        next_hops(router_ns);
    }
    let resolution = probe.elapsed() / 20;
    let mut samples = Vec::new();
    for trial in 0..trials {
        wait("both next hops", SETUP, || next_hops(router_ns) == 2);
        if interval.is_some() {
            wait("BFD Up", SETUP, || nodes[0].bfd_up() == 1);
        }
        // A random phase against the BFD / keepalive transmit schedule.
        std::thread::sleep(Duration::from_millis(500 + rand_ms(trial)));
        n1.add_blackhole_route(host(router_address))
            .expect("blackhole");
        let cut = Instant::now();
        while next_hops(router_ns) != 1 {
            assert!(
                cut.elapsed() < Duration::from_secs(60),
                "never withdrawn: sessions {:?}, FIB {:?}",
                frr.sessions(),
                router_ns.fib()
            );
        }
        let elapsed = cut.elapsed();
        eprintln!("trial {trial}: {elapsed:?}");
        samples.push(elapsed);
        n1.remove_blackhole_route(host(router_address))
            .expect("un-blackhole");
    }
    let label = match interval {
        Some(ms) => format!("BFD {ms} ms x 3, BGP hold {hold} s"),
        None => format!("no BFD, BGP hold {hold} s"),
    };
    summary(&label, samples);
    println!("FIB read (poll resolution): {resolution:?}");
    drop(nodes);
    drop(frr);
}

fn rand_ms(seed: usize) -> u64 {
    // Deterministic spread over 0–997 ms without a generator.
    ((seed as u64).wrapping_mul(7919) + 13) % 997
}

/// CPU time (user + system) of a thread, from `/proc/thread-self/stat`, in clock ticks.
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is index 0, utime 11, stime 12.
    fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0)
}

/// The pid of the process named `name` whose network namespace is `netns`.
fn daemon_in(netns: &Netns, name: &str) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(netns.path()).ok()?.ino();
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        let ns = std::fs::metadata(format!("/proc/{pid}/ns/net")).ok()?.ino();
        (comm.trim() == name && ns == inode).then_some(pid)
    })
}

fn process_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields
        .get(11)
        .and_then(|f| f.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
}

/// `sessions` BFD sessions at 100 ms × 3 between Berth (node n1, addresses 10.1.1.100…)
/// and FRR bfdd (router r, 10.1.1.200…), one address pair per session, measured over
/// `seconds` once all are Up.
fn cpu(sessions: usize, seconds: u64) {
    assert!(sessions <= 50, "one /24 holds 50 address pairs here");
    let lab = star("bfd-bench-cpu", 1);
    let pairs: Vec<(IpAddr, IpAddr)> = (0..sessions)
        .map(|k| {
            (
                IpAddr::V4(Ipv4Addr::new(10, 1, 1, 100 + k as u8)),
                IpAddr::V4(Ipv4Addr::new(10, 1, 1, 200 + k as u8)),
            )
        })
        .collect();
    let mut peer_lines = String::new();
    for (local, peer) in &pairs {
        lab.add_address("n1", "eth0", IpNetwork::new(*local, 24).expect("net"))
            .expect("address");
        lab.add_address("r", "eth1", IpNetwork::new(*peer, 24).expect("net"))
            .expect("address");
        peer_lines.push_str(&format!(
            " peer {local} local-address {peer} interface eth1\n  profile berth\n !\n"
        ));
    }
    let config = RouterConfig::new("r", Ipv4Addr::new(10, 255, 0, 1), ROUTER_AS);
    let frr = Frr::start_with_config(
        lab.netns("r").expect("r"),
        &frr_config(&config, 100, &peer_lines),
        Daemons {
            bfdd: true,
            ..Daemons::default()
        },
    )
    .expect("FRR");
    let bfdd_pid = daemon_in(frr.netns(), "bfdd");
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = lab
        .netns("n1")
        .expect("n1")
        .spawn_thread(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let bfd = Bfd::new();
                let timers = Timers::new(Duration::from_millis(100), 3);
                for (local, peer) in &pairs {
                    bfd.add_session(SessionConfig::single_hop(*peer, Some(*local), timers))
                        .expect("session");
                }
                let start = tokio::time::Instant::now();
                while bfd.statuses().iter().any(|s| s.state != State::Up) {
                    assert!(
                        start.elapsed() < SETUP,
                        "sessions not Up: {:?}",
                        bfd.statuses()
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                // Poll sequences settle, then measure.
                tokio::time::sleep(Duration::from_secs(3)).await;
                let _ = tx.send(());
                let before = thread_cpu_ticks();
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                let after = thread_cpu_ticks();
                let up = bfd
                    .statuses()
                    .iter()
                    .filter(|s| s.state == State::Up)
                    .count();
                let downs: u64 = bfd.statuses().iter().map(|s| s.down_count).sum();
                let mut reasons = std::collections::BTreeMap::new();
                for s in bfd.statuses().iter().filter(|s| s.down_count > 0) {
                    *reasons.entry(format!("{:?}", s.diag)).or_insert(0) += 1;
                }
                if !reasons.is_empty() {
                    println!("  sessions that flapped, by last reason: {reasons:?}");
                }
                bfd.shutdown().await;
                (after - before, up, downs)
            })
        })
        .expect("thread");
    rx.recv().expect("sessions up");
    let bfdd_before = bfdd_pid.map(process_cpu_ticks);
    let (ticks, up, downs) = thread.join().expect("bench thread");
    let bfdd_after = bfdd_pid.map(process_cpu_ticks);
    let hz = 100.0; // USER_HZ on Linux
    let berth = ticks as f64 / hz / seconds as f64 * 100.0;
    println!(
        "{sessions} sessions at 100 ms x 3 for {seconds} s: Berth (bfd driver, one thread) {berth:.2} % of one core; still Up {up}/{sessions}, flaps {downs}"
    );
    if let (Some(b), Some(a)) = (bfdd_before, bfdd_after) {
        println!(
            "  FRR bfdd over roughly the same window: {:.2} % of one core",
            (a - b) as f64 / hz / seconds as f64 * 100.0
        );
    }
    drop(frr);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    match arg(0, "all").as_str() {
        "detect" => detect(&arg(1, "300"), arg(2, "20").parse().expect("trials")),
        "cpu" => cpu(
            arg(1, "50").parse().expect("sessions"),
            arg(2, "30").parse().expect("seconds"),
        ),
        _ => {
            for mode in ["300", "100"] {
                detect(mode, 20);
            }
            detect("nobfd", 20);
            cpu(50, 30);
        }
    }
}
