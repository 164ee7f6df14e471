//! Issue 18 items 1 and 3 on a real control plane with the real `berth-controller` and
//! `berth-speaker` (one node, BIRD as the router), installed from `deploy/`:
//!
//! - an Eip whose `peerSelector` matches no BgpPeer gets `Selected=False` (reason
//!   `NoPeerSelected`) and a Warning; the node announces nothing of it; labelling the
//!   BgpPeer turns the condition `True` and the address reaches the router — over the session
//!   that was already up (BIRD's session is as old as before: no reset);
//! - a Service with a malformed `berth.io/bgp-med` still gets its address and is announced
//!   (with the pool's attributes), and carries an `InvalidBgpAttributes` Warning naming the
//!   annotation.
//!
//! Needs root and the control plane binary (`BERTH_CONTROLPLANE_BIN`).

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use common::kube::{APP_NS, Cluster, POOL, TIMEOUT, reasons_and_notes};
use common::{ROUTER_AS, link_addresses};
use serde_json::Value;
use testbed::incluster::Daemon;
use testbed::router::Router;

/// The pool's `Selected` condition: (status, reason, message).
fn selected(cluster: &Cluster) -> Option<(String, String, String)> {
    let eip = cluster.get("/apis/network.kubesphere.io/v1alpha2/eips/pool")?;
    let c = eip["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Selected")?
        .clone();
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Some((s("status"), s("reason"), s("message")))
}

fn wait_selected(cluster: &Cluster, reason: &str, controller: &Daemon) -> String {
    testbed::wait::until(&format!("pool: Selected {reason}"), TIMEOUT, || {
        Ok(selected(cluster)
            .filter(|(_, r, _)| r == reason)
            .map(|(_, _, m)| m))
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {:?}\n{}",
            cluster.get("/apis/network.kubesphere.io/v1alpha2/eips/pool"),
            controller.log_tail()
        )
    })
}

/// The one BgpPeer of node 1, as the cluster made it, with `labels`.
fn peer(labels: &str) -> String {
    let (r4, n4, _, _) = link_addresses(1);
    format!(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\n\
         metadata: {{name: r-n1, labels: {{{labels}}}}}\n\
         spec:\n  conf: {{peerAs: {ROUTER_AS}, neighborAddress: \"{r4}\"}}\n  \
         transport: {{localAddress: \"{n4}\"}}\n  \
         timers: {{config: {{holdTime: \"9\", connectRetry: \"1\"}}}}\n  \
         nodeSelector: {{matchLabels: {{kubernetes.io/hostname: n1}}}}\n"
    )
}

/// BIRD's "since" of its session with node 1 (`show protocols`, the protocol's row).
fn bird_session_since(cluster: &Cluster) -> String {
    let text = cluster.router.birdc(&["show", "protocols"]).unwrap();
    let row = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&testbed::router::bird::protocol_name(0)))
        .unwrap_or_else(|| panic!("no session row in:\n{text}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols.get(5), Some(&"Established"), "{row}");
    // name proto table state since... info: the since column (date and time) is 4 (+5).
    cols[4].to_string()
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn a_pool_that_selects_no_peer_says_so_and_a_bad_service_annotation_is_a_warning() {
    let cluster = Cluster::start("kpsel", 1);
    let controller = cluster.controller(0);
    let speaker = cluster.speaker(1);
    cluster
        .router
        .wait_established(1, common::SESSION_TIMEOUT)
        .unwrap();

    // The pool sent only to routers labelled edge: none is.
    cluster
        .cp
        .apply(&format!(
            "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {{name: pool}}\n\
             spec:\n  address: \"{POOL}\"\n  peerSelector: {{matchLabels: {{router: edge}}}}\n"
        ))
        .unwrap();
    let message = wait_selected(&cluster, "NoPeerSelected", &controller);
    assert!(message.contains("peerSelector"), "{message}");
    let (status, _, _) = selected(&cluster).unwrap();
    assert_eq!(status, "False");
    let eip_events = reasons_and_notes(
        &cluster
            .get("/apis/events.k8s.io/v1/events?fieldSelector=regarding.name%3Dpool")
            .unwrap_or(Value::Null),
    );
    assert!(
        eip_events.iter().any(|(r, _)| r == "NoPeerSelected"),
        "{eip_events:?}"
    );

    // A Service with a malformed MED annotation: allocated, warned about.
    let service = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  namespace: {APP_NS}\n  \
         name: web-1\n  labels: {{kubernetes.io/service-name: web, endpointslice.kubernetes.io/managed-by: berth-test}}\n\
         addressType: IPv4\nports: [{{port: 8080, protocol: TCP}}]\nendpoints:\n\
         - addresses: [10.244.1.10]\n  nodeName: n1\n  conditions: {{ready: true}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata:\n  namespace: {APP_NS}\n  name: web\n  annotations:\n    \
         lb.kubesphere.io/v1alpha1: openelb\n    eip.openelb.kubesphere.io/v1alpha2: pool\n    \
         berth.io/bgp-med: \"ten\"\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: Cluster\n  \
         ports: [{{port: 80, targetPort: 8080, protocol: TCP}}]\n"
    );
    cluster.cp.apply(&service).unwrap();
    let (vip, _) = cluster.wait_address("web", &mut []);
    let warning = testbed::wait::until("the Service's InvalidBgpAttributes", TIMEOUT, || {
        Ok(cluster
            .events_for("web")
            .into_iter()
            .find(|(r, _)| r == "InvalidBgpAttributes"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", controller.log_tail()));
    assert!(
        warning.1.contains("berth.io/bgp-med") && warning.1.contains("\"ten\""),
        "{warning:?}"
    );
    let since = bird_session_since(&cluster);
    assert!(
        !cluster.router_has(vip, 1),
        "the pool selects no router yet"
    );

    // Label the BgpPeer: the pool is selected, and announced over the running session.
    cluster.cp.apply(&peer("router: edge")).unwrap();
    let message = wait_selected(&cluster, "Selected", &controller);
    assert!(
        message.starts_with("1 node(s) may announce this pool to 1 BgpPeer(s)"),
        "{message}"
    );
    cluster.wait_router(vip, 1, true, &speaker);
    assert_eq!(
        bird_session_since(&cluster),
        since,
        "the session was reset by a label change"
    );
}
