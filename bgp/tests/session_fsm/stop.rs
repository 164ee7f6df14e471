//! How a session is ended on purpose: a manual stop (Administrative Shutdown with its
//! message, no automatic restart), a hard stop (RFC 8538 Hard Reset), a restart close that
//! lets a graceful-restart helper keep our routes (RFC 4724, 8538), and the maximum-prefix
//! limit with its hold-down (RFC 4486).

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp::session::{Action, Event, Session, State, Timer};
use bgp::wire::{
    CeaseSubcode, ErrorCode, Family, GracefulRestart, Ipv4Prefix, Message, Nlri, Update,
};

use crate::common::session::{
    C1, C2, PEER_ID, closed, config, config_with_max_prefix, established, established_with,
    incoming, manual_stop, msg, notification, open_sent, peer_open,
    peer_open_with_graceful_restart, timer,
};

#[test]
fn manual_stop_sends_administrative_shutdown_with_message_and_stays_idle() {
    let mut s = established(90);
    let a = s.handle(manual_stop("maintenance", true));
    let n = notification(&a, C1).expect("cease");
    assert_eq!(
        n.code,
        ErrorCode::Cease(CeaseSubcode::AdministrativeShutdown)
    );
    assert_eq!(n.shutdown_communication(), Some("maintenance"));
    assert_eq!(s.state(), State::Idle);
    assert_eq!(
        timer(&a, Timer::IdleHold),
        None,
        "no automatic restart after a manual stop"
    );
    let a = s.handle(Event::TimerExpired(Timer::IdleHold));
    assert!(!a.contains(&Action::Connect));
}

#[test]
fn manual_stop_in_connect_cancels_the_attempt_and_in_open_sent_ceases() {
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    let a = s.handle(manual_stop("", false));
    assert!(a.contains(&Action::CancelConnect));
    assert!(a.contains(&Action::StopTimer(Timer::ConnectRetry)));
    assert_eq!(s.state(), State::Idle);

    let mut s = open_sent();
    let a = s.handle(manual_stop("", false));
    let n = notification(&a, C1).expect("cease");
    assert_eq!(
        n.code,
        ErrorCode::Cease(CeaseSubcode::AdministrativeShutdown)
    );
    assert!(closed(&a, C1));
    assert!(
        !a.iter().any(|a| matches!(a, Action::Down { .. })),
        "never was Established"
    );
}

#[test]
fn hard_stop_with_the_n_bit_negotiated_wraps_the_cease_in_a_hard_reset() {
    let open = peer_open_with_graceful_restart(GracefulRestart::NOTIFICATION);
    let mut s = established_with(config(), open);
    let a = s.handle(manual_stop("bye", true));
    let n = notification(&a, C1).expect("notification");
    assert_eq!(n.code, ErrorCode::Cease(CeaseSubcode::HardReset));
    assert_eq!(n.data, [&[6u8, 2, 3][..], b"bye"].concat());
}

/// A session Established on C1 whose peer advertised graceful restart with these flags
/// (None: no graceful restart).
fn established_with_peer_gr(gr: Option<u8>) -> Session {
    let open = gr.map_or_else(|| peer_open(PEER_ID, 90), peer_open_with_graceful_restart);
    established_with(config(), open)
}

#[test]
fn a_restart_close_without_the_peers_n_bit_sends_no_notification() {
    // RFC 4724 §4: a helper keeps the routes only when the session ends without a
    // NOTIFICATION; without RFC 8538's N-bit (BIRD 2.0), a Cease makes it drop them.
    let mut s = established_with_peer_gr(Some(0));
    let a = s.handle(manual_stop("restarting", false));
    assert_eq!(notification(&a, C1), None, "{a:?}");
    assert!(closed(&a, C1));
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn a_restart_close_with_the_n_bit_or_without_graceful_restart_sends_a_cease() {
    for gr in [Some(GracefulRestart::NOTIFICATION), None] {
        let mut s = established_with_peer_gr(gr);
        let a = s.handle(manual_stop("restarting", false));
        let n = notification(&a, C1).expect("cease");
        assert_eq!(
            n.code,
            ErrorCode::Cease(CeaseSubcode::AdministrativeShutdown),
            "{gr:?}"
        );
        assert!(closed(&a, C1));
    }
}

#[test]
fn max_prefix_ends_the_session_and_retries_after_the_configured_idle_time() {
    let c = config_with_max_prefix(2, Some(Duration::from_secs(300)));
    let mut s = established_with(c, peer_open(PEER_ID, 90));
    let update = |n: u8| Update {
        nlri: (0..n)
            .map(|i| Nlri::new(Ipv4Prefix::host(Ipv4Addr::new(192, 0, 2, i))))
            .collect(),
        ..Update::default()
    };
    s.handle(msg(C1, Message::Update(update(2))));
    assert_eq!(s.received().count(Family::IPV4_UNICAST), Some(2));
    let a = s.handle(msg(C1, Message::Update(update(3))));
    let n = notification(&a, C1).expect("cease");
    assert_eq!(
        n.code,
        ErrorCode::Cease(CeaseSubcode::MaximumNumberOfPrefixesReached)
    );
    assert_eq!(n.data, vec![0, 1, 1, 0, 0, 0, 2]);
    assert_eq!(timer(&a, Timer::IdleHold), Some(Duration::from_secs(300)));
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn max_prefix_hold_down_refuses_the_peer_until_it_ends() {
    let c = config_with_max_prefix(0, Some(Duration::from_secs(60)));
    let mut s = established_with(c, peer_open(PEER_ID, 90));
    let update = Update {
        nlri: vec![Nlri::new(Ipv4Prefix::host(Ipv4Addr::new(192, 0, 2, 1)))],
        ..Update::default()
    };
    s.handle(msg(C1, Message::Update(update)));
    assert_eq!(s.state(), State::Idle);
    let a = s.handle(incoming(C2));
    assert_eq!(a, vec![Action::Close { conn: C2 }]);
    let a = s.handle(Event::TimerExpired(Timer::IdleHold));
    assert!(a.contains(&Action::Connect));
}
