//! The session's timers: the hold timer restarted by traffic and expiring in every state
//! that has one, the keepalive timer, and the send hold timer (RFC 9687).

use std::time::Duration;

use bgp::session::{Action, DownReason, Event, State, Timer};
use bgp::wire::{ErrorCode, Family, Message, Update};

use crate::common::session::{
    C1, C2, PEER_ID, closed, established, msg, notification, open_confirm, open_sent, outgoing,
    peer_open, sent, timer,
};

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
    s.handle(outgoing(C2));
    let a = s.handle(Event::TcpClosed { conn: C2 });
    assert_eq!(timer(&a, Timer::IdleHold), Some(Duration::from_secs(2)));
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn hold_timer_in_open_sent_and_open_confirm_expires_to_idle() {
    for confirm in [false, true] {
        let mut s = open_sent();
        if confirm {
            s.handle(msg(C1, Message::Open(peer_open(PEER_ID, 90))));
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
    let mut s = open_confirm(90);
    let a = s.handle(Event::TimerExpired(Timer::Keepalive(C1)));
    assert_eq!(sent(&a, C1), vec![Message::Keepalive]);
    assert_eq!(s.state(), State::OpenConfirm);
}

#[test]
fn send_hold_timer_expiry_notifies_with_code_8() {
    let mut s = established(90);
    let a = s.handle(Event::SendHoldTimerExpired { conn: C1 });
    assert_eq!(notification(&a, C1).map(|n| n.code.to_wire()), Some((8, 0)));
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn a_new_keepalive_interval_reaches_the_running_session_without_a_new_one() {
    let mut s = established(90);
    let mut faster = s.config().clone();
    faster.keepalive = Some(5);
    faster.connect_retry = Duration::from_secs(3);
    let a = s.handle(Event::Retime(Box::new(faster.clone())));
    let rearmed = timer(&a, Timer::Keepalive(C1)).expect("the keepalive timer is re-armed");
    assert!(
        rearmed <= Duration::from_secs(5) && rearmed >= Duration::from_secs(3),
        "{rearmed:?}"
    );
    assert!(sent(&a, C1).is_empty() && !closed(&a, C1), "{a:?}");
    assert_eq!((s.state(), s.flaps()), (State::Established, 0));
    assert_eq!(s.config(), &faster);
    // The hold time is in the OPEN: such a change is not pacing, and is refused untouched.
    let mut longer = faster.clone();
    longer.hold_time = 30;
    let a = s.handle(Event::Retime(Box::new(longer)));
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(s.config(), &faster);
}
