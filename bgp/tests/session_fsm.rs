//! The session state machine driven by scripted event sequences: the RFC 4271 §8
//! transitions, both §6.8 collision outcomes, each OPEN error, and why a connection that
//! never reached Established failed.

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp::session::{
    Action, ConnId, ConnectMode, Direction, DownReason, Event, MaxPrefix, PeerAs, Session,
    SessionConfig, State, Timer,
};
use bgp::wire::{
    Capability, CeaseSubcode, DecodeError, ErrorCode, Family, FsmSubcode, Ipv4Prefix, Message,
    Nlri, Notification, Open, OpenSubcode, OptionalParam, RouteRefresh, RouteRefreshSubtype,
    Update,
};

const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const C1: ConnId = ConnId(1);
const C2: ConnId = ConnId(2);

fn config() -> SessionConfig {
    SessionConfig::new(65001, PeerAs::Exact(65000), LOCAL_ID)
}

fn peer_open(id: [u8; 4], hold: u16) -> Open {
    Open::new(
        65000,
        hold,
        Ipv4Addr::from(id),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::FourOctetAs(65000),
            Capability::RouteRefresh,
        ],
    )
}

fn msg(conn: ConnId, message: Message) -> Event {
    Event::Message { conn, message }
}

/// Messages sent on `conn` by these actions.
fn sent(actions: &[Action], conn: ConnId) -> Vec<Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { conn: c, message } if *c == conn => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn notification(actions: &[Action], conn: ConnId) -> Option<Notification> {
    sent(actions, conn).into_iter().find_map(|m| {
        if let Message::Notification(n) = m {
            Some(n)
        } else {
            None
        }
    })
}

fn timer(actions: &[Action], which: Timer) -> Option<Duration> {
    actions.iter().rev().find_map(|a| match a {
        Action::StartTimer { timer, after } if *timer == which => Some(*after),
        _ => None,
    })
}

fn closed(actions: &[Action], conn: ConnId) -> bool {
    actions.contains(&Action::Close { conn })
}

/// A session brought to Established on C1 (outgoing), peer hold time `hold`.
fn established(hold: u16) -> Session {
    let mut s = Session::new(config(), 7);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    s.handle(msg(C1, Message::Open(peer_open([10, 0, 0, 9], hold))));
    let a = s.handle(msg(C1, Message::Keepalive));
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::Established { conn: C1, .. }))
    );
    assert_eq!(s.state(), State::Established);
    s
}

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
    let a = s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Incoming,
    });
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
    let a = s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
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
fn open_received_sends_keepalive_and_negotiates_hold_time() {
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    let a = s.handle(msg(C1, Message::Open(peer_open([10, 0, 0, 9], 30))));
    assert_eq!(sent(&a, C1), vec![Message::Keepalive]);
    assert_eq!(timer(&a, Timer::Hold(C1)), Some(Duration::from_secs(30)));
    let ka = timer(&a, Timer::Keepalive(C1)).expect("keepalive timer");
    assert!(
        ka <= Duration::from_secs(10) && ka >= Duration::from_millis(7_500),
        "{ka:?}"
    );
    assert_eq!(s.state(), State::OpenConfirm);
}

#[test]
fn keepalive_in_open_confirm_establishes_with_negotiated_capabilities() {
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    s.handle(msg(C1, Message::Open(peer_open([10, 0, 0, 9], 90))));
    let a = s.handle(msg(C1, Message::Keepalive));
    let n = a
        .iter()
        .find_map(|a| {
            if let Action::Established { negotiated, .. } = a {
                Some(negotiated.clone())
            } else {
                None
            }
        })
        .expect("established");
    assert_eq!(n.families, vec![Family::IPV4_UNICAST]);
    assert!(n.four_octet_as && n.route_refresh && !n.extended_message);
    assert_eq!(n.hold_time, 90);
    assert!(a.contains(&Action::StateChanged {
        from: State::OpenConfirm,
        to: State::Established
    }));
    assert_eq!(s.established_conn(), Some(C1));
}

#[test]
fn hold_time_zero_means_no_hold_timer_and_no_keepalives() {
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    let a = s.handle(msg(C1, Message::Open(peer_open([10, 0, 0, 9], 0))));
    assert!(a.contains(&Action::StopTimer(Timer::Hold(C1))));
    assert_eq!(timer(&a, Timer::Keepalive(C1)), None);
    assert_eq!(timer(&a, Timer::Hold(C1)), None);
}

#[test]
fn established_traffic_restarts_the_hold_timer_and_keepalive_timer_sends() {
    let mut s = established(60);
    let a = s.handle(msg(C1, Message::Keepalive));
    assert_eq!(timer(&a, Timer::Hold(C1)), Some(Duration::from_secs(60)));
    let a = s.handle(msg(
        C1,
        Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)),
    ));
    assert_eq!(timer(&a, Timer::Hold(C1)), Some(Duration::from_secs(60)));
    let a = s.handle(Event::TimerExpired(Timer::Keepalive(C1)));
    assert_eq!(sent(&a, C1), vec![Message::Keepalive]);
    assert!(timer(&a, Timer::Keepalive(C1)).is_some());
}

#[test]
fn hold_timer_expiry_notifies_goes_idle_and_restarts_with_backoff() {
    let mut s = established(90);
    let a = s.handle(Event::TimerExpired(Timer::Hold(C1)));
    assert_eq!(
        notification(&a, C1).map(|n| n.code),
        Some(ErrorCode::HoldTimerExpired)
    );
    assert!(closed(&a, C1));
    assert!(a.iter().any(|a| matches!(
        a,
        Action::Down {
            reason: DownReason::Sent(_)
        }
    )));
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.flaps(), 1);
    assert_eq!(timer(&a, Timer::IdleHold), Some(Duration::from_secs(1)));
    // Automatic restart, then a second failure before Established doubles the idle hold.
    let a = s.handle(Event::TimerExpired(Timer::IdleHold));
    assert!(a.contains(&Action::Connect));
    s.handle(Event::TcpConnected {
        conn: C2,
        direction: Direction::Outgoing,
    });
    let a = s.handle(Event::TcpClosed { conn: C2 });
    assert_eq!(timer(&a, Timer::IdleHold), Some(Duration::from_secs(2)));
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn notification_received_in_open_sent_open_confirm_and_established_goes_idle() {
    let cease = Notification::new(ErrorCode::Cease(CeaseSubcode::AdministrativeReset), vec![]);
    for stage in 0..3 {
        let mut s = Session::new(config(), 1);
        s.handle(Event::ManualStart);
        s.handle(Event::TcpConnected {
            conn: C1,
            direction: Direction::Outgoing,
        });
        if stage >= 1 {
            s.handle(msg(C1, Message::Open(peer_open([10, 0, 0, 9], 90))));
        }
        if stage >= 2 {
            s.handle(msg(C1, Message::Keepalive));
        }
        let a = s.handle(msg(C1, Message::Notification(cease.clone())));
        assert!(closed(&a, C1));
        assert!(
            notification(&a, C1).is_none(),
            "never answer a NOTIFICATION"
        );
        assert_eq!(s.state(), State::Idle, "stage {stage}");
        assert_eq!(s.last_received_error(), Some(&cease));
    }
}

/// The `Failed` actions of these actions: (connection, state reached, reason).
fn failures(actions: &[Action]) -> Vec<(ConnId, State, DownReason)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Failed {
                conn,
                state,
                reason,
            } => Some((*conn, *state, reason.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_connection_that_fails_before_established_says_why_once() {
    let cease = Notification::new(ErrorCode::Cease(CeaseSubcode::ConnectionRejected), vec![]);
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    let a = s.handle(msg(C1, Message::Notification(cease.clone())));
    assert_eq!(
        failures(&a),
        vec![(C1, State::OpenSent, DownReason::Received(cease))]
    );
    // An OPEN we refuse, in OpenSent.
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    let wrong_as = Open::new(
        65002,
        90,
        Ipv4Addr::new(10, 0, 0, 9),
        vec![Capability::FourOctetAs(65002)],
    );
    let a = s.handle(msg(C1, Message::Open(wrong_as)));
    let sent_n = notification(&a, C1).expect("OPEN refused");
    assert_eq!(sent_n.code, ErrorCode::Open(OpenSubcode::BadPeerAs));
    assert_eq!(
        failures(&a),
        vec![(C1, State::OpenSent, DownReason::Sent(sent_n))]
    );
    // The hold timer, in OpenConfirm.
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    s.handle(msg(C1, Message::Open(peer_open([10, 0, 0, 9], 90))));
    let a = s.handle(Event::TimerExpired(Timer::Hold(C1)));
    assert_eq!(
        failures(&a),
        vec![(
            C1,
            State::OpenConfirm,
            DownReason::Sent(Notification::new(ErrorCode::HoldTimerExpired, vec![]))
        )]
    );
    // Leaving Established is `Down`, not `Failed`; a stop is neither a failure.
    let mut s = established(90);
    assert!(failures(&s.handle(Event::TcpClosed { conn: C1 })).is_empty());
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    let a = s.handle(Event::ManualStop {
        message: String::new(),
        hard: false,
    });
    assert!(failures(&a).is_empty(), "{a:?}");
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
fn unexpected_messages_get_rfc6608_fsm_errors() {
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    let a = s.handle(msg(C1, Message::Keepalive));
    assert_eq!(
        notification(&a, C1).map(|n| n.code),
        Some(ErrorCode::Fsm(FsmSubcode::UnexpectedMessageInOpenSent))
    );

    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    s.handle(msg(C1, Message::Open(peer_open([10, 0, 0, 9], 90))));
    let a = s.handle(msg(C1, Message::Open(peer_open([10, 0, 0, 9], 90))));
    assert_eq!(
        notification(&a, C1).map(|n| n.code),
        Some(ErrorCode::Fsm(FsmSubcode::UnexpectedMessageInOpenConfirm))
    );

    let mut s = established(90);
    let a = s.handle(msg(C1, Message::Open(peer_open([10, 0, 0, 9], 90))));
    assert_eq!(
        notification(&a, C1).map(|n| n.code),
        Some(ErrorCode::Fsm(FsmSubcode::UnexpectedMessageInEstablished))
    );
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn decode_errors_are_answered_with_their_notification() {
    let mut s = established(90);
    let a = s.handle(Event::DecodeError {
        conn: C1,
        error: DecodeError::MalformedAsPath,
    });
    assert_eq!(
        notification(&a, C1),
        Some(DecodeError::MalformedAsPath.notification())
    );
    assert_eq!(
        s.last_sent_error(),
        Some(&DecodeError::MalformedAsPath.notification())
    );
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn send_hold_timer_expiry_notifies_with_code_8() {
    let mut s = established(90);
    let a = s.handle(Event::SendHoldTimerExpired { conn: C1 });
    assert_eq!(notification(&a, C1).map(|n| n.code.to_wire()), Some((8, 0)));
    assert_eq!(s.state(), State::Idle);
}

/// Both connections reach OpenSent; C1 gets its OPEN first (OpenConfirm), then C2 does.
fn collide(local_id: Ipv4Addr, peer_id: [u8; 4]) -> (Session, Vec<Action>) {
    let mut c = config();
    c.router_id = local_id;
    let mut s = Session::new(c, 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    s.handle(Event::TcpConnected {
        conn: C2,
        direction: Direction::Incoming,
    });
    s.handle(msg(C1, Message::Open(peer_open(peer_id, 90))));
    let a = s.handle(msg(C2, Message::Open(peer_open(peer_id, 90))));
    (s, a)
}

#[test]
fn collision_with_higher_local_id_keeps_our_connection() {
    let (mut s, a) = collide(Ipv4Addr::new(10, 0, 0, 200), [10, 0, 0, 9]);
    let n = notification(&a, C2).expect("the incoming connection is closed");
    assert_eq!(
        n.code,
        ErrorCode::Cease(CeaseSubcode::ConnectionCollisionResolution)
    );
    assert!(closed(&a, C2) && !closed(&a, C1));
    s.handle(msg(C1, Message::Keepalive));
    assert_eq!(s.established_conn(), Some(C1));
}

#[test]
fn collision_with_lower_local_id_keeps_the_peers_connection() {
    let (mut s, a) = collide(Ipv4Addr::new(10, 0, 0, 1), [10, 0, 0, 9]);
    let n = notification(&a, C1).expect("our outgoing connection is closed");
    assert_eq!(
        n.code,
        ErrorCode::Cease(CeaseSubcode::ConnectionCollisionResolution)
    );
    assert!(closed(&a, C1) && !closed(&a, C2));
    assert_eq!(sent(&a, C2), vec![Message::Keepalive]);
    s.handle(msg(C2, Message::Keepalive));
    assert_eq!(s.established_conn(), Some(C2));
    assert_eq!(s.state(), State::Established);
}

#[test]
fn a_connection_colliding_with_an_established_one_is_closed() {
    let mut s = established(90);
    let a = s.handle(Event::TcpConnected {
        conn: C2,
        direction: Direction::Incoming,
    });
    assert_eq!(a, vec![Action::Close { conn: C2 }]);
    assert_eq!(s.established_conn(), Some(C1));
}

#[test]
fn idle_refuses_connections_and_active_mode_refuses_incoming() {
    let mut s = Session::new(config(), 1);
    let a = s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Incoming,
    });
    assert_eq!(a, vec![Action::Close { conn: C1 }]);
    let mut c = config();
    c.mode = ConnectMode::Active;
    let mut s = Session::new(c, 1);
    s.handle(Event::ManualStart);
    let a = s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Incoming,
    });
    assert!(closed(&a, C1));
    assert!(sent(&a, C1).is_empty());
}

fn open_error(mut config: SessionConfig, open: Open) -> Notification {
    config.router_id = LOCAL_ID;
    let mut s = Session::new(config, 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    let a = s.handle(msg(C1, Message::Open(open)));
    assert!(closed(&a, C1));
    assert_eq!(s.state(), State::Idle);
    notification(&a, C1).expect("OPEN error NOTIFICATION")
}

#[test]
fn open_error_bad_peer_as() {
    let n = open_error(
        config(),
        Open::new(65099, 90, Ipv4Addr::new(10, 0, 0, 9), vec![]),
    );
    assert_eq!(n.code, ErrorCode::Open(OpenSubcode::BadPeerAs));
}

#[test]
fn open_from_any_as_is_accepted_when_configured() {
    let mut c = config();
    c.peer_as = PeerAs::Any;
    let mut s = Session::new(c, 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    s.handle(msg(
        C1,
        Message::Open(Open::new(65099, 90, Ipv4Addr::new(10, 0, 0, 9), vec![])),
    ));
    assert_eq!(s.state(), State::OpenConfirm);
}

#[test]
fn open_error_bad_bgp_identifier_zero_and_ours() {
    let n = open_error(config(), peer_open([0, 0, 0, 0], 90));
    assert_eq!(n.code, ErrorCode::Open(OpenSubcode::BadBgpIdentifier));
    let n = open_error(config(), peer_open(LOCAL_ID.octets(), 90));
    assert_eq!(n.code, ErrorCode::Open(OpenSubcode::BadBgpIdentifier));
}

#[test]
fn open_error_unacceptable_hold_time() {
    for hold in [1, 2] {
        let n = open_error(config(), peer_open([10, 0, 0, 9], hold));
        assert_eq!(n.code, ErrorCode::Open(OpenSubcode::UnacceptableHoldTime));
    }
}

#[test]
fn open_error_unsupported_optional_parameter() {
    let mut open = peer_open([10, 0, 0, 9], 90);
    open.params.push(OptionalParam::Unknown {
        param_type: 3,
        data: vec![1, 2],
    });
    let n = open_error(config(), open);
    assert_eq!(
        n.code,
        ErrorCode::Open(OpenSubcode::UnsupportedOptionalParameter)
    );
}

#[test]
fn open_error_unsupported_capability() {
    let open = Open::new(
        65000,
        90,
        Ipv4Addr::new(10, 0, 0, 9),
        vec![Capability::Multiprotocol(Family::new(25, 70))],
    );
    let n = open_error(config(), open);
    assert_eq!(n.code, ErrorCode::Open(OpenSubcode::UnsupportedCapability));
}

#[test]
fn open_error_unsupported_version_comes_from_the_codec() {
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    let a = s.handle(Event::DecodeError {
        conn: C1,
        error: DecodeError::UnsupportedVersionNumber { version: 3 },
    });
    let n = notification(&a, C1).expect("notification");
    assert_eq!(
        n.code,
        ErrorCode::Open(OpenSubcode::UnsupportedVersionNumber)
    );
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn manual_stop_sends_administrative_shutdown_with_message_and_stays_idle() {
    let mut s = established(90);
    let a = s.handle(Event::ManualStop {
        hard: true,
        message: "maintenance".into(),
    });
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
fn hard_stop_with_the_n_bit_negotiated_wraps_the_cease_in_a_hard_reset() {
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    let mut open = peer_open([10, 0, 0, 9], 90);
    if let Some(OptionalParam::Capabilities(caps)) = open.params.first_mut() {
        caps.push(Capability::GracefulRestart(bgp::wire::GracefulRestart {
            flags: bgp::wire::GracefulRestart::NOTIFICATION,
            restart_time: 120,
            families: vec![],
        }));
    }
    s.handle(msg(C1, Message::Open(open)));
    s.handle(msg(C1, Message::Keepalive));
    let a = s.handle(Event::ManualStop {
        message: "bye".into(),
        hard: true,
    });
    let n = notification(&a, C1).expect("notification");
    assert_eq!(n.code, ErrorCode::Cease(CeaseSubcode::HardReset));
    assert_eq!(n.data, [&[6u8, 2, 3][..], b"bye"].concat());
}

#[test]
fn max_prefix_ends_the_session_and_retries_after_the_configured_idle_time() {
    let mut c = config();
    c.max_prefix = Some(MaxPrefix {
        limit: 2,
        restart_after: Some(Duration::from_secs(300)),
    });
    let mut s = Session::new(c, 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    s.handle(msg(C1, Message::Open(peer_open([10, 0, 0, 9], 90))));
    s.handle(msg(C1, Message::Keepalive));
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
fn route_refresh_asks_for_the_adj_rib_out_again() {
    let mut s = established(90);
    let a = s.handle(msg(
        C1,
        Message::RouteRefresh(RouteRefresh::request(Family::IPV4_UNICAST)),
    ));
    assert!(a.contains(&Action::RouteRefresh {
        family: Family::IPV4_UNICAST,
        enhanced: false
    }));
    let borr = RouteRefresh {
        family: Family::IPV4_UNICAST,
        subtype: RouteRefreshSubtype::BORR,
    };
    let a = s.handle(msg(C1, Message::RouteRefresh(borr)));
    assert!(!a.iter().any(|a| matches!(a, Action::RouteRefresh { .. })));
}

#[test]
fn manual_stop_in_connect_cancels_the_attempt_and_in_open_sent_ceases() {
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    let a = s.handle(Event::ManualStop {
        message: String::new(),
        hard: false,
    });
    assert!(a.contains(&Action::CancelConnect));
    assert!(a.contains(&Action::StopTimer(Timer::ConnectRetry)));
    assert_eq!(s.state(), State::Idle);

    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    let a = s.handle(Event::ManualStop {
        message: String::new(),
        hard: false,
    });
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
fn hold_timer_in_open_sent_and_open_confirm_expires_to_idle() {
    for confirm in [false, true] {
        let mut s = Session::new(config(), 1);
        s.handle(Event::ManualStart);
        s.handle(Event::TcpConnected {
            conn: C1,
            direction: Direction::Outgoing,
        });
        if confirm {
            s.handle(msg(C1, Message::Open(peer_open([10, 0, 0, 9], 90))));
        }
        let a = s.handle(Event::TimerExpired(Timer::Hold(C1)));
        assert_eq!(
            notification(&a, C1).map(|n| n.code),
            Some(ErrorCode::HoldTimerExpired)
        );
        assert_eq!(s.state(), State::Idle);
        assert_eq!(s.flaps(), 0);
    }
}

#[test]
fn keepalive_timer_in_open_confirm_sends_a_keepalive() {
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    s.handle(msg(C1, Message::Open(peer_open([10, 0, 0, 9], 90))));
    let a = s.handle(Event::TimerExpired(Timer::Keepalive(C1)));
    assert_eq!(sent(&a, C1), vec![Message::Keepalive]);
    assert_eq!(s.state(), State::OpenConfirm);
}

#[test]
fn tcp_failure_in_open_sent_goes_idle_and_restarts_later() {
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Incoming,
    });
    let a = s.handle(Event::TcpClosed { conn: C1 });
    assert_eq!(s.state(), State::Idle);
    assert!(timer(&a, Timer::IdleHold).is_some());
    let a = s.handle(Event::TimerExpired(Timer::IdleHold));
    assert!(a.contains(&Action::Connect));
}

#[test]
fn events_for_unknown_connections_are_ignored() {
    let mut s = established(90);
    assert!(s.handle(Event::TcpClosed { conn: C2 }).is_empty());
    assert!(s.handle(msg(C2, Message::Keepalive)).is_empty());
    assert!(s.handle(Event::TimerExpired(Timer::Hold(C2))).is_empty());
    assert_eq!(s.state(), State::Established);
}

#[test]
fn the_peer_connecting_during_idle_hold_restarts_the_session() {
    let mut s = established(90);
    s.handle(Event::TcpClosed { conn: C1 });
    assert_eq!(s.state(), State::Idle);
    let a = s.handle(Event::TcpConnected {
        conn: C2,
        direction: Direction::Incoming,
    });
    assert!(matches!(sent(&a, C2).as_slice(), [Message::Open(_)]));
    assert!(a.contains(&Action::StopTimer(Timer::IdleHold)));
    assert_eq!(s.state(), State::OpenSent);
    // A late result of a cancelled dial is still refused in Idle.
    let mut s = established(90);
    s.handle(Event::TcpClosed { conn: C1 });
    let a = s.handle(Event::TcpConnected {
        conn: C2,
        direction: Direction::Outgoing,
    });
    assert_eq!(a, vec![Action::Close { conn: C2 }]);
}

#[test]
fn max_prefix_hold_down_refuses_the_peer_until_it_ends() {
    let mut c = config();
    c.max_prefix = Some(MaxPrefix {
        limit: 0,
        restart_after: Some(Duration::from_secs(60)),
    });
    let mut s = Session::new(c, 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    s.handle(msg(C1, Message::Open(peer_open([10, 0, 0, 9], 90))));
    s.handle(msg(C1, Message::Keepalive));
    let update = Update {
        nlri: vec![Nlri::new(Ipv4Prefix::host(Ipv4Addr::new(192, 0, 2, 1)))],
        ..Update::default()
    };
    s.handle(msg(C1, Message::Update(update)));
    assert_eq!(s.state(), State::Idle);
    let a = s.handle(Event::TcpConnected {
        conn: C2,
        direction: Direction::Incoming,
    });
    assert_eq!(a, vec![Action::Close { conn: C2 }]);
    let a = s.handle(Event::TimerExpired(Timer::IdleHold));
    assert!(a.contains(&Action::Connect));
}

/// A session Established on C1 whose peer advertised `gr` (None: no graceful restart).
fn established_with_peer_gr(gr: Option<u8>) -> Session {
    let mut s = Session::new(config(), 1);
    s.handle(Event::ManualStart);
    s.handle(Event::TcpConnected {
        conn: C1,
        direction: Direction::Outgoing,
    });
    let mut open = peer_open([10, 0, 0, 9], 90);
    if let (Some(flags), Some(OptionalParam::Capabilities(caps))) = (gr, open.params.first_mut()) {
        caps.push(Capability::GracefulRestart(bgp::wire::GracefulRestart {
            flags,
            restart_time: 120,
            families: vec![],
        }));
    }
    s.handle(msg(C1, Message::Open(open)));
    s.handle(msg(C1, Message::Keepalive));
    assert_eq!(s.state(), State::Established);
    s
}

#[test]
fn a_restart_close_without_the_peers_n_bit_sends_no_notification() {
    // RFC 4724 §4: a helper keeps the routes only when the session ends without a
    // NOTIFICATION; without RFC 8538's N-bit (BIRD 2.0), a Cease makes it drop them.
    let mut s = established_with_peer_gr(Some(0));
    let a = s.handle(Event::ManualStop {
        message: "restarting".into(),
        hard: false,
    });
    assert_eq!(notification(&a, C1), None, "{a:?}");
    assert!(closed(&a, C1));
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn a_restart_close_with_the_n_bit_or_without_graceful_restart_sends_a_cease() {
    for gr in [Some(bgp::wire::GracefulRestart::NOTIFICATION), None] {
        let mut s = established_with_peer_gr(gr);
        let a = s.handle(Event::ManualStop {
            message: "restarting".into(),
            hard: false,
        });
        let n = notification(&a, C1).expect("cease");
        assert_eq!(
            n.code,
            ErrorCode::Cease(CeaseSubcode::AdministrativeShutdown),
            "{gr:?}"
        );
        assert!(closed(&a, C1));
    }
}
