//! What the session does with what arrives outside the handshake: route refresh, a
//! NOTIFICATION in each state, unexpected messages (RFC 6608 FSM errors), decode errors,
//! events for connections it does not know; and why a connection that never reached
//! Established failed.

use std::net::Ipv4Addr;

use bgp::session::{Action, DownReason, Event, State, Timer};
use bgp::wire::{
    Capability, CeaseSubcode, DecodeError, ErrorCode, Family, FsmSubcode, Message, Notification,
    Open, OpenSubcode, RouteRefresh, RouteRefreshSubtype,
};

use crate::common::session::{
    C1, C2, PEER_ID, closed, established, failures, manual_stop, msg, notification, open_confirm,
    open_sent, peer_open,
};

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
fn notification_received_in_open_sent_open_confirm_and_established_goes_idle() {
    let cease = Notification::new(ErrorCode::Cease(CeaseSubcode::AdministrativeReset), vec![]);
    for stage in 0..3 {
        let mut s = open_sent();
        if stage >= 1 {
            s.handle(msg(C1, Message::Open(peer_open(PEER_ID, 90))));
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

#[test]
fn unexpected_messages_get_rfc6608_fsm_errors() {
    let mut s = open_sent();
    let a = s.handle(msg(C1, Message::Keepalive));
    assert_eq!(
        notification(&a, C1).map(|n| n.code),
        Some(ErrorCode::Fsm(FsmSubcode::UnexpectedMessageInOpenSent))
    );

    let mut s = open_confirm(90);
    let a = s.handle(msg(C1, Message::Open(peer_open(PEER_ID, 90))));
    assert_eq!(
        notification(&a, C1).map(|n| n.code),
        Some(ErrorCode::Fsm(FsmSubcode::UnexpectedMessageInOpenConfirm))
    );

    let mut s = established(90);
    let a = s.handle(msg(C1, Message::Open(peer_open(PEER_ID, 90))));
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
fn events_for_unknown_connections_are_ignored() {
    let mut s = established(90);
    assert!(s.handle(Event::TcpClosed { conn: C2 }).is_empty());
    assert!(s.handle(msg(C2, Message::Keepalive)).is_empty());
    assert!(s.handle(Event::TimerExpired(Timer::Hold(C2))).is_empty());
    assert_eq!(s.state(), State::Established);
}

#[test]
fn a_connection_that_fails_before_established_says_why_once() {
    let cease = Notification::new(ErrorCode::Cease(CeaseSubcode::ConnectionRejected), vec![]);
    let mut s = open_sent();
    let a = s.handle(msg(C1, Message::Notification(cease.clone())));
    assert_eq!(
        failures(&a),
        vec![(C1, State::OpenSent, DownReason::Received(cease))]
    );
    // An OPEN we refuse, in OpenSent.
    let mut s = open_sent();
    let wrong_as = Open::new(
        65002,
        90,
        Ipv4Addr::from(PEER_ID),
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
    let mut s = open_confirm(90);
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
    let mut s = open_sent();
    let a = s.handle(manual_stop("", false));
    assert!(failures(&a).is_empty(), "{a:?}");
}
