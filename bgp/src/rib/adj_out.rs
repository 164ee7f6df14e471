//! The Adj-RIB-Out of one peer: what we want the peer to have, what it already has, and
//! the queue of prefixes whose state differs. Changes coalesce: a prefix changed ten times
//! while the peer was slow leaves once, with its last attributes; a prefix announced and
//! withdrawn before it left never leaves at all. The queue is drained in batches by the
//! driver, only as fast as the socket takes them, so nothing grows without bound but the
//! table itself.
//!
//! Knows nothing of sessions or sockets; the wire form comes from `pack`.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::route::{Prefix, RouteAttrs};
use crate::wire::iana::Family;

#[derive(Debug)]
struct Entry {
    /// Wanted attributes; `None` is a pending withdrawal.
    attrs: Option<Arc<RouteAttrs>>,
    /// The peer has this prefix (with the attributes last sent).
    sent: bool,
    /// The prefix is in the queue.
    queued: bool,
}

/// Prefixes to put on the wire, grouped: withdrawals, and announcements sharing one
/// attribute set (by identity: equal attributes are interned to one `Arc`).
#[derive(Debug, Default)]
pub struct Batch {
    /// Prefixes to withdraw.
    pub withdrawn: Vec<Prefix>,
    /// Prefixes to announce, grouped by attributes.
    pub announced: Vec<(Arc<RouteAttrs>, Vec<Prefix>)>,
}

impl Batch {
    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.withdrawn.is_empty() && self.announced.is_empty()
    }

    /// Number of prefixes in the batch.
    pub fn len(&self) -> usize {
        self.withdrawn.len() + self.announced.iter().map(|(_, p)| p.len()).sum::<usize>()
    }
}

/// The Adj-RIB-Out of one peer.
#[derive(Debug, Default)]
pub struct AdjRibOut {
    entries: HashMap<Prefix, Entry>,
    queue: VecDeque<Prefix>,
    /// Prefixes the peer has (sent and not withdrawn since).
    advertised: usize,
    /// Families owing an End-of-RIB once the queue is empty after session start.
    end_of_rib: Vec<Family>,
}

impl AdjRibOut {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn enqueue(queue: &mut VecDeque<Prefix>, prefix: Prefix, e: &mut Entry) {
        if !e.queued {
            e.queued = true;
            queue.push_back(prefix);
        }
    }

    /// Wants `prefix` announced with `attrs`. Announcing what the peer already has is a
    /// no-op; anything else replaces the previous announcement.
    pub fn announce(&mut self, prefix: Prefix, attrs: Arc<RouteAttrs>) {
        match self.entries.entry(prefix) {
            MapEntry::Occupied(mut o) => {
                let e = o.get_mut();
                let same = e
                    .attrs
                    .as_ref()
                    .is_some_and(|a| Arc::ptr_eq(a, &attrs) || **a == *attrs);
                if !same {
                    e.attrs = Some(attrs);
                    Self::enqueue(&mut self.queue, prefix, e);
                }
            }
            MapEntry::Vacant(v) => {
                v.insert(Entry {
                    attrs: Some(attrs),
                    sent: false,
                    queued: true,
                });
                self.queue.push_back(prefix);
            }
        }
    }

    /// Wants `prefix` withdrawn. A prefix the peer never got is just forgotten.
    pub fn withdraw(&mut self, prefix: Prefix) {
        if let MapEntry::Occupied(mut o) = self.entries.entry(prefix) {
            let e = o.get_mut();
            if e.sent {
                e.attrs = None;
                Self::enqueue(&mut self.queue, prefix, e);
            } else {
                // Never sent: forget it; a queue entry for it will find it gone.
                o.remove();
            }
        }
    }

    /// The attributes `prefix` is (to be) announced with.
    pub fn get(&self, prefix: &Prefix) -> Option<&Arc<RouteAttrs>> {
        self.entries.get(prefix).and_then(|e| e.attrs.as_ref())
    }

    /// Prefixes wanted announced, sent or not.
    pub fn routes(&self) -> impl Iterator<Item = (&Prefix, &Arc<RouteAttrs>)> {
        self.entries
            .iter()
            .filter_map(|(p, e)| e.attrs.as_ref().map(|a| (p, a)))
    }

    /// Number of prefixes wanted announced.
    pub fn len(&self) -> usize {
        self.entries.values().filter(|e| e.attrs.is_some()).count()
    }

    /// Whether nothing is wanted announced.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of prefixes the peer currently has from us.
    pub fn advertised(&self) -> usize {
        self.advertised
    }

    /// The session went down: the peer has nothing. Pending withdrawals are done.
    pub fn reset(&mut self) {
        self.entries.retain(|_, e| e.attrs.is_some());
        for e in self.entries.values_mut() {
            e.sent = false;
            e.queued = false;
        }
        self.queue.clear();
        self.advertised = 0;
        self.end_of_rib.clear();
    }

    /// The session came up: the whole table is owed, followed by End-of-RIB for each of
    /// `families` (RFC 4724 §2).
    pub fn start(&mut self, families: &[Family]) {
        self.reset();
        for (prefix, e) in self.entries.iter_mut() {
            e.queued = true;
            self.queue.push_back(*prefix);
        }
        self.end_of_rib = families.to_vec();
    }

    /// Sends every announced prefix of `family` again (route refresh, or attributes that
    /// changed for all routes, e.g. graceful shutdown). `None` means all families.
    pub fn resend(&mut self, family: Option<Family>) {
        for (prefix, e) in self.entries.iter_mut() {
            if e.attrs.is_some() && family.is_none_or(|f| prefix.family() == f) {
                Self::enqueue(&mut self.queue, *prefix, e);
            }
        }
    }

    /// Records that these prefixes, taken off the queue, did not reach the peer after
    /// all (the packer could not announce them): they count as not advertised, and go
    /// out with the next session.
    pub fn mark_unsent(&mut self, prefixes: &[Prefix]) {
        for p in prefixes {
            if let Some(e) = self.entries.get_mut(p)
                && e.sent
            {
                e.sent = false;
                self.advertised -= 1;
            }
        }
    }

    /// Whether changes are waiting to be sent.
    pub fn has_pending(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether End-of-RIB markers are still owed.
    pub fn owes_end_of_rib(&self) -> bool {
        !self.end_of_rib.is_empty()
    }

    /// The End-of-RIB markers owed once the initial table is out; empty afterwards.
    pub fn take_end_of_rib(&mut self) -> Vec<Family> {
        if self.queue.is_empty() {
            std::mem::take(&mut self.end_of_rib)
        } else {
            Vec::new()
        }
    }

    /// Takes up to `limit` queued prefixes off the queue, as they should go on the wire
    /// now, and records them as sent.
    pub fn next_batch(&mut self, limit: usize) -> Batch {
        let mut batch = Batch::default();
        // Group by attribute identity; few distinct sets are expected per batch.
        let mut index: HashMap<*const RouteAttrs, usize> = HashMap::new();
        let mut taken = 0;
        while taken < limit {
            let Some(prefix) = self.queue.pop_front() else {
                break;
            };
            let Some(e) = self.entries.get_mut(&prefix) else {
                continue;
            };
            if !e.queued {
                continue;
            }
            e.queued = false;
            taken += 1;
            match &e.attrs {
                None => {
                    batch.withdrawn.push(prefix);
                    self.entries.remove(&prefix);
                    self.advertised -= 1;
                }
                Some(attrs) => {
                    if !e.sent {
                        e.sent = true;
                        self.advertised += 1;
                    }
                    let slot = *index.entry(Arc::as_ptr(attrs)).or_insert_with(|| {
                        batch.announced.push((attrs.clone(), Vec::new()));
                        batch.announced.len() - 1
                    });
                    batch.announced[slot].1.push(prefix);
                }
            }
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().expect("prefix")
    }

    fn attrs(med: u32) -> Arc<RouteAttrs> {
        Arc::new(RouteAttrs {
            med: Some(med),
            ..RouteAttrs::default()
        })
    }

    #[test]
    fn equal_attributes_share_a_group_and_withdrawals_are_apart() {
        let mut rib = AdjRibOut::new();
        let a = attrs(1);
        let b = attrs(2);
        rib.start(&[Family::IPV4_UNICAST]);
        rib.announce(p("10.0.0.1"), a.clone());
        rib.announce(p("10.0.0.2"), b.clone());
        rib.announce(p("10.0.0.3"), a.clone());
        let batch = rib.next_batch(usize::MAX);
        assert_eq!(batch.announced.len(), 2);
        assert_eq!(batch.announced[0].1, vec![p("10.0.0.1"), p("10.0.0.3")]);
        assert_eq!(rib.advertised(), 3);
        assert_eq!(rib.take_end_of_rib(), vec![Family::IPV4_UNICAST]);
        assert!(rib.take_end_of_rib().is_empty(), "End-of-RIB only once");
        rib.withdraw(p("10.0.0.2"));
        let batch = rib.next_batch(usize::MAX);
        assert_eq!(batch.withdrawn, vec![p("10.0.0.2")]);
        assert!(batch.announced.is_empty());
        assert_eq!(rib.advertised(), 2);
    }

    #[test]
    fn changes_coalesce_before_they_leave() {
        let mut rib = AdjRibOut::new();
        rib.start(&[]);
        rib.announce(p("10.0.0.1"), attrs(1));
        rib.announce(p("10.0.0.1"), attrs(2));
        rib.announce(p("10.0.0.2"), attrs(1));
        rib.withdraw(p("10.0.0.2"));
        let batch = rib.next_batch(usize::MAX);
        assert!(batch.withdrawn.is_empty(), "never sent, so never withdrawn");
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.announced[0].0.med, Some(2));
        // Re-announcing the same attributes sends nothing.
        rib.announce(p("10.0.0.1"), attrs(2));
        assert!(!rib.has_pending());
    }

    #[test]
    fn a_new_session_gets_the_whole_table_and_refresh_resends_one_family() {
        let mut rib = AdjRibOut::new();
        let a = attrs(1);
        rib.announce(p("10.0.0.1"), a.clone());
        rib.announce(p("2001:db8::1"), a.clone());
        rib.start(&[Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
        assert_eq!(rib.next_batch(1).len(), 1);
        assert!(
            rib.take_end_of_rib().is_empty(),
            "not before the table is out"
        );
        assert_eq!(rib.next_batch(10).len(), 1);
        assert_eq!(rib.take_end_of_rib().len(), 2);
        rib.resend(Some(Family::IPV6_UNICAST));
        let batch = rib.next_batch(10);
        assert_eq!(batch.announced[0].1, vec![p("2001:db8::1")]);
        rib.withdraw(p("10.0.0.1"));
        rib.reset();
        assert_eq!(
            rib.len(),
            1,
            "pending withdrawal is done by the session going down"
        );
        assert_eq!(rib.advertised(), 0);
    }

    #[test]
    fn batches_respect_the_limit() {
        let mut rib = AdjRibOut::new();
        rib.start(&[]);
        let a = attrs(1);
        for i in 0..1000u32 {
            rib.announce(Prefix::host(std::net::Ipv4Addr::from(i).into()), a.clone());
        }
        assert_eq!(rib.next_batch(300).len(), 300);
        assert_eq!(rib.next_batch(usize::MAX).len(), 700);
        assert!(!rib.has_pending());
    }
}
