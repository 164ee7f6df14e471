//! End to end through the real binaries: three `berth-speaker`s in standalone mode on the
//! `tor-pair` lab (BIRD on tor1, FRR on tor2), all reading one manifest directory.
//! A Service's VIP is announced by every node with an endpoint rule satisfied, both
//! routers install the ECMP route, the client's connections spread over the nodes;
//! policy Local narrows it to the node with the endpoint and follows the endpoint when it
//! moves; deleting the Service withdraws it; adding BgpPeers (IPv6) starts new sessions
//! without resetting the existing ones, and a dual-stack Service is announced in both
//! families. A rolling restart keeps every next hop, and each restarted speaker, told
//! nothing, finds the restart marker its predecessor left and sends the graceful-restart
//! R bit.
//!
//! The binaries come from the same target directory as this test (`cargo test
//! --workspace` builds them; alone: `cargo build -p speaker --bins`).

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;

use common::{SESSION_TIMEOUT, ip, lab_file, vip4, vip6, workspace_bin};
use testbed::clab::ClabLab;
use testbed::lab::Process;
use testbed::traffic::{Protocol, Responder, spread};

/// How long an announcement change gets to reach both routers' FIBs.
const CONVERGE: Duration = Duration::from_secs(15);

fn nodes_and_peers(v6_peers: bool) -> String {
    let mut out = String::from(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpConf\nmetadata: {name: default}\nspec: {as: 65001}\n---\n\
         apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: pool4}\nspec: {address: 10.0.0.96/28}\n---\n\
         apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: pool6}\nspec: {address: \"2001:db8::100/124\"}\n",
    );
    for n in 1..=3 {
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: node{n}\n  labels: {{kubernetes.io/hostname: node{n}}}\n\
             status:\n  addresses: [{{type: InternalIP, address: 10.1.{n}.2}}]\n"
        ));
        let mut peers = vec![
            (format!("tor1-node{n}"), format!("10.1.{n}.1")),
            (format!("tor2-node{n}"), format!("10.2.{n}.1")),
        ];
        if v6_peers {
            peers.push((format!("tor1-v6-node{n}"), format!("fd00:1:{n}::1")));
            peers.push((format!("tor2-v6-node{n}"), format!("fd00:2:{n}::1")));
        }
        for (name, addr) in peers {
            out.push_str(&format!(
                "---\napiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {{name: {name}}}\nspec:\n  \
                 conf: {{peerAs: 65000, neighborAddress: \"{addr}\"}}\n  timers: {{config: {{holdTime: \"9\", connectRetry: \"1\"}}}}\n  \
                 nodeSelector: {{matchLabels: {{kubernetes.io/hostname: node{n}}}}}\n"
            ));
        }
    }
    out
}

/// Service web/demo with `ips`, policy Local or Cluster, endpoints on `nodes` (all ready).
fn service(ips: &[IpAddr], local: bool, nodes: &[usize]) -> String {
    let ingress: Vec<String> = ips.iter().map(|ip| format!("{{ip: \"{ip}\"}}")).collect();
    let eps: String = nodes
        .iter()
        .map(|n| {
            format!(
                "- addresses: [10.244.{n}.5]\n  nodeName: node{n}\n  conditions: {{ready: true}}\n"
            )
        })
        .collect();
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{namespace: web, name: demo}}\nspec:\n  type: LoadBalancer\n  \
         loadBalancerClass: berth.io/lb\n  externalTrafficPolicy: {}\n  ports: [{{port: 80}}]\nstatus:\n  loadBalancer:\n    ingress: [{}]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  namespace: web\n  name: demo-1\n  \
         labels: {{kubernetes.io/service-name: demo}}\naddressType: IPv4\nendpoints:{}",
        if local { "Local" } else { "Cluster" },
        ingress.join(", "),
        if eps.is_empty() {
            " []\n".to_string()
        } else {
            format!("\n{eps}")
        }
    )
}

/// Writes a manifest file atomically (write, then rename), as the controller does.
fn write(dir: &Path, file: &str, text: &str) {
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(file)).unwrap();
}

fn tor_gateways(n: &[usize], tor: usize) -> BTreeSet<IpAddr> {
    n.iter().map(|n| ip(&format!("10.{tor}.{n}.2"))).collect()
}

fn wait_gateways(clab: &ClabLab, what: &str, nodes: &[usize]) {
    for (tor, name) in [(1, "tor1"), (2, "tor2")] {
        let router = clab.router(name).unwrap();
        let expected = tor_gateways(nodes, tor);
        testbed::wait::until(&format!("{what} on {name}"), CONVERGE, || {
            Ok((router.fib()?.gateways(vip4()) == expected).then_some(()))
        })
        .unwrap();
    }
}

/// Node `n`'s restart marker: in the lab, not the host's default `/run/berth` that any
/// speaker on this machine would read.
fn restart_marker(lab: &testbed::Lab, n: usize) -> PathBuf {
    lab.netns(&format!("node{n}"))
        .unwrap()
        .dir()
        .unwrap()
        .join("restart-marker")
}

/// Starts `berth-speaker` on node `n` reading `state`, its log in the lab directory as
/// `{node}-speaker{log_suffix}.log`. Never `--restarting`: only the marker says so.
fn start_speaker(
    lab: &testbed::Lab,
    state: &Path,
    speaker_bin: &Path,
    on_sigterm: &str,
    n: usize,
    log_suffix: &str,
) -> Process {
    let node = format!("node{n}");
    let netns = lab.netns(&node).unwrap();
    let log =
        std::fs::File::create(lab.dir().join(format!("{node}-speaker{log_suffix}.log"))).unwrap();
    let mut command = netns.command(speaker_bin);
    command
        .args(["--node-name", &node, "--state-dir"])
        .arg(state)
        .args(["--drain-seconds", "1", "--on-sigterm", on_sigterm])
        .arg("--restart-marker")
        .arg(restart_marker(lab, n))
        .args(["--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    Process::spawn(format!("berth-speaker on {node}"), command).unwrap()
}

/// Starts `berth-speaker` on node1..=3, all reading `state`; logs go to the lab directory.
fn start_speakers(
    lab: &testbed::Lab,
    state: &Path,
    speaker_bin: &Path,
    on_sigterm: &str,
) -> Vec<Process> {
    (1..=3)
        .map(|n| start_speaker(lab, state, speaker_bin, on_sigterm, n, ""))
        .collect()
}

/// The graceful-restart R bit tor2 (FRR) received from node `n` on an Established session
/// (`rBit` of `show bgp neighbors json`, as `interop.rs` reads it); `None` while the
/// session is not Established.
fn frr_r_bit(lab: &testbed::Lab, n: usize) -> Option<bool> {
    let vty = lab.netns("tor2").unwrap().dir().unwrap().join("frr");
    let neighbor = format!("10.2.{n}.2");
    let output = std::process::Command::new("vtysh")
        .arg("--vty_socket")
        .arg(&vty)
        .args(["-c", &format!("show bgp neighbors {neighbor} json")])
        .output()
        .unwrap();
    assert!(output.status.success(), "vtysh: {output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let peer = &json[&neighbor];
    if peer["bgpState"].as_str() != Some("Established") {
        return None;
    }
    peer["gracefulRestartInfo"]["rBit"].as_bool()
}

/// Waits until tor2 holds an Established session with node `n` and returns its R bit.
fn wait_frr_r_bit(lab: &testbed::Lab, n: usize, wanted: bool) {
    testbed::wait::until(
        &format!("tor2 sees node{n}'s R bit {wanted}"),
        SESSION_TIMEOUT,
        || Ok((frr_r_bit(lab, n) == Some(wanted)).then_some(())),
    )
    .unwrap();
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn three_standalone_speakers_follow_the_manifests() {
    let speaker_bin = workspace_bin("berth-speaker");
    let berthctl = workspace_bin("berthctl");
    let clab = ClabLab::up(&lab_file("tor-pair.clab.yml")).unwrap();
    let lab = clab.lab();
    let state = lab.dir().join("state");
    std::fs::create_dir_all(&state).unwrap();
    write(&state, "cluster.yaml", &nodes_and_peers(false));

    let addresses: Vec<SocketAddr> = vec![(vip4().ip(), 80).into(), (vip6().ip(), 80).into()];
    let mut responders = Vec::new();
    for n in 1..=3 {
        let node = format!("node{n}");
        // The VIPs are on every node's loopback, so any node can answer; BGP decides who gets
        // traffic.
        lab.add_address(&node, "lo", vip4()).unwrap();
        lab.add_address(&node, "lo", vip6()).unwrap();
        let netns = lab.netns(&node).unwrap();
        responders.push(Responder::start(netns, &node, &addresses).unwrap());
    }
    let mut speakers = start_speakers(lab, &state, &speaker_bin, "drain");
    clab.router("tor1")
        .unwrap()
        .wait_established(3, SESSION_TIMEOUT)
        .unwrap();
    clab.router("tor2")
        .unwrap()
        .wait_established(3, SESSION_TIMEOUT)
        .unwrap();

    // 1. Policy Cluster, one endpoint: every node announces; traffic reaches all three.
    write(
        &state,
        "service.yaml",
        &service(&[vip4().ip()], false, &[1]),
    );
    wait_gateways(&clab, "three next hops", &[1, 2, 3]);
    let client = lab.netns("client").unwrap();
    let target: SocketAddr = (vip4().ip(), 80).into();
    let result = spread(client, Protocol::Tcp, target, 300, Duration::from_secs(2)).unwrap();
    assert_eq!(result.failures, 0, "{result:?}");
    assert!(
        result.fair_over(&["node1", "node2", "node3"], 0.15),
        "{result:?}"
    );

    // 2. Policy Local with the endpoint on node2: only node2; the announcement follows a move.
    write(&state, "service.yaml", &service(&[vip4().ip()], true, &[2]));
    wait_gateways(&clab, "only node2", &[2]);
    let result = spread(client, Protocol::Tcp, target, 50, Duration::from_secs(2)).unwrap();
    assert_eq!(result.count("node2"), 50, "{result:?}");
    write(&state, "service.yaml", &service(&[vip4().ip()], true, &[3]));
    wait_gateways(&clab, "only node3", &[3]);

    // 3. Deleting the Service withdraws the VIP everywhere.
    std::fs::remove_file(state.join("service.yaml")).unwrap();
    wait_gateways(&clab, "no route", &[]);

    // berthctl in node1's namespace: both sessions up, the VIP reported and why.
    let node1 = lab.netns("node1").unwrap();
    let peers = node1
        .output(berthctl.to_str().unwrap(), &["peers", "-o", "json"])
        .unwrap();
    let peers: serde_json::Value = serde_json::from_str(&peers).unwrap();
    let v4_uptimes: Vec<u64> = peers
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["state"], "Established", "{p}");
            assert_eq!(p["flaps"], 0, "{p}");
            p["uptimeSecs"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(v4_uptimes.len(), 2);

    // 4. New BgpPeers (IPv6) start new sessions; the IPv4 sessions are not reset.
    write(&state, "cluster.yaml", &nodes_and_peers(true));
    clab.router("tor1")
        .unwrap()
        .wait_established(6, SESSION_TIMEOUT)
        .unwrap();
    clab.router("tor2")
        .unwrap()
        .wait_established(6, SESSION_TIMEOUT)
        .unwrap();
    let peers = node1
        .output(berthctl.to_str().unwrap(), &["peers", "-o", "json"])
        .unwrap();
    let peers: serde_json::Value = serde_json::from_str(&peers).unwrap();
    for p in peers.as_array().unwrap() {
        assert_eq!(p["flaps"], 0, "no session was reset: {p}");
        if p["address"].as_str().unwrap().contains('.') {
            assert!(
                p["uptimeSecs"].as_u64().unwrap() >= v4_uptimes[0].min(v4_uptimes[1]),
                "IPv4 session uptime went back: {p}"
            );
        }
    }

    // 6. A dual-stack Service: both families announced by all three nodes and reachable.
    write(
        &state,
        "service.yaml",
        &service(&[vip4().ip(), vip6().ip()], false, &[1]),
    );
    wait_gateways(&clab, "three next hops again", &[1, 2, 3]);
    for name in ["tor1", "tor2"] {
        let router = clab.router(name).unwrap();
        testbed::wait::until(&format!("IPv6 ECMP on {name}"), CONVERGE, || {
            let fib = router.fib()?;
            Ok((fib.route(vip6()).map_or(0, |r| r.next_hops.len()) == 3).then_some(()))
        })
        .unwrap();
    }
    let target6: SocketAddr = (vip6().ip(), 80).into();
    let result = spread(client, Protocol::Tcp, target6, 150, Duration::from_secs(2)).unwrap();
    assert_eq!(result.failures, 0, "{result:?}");
    assert!(
        result.fair_over(&["node1", "node2", "node3"], 0.1),
        "{result:?}"
    );

    // SIGTERM: each speaker drains and exits cleanly.
    for s in &mut speakers {
        s.signal(libc::SIGTERM).unwrap();
    }
    for s in &mut speakers {
        assert!(
            s.wait_exit(Duration::from_secs(15)),
            "{} did not exit",
            s.name()
        );
    }
    wait_gateways(&clab, "no route after shutdown", &[]);
    for n in 1..=3 {
        assert!(
            !restart_marker(lab, n).exists(),
            "a drained stop leaves no restart marker (node{n})"
        );
    }
}

/// The VIP the controller wrote into the Service's status, once it has.
fn allocated_vip(state: &Path) -> Option<IpAddr> {
    let text = std::fs::read_to_string(state.join("service.yaml")).ok()?;
    let doc = serde_yaml::Deserializer::from_str(&text).next()?;
    let svc = serde_yaml::Value::deserialize(doc).ok()?;
    svc["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()?
        .parse()
        .ok()
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn the_controller_allocates_and_the_speakers_announce() {
    let speaker_bin = workspace_bin("berth-speaker");
    let controller_bin = workspace_bin("berth-controller");
    let clab = ClabLab::up(&lab_file("tor-pair.clab.yml")).unwrap();
    let lab = clab.lab();
    let state = lab.dir().join("state");
    std::fs::create_dir_all(&state).unwrap();
    write(&state, "cluster.yaml", &nodes_and_peers(false));
    let log = std::fs::File::create(lab.dir().join("controller.log")).unwrap();
    let mut command = std::process::Command::new(&controller_bin);
    command
        .arg("--state-dir")
        .arg(&state)
        .args(["--metrics-addr", "", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    let _controller = Process::spawn("berth-controller", command).unwrap();
    let _speakers = start_speakers(lab, &state, &speaker_bin, "drain");

    // A Service as a user writes it: no status; the controller gives it an address.
    write(
        &state,
        "service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  namespace: web\n  name: demo\n  annotations:\n    \
         lb.kubesphere.io/v1alpha1: openelb\n    eip.openelb.kubesphere.io/v1alpha2: pool4\n\
         spec:\n  type: LoadBalancer\n  ports: [{port: 80}]\n---\napiVersion: discovery.k8s.io/v1\n\
         kind: EndpointSlice\nmetadata:\n  namespace: web\n  name: demo-1\n  labels: {kubernetes.io/service-name: demo}\n\
         addressType: IPv4\nendpoints:\n- addresses: [10.244.1.5]\n  nodeName: node1\n  conditions: {ready: true}\n",
    );
    let vip = testbed::wait::until("an address from pool4", CONVERGE, || {
        Ok(allocated_vip(&state))
    })
    .unwrap();
    let network: ipnetwork::IpNetwork = "10.0.0.96/28".parse().unwrap();
    assert!(network.contains(vip), "{vip} is not from pool4");
    let host = ipnetwork::IpNetwork::new(vip, 32).unwrap();
    for (tor, name) in [(1, "tor1"), (2, "tor2")] {
        let router = clab.router(name).unwrap();
        let expected = tor_gateways(&[1, 2, 3], tor);
        testbed::wait::until(
            &format!("{vip} via three nodes on {name}"),
            CONVERGE,
            || Ok((router.fib()?.gateways(host) == expected).then_some(())),
        )
        .unwrap();
    }

    // Deleting the Service withdraws the route from both routers.
    std::fs::remove_file(state.join("service.yaml")).unwrap();
    for name in ["tor1", "tor2"] {
        let router = clab.router(name).unwrap();
        testbed::wait::until(&format!("{vip} gone from {name}"), CONVERGE, || {
            Ok(router.fib()?.gateways(host).is_empty().then_some(()))
        })
        .unwrap();
    }
}

/// When something happened during the rolling restart, from the start of the traffic.
type Ms = u128;

/// A router's ECMP next-hop set for the VIP changed (as polled from its FIB).
#[derive(Debug)]
struct NextHopChange {
    at: Ms,
    router: &'static str,
    gateways: BTreeSet<IpAddr>,
}

/// A probe that failed: when it started and ended, and how.
#[derive(Debug)]
struct FailedProbe {
    start: Ms,
    end: Ms,
    error: String,
}

/// One TCP probe as `testbed::traffic` does it, keeping the error.
fn probe(target: SocketAddr) -> Result<String, std::io::Error> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if answer.is_empty() {
        return Err(std::io::Error::other("empty answer"));
    }
    Ok(answer)
}

/// A rolling restart (`--on-sigterm restart`, graceful restart) of the three speakers while
/// a client opens short TCP connections to the VIP. What Berth controls is asserted: both
/// routers (BIRD without the RFC 8538 N-bit, FRR with it) keep all three next hops for the
/// VIP throughout, so no flow is rehashed. Failed connections are counted and printed, not
/// asserted to be zero: see "Rolling restarts and ECMP rehashing" in the testbed README.
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn a_rolling_restart_keeps_the_vip_and_fails_only_rehashed_connections() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let speaker_bin = workspace_bin("berth-speaker");
    let clab = ClabLab::up(&lab_file("tor-pair.clab.yml")).unwrap();
    let lab = clab.lab();
    let state = lab.dir().join("state");
    std::fs::create_dir_all(&state).unwrap();
    write(&state, "cluster.yaml", &nodes_and_peers(false));
    write(
        &state,
        "service.yaml",
        &service(&[vip4().ip()], false, &[1, 2, 3]),
    );
    let target: SocketAddr = (vip4().ip(), 80).into();
    let mut responders = Vec::new();
    for n in 1..=3 {
        let node = format!("node{n}");
        lab.add_address(&node, "lo", vip4()).unwrap();
        responders.push(Responder::start(lab.netns(&node).unwrap(), &node, &[target]).unwrap());
    }
    let mut speakers = start_speakers(lab, &state, &speaker_bin, "restart");
    wait_gateways(&clab, "three next hops", &[1, 2, 3]);
    // Fresh starts (no marker): FRR sees no R bit from any node.
    for n in 1..=3 {
        wait_frr_r_bit(lab, n, false);
    }

    let epoch = std::time::Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let changes = Arc::new(Mutex::new(Vec::<NextHopChange>::new()));
    let monitor = {
        let (stop, changes) = (stop.clone(), changes.clone());
        let routers: Vec<(&'static str, testbed::Netns)> = [("tor1", "tor1"), ("tor2", "tor2")]
            .into_iter()
            .map(|(name, ns)| (name, lab.netns(ns).unwrap().clone()))
            .collect();
        std::thread::spawn(move || {
            let mut last: Vec<Option<BTreeSet<IpAddr>>> = vec![None; routers.len()];
            let mut polls = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (i, (name, netns)) in routers.iter().enumerate() {
                    let gateways = netns.fib().unwrap().gateways(vip4());
                    if last[i].as_ref() != Some(&gateways) {
                        changes.lock().unwrap().push(NextHopChange {
                            at: epoch.elapsed().as_millis(),
                            router: name,
                            gateways: gateways.clone(),
                        });
                        last[i] = Some(gateways);
                    }
                }
                polls += 1;
            }
            polls
        })
    };
    let client = lab.netns("client").unwrap().clone();
    let traffic = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            client
                .run(move || {
                    let (mut probes, mut failed) = (0u64, Vec::new());
                    while !stop.load(Ordering::Relaxed) {
                        let start = epoch.elapsed().as_millis();
                        let result = probe(target);
                        probes += 1;
                        if let Err(e) = result {
                            failed.push(FailedProbe {
                                start,
                                end: epoch.elapsed().as_millis(),
                                error: e.to_string(),
                            });
                        }
                    }
                    (probes, failed)
                })
                .unwrap()
        })
    };
    let mut steps = Vec::new();
    for n in 1..=3 {
        let i = n - 1;
        steps.push((epoch.elapsed().as_millis(), format!("SIGTERM node{n}")));
        speakers[i].signal(libc::SIGTERM).unwrap();
        assert!(speakers[i].wait_exit(Duration::from_secs(15)));
        steps.push((epoch.elapsed().as_millis(), format!("node{n} exited")));
        let marker = restart_marker(lab, n);
        assert!(
            marker.is_file(),
            "node{n}'s restart stop left no marker at {}",
            marker.display()
        );
        // Started exactly as the first time (no `--restarting`): the marker tells it.
        speakers[i] = start_speaker(lab, &state, &speaker_bin, "restart", n, "-2");
        steps.push((epoch.elapsed().as_millis(), format!("node{n} started")));
        wait_gateways(&clab, &format!("node{n} back"), &[1, 2, 3]);
        // The routers kept the paths, so the FIB says nothing: wait for the sessions.
        clab.router("tor1")
            .unwrap()
            .wait_established(3, SESSION_TIMEOUT)
            .unwrap();
        wait_frr_r_bit(lab, n, true);
        assert!(!marker.exists(), "node{n}'s marker was not used up");
        steps.push((
            epoch.elapsed().as_millis(),
            format!("node{n} back on both routers, R bit seen"),
        ));
    }
    // Let the last change settle under traffic too.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let (probes, failed) = traffic.join().unwrap();
    let polls = monitor.join().unwrap();
    let changes = changes.lock().unwrap();
    eprintln!("steps: {steps:?}");
    eprintln!("next-hop changes ({polls} polls): {changes:#?}");
    let errors: Vec<(Ms, Ms, &str)> = failed
        .iter()
        .map(|f| (f.start, f.end, f.error.as_str()))
        .collect();
    // Reported, not asserted: a rare reset with no next-hop change at all (about 1 in
    // 20,000 short connections in this lab) is not BGP's doing.
    eprintln!(
        "{} of {probes} connections failed: {errors:?}",
        failed.len()
    );

    assert!(probes >= 100, "traffic ran: {probes} probes");
    for router in ["tor1", "tor2"] {
        let sets: Vec<_> = changes.iter().filter(|c| c.router == router).collect();
        assert!(
            sets.iter().all(|c| !c.gateways.is_empty()),
            "{router} had no next hop for the VIP at some point: {sets:?}"
        );
        assert_eq!(
            sets.last().map(|c| c.gateways.len()),
            Some(3),
            "{router}: {sets:?}"
        );
    }
    // Berth's part of a hitless rolling restart: with graceful restart, both routers keep
    // every node's path while its speaker restarts, so no flow is rehashed. (Before the
    // restart close sent no Cease to BIRD, which lacks RFC 8538's N-bit, BIRD dropped and
    // re-added each node's path: two rehashes per node, and a reset connection or two.)
    let after_start: Vec<(Ms, &str, &BTreeSet<IpAddr>)> = changes
        .iter()
        .skip(2)
        .map(|c| (c.at, c.router, &c.gateways))
        .collect();
    assert!(
        after_start.is_empty(),
        "a router changed the VIP's next hops during the rolling restart: {after_start:?}"
    );
}
