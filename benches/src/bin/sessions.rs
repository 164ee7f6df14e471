//! Session benchmarks over loopback: a Berth `Speaker` (this process) announces to raw BGP
//! receivers running in a child process (so that the announcing process's memory is
//! measured alone).
//!
//! - `one`: 100,000 /32 VIPs to one peer: time from Established until the peer has them
//!   all, UPDATE count, peak RSS of the announcing process.
//! - `many`: 1,000 VIPs to each of 100 peers: the same figures.
//! - `idle`: resident memory per idle established session (100 sessions, no routes).
//!
//! Run: `cargo run --release -p benches --bin sessions` (all three), or with `one`,
//! `many` or `idle`. Uses 127.0.0.1 and 127.0.1.x, port 11179.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bgp::driver::{PeerConfig, Speaker, SpeakerConfig, Target};
use bgp::rib::{Prefix, RouteAttrs};
use bgp::session::{ConnectMode, State};
use bgp::wire::{Capability, Context, Family, Message, Open, frame};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PORT: u16 = 11179;

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A field of /proc/self/status in kB (VmRSS, VmHWM).
fn proc_status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn receiver_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, (i + 1) as u8)
}

// ---------------------------------------------------------------------------------------
// Child: raw receivers that count prefixes.

async fn receive_one(addr: Ipv4Addr, expect: usize) {
    let listener = match TcpListener::bind(SocketAddr::new(addr.into(), PORT)).await {
        Ok(l) => l,
        Err(e) => {
            println!("error {addr} {e}");
            return;
        }
    };
    println!("listening {addr}");
    let Ok((mut stream, _)) = listener.accept().await else {
        return;
    };
    let mut buf = BytesMut::with_capacity(1 << 16);
    let mut ctx = Context::default();
    let mut prefixes = 0usize;
    let mut updates = 0usize;
    let mut reported = false;
    loop {
        while let Ok(Some(len)) = frame(&buf, 65535) {
            let bytes = buf.split_to(len);
            match Message::decode(&bytes, &ctx) {
                Ok(Message::Open(_)) => {
                    let caps = vec![
                        Capability::Multiprotocol(Family::IPV4_UNICAST),
                        Capability::FourOctetAs(65000),
                        Capability::RouteRefresh,
                    ];
                    let open = Message::Open(Open::new(65000, 0, addr, caps));
                    let mut out = open.to_bytes(&ctx).unwrap_or_default();
                    out.extend_from_slice(&Message::Keepalive.to_bytes(&ctx).unwrap_or_default());
                    if stream.write_all(&out).await.is_err() {
                        return;
                    }
                    ctx.four_octet_as = true;
                }
                Ok(Message::Update(u)) => {
                    updates += 1;
                    prefixes += u.nlri.len();
                }
                Ok(_) => {}
                Err(e) => {
                    println!("error {addr} {e}");
                    return;
                }
            }
        }
        if !reported && prefixes >= expect {
            reported = true;
            println!("done {addr} {} {updates}", now_ns());
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn receiver(peers: usize, expect: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        for i in 0..peers {
            tokio::spawn(receive_one(receiver_addr(i), expect));
        }
        // Live until the parent closes stdin.
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await;
    });
}

// ---------------------------------------------------------------------------------------
// Parent: the announcing speaker.

struct Receivers {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Receivers {
    fn spawn(peers: usize, expect: usize) -> Receivers {
        let exe = std::env::current_exe().expect("current exe");
        let mut child = Command::new(exe)
            .args(["receiver", &peers.to_string(), &expect.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn receivers");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let r = Receivers { child, lines };
        for _ in 0..peers {
            let line = r.next();
            assert!(line.starts_with("listening"), "receiver: {line}");
        }
        r
    }

    fn next(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(120))
            .expect("receiver output")
    }
}

impl Drop for Receivers {
    fn drop(&mut self) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.child.wait();
    }
}

async fn speaker() -> Speaker {
    let mut config = SpeakerConfig::new(65001, Ipv4Addr::new(10, 255, 0, 1));
    config.listen_addresses.clear(); // active only: the receivers listen
    Speaker::start(config).await.expect("speaker")
}

fn peer_config(i: usize) -> PeerConfig {
    let mut p = PeerConfig::new(
        IpAddr::V4(receiver_addr(i)),
        65001,
        65000,
        Ipv4Addr::new(10, 255, 0, 1),
    );
    p.transport.remote_port = PORT;
    p.transport.local = Some(Ipv4Addr::LOCALHOST.into());
    p.session.mode = ConnectMode::Active;
    p.session.connect_retry = Duration::from_secs(1);
    p
}

fn vips(n: usize, base: u32) -> Vec<Prefix> {
    (0..n as u32)
        .map(|i| Prefix::host(Ipv4Addr::from(base + i).into()))
        .collect()
}

/// Announces `per_peer` VIPs to each of `peers` receivers; prints the figures.
async fn announce(name: &str, peers: usize, per_peer: usize) {
    let receivers = Receivers::spawn(peers, per_peer);
    // Reset the peak RSS (VmHWM) so that each scenario reports its own.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = proc_status_kb("VmRSS:");
    let s = speaker().await;
    s.announce(
        vips(per_peer, 0x0A00_0000),
        RouteAttrs::default(),
        Target::All,
    )
    .await
    .expect("announce");
    let mut changes = s.subscribe();
    let added = now_ns();
    for i in 0..peers {
        s.add_peer(peer_config(i)).expect("add peer");
    }
    let mut established: HashMap<IpAddr, u128> = HashMap::new();
    // State changes carry the tokio instant they happened at; map it to wall-clock time,
    // which the receivers (another process) also use.
    let (t0, wall0) = (tokio::time::Instant::now(), now_ns());
    let watcher = tokio::spawn(async move {
        while let Ok(c) = changes.recv().await {
            if c.to == State::Established {
                established.insert(
                    c.address,
                    wall0 + c.at.saturating_duration_since(t0).as_nanos(),
                );
            }
        }
        established
    });
    let mut done: HashMap<IpAddr, (u128, usize)> = HashMap::new();
    while done.len() < peers {
        let line = tokio::task::block_in_place(|| receivers.next());
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["done", addr, at, updates] => {
                let addr: IpAddr = addr.parse().expect("addr");
                done.insert(addr, (at.parse().expect("ns"), updates.parse().expect("n")));
            }
            _ => panic!("receiver: {line}"),
        }
    }
    let updates_sent: u64 = s.peers().iter().map(|p| p.sent.update).sum();
    let peak_kb = proc_status_kb("VmHWM:");
    s.close("benchmark over").await;
    drop(s);
    let established = watcher.await.expect("watcher");
    let mut worst = Duration::ZERO;
    let mut first_up = u128::MAX;
    let mut last_done = 0u128;
    for (addr, (at, _)) in &done {
        let up = established.get(addr).copied().unwrap_or(*at);
        first_up = first_up.min(up);
        last_done = last_done.max(*at);
        worst = worst.max(Duration::from_nanos(at.saturating_sub(up) as u64));
    }
    println!("## {name}: {per_peer} VIPs to each of {peers} peer(s)");
    println!(
        "  peers added -> last peer has all (incl. TCP + OPEN): {:.1} ms",
        Duration::from_nanos(last_done.saturating_sub(added) as u64).as_secs_f64() * 1e3
    );
    let updates_received: usize = done.values().map(|(_, u)| u).sum();
    println!(
        "  Established -> peer has all (worst peer): {:.1} ms",
        worst.as_secs_f64() * 1e3
    );
    println!(
        "  first Established -> last peer has all:   {:.1} ms",
        Duration::from_nanos(last_done.saturating_sub(first_up) as u64).as_secs_f64() * 1e3
    );
    println!(
        "  UPDATEs sent (incl. End-of-RIB): {updates_sent}; received with NLRI counted: {updates_received}"
    );
    println!(
        "  announcing process: RSS before {:.1} MB, peak {:.1} MB",
        rss_before as f64 / 1024.0,
        peak_kb as f64 / 1024.0
    );
    drop(receivers);
}

/// Resident memory per idle established session.
async fn idle(peers: usize) {
    let receivers = Receivers::spawn(peers, 0);
    let s = speaker().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = proc_status_kb("VmRSS:");
    for i in 0..peers {
        s.add_peer(peer_config(i)).expect("add peer");
    }
    for _ in 0..peers {
        let line = tokio::task::block_in_place(|| receivers.next());
        assert!(line.starts_with("done"), "receiver: {line}");
    }
    while s.peers().iter().any(|p| p.state != State::Established) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = proc_status_kb("VmRSS:");
    println!("## idle: {peers} established sessions, no routes");
    println!(
        "  RSS {:.1} MB -> {:.1} MB: {:.1} kB per idle session",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / peers as f64
    );
    s.close("benchmark over").await;
    drop(receivers);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("receiver") {
        let peers = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
        let expect = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0);
        receiver(peers, expect);
        return;
    }
    let which = args.first().cloned().unwrap_or_else(|| "all".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if which == "one" || which == "all" {
            announce("one", 1, 100_000).await;
        }
        if which == "many" || which == "all" {
            announce("many", 100, 1_000).await;
        }
        if which == "idle" || which == "all" {
            idle(100).await;
        }
    });
}
