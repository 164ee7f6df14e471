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
//! **Make-before-break.** A heartbeat also carries a digest of the addresses its sender
//! owns (flag `D`, 8 bytes after the name; receivers of version 1 without it ignore the
//! tail): a node handing an address over keeps answering it until the new owner's heartbeat
//! shows the new owner answers exactly what it is expected to ([`super::handover`]). A node
//! that has just started warms up for one detection time — it hears the others, says "not
//! eligible" and answers nothing — so it never claims addresses from a half-heard view.
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

    /// How long a node keeps answering an address it hands over while the new owner has not
    /// confirmed it answers: four detection times, at least one second (a planned move
    /// whose new owner learns of it late, from the API server or a manifest, still loses
    /// nothing; an unconfirmed new owner costs at most this much double answering).
    pub fn handover_bound(&self) -> Duration {
        (self.detection() * 4).max(Duration::from_secs(1))
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
/// |flags (E=1,D=2)|  name length  |         interval (ms)         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     sequence (64 bits)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                  node name (UTF-8) ...                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |        owned digest (64 bits, present when D is set)          |
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
    /// [`super::owner::digest`] of the addresses the sender owns (`None`: a sender that
    /// does not say).
    pub owned: Option<u64>,
}

const MAGIC: [u8; 3] = *b"BL2";
const VERSION: u8 = 1;
const HEADER: usize = 16;
const ELIGIBLE: u8 = 0x01;
const DIGEST: u8 = 0x02;

impl Heartbeat {
    /// The datagram (node names longer than 255 bytes are cut; Kubernetes allows 253).
    pub fn encode(&self) -> Vec<u8> {
        let name = &self.node.as_bytes()[..self.node.len().min(255)];
        let mut out = Vec::with_capacity(HEADER + name.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        let digest = if self.owned.is_some() { DIGEST } else { 0 };
        out.push(if self.eligible { ELIGIBLE } else { 0 } | digest);
        out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.interval_ms.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(name);
        if let Some(d) = self.owned {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out
    }

    /// Reads a datagram; `None` for anything that is not a version-1 heartbeat.
    pub fn decode(datagram: &[u8]) -> Option<Heartbeat> {
        if datagram.len() < HEADER || datagram[..3] != MAGIC || datagram[3] != VERSION {
            return None;
        }
        let len = usize::from(datagram[5]);
        let name = datagram.get(HEADER..HEADER + len)?;
        let owned = if datagram[4] & DIGEST != 0 {
            let tail = datagram.get(HEADER + len..HEADER + len + 8)?;
            Some(u64::from_be_bytes(tail.try_into().ok()?))
        } else {
            None
        };
        Some(Heartbeat {
            node: std::str::from_utf8(name).ok()?.to_string(),
            sequence: u64::from_be_bytes(datagram[8..16].try_into().ok()?),
            interval_ms: u16::from_be_bytes([datagram[6], datagram[7]]),
            eligible: datagram[4] & ELIGIBLE != 0,
            owned,
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct Heard {
    at: Instant,
    eligible: bool,
    owned: Option<u64>,
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
    warm_until: Option<Instant>,
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
            warm_until: None,
        }
    }

    /// Warms up until `until`: this node hears the others but says "not eligible" and
    /// does not count itself (a speaker just started has not heard every live member yet,
    /// and would claim addresses that are theirs).
    pub fn warm_up_until(&mut self, until: Instant) {
        self.warm_until = Some(until);
    }

    /// Whether this node is still warming up at `now`.
    pub fn warming(&self, now: Instant) -> bool {
        self.warm_until.is_some_and(|t| now < t)
    }

    /// What this node's heartbeat says at `now`: eligible, and not warming up.
    pub fn says_eligible(&self, now: Instant) -> bool {
        self.eligible && !self.warming(now)
    }

    /// The owned digest of `node`'s last heartbeat, if it said one.
    pub fn owned_digest(&self, node: &str) -> Option<u64> {
        self.heard.get(node).and_then(|h| h.owned)
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

    /// Whether `beat`, arriving at `now`, would change what this node decides: a member
    /// not heard within the detection time, or one whose eligibility or owned digest
    /// differs from its last heartbeat. The others only keep a member alive, which the
    /// expiry timer accounts for; deciding again on each would cost O(addresses) per
    /// heartbeat (at 2,000 addresses the speakers then starved and flapped).
    pub fn would_change(&self, beat: &Heartbeat, now: Instant) -> bool {
        if beat.node == self.me || !self.members.contains(&beat.node) {
            return false;
        }
        self.heard.get(&beat.node).is_none_or(|h| {
            now.saturating_duration_since(h.at) > self.timing.detection()
                || h.eligible != beat.eligible
                || h.owned != beat.owned
        })
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
                owned: beat.owned,
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
            && self.says_eligible(now)
            && !(self.isolated_stops && self.isolated(now));
        if counts_itself {
            live.insert(self.me.clone());
        }
        live
    }

    /// The next instant the live set can change without a heartbeat arriving: the
    /// earliest expiry of a member heard, or the end of the warm-up.
    pub fn next_expiry(&self, now: Instant) -> Option<Instant> {
        let detection = self.timing.detection();
        self.heard
            .values()
            .map(|h| h.at + detection)
            .chain(self.warm_until)
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
            owned: None,
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
    fn the_owned_digest_travels_and_old_heartbeats_still_read() {
        let with = Heartbeat {
            owned: Some(0x0123_4567_89ab_cdef),
            ..beat("node-2", true)
        };
        assert_eq!(Heartbeat::decode(&with.encode()), Some(with.clone()));
        // A heartbeat of a speaker that does not send the digest: read as `None`.
        let old = beat("node-2", true).encode();
        assert_eq!(Heartbeat::decode(&old).and_then(|b| b.owned), None);
        // A digest flag with the digest cut short is not a heartbeat.
        let bytes = with.encode();
        assert_eq!(Heartbeat::decode(&bytes[..bytes.len() - 1]), None);
        let t0 = Instant::now();
        let mut l = Liveness::new("a", Timing::default(), true);
        l.set_members(set(&["a", "node-2"]));
        l.heard(&with, t0);
        assert_eq!(l.owned_digest("node-2"), Some(0x0123_4567_89ab_cdef));
        assert_eq!(l.owned_digest("a"), None);
    }

    #[test]
    fn only_a_heartbeat_that_says_something_new_changes_the_decision() {
        let t0 = Instant::now();
        let mut l = Liveness::new("a", Timing::default(), true);
        l.set_members(set(&["a", "b"]));
        let b = beat("b", true);
        assert!(l.would_change(&b, t0), "first heard");
        l.heard(&b, t0);
        let soon = t0 + Duration::from_millis(50);
        assert!(!l.would_change(&b, soon), "the same again");
        assert!(l.would_change(&beat("b", false), soon), "eligibility");
        let owning = Heartbeat {
            owned: Some(1),
            ..beat("b", true)
        };
        assert!(l.would_change(&owning, soon), "what it owns");
        assert!(
            l.would_change(&b, t0 + Duration::from_millis(151)),
            "back after expiring"
        );
        assert!(!l.would_change(&beat("a", true), soon), "itself");
        assert!(!l.would_change(&beat("x", true), soon), "not a member");
    }

    #[test]
    fn a_warming_node_hears_but_neither_counts_itself_nor_says_eligible() {
        let t0 = Instant::now();
        let mut l = Liveness::new("a", Timing::default(), true);
        l.set_members(set(&["a", "b"]));
        l.warm_up_until(t0 + Duration::from_millis(150));
        l.heard(&beat("b", true), t0);
        assert_eq!(l.live(t0), set(&["b"]));
        assert!(!l.says_eligible(t0));
        assert_eq!(l.next_expiry(t0), Some(t0 + Duration::from_millis(150)));
        let warm = t0 + Duration::from_millis(150);
        l.heard(&beat("b", true), warm);
        assert!(l.says_eligible(warm));
        assert_eq!(l.live(warm), set(&["a", "b"]));
    }

    #[test]
    fn the_handover_bound_is_at_least_a_second() {
        assert_eq!(Timing::default().handover_bound(), Duration::from_secs(1));
        let slow = Timing {
            interval: Duration::from_millis(500),
            multiplier: 3,
        };
        assert_eq!(slow.handover_bound(), Duration::from_secs(6));
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
