//! The tor-pair lab in-cluster, shared by the suites that need it (`kube_tor_pair`,
//! `kube_faults`): tor1 (BIRD) and tor2 (FRR), three nodes each peering with both over IPv4
//! and IPv6, a client, and a real control plane in a namespace `cp` that every node reaches
//! over a management bridge, with Berth installed from `deploy/` and a Node object per node.
//! Which Berth objects, Services and daemons come next is each suite's own business.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde_json::Value;
use testbed::clab::ClabLab;
use testbed::incluster::{self, Install};
use testbed::k8s::{ControlPlane, ControlPlaneConfig};

use super::lab_file;

/// The lab's nodes, where the speakers run.
pub const NODES: [&str; 3] = ["node1", "node2", "node3"];
/// The control plane's address on the management bridge.
pub const CP: &str = "10.99.0.1";

/// The lab, its control plane, and Berth's install on it.
pub struct TorPair {
    /// The API server (dropped before the lab).
    pub cp: ControlPlane,
    /// The daemons' kubeconfigs.
    pub install: Install,
    /// The namespaces and routers.
    pub clab: ClabLab,
}

/// Brings the lab and the control plane up, installs Berth, creates the Node objects and
/// applies `objects` (the suite's BgpConf, Eips, BgpPeers, namespaces).
pub fn up(objects: &str) -> TorPair {
    let mut clab = ClabLab::up(&lab_file("tor-pair.clab.yml")).unwrap();
    let lab = clab.lab_mut();
    lab.add_namespace("cp").unwrap();
    lab.add_bridge("mgmt").unwrap();
    lab.attach("mgmt", ("cp", "eth0")).unwrap();
    lab.add_address("cp", "eth0", format!("{CP}/24").parse().unwrap())
        .unwrap();
    for (i, node) in NODES.iter().enumerate() {
        lab.attach("mgmt", (node, "mgmt")).unwrap();
        lab.add_address(
            node,
            "mgmt",
            format!("10.99.0.{}/24", 11 + i).parse().unwrap(),
        )
        .unwrap();
    }
    let cp = ControlPlane::start(
        clab.lab().netns("cp").unwrap(),
        ControlPlaneConfig::new(CP.parse().unwrap()),
    )
    .unwrap_or_else(|e| panic!("control plane: {e}"));
    let install = incluster::install(&cp).unwrap_or_else(|e| panic!("install: {e}"));
    for (i, node) in NODES.iter().enumerate() {
        let ip: IpAddr = format!("10.1.{}.2", i + 1).parse().unwrap();
        incluster::add_node(&cp, node, ip, &BTreeMap::new()).unwrap();
    }
    cp.apply(objects).unwrap();
    TorPair { cp, install, clab }
}

/// The `default` BgpConf (AS 65001) and the cluster's default pools (OpenELB's annotation),
/// `v4` (10.0.0.96/28) and `v6` (a /64, past the API's int64 in size).
pub fn default_objects() -> Vec<String> {
    vec![
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpConf\nmetadata: {name: default}\n\
         spec: {as: 65001}\n"
            .to_string(),
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata:\n  name: v4\n  \
         annotations: {eip.openelb.kubesphere.io/is-default-eip: \"true\"}\n\
         spec: {address: 10.0.0.96/28}\n"
            .to_string(),
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata:\n  name: v6\n  \
         annotations: {eip.openelb.kubesphere.io/is-default-eip: \"true\"}\n\
         spec: {address: \"2001:db8:96::/64\"}\n"
            .to_string(),
    ]
}

/// One BgpPeer per node, router and family (each node has its own links), selected by the
/// node's hostname label; short timers.
pub fn bgp_peers() -> Vec<String> {
    let mut docs = Vec::new();
    for n in 1..=3 {
        for tor in 1..=2 {
            for (family, neighbor) in [
                ("v4", format!("10.{tor}.{n}.1")),
                ("v6", format!("fd00:{tor}:{n}::1")),
            ] {
                docs.push(format!(
                    "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\n\
                     metadata: {{name: tor{tor}-{family}-node{n}}}\nspec:\n  \
                     conf: {{peerAs: 65000, neighborAddress: \"{neighbor}\"}}\n  \
                     timers: {{config: {{holdTime: \"9\", connectRetry: \"1\"}}}}\n  \
                     nodeSelector: {{matchLabels: {{kubernetes.io/hostname: node{n}}}}}\n"
                ));
            }
        }
    }
    docs
}

/// Merges the JSON object `b` into `a` (keys of `b` win; `null` sets null).
pub fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// The host route of `vip` (/32 or /128).
pub fn host(vip: IpAddr) -> IpNetwork {
    IpNetwork::new(vip, if vip.is_ipv4() { 32 } else { 128 }).unwrap()
}
