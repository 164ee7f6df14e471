//! The OPEN exchange that succeeds: the KEEPALIVE answer, the negotiated hold time (zero:
//! no hold timer, no KEEPALIVEs), the capabilities negotiated on Established, and a peer
//! of any AS when so configured.

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp::session::{Action, PeerAs, State, Timer};
use bgp::wire::{Family, Message, Open};

use crate::common::session::{
    C1, PEER_ID, config, msg, open_confirm, open_sent, open_sent_with, peer_open, sent, timer,
};

#[test]
fn open_received_sends_keepalive_and_negotiates_hold_time() {
    let mut s = open_sent();
    let a = s.handle(msg(C1, Message::Open(peer_open(PEER_ID, 30))));
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
    let mut s = open_confirm(90);
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
    let mut s = open_sent();
    let a = s.handle(msg(C1, Message::Open(peer_open(PEER_ID, 0))));
    assert!(a.contains(&Action::StopTimer(Timer::Hold(C1))));
    assert_eq!(timer(&a, Timer::Keepalive(C1)), None);
    assert_eq!(timer(&a, Timer::Hold(C1)), None);
}

#[test]
fn open_from_any_as_is_accepted_when_configured() {
    let mut c = config();
    c.peer_as = PeerAs::Any;
    let mut s = open_sent_with(c);
    s.handle(msg(
        C1,
        Message::Open(Open::new(65099, 90, Ipv4Addr::from(PEER_ID), vec![])),
    ));
    assert_eq!(s.state(), State::OpenConfirm);
}
