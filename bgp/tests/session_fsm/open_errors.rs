//! OPENs the session refuses (RFC 4271 §6.2): each OPEN Message Error subcode sent, the
//! connection closed and the session Idle.

use std::net::Ipv4Addr;

use bgp::session::{Event, SessionConfig, State};
use bgp::wire::{
    Capability, DecodeError, ErrorCode, Family, Message, Notification, Open, OpenSubcode,
    OptionalParam,
};

use crate::common::session::{
    C1, LOCAL_ID, PEER_ID, closed, config, msg, notification, open_sent, open_sent_with, peer_open,
};

fn open_error(mut config: SessionConfig, open: Open) -> Notification {
    config.router_id = LOCAL_ID;
    let mut s = open_sent_with(config);
    let a = s.handle(msg(C1, Message::Open(open)));
    assert!(closed(&a, C1));
    assert_eq!(s.state(), State::Idle);
    notification(&a, C1).expect("OPEN error NOTIFICATION")
}

#[test]
fn open_error_bad_peer_as() {
    let n = open_error(
        config(),
        Open::new(65099, 90, Ipv4Addr::from(PEER_ID), vec![]),
    );
    assert_eq!(n.code, ErrorCode::Open(OpenSubcode::BadPeerAs));
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
        let n = open_error(config(), peer_open(PEER_ID, hold));
        assert_eq!(n.code, ErrorCode::Open(OpenSubcode::UnacceptableHoldTime));
    }
}

#[test]
fn open_error_unsupported_optional_parameter() {
    let mut open = peer_open(PEER_ID, 90);
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
        Ipv4Addr::from(PEER_ID),
        vec![Capability::Multiprotocol(Family::new(25, 70))],
    );
    let n = open_error(config(), open);
    assert_eq!(n.code, ErrorCode::Open(OpenSubcode::UnsupportedCapability));
}

#[test]
fn open_error_unsupported_version_comes_from_the_codec() {
    let mut s = open_sent();
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
