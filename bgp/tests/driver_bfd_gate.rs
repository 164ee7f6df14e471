//! The BFD gate on paused tokio time over the in-memory network: a peer whose gate is
//! closed does not come up, comes up when it opens, goes down at once when it closes (long
//! before the hold time), and comes back when it reopens. The gate is a plain
//! `watch::Sender<bool>` here; in Berth it is the `bfd` crate's `SessionHandle::up()`.

mod common;

use std::time::Duration;

use bgp::driver::{BfdGate, MemoryNetwork, PeerConfig};
use bgp::session::State;
use bgp::wire::notification::{CeaseSubcode, ErrorCode, Notification};
use common::speaker::{ip, peer, speaker_pair, state, until_within};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

/// [`peer`] with connect retry 1 s and hold time 90 s (long against the gate's "at once").
fn with_long_hold(p: &mut PeerConfig) {
    p.session.connect_retry = Duration::from_secs(1);
    p.session.hold_time = 90;
}

/// Cease / BFD Down, bare or inside an RFC 8538 Hard Reset.
fn bfd_down_cease(n: &Notification) -> bool {
    match n.code {
        ErrorCode::Cease(CeaseSubcode::BfdDown) => true,
        ErrorCode::Cease(CeaseSubcode::HardReset) => n.data.get(..2) == Some(&[6, 10][..]),
        _ => false,
    }
}

/// Waits (20 s of paused time at most) until `f` holds.
async fn until(what: &str, f: impl FnMut() -> bool) {
    until_within(Duration::from_secs(20), what, f).await;
}

#[tokio::test(start_paused = true)]
async fn a_closed_bfd_gate_holds_the_session_and_closing_it_ends_the_session_at_once() {
    let net = MemoryNetwork::new();
    let (bfd_up, gate) = watch::channel(false);
    let (a, b) = speaker_pair(
        &net,
        |pa| {
            with_long_hold(pa);
            pa.bfd_gate = Some(BfdGate(gate));
        },
        with_long_hold,
    );

    // BFD down: no session, however long we wait (b keeps trying; a refuses).
    sleep(Duration::from_secs(30)).await;
    assert_eq!(state(&a, ip(2)), State::Idle);
    assert_ne!(state(&b, ip(1)), State::Established);

    bfd_up.send_replace(true);
    until("established once BFD is up", || {
        state(&a, ip(2)) == State::Established && state(&b, ip(1)) == State::Established
    })
    .await;

    let closed = Instant::now();
    bfd_up.send_replace(false);
    until("down on BFD down", || {
        state(&a, ip(2)) != State::Established && state(&b, ip(1)) != State::Established
    })
    .await;
    assert!(
        closed.elapsed() < Duration::from_secs(1),
        "at once, not at the 90 s hold time"
    );
    let sent = a.peer(ip(2)).and_then(|p| p.last_error_sent);
    assert_eq!(
        sent.as_ref().map(bfd_down_cease),
        Some(true),
        "Cease / BFD Down (RFC 9384) sent, got {sent:?}"
    );
    let received = b.peer(ip(1)).and_then(|p| p.last_error_received);
    assert_eq!(
        received.as_ref().map(bfd_down_cease),
        Some(true),
        "the peer received Cease / BFD Down, got {received:?}"
    );
    sleep(Duration::from_secs(10)).await;
    assert_eq!(
        state(&a, ip(2)),
        State::Idle,
        "stays down while BFD is down"
    );

    bfd_up.send_replace(true);
    until("back when BFD is up again", || {
        state(&a, ip(2)) == State::Established && state(&b, ip(1)) == State::Established
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn adding_a_gate_by_reconfiguration_follows_it_without_a_reset_while_open() {
    let net = MemoryNetwork::new();
    let (a, _b) = speaker_pair(&net, with_long_hold, with_long_hold);
    until("established", || state(&a, ip(2)) == State::Established).await;
    let flaps = a.peer(ip(2)).expect("peer").flaps;

    let (bfd_up, gate) = watch::channel(true);
    let mut pa = peer(1, 2);
    with_long_hold(&mut pa);
    pa.bfd_gate = Some(BfdGate(gate));
    a.update_peer(pa).await.expect("update");
    sleep(Duration::from_secs(5)).await;
    assert_eq!(state(&a, ip(2)), State::Established);
    assert_eq!(
        a.peer(ip(2)).expect("peer").flaps,
        flaps,
        "an open gate resets nothing"
    );

    bfd_up.send_replace(false);
    until("down on BFD down", || {
        state(&a, ip(2)) != State::Established
    })
    .await;
}
