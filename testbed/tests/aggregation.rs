//! Issue 18 item 4, end to end: three `berth-speaker`s (standalone mode) on the `tor-pair` lab
//! (BIRD on tor1, FRR on tor2) announce twelve Services of the pool 10.0.0.96/28. Without
//! aggregation each router holds twelve /32s, each over the three nodes; with
//! `advertisement.aggregationLength: 28` each holds the one /28 (and no /32); taking it away
//! brings the twelve back. The routers' tables are read back in structured form and their
//! sizes printed (the figure in the README comes from here); no session is reset by either
//! change.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{SESSION_TIMEOUT, ip, lab_file, workspace_bin};
use ipnetwork::IpNetwork;
use testbed::Lab;
use testbed::clab::ClabLab;
use testbed::lab::Process;

const SERVICES: usize = 12;
const CONVERGE: Duration = Duration::from_secs(20);

fn cluster(aggregation: &str) -> String {
    let mut out = format!(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpConf\nmetadata: {{name: default}}\nspec: {{as: 65001}}\n---\n\
         apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {{name: pool}}\n\
         spec:\n  address: 10.0.0.96/28\n{aggregation}"
    );
    for n in 1..=3 {
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: node{n}\n  labels: {{kubernetes.io/hostname: node{n}}}\n\
             status:\n  addresses: [{{type: InternalIP, address: 10.1.{n}.2}}]\n"
        ));
        for tor in 1..=2 {
            out.push_str(&format!(
                "---\napiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {{name: tor{tor}-node{n}}}\nspec:\n  \
                 conf: {{peerAs: 65000, neighborAddress: \"10.{tor}.{n}.1\"}}\n  \
                 timers: {{config: {{holdTime: \"9\", connectRetry: \"1\"}}}}\n  \
                 nodeSelector: {{matchLabels: {{kubernetes.io/hostname: node{n}}}}}\n"
            ));
        }
    }
    for i in 0..SERVICES {
        let vip = vip(i);
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{namespace: web, name: s{i}}}\nspec:\n  \
             type: LoadBalancer\n  loadBalancerClass: berth.io/lb\n  ports: [{{port: 80}}]\n\
             status:\n  loadBalancer:\n    ingress: [{{ip: \"{vip}\"}}]\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  namespace: web\n  name: s{i}-1\n  \
             labels: {{kubernetes.io/service-name: s{i}}}\naddressType: IPv4\nendpoints:\n\
             - addresses: [10.244.1.5]\n  nodeName: node1\n  conditions: {{ready: true}}\n"
        ));
    }
    out
}

fn vip(i: usize) -> IpAddr {
    ip(&format!("10.0.0.{}", 97 + i))
}

fn write(dir: &Path, text: &str) {
    let tmp = dir.join(".cluster.yaml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("cluster.yaml")).unwrap();
}

fn start_speaker(lab: &Lab, state: &Path, n: usize) -> Process {
    let node = format!("node{n}");
    let netns = lab.netns(&node).unwrap();
    let log = std::fs::File::create(lab.dir().join(format!("{node}-speaker.log"))).unwrap();
    let mut command = netns.command(workspace_bin("berth-speaker"));
    command
        .args(["--node-name", &node, "--state-dir"])
        .arg(state)
        .arg("--restart-marker")
        .arg(netns.dir().unwrap().join("restart-marker"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    Process::spawn(format!("berth-speaker on {node}"), command).unwrap()
}

/// Waits until `router`'s BGP table holds exactly `want`, each over the three nodes; returns
/// the table's size.
fn wait_table(clab: &ClabLab, router: &str, tor: usize, want: &BTreeSet<IpNetwork>) -> usize {
    let r = clab.router(router).unwrap();
    let nodes: BTreeSet<IpAddr> = (1..=3).map(|n| ip(&format!("10.{tor}.{n}.2"))).collect();
    let done = testbed::wait::until(
        &format!("{} route(s) on {router}", want.len()),
        CONVERGE,
        || {
            let table = r.bgp_table()?;
            let prefixes: BTreeSet<IpNetwork> = table.routes.keys().copied().collect();
            let spread = table.routes.values().all(|hops| *hops == nodes);
            Ok((prefixes == *want && spread).then_some(table.routes.len()))
        },
    );
    done.unwrap_or_else(|e| panic!("{e}\n{:?}", r.bgp_table()))
}

/// Every session of node `n` (`berthctl peers`): none has flapped.
fn assert_no_flap(lab: &Lab, n: usize) {
    let out = lab
        .netns(&format!("node{n}"))
        .unwrap()
        .output(
            workspace_bin("berthctl").to_str().unwrap(),
            &["peers", "-o", "json"],
        )
        .unwrap();
    let peers: serde_json::Value = serde_json::from_str(&out).unwrap();
    let peers = peers.as_array().unwrap();
    assert_eq!(peers.len(), 2, "node{n}: {peers:?}");
    for p in peers {
        assert_eq!(p["state"], "Established", "{p}");
        assert_eq!(p["flaps"], 0, "node{n} session reset: {p}");
    }
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn aggregation_shrinks_both_routers_tables_to_one_route_without_a_reset() {
    let clab = ClabLab::up(&lab_file("tor-pair.clab.yml")).unwrap();
    let lab = clab.lab();
    let state = lab.dir().join("state");
    std::fs::create_dir_all(&state).unwrap();
    write(&state, &cluster(""));
    let _speakers: Vec<Process> = (1..=3).map(|n| start_speaker(lab, &state, n)).collect();
    for tor in ["tor1", "tor2"] {
        clab.router(tor)
            .unwrap()
            .wait_established(3, SESSION_TIMEOUT)
            .unwrap();
    }
    let hosts: BTreeSet<IpNetwork> = (0..SERVICES)
        .map(|i| IpNetwork::new(vip(i), 32).unwrap())
        .collect();
    let aggregate: BTreeSet<IpNetwork> = ["10.0.0.96/28".parse().unwrap()].into();

    let before = [
        wait_table(&clab, "tor1", 1, &hosts),
        wait_table(&clab, "tor2", 2, &hosts),
    ];
    write(
        &state,
        &cluster("  advertisement: {aggregationLength: 28}\n"),
    );
    let with = [
        wait_table(&clab, "tor1", 1, &aggregate),
        wait_table(&clab, "tor2", 2, &aggregate),
    ];
    write(&state, &cluster(""));
    let after = [
        wait_table(&clab, "tor1", 1, &hosts),
        wait_table(&clab, "tor2", 2, &hosts),
    ];
    println!(
        "routes in the BGP table for {SERVICES} Services (BIRD, FRR): without aggregation {before:?}, \
         with aggregationLength 28 {with:?}, without again {after:?}"
    );
    assert_eq!((before, with, after), ([12, 12], [1, 1], [12, 12]));
    for n in 1..=3 {
        assert_no_flap(lab, n);
    }
}
