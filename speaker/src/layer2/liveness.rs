//! Who among the layer-2 candidates is alive, from their heartbeats alone: the pure
//! bookkeeping (sans-IO, the clock is an argument) and the heartbeat datagram.
//!
//! **Why a purpose-built unicast heartbeat and not Berth's BFD.** BFD (`bfd/`) is a
//! per-pair session with a three-way handshake (Down → Init → Up) and sessions told apart
//! by address alone; what layer 2 needs is set membership with identity: *which node* is
//! alive and *whether it may answer* (its layer-2 link up, not stepping down). A BFD
//! Control packet has no room for either, a returning node would need a handshake round
//! before it counts, and the speaker's BFD service already owns UDP 3784 for the BGP
//! sessions (a router that is also a candidate would collide). A heartbeat here is one
//! datagram — node name, sequence, interval and an "eligible" flag — sent every interval
//! to every other member; a member is alive while its last heartbeat is younger than
//! `interval × multiplier` and said eligible. No handshake, no state per pair beyond the
//! time last heard; only datagrams from a member's own address count.
//!
//! Bounded split brain: a node that hears none of the other members (while there are
//! some) counts itself out too when it has no other evidence (`isolated_stops`), so a
//! partitioned owner stops answering within one detection time — the time the others
//! take to count it out and take over.
//!
//! Must not know about sockets, ARP/NDP, or Kubernetes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::owner::NodeName;

/// Heartbeat timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How often each member sends.
    pub interval: Duration,
    /// How many intervals without a heartbeat count a member out.
    pub multiplier: u32,
}

impl Timing {
    /// `interval × multiplier`.
    pub fn detection(&self) -> Duration {
        self.interval * self.multiplier.max(1)
    }
}

impl Default for Timing {
    /// 50 ms × 3: 150 ms to detect, well inside the 300 ms failover goal.
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(50),
            multiplier: 3,
        }
    }
}

/// One heartbeat, as on the wire.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |      'B'      |      'L'      |      '2'      |  version (1)  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  flags (E=1)  |  name length  |         interval (ms)         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     sequence (64 bits)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                  node name (UTF-8) ...                        |
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// The sender.
    pub node: NodeName,
    /// Increases by one per heartbeat sent.
    pub sequence: u64,
    /// The sender's interval, milliseconds.
    pub interval_ms: u16,
    /// The sender may answer for addresses (its layer-2 link is up, it is not stepping
    /// down).
    pub eligible: bool,
}

const MAGIC: [u8; 3] = *b"BL2";
const VERSION: u8 = 1;
const HEADER: usize = 16;
const ELIGIBLE: u8 = 0x01;

impl Heartbeat {
    /// The datagram (node names longer than 255 bytes are cut; Kubernetes allows 253).
    pub fn encode(&self) -> Vec<u8> {
        let name = &self.node.as_bytes()[..self.node.len().min(255)];
        let mut out = Vec::with_capacity(HEADER + name.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(if self.eligible { ELIGIBLE } else { 0 });
        out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.interval_ms.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(name);
        out
    }

    /// Reads a datagram; `None` for anything that is not a version-1 heartbeat.
    pub fn decode(datagram: &[u8]) -> Option<Heartbeat> {
        if datagram.len() < HEADER || datagram[..3] != MAGIC || datagram[3] != VERSION {
            return None;
        }
        let len = usize::from(datagram[5]);
        let name = datagram.get(HEADER..HEADER + len)?;
        Some(Heartbeat {
            node: std::str::from_utf8(name).ok()?.to_string(),
            sequence: u64::from_be_bytes(datagram[8..16].try_into().ok()?),
            interval_ms: u16::from_be_bytes([datagram[6], datagram[7]]),
            eligible: datagram[4] & ELIGIBLE != 0,
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct Heard {
    at: Instant,
    eligible: bool,
}

/// The live set as one node sees it.
#[derive(Clone, Debug)]
pub struct Liveness {
    me: NodeName,
    timing: Timing,
    members: BTreeSet<NodeName>,
    heard: BTreeMap<NodeName, Heard>,
    eligible: bool,
    isolated_stops: bool,
}

impl Liveness {
    /// `me`'s view, with no member heard yet. `isolated_stops`: whether this node counts
    /// itself out when it hears no other member (see the module docs).
    pub fn new(me: impl Into<NodeName>, timing: Timing, isolated_stops: bool) -> Self {
        Self {
            me: me.into(),
            timing,
            members: BTreeSet::new(),
            heard: BTreeMap::new(),
            eligible: true,
            isolated_stops,
        }
    }

    /// The timing.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Sets the members (from the cluster state); forgets what was heard from others.
    pub fn set_members(&mut self, members: BTreeSet<NodeName>) {
        self.heard.retain(|n, _| members.contains(n));
        self.members = members;
    }

    /// The members.
    pub fn members(&self) -> &BTreeSet<NodeName> {
        &self.members
    }

    /// Whether this node may answer: its layer-2 link is up and it is not stepping down.
    pub fn set_eligible(&mut self, eligible: bool) {
        self.eligible = eligible;
    }

    /// Whether this node says it may answer.
    pub fn eligible(&self) -> bool {
        self.eligible
    }

    /// When isolated, whether this node counts itself out (see the module docs); the
    /// daemon clears it while the API server is reachable (Kubernetes mode).
    pub fn set_isolated_stops(&mut self, stops: bool) {
        self.isolated_stops = stops;
    }

    /// A heartbeat arrived at `now`. Heartbeats of non-members and of this node are
    /// ignored; returns whether it counted.
    pub fn heard(&mut self, beat: &Heartbeat, now: Instant) -> bool {
        if beat.node == self.me || !self.members.contains(&beat.node) {
            return false;
        }
        self.heard.insert(
            beat.node.clone(),
            Heard {
                at: now,
                eligible: beat.eligible,
            },
        );
        true
    }

    /// The other members heard within the detection time (eligible or not).
    pub fn heard_from(&self, now: Instant) -> BTreeSet<NodeName> {
        let detection = self.timing.detection();
        self.heard
            .iter()
            .filter(|(_, h)| now.saturating_duration_since(h.at) <= detection)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Whether this node hears none of the other members while there are some.
    pub fn isolated(&self, now: Instant) -> bool {
        self.members.iter().any(|m| *m != self.me) && self.heard_from(now).is_empty()
    }

    /// The live set at `now`: the members heard within the detection time that said they
    /// are eligible, and this node when it is an eligible member and not isolated (or
    /// isolation does not stop it).
    pub fn live(&self, now: Instant) -> BTreeSet<NodeName> {
        let detection = self.timing.detection();
        let mut live: BTreeSet<NodeName> = self
            .heard
            .iter()
            .filter(|(_, h)| h.eligible && now.saturating_duration_since(h.at) <= detection)
            .map(|(n, _)| n.clone())
            .collect();
        let counts_itself = self.members.contains(&self.me)
            && self.eligible
            && !(self.isolated_stops && self.isolated(now));
        if counts_itself {
            live.insert(self.me.clone());
        }
        live
    }

    /// The next instant the live set can change without a heartbeat arriving: the
    /// earliest expiry of a member heard.
    pub fn next_expiry(&self, now: Instant) -> Option<Instant> {
        let detection = self.timing.detection();
        self.heard
            .values()
            .map(|h| h.at + detection)
            .filter(|t| *t > now)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(node: &str, eligible: bool) -> Heartbeat {
        Heartbeat {
            node: node.into(),
            sequence: 7,
            interval_ms: 50,
            eligible,
        }
    }

    fn set(names: &[&str]) -> BTreeSet<NodeName> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn heartbeat_round_trip_and_garbage() {
        let b = beat("node-1.example", true);
        assert_eq!(Heartbeat::decode(&b.encode()), Some(b.clone()));
        let off = beat("n", false);
        assert_eq!(Heartbeat::decode(&off.encode()), Some(off));
        assert_eq!(Heartbeat::decode(b"BL2"), None);
        let mut wrong = b.encode();
        wrong[3] = 2;
        assert_eq!(Heartbeat::decode(&wrong), None);
        let cut = b.encode();
        assert_eq!(Heartbeat::decode(&cut[..cut.len() - 1]), None);
    }

    #[test]
    fn members_expire_after_the_detection_time() {
        let t0 = Instant::now();
        let mut l = Liveness::new("a", Timing::default(), true);
        l.set_members(set(&["a", "b", "c"]));
        assert!(l.live(t0).is_empty(), "isolated at start: not even itself");
        assert!(l.heard(&beat("b", true), t0));
        assert!(!l.heard(&beat("x", true), t0), "not a member");
        assert_eq!(l.live(t0), set(&["a", "b"]));
        assert_eq!(l.next_expiry(t0), Some(t0 + Duration::from_millis(150)));
        let later = t0 + Duration::from_millis(151);
        assert!(l.isolated(later));
        assert!(l.live(later).is_empty(), "b expired, a is isolated");
        l.set_isolated_stops(false);
        assert_eq!(l.live(later), set(&["a"]));
    }

    #[test]
    fn an_ineligible_member_is_heard_but_not_live() {
        let t0 = Instant::now();
        let mut l = Liveness::new("a", Timing::default(), true);
        l.set_members(set(&["a", "b", "c"]));
        l.heard(&beat("b", false), t0);
        l.heard(&beat("c", true), t0);
        assert_eq!(l.live(t0), set(&["a", "c"]));
        l.set_eligible(false);
        assert_eq!(l.live(t0), set(&["c"]));
    }

    #[test]
    fn a_lone_member_is_never_isolated() {
        let mut l = Liveness::new("a", Timing::default(), true);
        l.set_members(set(&["a"]));
        assert_eq!(l.live(Instant::now()), set(&["a"]));
    }
}
