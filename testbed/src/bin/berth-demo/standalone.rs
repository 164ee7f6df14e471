//! Standalone mode (`--standalone`): no Kubernetes. `berth-controller` and one
//! `berth-speaker` per node read the example manifests from a directory (`--state-dir`), and
//! the controller writes the Service's address back into it. Knows nothing about the
//! control plane.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use testbed::lab::Process;

use crate::console::{show, step};
use crate::routers::{self, Sockets};
use crate::topology::{self, NODES};
use crate::{CLUSTER_YAML, Options, SERVICE_YAML, connections, signals};

/// The device the speakers put announced VIPs on: `lo`, present everywhere (a dummy device
/// would need the `dummy` kernel module).
const VIP_DEVICE: &str = "lo";

/// Runs the demo over manifest files; the lab goes when this returns.
pub fn run(options: &Options) -> Result<()> {
    let controller_bin = options.bin("berth-controller")?;
    let speaker_bin = options.bin("berth-speaker")?;
    let berthctl = options.bin("berthctl")?;

    step("bringing up the tor-pair lab: tor1 (BIRD), tor2 (FRR), node1-3, client");
    let clab = topology::up()?;
    let lab = clab.lab();
    signals::check()?;
    topology::print_namespaces(&clab);

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
    let responders = connections::responders(&clab)?;

    step("waiting for the BGP sessions (each node peers with both routers, IPv4 and IPv6)");
    routers::wait_for_sessions(&clab)?;
    step("creating Service web/demo (no address yet; the controller picks one from demo-pool)");
    write_manifest(&state, "service.yaml", SERVICE_YAML)?;
    let vip = signals::wait_for("an address for web/demo", || Ok(allocated_vip(&state)))?;
    println!("  berth-controller wrote status.loadBalancer.ingress: [{{ip: {vip}}}]");
    routers::wait_for_ecmp(&clab, vip)?;

    step("the BGP sessions, from a node and from both routers (each IPv4 session carries the VIP)");
    let berthctl_out = lab
        .netns("node1")?
        .output(&berthctl.to_string_lossy(), &["peers"])?;
    show("node1 $ berthctl peers", &berthctl_out);
    let sockets = Sockets::of(&clab)?;
    routers::show_sessions(&sockets, true)?;
    step(&format!(
        "the routers' route for {vip}: one route, three next hops (ECMP)"
    ));
    routers::show_routes(&clab, vip)?;
    connections::show_spread(&clab, vip, options.connections)?;

    if options.keep {
        let ns = |node: &str| lab.netns(node).map(|n| n.name().to_string());
        print_explore(&Explore {
            node1: ns("node1")?,
            tor1: ns("tor1")?,
            tor2: ns("tor2")?,
            client: ns("client")?,
            berthctl: &berthctl,
            sockets: &sockets,
            state: &state,
            vip,
        });
        signals::wait_for_signal();
    }
    step("tearing down");
    // Speakers first, so the routers see the sessions close; then the lab goes on drop.
    for process in processes.iter_mut().rev() {
        process.stop(Duration::from_secs(3));
    }
    drop(responders);
    Ok(())
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

/// What `--keep` tells a person: namespace names, sockets and paths of the running lab.
struct Explore<'a> {
    node1: String,
    tor1: String,
    tor2: String,
    client: String,
    berthctl: &'a PathBuf,
    sockets: &'a Sockets,
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
        bird = e.sockets.bird.display(),
        vty = e.sockets.vty.display(),
        state = e.state.display(),
    );
}
