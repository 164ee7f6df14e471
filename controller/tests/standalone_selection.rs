//! The Eip `Selected` condition in standalone mode (issue 18 item 1): the directory's Nodes
//! and BgpPeers are read for it, and it is written into the Eip's document like the rest of
//! its status — `False` while the `peerSelector` matches no BgpPeer, `True` once one does.

use std::path::Path;

use controller::metrics::Metrics;
use controller::standalone::run_once;
use controller::view::ClassConfig;

const CLUSTER: &str = "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {kubernetes.io/hostname: n1}}\n---\n\
    apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {name: tor, labels: {router: internal}}\n\
    spec: {conf: {peerAs: 65000, neighborAddress: 10.0.0.1}, nodeSelector: {matchLabels: {kubernetes.io/hostname: n1}}}\n";

fn pool(role: &str) -> String {
    format!(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {{name: public}}\n\
         spec: {{address: 192.0.2.0/28, peerSelector: {{matchLabels: {{router: {role}}}}}}}\n"
    )
}

/// `(status, reason)` of the Eip's `Selected` condition as written in `pools.yaml`.
fn selected(dir: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(dir.join("pools.yaml")).expect("read");
    let eip: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let c = eip["status"]["conditions"]
        .as_sequence()?
        .iter()
        .find(|c| c["type"].as_str() == Some("Selected"))?
        .clone();
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
    ))
}

#[test]
fn the_selected_condition_follows_the_directorys_bgp_peers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("cluster.yaml"), CLUSTER).expect("write");
    std::fs::write(d.join("pools.yaml"), pool("edge")).expect("write");
    let metrics = Metrics::default();
    run_once(d, &ClassConfig::default(), &metrics).expect("pass");
    assert_eq!(selected(d), Some(("False".into(), "NoPeerSelected".into())));
    std::fs::write(d.join("pools.yaml"), pool("internal")).expect("write");
    run_once(d, &ClassConfig::default(), &metrics).expect("pass");
    assert_eq!(selected(d), Some(("True".into(), "Selected".into())));
}
