//! BFD under the speaker's sessions, over the in-memory BGP and BFD networks on paused
//! time: a BgpPeer with `spec.bfd.enabled` gets a BFD session whose gate its BGP session
//! follows; a timer change goes through without resetting either session; a cut link ends
//! the BGP session with Cease / BFD Down long before the hold time; switching BFD off
//! removes the BFD session and leaves the BGP session alone.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bfd::{Bfd, SessionConfig, Timers};
use bgp::driver::{MemoryNetwork, Speaker};
use bgp::session::State;
use bgp::wire::notification::{CeaseSubcode, ErrorCode};
use common::*;
use speaker::admin::View;
use speaker::sync::{Applier, Network};
use speaker::{ClusterState, Object, desired};

fn router(net: &MemoryNetwork) -> Speaker {
    memory_router(net, |p| {
        p.session.connect_retry = Duration::from_secs(1);
    })
}

fn cluster(bfd: &str) -> Vec<Object> {
    vec![
        node("n1", &[], Some(true), "10.0.0.1"),
        conf(65001, "  listenAddresses: [10.0.0.1]\n"),
        peer(
            "tor",
            "10.0.0.254",
            65000,
            &format!(
                "  conf: {{peerAs: 65000, neighborAddress: 10.0.0.254}}\n  sourceAddress: 10.0.0.1\n  timers: {{config: {{connectRetry: 1, holdTime: 90}}}}\n{bfd}"
            ),
        ),
    ]
}

fn bgp_state(router: &Speaker) -> State {
    router.peer(ip("10.0.0.1")).map_or(State::Idle, |p| p.state)
}

#[tokio::test(start_paused = true)]
async fn bfd_gates_the_session_and_changes_reset_nothing() {
    let bgp_net = MemoryNetwork::new();
    let bfd_net = bfd::MemoryNetwork::new();
    let router = router(&bgp_net);
    let router_bfd = Bfd::in_memory(&bfd_net, &[ip("10.0.0.254")]);
    router_bfd
        .add_session(SessionConfig::single_hop(
            ip("10.0.0.1"),
            Some(ip("10.0.0.254")),
            Timers::new(Duration::from_millis(100), 3),
        ))
        .expect("router BFD");
    let node_bfd = Arc::new(Bfd::in_memory(&bfd_net, &[ip("10.0.0.1")]));
    let mut applier = Applier::new(Network::Memory(bgp_net.clone()), None).with_bfd(node_bfd);
    let ctx = ctx("n1");
    let peer = ip("10.0.0.254");

    let on = "  bfd: {enabled: true, minTx: 100, minRx: 100}\n";
    let d = desired(&ctx, &ClusterState::from_objects(cluster(on)));
    assert_eq!(applier.apply(&d).await.expect("apply").add.len(), 1);
    until("BFD up and BGP established", || {
        applier
            .bfd()
            .status(peer)
            .is_some_and(|s| s.state == bfd::State::Up)
            && bgp_state(&router) == State::Established
    })
    .await;
    let status = applier.bfd().status(peer).expect("status");
    assert_eq!(status.timers.desired_min_tx, Duration::from_millis(100));
    assert_eq!(status.timers.detect_mult, 3, "default multiplier");

    // Shown by the admin API (`berthctl peers`) and the metrics; a malformed packet is
    // dropped and counted by reason.
    bfd_net.inject(
        ip("10.0.0.254"),
        ip("10.0.0.1"),
        bfd::Hop::Single,
        255,
        &[0x40; 24],
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let view = View {
        running: applier.running().clone(),
        speaker: applier.speaker().cloned(),
        bfd: applier.bfd().bfd().cloned(),
        ..View::default()
    };
    let peers = view.peers();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].bfd.as_deref(), Some("Up"));
    let json = serde_json::to_value(&peers[0]).expect("json");
    assert_eq!(json["bfd"], "Up");
    let metrics = view.metrics();
    assert!(
        metrics.contains("berth_speaker_bfd_session_up{peer=\"10.0.0.254\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("berth_speaker_bfd_packets_dropped_total{reason=\"version\"} 1"),
        "{metrics}"
    );

    // New timers: in place (a Poll sequence), neither session resets.
    let faster = "  bfd: {enabled: true, minTx: 50, minRx: 50, multiplier: 5}\n";
    let d = desired(&ctx, &ClusterState::from_objects(cluster(faster)));
    let plan = applier.apply(&d).await.expect("apply");
    assert_eq!((plan.update.len(), plan.reset.len()), (1, 0));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = applier.bfd().status(peer).expect("status");
    assert_eq!(status.timers.desired_min_tx, Duration::from_millis(50));
    assert_eq!(status.timers.detect_mult, 5);
    assert_eq!((status.state, status.up_count), (bfd::State::Up, 1));
    let p = router.peer(ip("10.0.0.1")).expect("router side");
    assert_eq!((p.state, p.flaps), (State::Established, 0));

    // The link dies for BFD: the BGP session ends at once, with Cease / BFD Down.
    bfd_net.cut(ip("10.0.0.1"), ip("10.0.0.254"));
    until("BGP down on BFD down", || {
        bgp_state(&router) != State::Established
    })
    .await;
    let n = router
        .peer(ip("10.0.0.1"))
        .and_then(|p| p.last_error_received)
        .expect("a NOTIFICATION");
    assert!(
        n.code == ErrorCode::Cease(CeaseSubcode::BfdDown)
            || (n.code == ErrorCode::Cease(CeaseSubcode::HardReset)
                && n.data.get(..2) == Some(&[6, 10][..])),
        "Cease / BFD Down, got {n:?}"
    );
    bfd_net.restore(ip("10.0.0.1"), ip("10.0.0.254"));
    until("back once BFD is up", || {
        bgp_state(&router) == State::Established
    })
    .await;

    // BFD off: its session goes, the BGP session stays.
    let flaps = router.peer(ip("10.0.0.1")).expect("peer").flaps;
    let d = desired(&ctx, &ClusterState::from_objects(cluster("")));
    let plan = applier.apply(&d).await.expect("apply");
    assert_eq!((plan.update.len(), plan.reset.len()), (1, 0));
    assert!(applier.bfd().status(peer).is_none());
    assert!(applier.bfd().configs().is_empty());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let p = router.peer(ip("10.0.0.1")).expect("router side");
    assert_eq!((p.state, p.flaps), (State::Established, flaps));

    applier.shutdown("test over", Duration::from_secs(1)).await;
}
