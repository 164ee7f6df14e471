//! Issue 14 item 9 in Kubernetes mode: `berth-speaker` on node n1 holds an Established
//! session with BIRD through BgpPeer `r-n1`. A second BgpPeer for the same neighbour,
//! `a-duplicate` (sorts first, wrong peer AS), is created. Once its status says, for n1,
//! `Valid: False` naming `r-n1` as the keeper, BIRD's session is the same one (state and
//! "since" unchanged) and `r-n1`'s status still says Established.
//!
//! Needs root, BIRD and the control plane binary (`BERTH_CONTROLPLANE_BIN`).

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::time::Duration;

use common::kube::{Cluster, TIMEOUT};
use common::{ROUTER_AS, SESSION_TIMEOUT, link_addresses};
use serde_json::Value;
use testbed::router::Router;
use testbed::router::bird::protocol_name;

fn session_line(cluster: &Cluster) -> String {
    let text = cluster.router.birdc(&["show", "protocols"]).unwrap();
    text.lines()
        .find(|l| l.starts_with(&format!("{} ", protocol_name(0))))
        .unwrap_or_else(|| panic!("no session in:\n{text}"))
        .to_string()
}

fn peer_status(cluster: &Cluster, name: &str) -> Value {
    cluster
        .get(&format!(
            "/apis/network.kubesphere.io/v1alpha2/bgppeers/{name}"
        ))
        .map(|p| p["status"]["nodesPeerStatus"]["n1"].clone())
        .unwrap_or(Value::Null)
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn a_duplicate_bgp_peer_gets_the_condition_and_resets_nothing() {
    let cluster = Cluster::start("kube-dup-peer", 1);
    let speaker = cluster.speaker(1);
    cluster
        .router
        .wait_established(1, SESSION_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}\n{}", speaker.log_tail()));
    // BIRD's "since" has a resolution of a second: let it tick past the establishment.
    std::thread::sleep(Duration::from_millis(1100));
    let before = session_line(&cluster);
    assert!(before.contains("Established"), "{before}");

    let (r4, _, _, _) = link_addresses(1);
    cluster
        .cp
        .apply(&format!(
            "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {{name: a-duplicate}}\n\
             spec:\n  conf: {{peerAs: {}, neighborAddress: \"{r4}\"}}\n  \
             nodeSelector: {{matchLabels: {{kubernetes.io/hostname: n1}}}}\n",
            ROUTER_AS + 9
        ))
        .unwrap();
    let message = testbed::wait::until("a-duplicate's Valid condition on n1", TIMEOUT, || {
        let status = peer_status(&cluster, "a-duplicate");
        Ok(status["conditions"].as_array().and_then(|cs| {
            cs.iter()
                .find(|c| c["type"] == "Valid" && c["status"] == "False")
                .and_then(|c| c["message"].as_str().map(str::to_string))
        }))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", speaker.log_tail()));
    assert!(
        message.contains("BgpPeer r-n1, which keeps the session"),
        "{message}"
    );
    assert_eq!(session_line(&cluster), before, "the session was reset");
    let kept = peer_status(&cluster, "r-n1");
    assert_eq!(
        kept["peerState"]["sessionState"]
            .as_str()
            .map(str::to_ascii_uppercase),
        Some("ESTABLISHED".to_string()),
        "{kept}"
    );
}
