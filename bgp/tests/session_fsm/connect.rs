//! Starting a session and its connections: the first dial and its jittered connect retry,
//! passive and active modes, a failed dial, the OPEN sent when a connection comes up,
//! connections refused in Idle, and a lost connection (a flap in Established, a restart
//! after the idle hold, or the peer reconnecting first).

use std::time::Duration;

use bgp::session::{Action, ConnectMode, DownReason, Event, Session, State, Timer};
use bgp::wire::{Capability, Message};

use crate::common::session::{
    C1, C2, LOCAL_ID, closed, config, established, incoming, outgoing, sent, timer,
};

#[test]
fn idle_manual_start_dials_with_a_jittered_connect_retry() {
    let mut s = Session::new(config(), 1);
    assert_eq!(s.state(), State::Idle);
    let a = s.handle(Event::ManualStart);
    assert!(a.contains(&Action::Connect));
    let retry = timer(&a, Timer::ConnectRetry).expect("connect retry timer");
    assert!(retry >= Duration::from_millis(22_500) && retry <= Duration::from_secs(30));
    assert!(a.contains(&Action::StateChanged {
        from: State::Idle,
        to: State::Connect
    }));
}

#[test]
fn passive_start_waits_in_active_without_dialling() {
    let mut c = config();
    c.mode = ConnectMode::Passive;
    let mut s = Session::new(c, 1);
    let a = s.handle(Event::ManualStart);
    assert_eq!(s.state(), State::Active);
    assert!(!a.contains(&Action::Connect));
    let a = s.handle(Event::TimerExpired(Timer::ConnectRetry));
    assert!(!a.contains(&Action::Connect), "passive never connects");
    let a = s.handle(incoming(C1));
    assert!(matches!(sent(&a, C1).as_slice(), [Message::Open(_)]));
    assert_eq!(s.state(), State::OpenSent);
}

#[test]
fn connect_retry_expiry_in_connect_redials() {
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    let a = s.handle(Event::TimerExpired(Timer::ConnectRetry));
    assert_eq!(a[..2], [Action::CancelConnect, Action::Connect]);
    assert!(timer(&a, Timer::ConnectRetry).is_some());
    assert_eq!(s.state(), State::Connect);
}

#[test]
fn failed_dial_goes_active_and_connect_retry_dials_again() {
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnectFailed);
    assert_eq!(s.state(), State::Active);
    let a = s.handle(Event::TimerExpired(Timer::ConnectRetry));
    assert!(a.contains(&Action::Connect));
    assert_eq!(s.state(), State::Connect);
}

#[test]
fn connection_up_sends_open_with_large_hold_timer() {
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    let a = s.handle(outgoing(C1));
    let Some(Message::Open(open)) = sent(&a, C1).into_iter().next() else {
        panic!("no OPEN")
    };
    assert_eq!(
        (open.asn(), open.hold_time, open.bgp_id),
        (65001, 90, LOCAL_ID)
    );
    assert!(
        open.capabilities()
            .any(|c| matches!(c, Capability::GracefulRestart(_)))
    );
    assert_eq!(timer(&a, Timer::Hold(C1)), Some(Duration::from_secs(240)));
    assert!(a.contains(&Action::StopTimer(Timer::ConnectRetry)));
    assert_eq!(s.state(), State::OpenSent);
}

#[test]
fn idle_refuses_connections_and_active_mode_refuses_incoming() {
    let mut s = Session::new(config(), 1);
    let a = s.handle(incoming(C1));
    assert_eq!(a, vec![Action::Close { conn: C1 }]);
    let mut c = config();
    c.mode = ConnectMode::Active;
    let mut s = Session::new(c, 1);
    s.handle(Event::ManualStart);
    let a = s.handle(incoming(C1));
    assert!(closed(&a, C1));
    assert!(sent(&a, C1).is_empty());
}

#[test]
fn tcp_failure_in_open_sent_goes_idle_and_restarts_later() {
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(incoming(C1));
    let a = s.handle(Event::TcpClosed { conn: C1 });
    assert_eq!(s.state(), State::Idle);
    assert!(timer(&a, Timer::IdleHold).is_some());
    let a = s.handle(Event::TimerExpired(Timer::IdleHold));
    assert!(a.contains(&Action::Connect));
}

#[test]
fn tcp_closed_in_established_is_a_flap() {
    let mut s = established(90);
    let a = s.handle(Event::TcpClosed { conn: C1 });
    assert!(a.contains(&Action::Down {
        reason: DownReason::ConnectionClosed
    }));
    assert_eq!((s.state(), s.flaps()), (State::Idle, 1));
}

#[test]
fn the_peer_connecting_during_idle_hold_restarts_the_session() {
    let mut s = established(90);
    s.handle(Event::TcpClosed { conn: C1 });
    assert_eq!(s.state(), State::Idle);
    let a = s.handle(incoming(C2));
    assert!(matches!(sent(&a, C2).as_slice(), [Message::Open(_)]));
    assert!(a.contains(&Action::StopTimer(Timer::IdleHold)));
    assert_eq!(s.state(), State::OpenSent);
    // A late result of a cancelled dial is still refused in Idle.
    let mut s = established(90);
    s.handle(Event::TcpClosed { conn: C1 });
    let a = s.handle(outgoing(C2));
    assert_eq!(a, vec![Action::Close { conn: C2 }]);
}
