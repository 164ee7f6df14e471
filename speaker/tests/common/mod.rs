//! Object builders shared by the speaker's tests: each returns an `Object` parsed from the
//! YAML a user would write, so the tests exercise the same serde paths as manifests.
#![allow(dead_code, reason = "each test file uses a different subset")]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bgp::driver::{MemoryNetwork, PeerConfig, Speaker, SpeakerConfig};
use speaker::Object;

fn parse<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("fixture does not parse: {e}\n{yaml}"))
}

/// A Node with labels, an optional Ready condition and an InternalIP.
pub fn node(name: &str, labels: &[(&str, &str)], ready: Option<bool>, ip: &str) -> Object {
    let labels: String = labels
        .iter()
        .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
        .collect();
    let conditions = match ready {
        None => String::new(),
        Some(r) => format!(
            "  conditions:\n  - type: Ready\n    status: \"{}\"\n",
            if r { "True" } else { "False" }
        ),
    };
    Object::Node(Box::new(parse(&format!(
        "kind: Node\nmetadata:\n  name: {name}\n  labels:\n{labels}    x: y\nstatus:\n{conditions}  addresses:\n  - type: InternalIP\n    address: {ip}\n"
    ))))
}

/// A LoadBalancer Service with ingress addresses and a traffic policy.
pub fn service(ns: &str, name: &str, ips: &[&str], local: bool) -> Object {
    let ingress: String = ips.iter().map(|ip| format!("    - ip: {ip}\n")).collect();
    let policy = if local { "Local" } else { "Cluster" };
    Object::Service(Box::new(parse(&format!(
        "kind: Service\nmetadata: {{namespace: {ns}, name: {name}}}\nspec:\n  type: LoadBalancer\n  loadBalancerClass: berth.io/lb\n  externalTrafficPolicy: {policy}\n  ports: [{{port: 80}}]\nstatus:\n  loadBalancer:\n    ingress:\n{ingress}"
    ))))
}

/// An EndpointSlice of Service `ns/svc`: endpoints `(node, ready)`.
pub fn slice(ns: &str, svc: &str, name: &str, endpoints: &[(&str, Option<bool>)]) -> Object {
    let eps: String = endpoints
        .iter()
        .enumerate()
        .map(|(i, (node, ready))| {
            let cond = match ready {
                Some(r) => format!("  conditions: {{ready: {r}}}\n"),
                None => String::new(),
            };
            format!(
                "- addresses: [\"10.244.0.{}\"]\n  nodeName: {node}\n{cond}",
                i + 1
            )
        })
        .collect();
    let eps = if eps.is_empty() {
        "[]\n".to_string()
    } else {
        format!("\n{eps}")
    };
    Object::EndpointSlice(Box::new(parse(&format!(
        "kind: EndpointSlice\naddressType: IPv4\nmetadata:\n  namespace: {ns}\n  name: {name}\n  labels: {{kubernetes.io/service-name: {svc}}}\nendpoints: {eps}"
    ))))
}

/// An Eip (`protocol` empty for the default).
pub fn eip(name: &str, address: &str, protocol: &str, extra: &str) -> Object {
    Object::Eip(Box::new(parse(&format!(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {{name: {name}}}\nspec:\n  address: {address}\n  protocol: \"{protocol}\"\n{extra}"
    ))))
}

/// The BgpConf `default`, with extra spec lines.
pub fn conf(as_number: u32, extra: &str) -> Object {
    Object::BgpConf(Box::new(parse(&format!(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpConf\nmetadata: {{name: default}}\nspec:\n  as: {as_number}\n{extra}"
    ))))
}

/// A BgpPeer, with extra spec lines (indented two spaces); when `extra` has its own
/// `conf:` line it replaces the generated one.
pub fn peer(name: &str, address: &str, peer_as: u32, extra: &str) -> Object {
    let conf = if extra.contains("  conf:") {
        String::new()
    } else {
        format!("  conf: {{peerAs: {peer_as}, neighborAddress: \"{address}\"}}\n")
    };
    Object::BgpPeer(Box::new(parse(&format!(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {{name: {name}}}\nspec:\n{conf}{extra}"
    ))))
}

/// A Secret with `stringData`.
pub fn secret(ns: &str, name: &str, key: &str, value: &str) -> Object {
    Object::Secret(Box::new(parse(&format!(
        "kind: Secret\nmetadata: {{namespace: {ns}, name: {name}}}\nstringData: {{{key}: \"{value}\"}}\n"
    ))))
}

/// A node context for `name` in namespace `berth-system`.
pub fn ctx(name: &str) -> speaker::NodeContext {
    speaker::NodeContext {
        node_name: name.into(),
        namespace: "berth-system".into(),
        fallback_router_id: None,
        ..speaker::NodeContext::default()
    }
}

/// Parses an IP address literal.
pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// Polls `f` every 10 ms until it holds; panics after 200 s (of paused time, in tokio tests).
pub async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..20_000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The router node n1 peers with on the in-memory network: a plain driver speaker in AS
/// 65000 at 10.0.0.254 that keeps connecting to 10.0.0.1 (AS 65001); `tune` adjusts that
/// session before it is added.
pub fn memory_router(net: &MemoryNetwork, tune: impl FnOnce(&mut PeerConfig)) -> Speaker {
    let router = Speaker::start_in_memory(
        SpeakerConfig {
            local_as: 65000,
            router_id: Ipv4Addr::new(10, 0, 0, 254),
            listen_addresses: vec![ip("10.0.0.254")],
            listen_port: 179,
        },
        net,
    );
    let mut p = PeerConfig::new(ip("10.0.0.1"), 65000, 65001, Ipv4Addr::new(10, 0, 0, 254));
    p.transport.local = Some(ip("10.0.0.254"));
    tune(&mut p);
    router.add_peer(p).expect("router peer");
    router
}
