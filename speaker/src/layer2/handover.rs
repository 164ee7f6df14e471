//! Make-before-break for planned moves: which addresses this node still answers for while
//! it hands them over. A pure decision (the clock is an argument).
//!
//! When the owners change while this node is sound — a node joins or comes back, this node
//! is drained, cordoned or deselected, a Service's endpoints move, this node steps down on
//! SIGTERM — an address this node answered for and no longer owns is **held**: this node
//! keeps answering it until its new owner *confirms* (its heartbeat's owned digest equals
//! the digest of what this node expects it to own, so it answers the address) and one
//! `overlap` more — a heartbeat interval, for what the wire has not caught up with yet (a
//! new owner that has just joined the solicited-node group is heard by an MLD-snooping
//! switch only once its report is through: the lab saw 1–2 ms gaps without it) — or until
//! the bound ([`super::liveness::Timing::handover_bound`]). Both answer meanwhile, which
//! is harmless (each accepts the address's traffic); nobody answering is what loses
//! packets. The new owner never waits: it answers as soon as it decides.
//!
//! Nothing is held when this node is not sound — isolated (a partition: the split brain
//! must end within one detection time) or its link down (answering is pointless) — nor
//! when the address has no owner any more (its Service is gone, no live candidate).
//!
//! Must not know about sockets, frames or Kubernetes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::owner::NodeName;

/// Why a hold ended (for the log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Released {
    /// The new owner confirmed.
    Confirmed(NodeName),
    /// The bound passed without a confirmation.
    TimedOut(Option<NodeName>),
    /// This node owns it again.
    Regained,
    /// Nothing to hand over to, or this node may not hold (isolated, link down).
    Dropped,
}

/// The addresses being handed over, and since when.
#[derive(Clone, Debug)]
pub struct Handovers {
    bound: Duration,
    overlap: Duration,
    held: BTreeMap<IpAddr, Hold>,
}

#[derive(Clone, Copy, Debug)]
struct Hold {
    since: Instant,
    /// When the new owner first confirmed.
    confirmed: Option<Instant>,
}

impl Hold {
    fn deadline(&self, bound: Duration, overlap: Duration) -> Instant {
        let timeout = self.since + bound;
        self.confirmed.map_or(timeout, |c| timeout.min(c + overlap))
    }
}

/// What [`Handovers::step`] decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// What this node answers for now: what it owns and what it still holds.
    pub answered: BTreeSet<IpAddr>,
    /// Holds started in this step, with the new owner.
    pub started: Vec<(IpAddr, NodeName)>,
    /// Holds ended in this step, and why.
    pub released: Vec<(IpAddr, Released)>,
}

impl Handovers {
    /// Nothing held; a hold lasts `overlap` past the new owner's confirmation, at most
    /// `bound`.
    pub fn new(bound: Duration, overlap: Duration) -> Self {
        Self {
            bound,
            overlap,
            held: BTreeMap::new(),
        }
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The addresses held.
    pub fn held(&self) -> impl Iterator<Item = &IpAddr> {
        self.held.keys()
    }

    /// When the next hold runs out, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.held
            .values()
            .map(|h| h.deadline(self.bound, self.overlap))
            .min()
    }

    /// One decision at `now`. `answered_before`: what this node answered for until now;
    /// `owned`: what it owns now; `owner_of`: the new owner of an address (`None`: nobody
    /// live, or the address is gone); `confirms(node)`: whether `node`'s last heartbeat
    /// confirms it answers what it owns; `may_hold`: this node is sound (not isolated, its
    /// link up).
    pub fn step(
        &mut self,
        answered_before: &BTreeSet<IpAddr>,
        owned: &BTreeSet<IpAddr>,
        owner_of: impl Fn(&IpAddr) -> Option<NodeName>,
        confirms: impl Fn(&str) -> bool,
        may_hold: bool,
        now: Instant,
    ) -> Step {
        let mut step = Step::default();
        for ip in answered_before.difference(owned) {
            if !may_hold || self.held.contains_key(ip) {
                continue;
            }
            if let Some(new) = owner_of(ip) {
                self.held.insert(
                    *ip,
                    Hold {
                        since: now,
                        confirmed: None,
                    },
                );
                step.started.push((*ip, new));
            }
        }
        let mut keep = BTreeMap::new();
        for (ip, mut hold) in std::mem::take(&mut self.held) {
            let new = owner_of(&ip);
            // A confirmation counts while the new owner still confirms (a different new
            // owner, or one that stops confirming, starts the overlap again).
            let confirming = new.as_ref().filter(|n| confirms(n));
            hold.confirmed = confirming.and(hold.confirmed.or(Some(now)));
            let why = if owned.contains(&ip) {
                Some(Released::Regained)
            } else if !may_hold || new.is_none() {
                Some(Released::Dropped)
            } else if let (Some(n), Some(at)) = (confirming, hold.confirmed)
                && now.saturating_duration_since(at) >= self.overlap
            {
                Some(Released::Confirmed(n.clone()))
            } else if now.saturating_duration_since(hold.since) >= self.bound {
                Some(Released::TimedOut(new))
            } else {
                None
            };
            match why {
                Some(w) => step.released.push((ip, w)),
                None => {
                    keep.insert(ip, hold);
                }
            }
        }
        self.held = keep;
        step.answered = owned.iter().chain(self.held.keys()).copied().collect();
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const BOUND: Duration = Duration::from_secs(1);
    const OVERLAP: Duration = Duration::from_millis(50);

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn set(ips: &[IpAddr]) -> BTreeSet<IpAddr> {
        ips.iter().copied().collect()
    }

    fn to(node: &'static str) -> impl Fn(&IpAddr) -> Option<NodeName> {
        move |_| Some(node.to_string())
    }

    #[test]
    fn an_address_given_away_is_answered_until_its_new_owner_confirms() {
        let t0 = Instant::now();
        let mut h = Handovers::new(BOUND, Duration::ZERO);
        let s = h.step(
            &set(&[ip(1), ip(2)]),
            &set(&[ip(2)]),
            to("b"),
            |_| false,
            true,
            t0,
        );
        assert_eq!(
            s.answered,
            set(&[ip(1), ip(2)]),
            "still answers the address it gave away"
        );
        assert_eq!(s.started, vec![(ip(1), "b".to_string())]);
        let t1 = t0 + Duration::from_millis(10);
        let s = h.step(&s.answered, &set(&[ip(2)]), to("b"), |_| false, true, t1);
        assert_eq!(s.answered, set(&[ip(1), ip(2)]), "b has not confirmed");
        assert!(s.started.is_empty(), "a hold starts once");
        let s = h.step(&s.answered, &set(&[ip(2)]), to("b"), |n| n == "b", true, t1);
        assert_eq!(s.answered, set(&[ip(2)]));
        assert_eq!(s.released, vec![(ip(1), Released::Confirmed("b".into()))]);
        assert!(h.is_empty());
    }

    #[test]
    fn the_old_owner_answers_one_overlap_past_the_confirmation() {
        let t0 = Instant::now();
        let mut h = Handovers::new(BOUND, OVERLAP);
        h.step(&set(&[ip(1)]), &set(&[]), to("b"), |_| false, true, t0);
        let t1 = t0 + Duration::from_millis(20);
        let s = h.step(&set(&[ip(1)]), &set(&[]), to("b"), |_| true, true, t1);
        assert_eq!(
            s.answered,
            set(&[ip(1)]),
            "confirmed, but within the overlap"
        );
        assert_eq!(h.next_deadline(), Some(t1 + OVERLAP));
        let s = h.step(
            &set(&[ip(1)]),
            &set(&[]),
            to("b"),
            |_| true,
            true,
            t1 + OVERLAP,
        );
        assert_eq!(s.answered, set(&[]));
        assert_eq!(s.released, vec![(ip(1), Released::Confirmed("b".into()))]);
    }

    #[test]
    fn only_the_new_owner_confirms() {
        let t0 = Instant::now();
        let mut h = Handovers::new(BOUND, Duration::ZERO);
        h.step(&set(&[ip(1)]), &set(&[]), to("b"), |_| false, true, t0);
        let s = h.step(&set(&[ip(1)]), &set(&[]), to("b"), |n| n == "c", true, t0);
        assert_eq!(s.answered, set(&[ip(1)]));
        // The new owner changes (b went too): c's confirmation now counts.
        let s = h.step(&set(&[ip(1)]), &set(&[]), to("c"), |n| n == "c", true, t0);
        assert_eq!(s.answered, set(&[]));
    }

    #[test]
    fn a_hold_ends_at_the_bound() {
        let t0 = Instant::now();
        let mut h = Handovers::new(BOUND, Duration::ZERO);
        h.step(&set(&[ip(1)]), &set(&[]), to("b"), |_| false, true, t0);
        assert_eq!(h.next_deadline(), Some(t0 + BOUND));
        let early = t0 + BOUND - Duration::from_millis(1);
        let s = h.step(&set(&[ip(1)]), &set(&[]), to("b"), |_| false, true, early);
        assert_eq!(s.answered, set(&[ip(1)]));
        let s = h.step(
            &set(&[ip(1)]),
            &set(&[]),
            to("b"),
            |_| false,
            true,
            t0 + BOUND,
        );
        assert_eq!(s.answered, set(&[]));
        assert_eq!(
            s.released,
            vec![(ip(1), Released::TimedOut(Some("b".into())))]
        );
        assert_eq!(h.next_deadline(), None);
    }

    #[test]
    fn nothing_is_held_by_an_unsound_node_or_for_nobody() {
        let t0 = Instant::now();
        let mut h = Handovers::new(BOUND, Duration::ZERO);
        // Isolated or link down: stop at once (bounded split brain).
        let s = h.step(&set(&[ip(1)]), &set(&[]), to("b"), |_| false, false, t0);
        assert_eq!(s.answered, set(&[]));
        // The address is gone or nobody live owns it: nothing to hand over to.
        let s = h.step(&set(&[ip(1)]), &set(&[]), |_| None, |_| false, true, t0);
        assert_eq!(s.answered, set(&[]));
        // A hold in progress ends when this node becomes unsound.
        h.step(&set(&[ip(1)]), &set(&[]), to("b"), |_| false, true, t0);
        let s = h.step(&set(&[ip(1)]), &set(&[]), to("b"), |_| false, false, t0);
        assert_eq!(s.answered, set(&[]));
        assert_eq!(s.released, vec![(ip(1), Released::Dropped)]);
    }

    #[test]
    fn an_address_owned_again_is_no_longer_held() {
        let t0 = Instant::now();
        let mut h = Handovers::new(BOUND, Duration::ZERO);
        h.step(&set(&[ip(1)]), &set(&[]), to("b"), |_| false, true, t0);
        let s = h.step(&set(&[ip(1)]), &set(&[ip(1)]), to("a"), |_| false, true, t0);
        assert_eq!(s.answered, set(&[ip(1)]));
        assert_eq!(s.released, vec![(ip(1), Released::Regained)]);
        assert!(h.is_empty());
    }

    #[test]
    fn what_is_gained_is_answered_at_once() {
        let mut h = Handovers::new(BOUND, Duration::ZERO);
        let s = h.step(
            &set(&[]),
            &set(&[ip(3)]),
            to("a"),
            |_| false,
            true,
            Instant::now(),
        );
        assert_eq!(s.answered, set(&[ip(3)]));
        assert!(s.started.is_empty());
    }
}
