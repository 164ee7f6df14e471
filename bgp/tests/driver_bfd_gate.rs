//! The BFD gate on paused tokio time over the in-memory network: a peer whose gate is
//! closed does not come up, comes up when it opens, goes down at once when it closes (long
//! before the hold time), and comes back when it reopens. The gate is a plain
//! `watch::Sender<bool>` here; in Berth it is the `bfd` crate's `SessionHandle::up()`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bgp::driver::{BfdGate, MemoryNetwork, PeerConfig, Speaker, SpeakerConfig};
use bgp::session::State;
use bgp::wire::notification::{CeaseSubcode, ErrorCode, Notification};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn speaker_config(last: u8, asn: u32) -> SpeakerConfig {
    SpeakerConfig {
        local_as: asn,
        router_id: Ipv4Addr::new(10, 0, 0, last),
        listen_addresses: vec![ip(last)],
        listen_port: 179,
    }
}

fn peer(me: u8, my_as: u32, them: u8, their_as: u32) -> PeerConfig {
    let mut p = PeerConfig::new(ip(them), my_as, their_as, Ipv4Addr::new(10, 0, 0, me));
    p.transport.local = Some(ip(me));
    p.session.connect_retry = Duration::from_secs(1);
    p.session.hold_time = 90;
    p
}

fn state(s: &Speaker, addr: IpAddr) -> State {
    s.peer(addr).map_or(State::Idle, |p| p.state)
}

/// Cease / BFD Down, bare or inside an RFC 8538 Hard Reset.
fn bfd_down_cease(n: &Notification) -> bool {
    match n.code {
        ErrorCode::Cease(CeaseSubcode::BfdDown) => true,
        ErrorCode::Cease(CeaseSubcode::HardReset) => n.data.get(..2) == Some(&[6, 10][..]),
        _ => false,
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if f() {
            return;
        }
        sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(start_paused = true)]
async fn a_closed_bfd_gate_holds_the_session_and_closing_it_ends_the_session_at_once() {
    let net = MemoryNetwork::new();
    let a = Speaker::start_in_memory(speaker_config(1, 65001), &net);
    let b = Speaker::start_in_memory(speaker_config(2, 65002), &net);
    let (bfd_up, gate) = watch::channel(false);
    let mut pa = peer(1, 65001, 2, 65002);
    pa.bfd_gate = Some(BfdGate(gate));
    a.add_peer(pa).expect("add");
    b.add_peer(peer(2, 65002, 1, 65001)).expect("add");

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
    let a = Speaker::start_in_memory(speaker_config(1, 65001), &net);
    let b = Speaker::start_in_memory(speaker_config(2, 65002), &net);
    a.add_peer(peer(1, 65001, 2, 65002)).expect("add");
    b.add_peer(peer(2, 65002, 1, 65001)).expect("add");
    until("established", || state(&a, ip(2)) == State::Established).await;
    let flaps = a.peer(ip(2)).expect("peer").flaps;

    let (bfd_up, gate) = watch::channel(true);
    let mut pa = peer(1, 65001, 2, 65002);
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
