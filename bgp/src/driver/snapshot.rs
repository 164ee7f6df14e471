//! What can be observed about a peer: a snapshot of its session (state, uptime, flaps,
//! errors, negotiated values, message and prefix counters) and the state changes
//! broadcast as they happen.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

use crate::rib::adj_in::NlriCounts;
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
    /// Paths the peer has at us now, per family, when the session tracks them (a
    /// max-prefix limit or `keep_received`); `None` when it keeps nothing per path and so
    /// does not know (`bgp::rib::Tracking::Counters`, the default).
    pub prefixes_received: Option<Vec<(Family, u64)>>,
    /// NLRI the peer announced and withdrawn, per family, counted in every mode;
    /// monotonic for the life of the session configuration (reset only by a change that
    /// needs a new session, or an operator's reset).
    pub nlri_received: Vec<(Family, NlriCounts)>,
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
            prefixes_received: None,
            nlri_received: Vec::new(),
        }
    }

    /// Paths the peer has at us now, all families; `None` when not tracked.
    pub fn prefixes_received_total(&self) -> Option<u64> {
        self.prefixes_received
            .as_ref()
            .map(|v| v.iter().map(|(_, n)| n).sum())
    }

    /// NLRI received, all families.
    pub fn nlri_received_total(&self) -> NlriCounts {
        self.nlri_received
            .iter()
            .fold(NlriCounts::default(), |sum, (_, c)| sum.plus(*c))
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
