//! Connection collisions (RFC 4271 §6.8): the higher BGP identifier's connection wins,
//! and a connection arriving while one is Established is closed.

use std::net::Ipv4Addr;

use bgp::session::{Action, Session, State};
use bgp::wire::{CeaseSubcode, ErrorCode, Message};

use crate::common::session::{
    C1, C2, PEER_ID, closed, config, established, incoming, msg, notification, open_sent_with,
    peer_open, sent,
};

/// Both connections reach OpenSent; C1 gets its OPEN first (OpenConfirm), then C2 does.
fn collide(local_id: Ipv4Addr, peer_id: [u8; 4]) -> (Session, Vec<Action>) {
    let mut c = config();
    c.router_id = local_id;
    let mut s = open_sent_with(c);
    s.handle(incoming(C2));
    s.handle(msg(C1, Message::Open(peer_open(peer_id, 90))));
    let a = s.handle(msg(C2, Message::Open(peer_open(peer_id, 90))));
    (s, a)
}

#[test]
fn collision_with_higher_local_id_keeps_our_connection() {
    let (mut s, a) = collide(Ipv4Addr::new(10, 0, 0, 200), PEER_ID);
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
    let (mut s, a) = collide(Ipv4Addr::new(10, 0, 0, 1), PEER_ID);
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
    let a = s.handle(incoming(C2));
    assert_eq!(a, vec![Action::Close { conn: C2 }]);
    assert_eq!(s.established_conn(), Some(C1));
}
