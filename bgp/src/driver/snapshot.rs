//! What can be observed about a peer: a snapshot of its session (state, uptime, flaps,
//! errors, negotiated values, message and prefix counters) and the state changes
//! broadcast as they happen.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

use crate::session::{Negotiated, State};
use crate::wire::{Family, Message, Notification};

/// Messages per type, in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageCounts {
    /// OPEN.
    pub open: u64,
    /// UPDATE.
    pub update: u64,
    /// NOTIFICATION.
    pub notification: u64,
    /// KEEPALIVE.
    pub keepalive: u64,
    /// ROUTE-REFRESH.
    pub route_refresh: u64,
}

impl MessageCounts {
    /// Counts one message.
    pub fn count(&mut self, message: &Message) {
        self.count_type(message.message_type(), 1);
    }

    /// Counts `n` messages of wire type `message_type`.
    pub fn count_type(&mut self, message_type: u8, n: u64) {
        use crate::wire::iana::message_type as mt;
        match message_type {
            mt::OPEN => self.open += n,
            mt::UPDATE => self.update += n,
            mt::NOTIFICATION => self.notification += n,
            mt::KEEPALIVE => self.keepalive += n,
            mt::ROUTE_REFRESH => self.route_refresh += n,
            _ => {}
        }
    }

    /// All messages.
    pub fn total(&self) -> u64 {
        self.open + self.update + self.notification + self.keepalive + self.route_refresh
    }
}

/// One peer, as seen at one instant.
#[derive(Clone, Debug)]
pub struct PeerSnapshot {
    /// The peer's address.
    pub address: IpAddr,
    /// Configured description.
    pub description: String,
    /// Session state.
    pub state: State,
    /// Time since the session became Established (when it is).
    pub uptime: Option<Duration>,
    /// Times the session left Established.
    pub flaps: u64,
    /// The last NOTIFICATION we sent.
    pub last_error_sent: Option<Notification>,
    /// The last NOTIFICATION the peer sent.
    pub last_error_received: Option<Notification>,
    /// What was negotiated (hold time, families, capabilities), when Established.
    pub negotiated: Option<Negotiated>,
    /// Our end of the established connection.
    pub local_address: Option<SocketAddr>,
    /// Messages we sent, per type.
    pub sent: MessageCounts,
    /// Messages we received, per type.
    pub received: MessageCounts,
    /// Prefixes the peer has from us.
    pub prefixes_advertised: usize,
    /// Prefixes received from the peer, per family.
    pub prefixes_received: Vec<(Family, u64)>,
}

impl PeerSnapshot {
    /// An Idle peer with nothing counted.
    pub fn new(address: IpAddr, description: String) -> Self {
        Self {
            address,
            description,
            state: State::Idle,
            uptime: None,
            flaps: 0,
            last_error_sent: None,
            last_error_received: None,
            negotiated: None,
            local_address: None,
            sent: MessageCounts::default(),
            received: MessageCounts::default(),
            prefixes_advertised: 0,
            prefixes_received: Vec::new(),
        }
    }

    /// Prefixes received in all families.
    pub fn prefixes_received_total(&self) -> u64 {
        self.prefixes_received.iter().map(|(_, n)| n).sum()
    }
}

/// A session state change, broadcast to subscribers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChange {
    /// The peer.
    pub address: IpAddr,
    /// Old state.
    pub from: State,
    /// New state.
    pub to: State,
    /// When (tokio clock).
    pub at: Instant,
}
