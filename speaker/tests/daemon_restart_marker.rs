//! The daemon's restart marker over the BGP driver's in-memory network (paused time): a
//! speaker stopped for a restart leaves a marker, and the next start on that node sends
//! the graceful-restart R bit without being told (`--restarting`), then removes the
//! marker; a drained stop leaves none, a fresh or stale start sends no R bit.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bgp::driver::{MemoryNetwork, Speaker};
use bgp::session::State;
use common::*;
use speaker::ClusterState;
use speaker::daemon::{Options, Shared, ShutdownMode, run};
use speaker::restart_marker::{self, Marker};
use speaker::source::Feed;
use speaker::sync::Network;

/// The router the node peers with: a plain driver speaker that keeps connecting.
fn router(net: &MemoryNetwork) -> Speaker {
    memory_router(net, |p| {
        p.session.connect_retry = Duration::from_secs(5);
    })
}

/// Node n1 with one session to the router, graceful restart at `restart_time` seconds.
fn cluster(restart_time: u16) -> ClusterState {
    ClusterState::from_objects(vec![
        node("n1", &[], Some(true), "10.0.0.1"),
        conf(65001, "  listenAddresses: [10.0.0.1]\n"),
        peer(
            "tor",
            "10.0.0.254",
            65000,
            &format!(
                "  conf: {{peerAs: 65000, neighborAddress: 10.0.0.254}}\n  sourceAddress: 10.0.0.1\n  \
                 timers: {{config: {{connectRetry: 5}}}}\n  \
                 gracefulRestart: {{enabled: true, restartTime: {restart_time}}}\n"
            ),
        ),
    ])
}

/// The graceful-restart R bit the router received from the node, once Established.
fn r_bit(router: &Speaker) -> Option<bool> {
    let peer = router.peer(ip("10.0.0.1"))?;
    if peer.state != State::Established {
        return None;
    }
    Some(peer.negotiated?.peer_graceful_restart?.restarting)
}

/// Runs the daemon for node n1 until its session is up, reports the R bit the router saw,
/// then stops it with `on_shutdown`.
async fn one_run(
    net: &MemoryNetwork,
    router: &Speaker,
    marker: &Path,
    on_shutdown: ShutdownMode,
    restarting: bool,
) -> bool {
    let options = Options {
        ctx: ctx("n1"),
        listen_port: None,
        vip_interface: None,
        drain: Duration::from_secs(1),
        on_shutdown,
        network: Network::Memory(net.clone()),
        restarting,
        restart_marker: Some(marker.to_path_buf()),
        layer2: None,
    };
    let (_tx, rx) = tokio::sync::watch::channel(Feed {
        state: Some(Arc::new(cluster(120))),
        error: None,
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(run(options, rx, Arc::new(Shared::default()), async {
        let _ = stopped.await;
    }));
    until("the session up", || r_bit(router).is_some()).await;
    let r = r_bit(router).expect("established");
    stop.send(()).expect("daemon running");
    daemon.await.expect("daemon ends");
    until("the router sees the session go", || {
        router
            .peer(ip("10.0.0.1"))
            .is_some_and(|p| p.state != State::Established)
    })
    .await;
    r
}

#[tokio::test(start_paused = true)]
async fn a_restart_stop_leaves_a_marker_that_makes_the_next_start_a_restart() {
    let net = MemoryNetwork::new();
    let router = router(&net);
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("berth").join("restart");

    // First start: no marker, no R bit. A restart stop leaves one, with the restart time
    // the session advertised.
    let r = one_run(&net, &router, &marker, ShutdownMode::Restart, false).await;
    assert!(!r, "a fresh start sends no R bit");
    let text = std::fs::read_to_string(&marker).expect("a restart stop leaves a marker");
    let left = Marker::decode(&text).expect("a marker");
    assert_eq!((left.node.as_str(), left.restart_time_secs), ("n1", 120));

    // Second start, not told it restarts: the marker says it. It is used up; a drained stop
    // leaves none.
    let r = one_run(&net, &router, &marker, ShutdownMode::Drain, false).await;
    assert!(r, "the start after a restart stop sends the R bit");
    assert!(!marker.exists(), "a drained stop leaves no marker");

    // Third start, after the drain: fresh again.
    let r = one_run(&net, &router, &marker, ShutdownMode::Drain, false).await;
    assert!(!r, "no marker, no R bit");
    assert!(!marker.exists());
}

#[tokio::test(start_paused = true)]
async fn stale_or_corrupt_markers_are_ignored_and_removed() {
    let net = MemoryNetwork::new();
    let router = router(&net);
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("restart");

    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    restart_marker::leave(&marker, &Marker::new("n1", an_hour_ago, 120)).expect("marker");
    let r = one_run(&net, &router, &marker, ShutdownMode::Drain, false).await;
    assert!(
        !r,
        "a marker older than the restart time means a fresh start"
    );
    assert!(!marker.exists(), "the stale marker is removed");

    std::fs::write(&marker, b"{\"node\":\"n1\",\"stopped").expect("corrupt marker");
    let r = one_run(&net, &router, &marker, ShutdownMode::Drain, false).await;
    assert!(!r, "a corrupt marker means a fresh start");
    assert!(!marker.exists(), "the corrupt marker is removed");

    // `--restarting` still works alone, with no marker at all.
    let r = one_run(&net, &router, &marker, ShutdownMode::Drain, true).await;
    assert!(r, "--restarting sends the R bit");
}
