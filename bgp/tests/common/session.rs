//! The sans-IO session under test: our configuration, the peer's OPEN, sessions brought to
//! a given state by scripted events, and readers of the actions a session returns. It must
//! not know the driver: nothing here runs a socket or a clock.

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp::session::{
    Action, ConnId, Direction, DownReason, Event, MaxPrefix, PeerAs, Session, SessionConfig, State,
    Timer,
};
use bgp::wire::{Capability, Family, GracefulRestart, Message, Notification, Open, OptionalParam};

/// Our BGP identifier (AS 65001).
pub(crate) const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
/// The peer's BGP identifier in [`peer_open`] unless a test says otherwise.
pub(crate) const PEER_ID: [u8; 4] = [10, 0, 0, 9];
/// The first connection (outgoing in the helpers below).
pub(crate) const C1: ConnId = ConnId(1);
/// A second connection to the same peer.
pub(crate) const C2: ConnId = ConnId(2);

/// Our session: AS 65001, identifier [`LOCAL_ID`], with a peer that must be AS 65000.
pub(crate) fn config() -> SessionConfig {
    SessionConfig::new(65001, PeerAs::Exact(65000), LOCAL_ID)
}

/// [`config`] with a maximum-prefix limit of `limit` paths, restarting `restart_after` the
/// Cease (`None`: never on its own).
pub(crate) fn config_with_max_prefix(limit: u64, restart_after: Option<Duration>) -> SessionConfig {
    let mut c = config();
    c.max_prefix = Some(MaxPrefix {
        limit,
        restart_after,
    });
    c
}

/// The peer's OPEN: AS 65000, identifier `id`, hold time `hold`, IPv4 unicast, four-octet
/// AS numbers and route refresh.
pub(crate) fn peer_open(id: [u8; 4], hold: u16) -> Open {
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

/// [`peer_open`] from [`PEER_ID`] that also advertises graceful restart with `flags`
/// (restart time 120 s, no families).
pub(crate) fn peer_open_with_graceful_restart(flags: u8) -> Open {
    let mut open = peer_open(PEER_ID, 90);
    if let Some(OptionalParam::Capabilities(caps)) = open.params.first_mut() {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            flags,
            restart_time: 120,
            families: vec![],
        }));
    }
    open
}

/// The event of `message` arriving on `conn`.
pub(crate) fn msg(conn: ConnId, message: Message) -> Event {
    Event::Message { conn, message }
}

/// The event of connection `conn` coming up, dialled by the peer.
pub(crate) fn incoming(conn: ConnId) -> Event {
    Event::TcpConnected {
        conn,
        direction: Direction::Incoming,
    }
}

/// The event of connection `conn` coming up, dialled by us.
pub(crate) fn outgoing(conn: ConnId) -> Event {
    Event::TcpConnected {
        conn,
        direction: Direction::Outgoing,
    }
}

/// The event of a manual stop saying `message`; `hard` asks for RFC 8538's Hard Reset.
pub(crate) fn manual_stop(message: &str, hard: bool) -> Event {
    Event::ManualStop {
        message: message.into(),
        hard,
    }
}

/// A session with `config`, started, whose outgoing connection C1 is up: OpenSent, our
/// OPEN sent.
pub(crate) fn open_sent_with(config: SessionConfig) -> Session {
    let mut s = Session::new(config, 1);
    s.handle(Event::ManualStart);
    s.handle(outgoing(C1));
    s
}

/// [`open_sent_with`] our usual [`config`].
pub(crate) fn open_sent() -> Session {
    open_sent_with(config())
}

/// A session in OpenConfirm on C1: the peer's [`peer_open`] from [`PEER_ID`] with hold
/// time `hold` accepted.
pub(crate) fn open_confirm(hold: u16) -> Session {
    let mut s = open_sent();
    s.handle(msg(C1, Message::Open(peer_open(PEER_ID, hold))));
    s
}

/// A session with `config` brought to Established on C1 (outgoing) by the peer's `open`
/// and a KEEPALIVE; asserts that it got there.
pub(crate) fn established_with(config: SessionConfig, open: Open) -> Session {
    let mut s = open_sent_with(config);
    s.handle(msg(C1, Message::Open(open)));
    let a = s.handle(msg(C1, Message::Keepalive));
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::Established { conn: C1, .. })),
        "{a:?}"
    );
    assert_eq!(s.state(), State::Established);
    s
}

/// A session brought to Established on C1 (outgoing), peer hold time `hold`.
pub(crate) fn established(hold: u16) -> Session {
    established_with(config(), peer_open(PEER_ID, hold))
}

/// Messages sent on `conn` by these actions.
pub(crate) fn sent(actions: &[Action], conn: ConnId) -> Vec<Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { conn: c, message } if *c == conn => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// The first NOTIFICATION these actions send on `conn`.
pub(crate) fn notification(actions: &[Action], conn: ConnId) -> Option<Notification> {
    sent(actions, conn).into_iter().find_map(|m| {
        if let Message::Notification(n) = m {
            Some(n)
        } else {
            None
        }
    })
}

/// The duration the last start of timer `which` in these actions asks for.
pub(crate) fn timer(actions: &[Action], which: Timer) -> Option<Duration> {
    actions.iter().rev().find_map(|a| match a {
        Action::StartTimer { timer, after } if *timer == which => Some(*after),
        _ => None,
    })
}

/// Whether these actions close `conn`.
pub(crate) fn closed(actions: &[Action], conn: ConnId) -> bool {
    actions.contains(&Action::Close { conn })
}

/// The `Failed` actions of these actions: (connection, state reached, reason).
pub(crate) fn failures(actions: &[Action]) -> Vec<(ConnId, State, DownReason)> {
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
