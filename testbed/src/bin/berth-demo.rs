//! The demo behind `./demo.sh`: brings up the `tor-pair` lab (tor1: BIRD, tor2: FRR, three
//! nodes, a client), runs `berth-controller` and one `berth-speaker` per node in standalone
//! mode over the example manifests in `testbed/demo/manifests/`, and shows what a person wants
//! to see: the BGP sessions from both sides, each router's multipath route for the VIP, and how
//! the client's connections spread over the nodes. Then it tears everything down — on success,
//! on error and on Ctrl-C / SIGTERM alike — or, with `--keep`, waits for Ctrl-C first and
//! prints how to explore the running lab.
//!
//! Usage: `berth-demo [--keep] [--connections N] [--bin-dir DIR]` (as root). The Berth
//! binaries are taken from `--bin-dir`, by default the directory of this executable.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use testbed::clab::ClabLab;
use testbed::lab::Process;
use testbed::router::SessionState;
use testbed::traffic::{Protocol, Responder, Spread, spread};

/// The cluster: BgpConf, the address pool, the nodes and their BgpPeers.
const CLUSTER_YAML: &str = include_str!("../../demo/manifests/cluster.yaml");
/// The Service (no address yet) and its EndpointSlice.
const SERVICE_YAML: &str = include_str!("../../demo/manifests/service.yaml");
/// The lab topology, embedded so the binary runs from anywhere.
const TOPOLOGY: &str = include_str!("../../labs/tor-pair.clab.yml");
/// The topology's router configurations, which it names relative to itself.
const TOR1_BIRD: &str = include_str!("../../labs/tor-pair/tor1.bird.conf");
const TOR2_FRR: &str = include_str!("../../labs/tor-pair/tor2.frr.conf");

/// The nodes of the lab, where the speakers run.
const NODES: [&str; 3] = ["node1", "node2", "node3"];
/// Sessions each router should see established: every node over IPv4 and IPv6.
const SESSIONS_PER_ROUTER: usize = 6;
/// How long sessions, the address allocation and routes get to appear.
const TIMEOUT: Duration = Duration::from_secs(45);
/// The device the speakers put announced VIPs on: `lo`, present everywhere (a dummy device
/// would need the `dummy` kernel module).
const VIP_DEVICE: &str = "lo";

/// Set by the signal thread on SIGINT or SIGTERM; every wait checks it.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Command-line options.
#[derive(Debug)]
struct Options {
    keep: bool,
    connections: usize,
    bin_dir: PathBuf,
}

fn parse_args() -> Result<Options> {
    let exe = std::env::current_exe().context("where is this executable")?;
    let mut options = Options {
        keep: false,
        connections: 300,
        bin_dir: exe.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--keep" => options.keep = true,
            "--connections" => {
                options.connections = args
                    .next()
                    .context("--connections needs a number")?
                    .parse()
                    .context("--connections needs a number")?;
            }
            "--bin-dir" => {
                options.bin_dir = args.next().context("--bin-dir needs a directory")?.into();
            }
            "-h" | "--help" => {
                println!("usage: berth-demo [--keep] [--connections N] [--bin-dir DIR]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    Ok(options)
}

fn main() {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    };
    if let Err(e) = watch_signals() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    // `run` owns the lab: whatever way it returns, the lab is dropped (torn down) first.
    let result = run(&options);
    println!("\n==> the lab is torn down (namespaces, routers, speakers, controller)");
    match result {
        Ok(()) => {}
        Err(e) if INTERRUPTED.load(Ordering::SeqCst) => {
            eprintln!("stopped: {e:#}");
            std::process::exit(130);
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

/// Catches SIGINT and SIGTERM on a thread of its own, so the main flow can stop at its next
/// wait and tear the lab down instead of dying with namespaces and daemons left behind.
fn watch_signals() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = signal(SignalKind::interrupt())
                .and_then(|i| signal(SignalKind::terminate()).map(|t| (i, t)));
            let (mut interrupt, mut terminate) = match streams {
                Ok(s) => {
                    let _ = ready_tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            loop {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                if !INTERRUPTED.swap(true, Ordering::SeqCst) {
                    eprintln!("\n(signal received: tearing the lab down)");
                }
            }
        });
    });
    ready_rx
        .recv()
        .context("signal thread died")?
        .context("install signal handlers")
}

fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Polls `probe` until it gives a value, the timeout passes, or a signal arrives.
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let value = testbed::wait::until(what, TIMEOUT, || {
        if INTERRUPTED.load(Ordering::SeqCst) {
            // An error is "not yet" to `until`; a value ends it, so end with `None` inside.
            return Ok(Some(None));
        }
        Ok(probe()
            .map_err(|e| testbed::Error::Daemon(format!("{e:#}")))?
            .map(Some))
    })?;
    value.ok_or_else(|| anyhow::anyhow!("interrupted while waiting for {what}"))
}

fn step(text: &str) {
    println!("\n==> {text}");
}

/// Prints a command's output indented under a `$ command` line.
fn show(title: &str, output: &str) {
    println!("\n  {title}");
    for line in output.trim_end().lines() {
        println!("    {line}");
    }
}

fn bin(options: &Options, name: &str) -> Result<PathBuf> {
    let path = options.bin_dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is missing: build it first (`cargo build -p speaker -p controller --bins`), or pass --bin-dir",
            path.display()
        );
    }
    Ok(path)
}

/// Writes a manifest atomically (write, then rename), as the controller does.
fn write_manifest(dir: &Path, file: &str, text: &str) -> Result<()> {
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, text).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(file)).with_context(|| format!("rename {}", tmp.display()))
}

/// The address the controller wrote into the Service's status, once it has.
fn allocated_vip(state: &Path) -> Option<IpAddr> {
    let text = std::fs::read_to_string(state.join("service.yaml")).ok()?;
    let doc = serde_yaml::Deserializer::from_str(&text).next()?;
    let svc = serde_yaml::Value::deserialize(doc).ok()?;
    svc["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()?
        .parse()
        .ok()
}

/// Writes the topology and its router configurations into `dir` and brings the lab up.
fn lab_up(dir: &Path) -> Result<ClabLab> {
    std::fs::create_dir_all(dir.join("tor-pair")).context("topology directory")?;
    std::fs::write(dir.join("tor-pair.clab.yml"), TOPOLOGY).context("write topology")?;
    std::fs::write(dir.join("tor-pair/tor1.bird.conf"), TOR1_BIRD).context("write tor1")?;
    std::fs::write(dir.join("tor-pair/tor2.frr.conf"), TOR2_FRR).context("write tor2")?;
    ClabLab::up(&dir.join("tor-pair.clab.yml")).context("bring up the tor-pair lab")
}

fn run(options: &Options) -> Result<()> {
    testbed::lab::require_root().context("the demo builds network namespaces")?;
    let controller_bin = bin(options, "berth-controller")?;
    let speaker_bin = bin(options, "berth-speaker")?;
    let berthctl = bin(options, "berthctl")?;

    step("bringing up the tor-pair lab: tor1 (BIRD), tor2 (FRR), node1-3, client");
    // The topology files live in a directory of their own that goes with this process.
    let topology_dir =
        testbed::lab::runtime_root().join(format!("demo-topology-{}", std::process::id()));
    let clab = lab_up(&topology_dir);
    let _ = std::fs::remove_dir_all(&topology_dir);
    let clab = clab?;
    let lab = clab.lab();
    check_interrupted()?;
    let ns = |node: &str| lab.netns(node).map(|n| n.name().to_string());
    println!(
        "  namespaces: {}",
        lab.namespaces()
            .values()
            .map(|n| n.name())
            .collect::<Vec<_>>()
            .join(" ")
    );

    step("starting berth-controller and a berth-speaker on each node (standalone mode)");
    let state = lab.dir().join("manifests");
    std::fs::create_dir_all(&state).context("manifest directory")?;
    write_manifest(&state, "cluster.yaml", CLUSTER_YAML)?;
    let mut processes = Vec::new();
    let log = std::fs::File::create(lab.dir().join("controller.log")).context("controller log")?;
    let mut command = Command::new(&controller_bin);
    command
        .arg("--state-dir")
        .arg(&state)
        .args(["--metrics-addr", ""])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    processes.push(Process::spawn("berth-controller", command)?);
    for node in NODES {
        let log = std::fs::File::create(lab.dir().join(format!("{node}-speaker.log")))
            .context("speaker log")?;
        let mut command = lab.netns(node)?.command(&speaker_bin);
        command
            .args(["--node-name", node, "--state-dir"])
            .arg(&state)
            .args(["--vip-interface", VIP_DEVICE, "--drain-seconds", "1"])
            // The lab's own marker, never the host's /run/berth/restart.
            .arg("--restart-marker")
            .arg(lab.dir().join(format!("{node}-restart-marker")))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        processes.push(Process::spawn(format!("berth-speaker on {node}"), command)?);
    }
    println!("  manifests: {}", state.display());
    println!(
        "  logs:      {}/{{controller,node1-speaker,...}}.log",
        lab.dir().display()
    );

    // Each node answers every connection with its own name, on any address: the VIP arrives
    // on the node's `lo` when its speaker announces it.
    let mut responders = Vec::new();
    for node in NODES {
        let any: SocketAddr = ([0, 0, 0, 0], 80).into();
        responders.push(Responder::start(lab.netns(node)?, node, &[any])?);
    }

    step("waiting for the BGP sessions (each node peers with both routers, IPv4 and IPv6)");
    for router in ["tor1", "tor2"] {
        let router = clab.router(router)?;
        wait_for(
            &format!(
                "{SESSIONS_PER_ROUTER} established sessions on {}",
                router.netns().node()
            ),
            || {
                let up = router
                    .sessions()?
                    .iter()
                    .filter(|s| s.state == SessionState::Established)
                    .count();
                Ok((up >= SESSIONS_PER_ROUTER).then_some(()))
            },
        )?;
    }
    step("creating Service web/demo (no address yet; the controller picks one from demo-pool)");
    write_manifest(&state, "service.yaml", SERVICE_YAML)?;
    let vip = wait_for("an address for web/demo", || Ok(allocated_vip(&state)))?;
    println!("  berth-controller wrote status.loadBalancer.ingress: [{{ip: {vip}}}]");
    let vip_text = vip.to_string();

    for (router, tor) in [("tor1", 1), ("tor2", 2)] {
        wait_for_ecmp(lab.netns(router)?, vip, tor)?;
    }
    step("the BGP sessions, from a node and from both routers (each IPv4 session carries the VIP)");
    let berthctl_out = lab
        .netns("node1")?
        .output(&berthctl.to_string_lossy(), &["peers"])?;
    show("node1 $ berthctl peers", &berthctl_out);
    let bird_socket = lab.netns("tor1")?.dir()?.join("bird").join("bird.ctl");
    let birdc_out = run_tool(
        Command::new("birdc")
            .arg("-s")
            .arg(&bird_socket)
            .args(["show", "protocols"]),
    )?;
    show("tor1 (BIRD) $ birdc show protocols", &birdc_out);
    let vty_dir = lab.netns("tor2")?.dir()?.join("frr");
    let vtysh_out = run_tool(
        Command::new("vtysh")
            .arg("--vty_socket")
            .arg(&vty_dir)
            .args(["-c", "show bgp ipv4 unicast summary"]),
    )?;
    show(
        "tor2 (FRR) $ vtysh -c 'show bgp ipv4 unicast summary'",
        &vtysh_out,
    );

    step(&format!(
        "the routers' route for {vip}: one route, three next hops (ECMP)"
    ));
    for (router, tor) in [("tor1", 1), ("tor2", 2)] {
        let netns = lab.netns(router)?;
        let route = netns.output("ip", &["route", "show", &vip_text])?;
        let kind = if tor == 1 { "BIRD" } else { "FRR" };
        show(&format!("{router} ({kind}) $ ip route show {vip}"), &route);
    }

    step(&format!(
        "{} TCP connections from the client to {vip}:80, each from a new source port",
        options.connections
    ));
    let target: SocketAddr = (vip, 80).into();
    let mut result = Spread::default();
    let mut left = options.connections;
    // In batches, so Ctrl-C is honoured within a few seconds even if nothing answers.
    while left > 0 {
        check_interrupted()?;
        let batch = left.min(25);
        let part = spread(
            lab.netns("client")?,
            Protocol::Tcp,
            target,
            batch,
            Duration::from_secs(2),
        )?;
        for (node, count) in part.answers {
            *result.answers.entry(node).or_default() += count;
        }
        result.failures += part.failures;
        left -= batch;
    }
    println!("{}", spread_table(&result));
    if result.failures > 0 {
        bail!("{} connections got no answer", result.failures);
    }

    if options.keep {
        print_explore(&Explore {
            node1: ns("node1")?,
            tor1: ns("tor1")?,
            tor2: ns("tor2")?,
            client: ns("client")?,
            berthctl: &berthctl,
            bird_socket: &bird_socket,
            vty_dir: &vty_dir,
            state: &state,
            vip,
        });
        while !INTERRUPTED.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    step("tearing down");
    // Speakers first, so the routers see the sessions close; then the lab goes on drop.
    for process in processes.iter_mut().rev() {
        process.stop(Duration::from_secs(3));
    }
    drop(responders);
    Ok(())
}

/// Waits until the router behind `netns` (`tor` 1 or 2) routes `vip` via all three nodes.
fn wait_for_ecmp(netns: &testbed::Netns, vip: IpAddr, tor: usize) -> Result<()> {
    let expected: std::collections::BTreeSet<IpAddr> = (1..=NODES.len())
        .filter_map(|n| format!("10.{tor}.{n}.2").parse().ok())
        .collect();
    let host = ipnetwork::IpNetwork::new(vip, 32).context("host route")?;
    wait_for(
        &format!("{vip} via three nodes on {}", netns.node()),
        || Ok((netns.fib()?.gateways(host) == expected).then_some(())),
    )
}

/// Runs a router CLI and returns its standard output, or why it failed.
fn run_tool(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("run {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{:?} failed: {}",
            command.get_program(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The table of answers per node: count, share and a bar.
fn spread_table(result: &Spread) -> String {
    let total = result.answered() + result.failures;
    let mut out = String::from("\n    node    connections   share\n");
    let mut rows: Vec<(String, usize)> = NODES
        .iter()
        .map(|n| ((*n).to_string(), result.count(n)))
        .collect();
    for (name, count) in &result.answers {
        if !NODES.contains(&name.as_str()) {
            rows.push((name.clone(), *count));
        }
    }
    if result.failures > 0 {
        rows.push(("(failed)".into(), result.failures));
    }
    for (name, count) in rows {
        let share = (count * 100).checked_div(total).unwrap_or(0);
        let _ = writeln!(
            out,
            "    {name:<8}{count:>11}   {share:>4}%  {}",
            "#".repeat(share / 2)
        );
    }
    let _ = write!(out, "    {:<8}{total:>11}", "total");
    out
}

/// What `--keep` tells a person: namespace names, sockets and paths of the running lab.
struct Explore<'a> {
    node1: String,
    tor1: String,
    tor2: String,
    client: String,
    berthctl: &'a Path,
    bird_socket: &'a Path,
    vty_dir: &'a Path,
    state: &'a Path,
    vip: IpAddr,
}

/// With `--keep`: how to look around the running lab, and how to end it.
fn print_explore(e: &Explore<'_>) {
    let Explore {
        node1,
        tor1,
        tor2,
        client,
        vip,
        ..
    } = e;
    let pid = std::process::id();
    println!(
        "\n==> the lab keeps running (--keep). From another shell, as root:\n\n\
         \x20 # the speaker on node1 (admin API on 127.0.0.1:7473 inside each node's namespace)\n\
         \x20 ip netns exec {node1} {berthctl} --addr 127.0.0.1:7473 peers\n\
         \x20 ip netns exec {node1} {berthctl} --addr 127.0.0.1:7473 routes\n\
         \x20 # tor1 (BIRD) and tor2 (FRR)\n\
         \x20 ip netns exec {tor1} birdc -s {bird} show route for {vip} all\n\
         \x20 ip netns exec {tor2} vtysh --vty_socket {vty} -c 'show bgp ipv4 unicast {vip}'\n\
         \x20 ip netns exec {tor1} ip route show {vip}\n\
         \x20 # a connection from the client (each node answers with its name)\n\
         \x20 ip netns exec {client} bash -c 'cat </dev/tcp/{vip}/80'; echo\n\
         \x20 # change the cluster: edit or delete the manifests, the controller and speakers follow\n\
         \x20 ls {state}\n\n\
         To tear it all down: press Ctrl-C here, or run `kill {pid}`.",
        berthctl = e.berthctl.display(),
        bird = e.bird_socket.display(),
        vty = e.vty_dir.display(),
        state = e.state.display(),
    );
}
