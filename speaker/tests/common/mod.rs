//! Object builders shared by the speaker's tests: each returns an `Object` parsed from the
//! YAML a user would write, so the tests exercise the same serde paths as manifests.
#![allow(dead_code, reason = "each test file uses a different subset")]

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
        "kind: Service\nmetadata: {{namespace: {ns}, name: {name}}}\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: {policy}\n  ports: [{{port: 80}}]\nstatus:\n  loadBalancer:\n    ingress:\n{ingress}"
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
    }
}
