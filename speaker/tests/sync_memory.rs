//! The sync onto the real BGP driver, over its in-memory network on paused time: a
//! router (a plain `bgp::driver::Speaker`) peers with the node's `Applier`; VIPs appear
//! and disappear on the router as the cluster state changes, and a change that needs no
//! new session never resets one.

mod common;

use std::time::Duration;

use bgp::driver::{MemoryNetwork, Speaker};
use bgp::session::State;
use common::*;
use speaker::sync::{Applier, Network};
use speaker::{ClusterState, Object, desired};

fn router(net: &MemoryNetwork) -> Speaker {
    memory_router(net, |p| {
        p.session.keep_received = true;
        p.session.connect_retry = Duration::from_secs(5);
    })
}

fn cluster(description: &str, endpoint_ready: bool) -> Vec<Object> {
    vec![
        node("n1", &[], Some(true), "10.0.0.1"),
        conf(65001, "  listenAddresses: [10.0.0.1]\n"),
        peer(
            "tor",
            "10.0.0.254",
            65000,
            &format!(
                "  conf: {{peerAs: 65000, neighborAddress: 10.0.0.254, description: \"{description}\"}}\n  sourceAddress: 10.0.0.1\n  timers: {{config: {{connectRetry: 5}}}}\n"
            ),
        ),
        eip("pool", "192.0.2.0/24", "", "  advertisement: {med: 7}\n"),
        service("web", "a", &["192.0.2.10"], false),
        slice("web", "a", "a-1", &[("n1", Some(endpoint_ready))]),
        service("web", "b", &["192.0.2.11"], false),
        slice("web", "b", "b-1", &[("n1", Some(true))]),
    ]
}

/// Routes the router holds from the node (it keeps them, so it counts exactly).
fn received(router: &Speaker) -> Option<u64> {
    router
        .peer(ip("10.0.0.1"))
        .and_then(|p| p.prefixes_received_total())
}

#[tokio::test(start_paused = true)]
async fn vips_follow_the_cluster_and_sessions_are_not_reset() {
    let net = MemoryNetwork::new();
    let router = router(&net);
    let mut applier = Applier::new(Network::Memory(net.clone()), None);
    let ctx = ctx("n1");

    let d = desired(&ctx, &ClusterState::from_objects(cluster("first", true)));
    let plan = applier.apply(&d).await.expect("apply");
    assert_eq!(plan.add.len(), 1);
    until("established with both VIPs", || {
        router
            .peer(ip("10.0.0.1"))
            .is_some_and(|p| p.state == State::Established)
            && received(&router) == Some(2)
    })
    .await;
    let routes = router.received(ip("10.0.0.1")).await.expect("received");
    assert_eq!(routes.len(), 2);

    // A new description changes nothing on the wire.
    let d = desired(&ctx, &ClusterState::from_objects(cluster("second", true)));
    let plan = applier.apply(&d).await.expect("apply");
    assert_eq!(
        (plan.update.len(), plan.reset.len(), plan.route_changes()),
        (1, 0, 0)
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let p = router.peer(ip("10.0.0.1")).expect("router side");
    assert_eq!((p.state, p.flaps), (State::Established, 0));

    // The endpoint goes unready: only that VIP is withdrawn.
    let d = desired(&ctx, &ClusterState::from_objects(cluster("second", false)));
    let plan = applier.apply(&d).await.expect("apply");
    assert_eq!(plan.withdraw[&ip("10.0.0.254")], vec![ip("192.0.2.10")]);
    assert!(plan.announce.is_empty());
    until("one VIP left", || received(&router) == Some(1)).await;
    assert_eq!(router.peer(ip("10.0.0.1")).expect("peer").flaps, 0);

    // Applying the same state again is a no-op.
    assert!(applier.apply(&d).await.expect("apply").is_empty());

    // Graceful shutdown closes the session.
    applier.shutdown("test over", Duration::from_secs(1)).await;
    until("session down", || {
        router
            .peer(ip("10.0.0.1"))
            .is_some_and(|p| p.state != State::Established)
    })
    .await;
}

/// The graceful-restart R bit the router received from the node, once Established.
fn r_bit(router: &Speaker) -> Option<bool> {
    let peer = router.peer(ip("10.0.0.1"))?;
    if peer.state != State::Established {
        return None;
    }
    Some(peer.negotiated?.peer_graceful_restart?.restarting)
}

/// `cluster` with the session's timers set to `timers`.
fn cluster_with_timers(description: &str, timers: &str) -> Vec<Object> {
    vec![
        node("n1", &[], Some(true), "10.0.0.1"),
        conf(65001, "  listenAddresses: [10.0.0.1]\n"),
        peer(
            "tor",
            "10.0.0.254",
            65000,
            &format!(
                "  conf: {{peerAs: 65000, neighborAddress: 10.0.0.254, description: \"{description}\"}}\n  sourceAddress: 10.0.0.1\n  timers: {{config: {{{timers}}}}}\n"
            ),
        ),
    ]
}

#[tokio::test(start_paused = true)]
async fn a_restarting_speaker_sends_the_r_bit_on_the_sessions_it_starts_with() {
    let net = MemoryNetwork::new();
    let router = router(&net);
    let mut applier = Applier::new(Network::Memory(net.clone()), None).restarting();
    let ctx = ctx("n1");
    let state = |description, timers| {
        desired(
            &ctx,
            &ClusterState::from_objects(cluster_with_timers(description, timers)),
        )
    };

    applier
        .apply(&state("first", "connectRetry: 5"))
        .await
        .expect("apply");
    let r = until_r_bit(&router).await;
    assert!(r, "the session configured at start carries the R bit");

    // A change that needs no new session keeps the session, and so its R bit.
    let plan = applier
        .apply(&state("second", "connectRetry: 5"))
        .await
        .expect("apply");
    assert_eq!((plan.update.len(), plan.reset.len()), (1, 0));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let p = router.peer(ip("10.0.0.1")).expect("router side");
    assert_eq!((p.state, p.flaps), (State::Established, 0));
    assert_eq!(r_bit(&router), Some(true));

    // A change that needs a new session: that session is not the restart any more.
    let plan = applier
        .apply(&state("second", "connectRetry: 5, holdTime: 30"))
        .await
        .expect("apply");
    assert_eq!(plan.reset.len(), 1);
    until("a new session without the R bit", || {
        router.peer(ip("10.0.0.1")).is_some_and(|p| p.flaps == 1) && r_bit(&router) == Some(false)
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_speaker_started_normally_never_sends_the_r_bit() {
    let net = MemoryNetwork::new();
    let router = router(&net);
    let mut applier = Applier::new(Network::Memory(net.clone()), None);
    let d = desired(
        &ctx("n1"),
        &ClusterState::from_objects(cluster_with_timers("first", "connectRetry: 5")),
    );
    applier.apply(&d).await.expect("apply");
    assert!(!until_r_bit(&router).await);
}

async fn until_r_bit(router: &Speaker) -> bool {
    until("established", || r_bit(router).is_some()).await;
    r_bit(router).expect("established")
}
