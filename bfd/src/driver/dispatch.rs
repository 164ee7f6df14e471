//! Demultiplexing of received datagrams to sessions (RFC 5880 §6.3, §6.8.6): validate,
//! enforce the single-hop TTL rule (RFC 5881 §5), then find the session by Your
//! Discriminator or, while that is zero, by the sender's address. Whatever fails is
//! counted and dropped, never acted on.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::packet::{ControlPacket, PacketError};

/// Single-hop (RFC 5881) or multihop (RFC 5883).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hop {
    /// Directly connected: UDP 3784, TTL / hop limit 255 sent and required.
    Single,
    /// Across routers: UDP 4784, TTL 255 sent, any received.
    Multi,
}

impl Hop {
    /// The destination UDP port (RFC 5881 §4, RFC 5883 §5).
    pub fn port(self) -> u16 {
        match self {
            Hop::Single => 3784,
            Hop::Multi => 4784,
        }
    }
}

/// Datagrams dropped before reaching a session, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// Shorter than a Control packet.
    pub truncated: u64,
    /// Version other than 1.
    pub version: u64,
    /// Length field too small or larger than the datagram.
    pub length: u64,
    /// Detect Mult 0.
    pub detect_mult_zero: u64,
    /// Multipoint bit set.
    pub multipoint: u64,
    /// My Discriminator 0.
    pub my_discriminator_zero: u64,
    /// Your Discriminator 0 outside Down / AdminDown.
    pub your_discriminator_zero: u64,
    /// Authentication present though none is configured.
    pub authentication: u64,
    /// Single-hop packet with a TTL / hop limit other than 255 (or none reported).
    pub ttl: u64,
    /// No session has this Your Discriminator, or none for this sender.
    pub no_session: u64,
    /// The session's queue was full (it is not keeping up).
    pub backlog: u64,
}

impl DropCounters {
    /// Malformed packets (every reason except TTL, unknown session and backlog).
    pub fn malformed(&self) -> u64 {
        self.truncated
            + self.version
            + self.length
            + self.detect_mult_zero
            + self.multipoint
            + self.my_discriminator_zero
            + self.your_discriminator_zero
            + self.authentication
    }

    /// Every drop.
    pub fn total(&self) -> u64 {
        self.malformed() + self.ttl + self.no_session + self.backlog
    }
}

#[derive(Debug, Default)]
struct AtomicDrops([AtomicU64; 11]);

const TRUNCATED: usize = 0;
const VERSION: usize = 1;
const LENGTH: usize = 2;
const DETECT_MULT: usize = 3;
const MULTIPOINT: usize = 4;
const MY_DISC: usize = 5;
const YOUR_DISC: usize = 6;
const AUTH: usize = 7;
const TTL: usize = 8;
const NO_SESSION: usize = 9;
const BACKLOG: usize = 10;

impl AtomicDrops {
    fn bump(&self, which: usize) {
        self.0[which].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> DropCounters {
        let get = |i: usize| self.0[i].load(Ordering::Relaxed);
        DropCounters {
            truncated: get(TRUNCATED),
            version: get(VERSION),
            length: get(LENGTH),
            detect_mult_zero: get(DETECT_MULT),
            multipoint: get(MULTIPOINT),
            my_discriminator_zero: get(MY_DISC),
            your_discriminator_zero: get(YOUR_DISC),
            authentication: get(AUTH),
            ttl: get(TTL),
            no_session: get(NO_SESSION),
            backlog: get(BACKLOG),
        }
    }
}

fn reason(error: PacketError) -> usize {
    match error {
        PacketError::Truncated(_) => TRUNCATED,
        PacketError::Version(_) => VERSION,
        PacketError::Length { .. } => LENGTH,
        PacketError::DetectMultZero => DETECT_MULT,
        PacketError::Multipoint => MULTIPOINT,
        PacketError::MyDiscriminatorZero => MY_DISC,
        PacketError::YourDiscriminatorZero(_) => YOUR_DISC,
        PacketError::Authentication => AUTH,
    }
}

struct Route {
    peer: IpAddr,
    hop: Hop,
    inbox: mpsc::Sender<ControlPacket>,
}

#[derive(Default)]
struct Table {
    by_discriminator: HashMap<u32, Route>,
    by_peer: HashMap<(IpAddr, Hop), u32>,
}

/// The demultiplexer shared by the receive paths and the sessions of one [`super::Bfd`].
#[derive(Default)]
pub(crate) struct Dispatcher {
    table: RwLock<Table>,
    drops: AtomicDrops,
}

impl Dispatcher {
    /// Registers a session and returns its new local discriminator (random, non-zero,
    /// unused), or `None` if `(peer, hop)` already has one.
    pub(crate) fn register(
        &self,
        peer: IpAddr,
        hop: Hop,
        inbox: mpsc::Sender<ControlPacket>,
    ) -> Option<u32> {
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        if table.by_peer.contains_key(&(peer, hop)) {
            return None;
        }
        let discriminator = loop {
            let candidate: u32 = rand::random();
            if candidate != 0 && !table.by_discriminator.contains_key(&candidate) {
                break candidate;
            }
        };
        table.by_peer.insert((peer, hop), discriminator);
        table
            .by_discriminator
            .insert(discriminator, Route { peer, hop, inbox });
        Some(discriminator)
    }

    /// Forgets the session of `(peer, hop)`.
    pub(crate) fn unregister(&self, peer: IpAddr, hop: Hop) {
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        if let Some(discriminator) = table.by_peer.remove(&(peer, hop)) {
            table.by_discriminator.remove(&discriminator);
        }
    }

    /// Handles one received datagram from `source` on the `hop` port, with the TTL / hop
    /// limit the kernel reported.
    pub(crate) fn deliver(&self, datagram: &[u8], source: IpAddr, ttl: Option<u8>, hop: Hop) {
        if hop == Hop::Single && ttl != Some(255) {
            // RFC 5881 §5 (GTSM): anything else may come from off-link.
            self.drops.bump(TTL);
            return;
        }
        let packet = match ControlPacket::decode(datagram) {
            Ok(packet) => packet,
            Err(error) => {
                tracing::debug!(%source, %error, "BFD packet dropped");
                self.drops.bump(reason(error));
                return;
            }
        };
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        let discriminator = if packet.your_discriminator != 0 {
            Some(packet.your_discriminator)
        } else {
            table.by_peer.get(&(source, hop)).copied()
        };
        let Some(route) = discriminator.and_then(|d| table.by_discriminator.get(&d)) else {
            self.drops.bump(NO_SESSION);
            return;
        };
        if route.peer != source || route.hop != hop {
            // A discriminator we gave to another peer: not this sender's session.
            self.drops.bump(NO_SESSION);
            return;
        }
        if route.inbox.try_send(packet).is_err() {
            self.drops.bump(BACKLOG);
        }
    }

    /// The drop counters so far.
    pub(crate) fn drops(&self) -> DropCounters {
        self.drops.snapshot()
    }
}
