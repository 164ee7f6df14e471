//! The Adj-RIB-Out of one peer: what we want the peer to have, what it already has, and
//! the queue of prefixes whose state differs. Changes coalesce: a prefix changed ten times
//! while the peer was slow leaves once, with its last attributes; a prefix announced and
//! withdrawn before it left never leaves at all. The queue is drained in batches by the
//! driver, only as fast as the socket takes them, so nothing grows without bound but the
//! table itself.
//!
//! When a session comes up the whole table is owed. Rather than queueing every prefix
//! (O(table) before the first byte), a cursor sweeps the entries in place, a batch at a
//! time, so the first routes leave at once whatever the table size; the queue holds only
//! what changed since. Entries live in a vector (for the cursor) indexed by a map; each
//! records the session it was sent in, so a new session forgets what the peer had
//! without touching every entry.
//!
//! Knows nothing of sessions or sockets; the wire form comes from `pack`.

use std::collections::VecDeque;
use std::collections::hash_map::Entry as MapEntry;
use std::sync::Arc;

use super::prefix_hash::PrefixMap;
use super::route::{Prefix, RouteAttrs};
use crate::wire::iana::Family;

#[derive(Debug)]
struct Entry {
    prefix: Prefix,
    /// Wanted attributes; `None` is a pending withdrawal (always queued: it leaves the
    /// table when taken off the queue or when the session goes down).
    attrs: Option<Arc<RouteAttrs>>,
    /// The session in which the peer got this prefix (with the attributes last sent);
    /// the peer has it only if that is the current session.
    sent_in: u32,
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

/// Groups announcements of a batch by attribute identity.
#[derive(Default)]
struct Grouper {
    index: PrefixMap<*const RouteAttrs, usize>,
}

impl Grouper {
    fn push(&mut self, batch: &mut Batch, attrs: &Arc<RouteAttrs>, prefix: Prefix) {
        let slot = *self.index.entry(Arc::as_ptr(attrs)).or_insert_with(|| {
            batch.announced.push((attrs.clone(), Vec::new()));
            batch.announced.len() - 1
        });
        batch.announced[slot].1.push(prefix);
    }
}

/// The Adj-RIB-Out of one peer.
#[derive(Debug, Default)]
pub struct AdjRibOut {
    /// Position of each prefix in `entries`.
    index: PrefixMap<Prefix, u32>,
    entries: Vec<Entry>,
    /// Prefixes changed since the session started (or the sweep passed them).
    queue: VecDeque<Prefix>,
    /// Next position of the initial-table sweep; `None` when no sweep is running.
    sweep: Option<usize>,
    /// Whether a session is up (between `start` and `reset`); while down nothing queues,
    /// since the next `start` sweeps the whole table anyway.
    up: bool,
    /// Number of the current session; bumped by `reset` (wrapping: a stale `sent_in`
    /// would need 2^32 restarts to match again).
    session: u32,
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

    fn is_sent(&self, e: &Entry) -> bool {
        self.up && e.sent_in == self.session
    }

    /// Queues entry `i` unless it already is (or no session is up).
    fn enqueue(&mut self, i: usize) {
        let e = &mut self.entries[i];
        if self.up && !e.queued {
            e.queued = true;
            self.queue.push_back(e.prefix);
        }
    }

    /// Removes entry `i`. The last entry moves into its place; if the sweep had already
    /// passed that place, the moved entry (not yet visited) goes to the queue instead.
    fn remove_at(&mut self, i: usize) {
        let removed = self.entries.swap_remove(i);
        self.index.remove(&removed.prefix);
        if i < self.entries.len() {
            let moved = self.entries[i].prefix;
            self.index.insert(moved, i as u32);
            let e = &self.entries[i];
            let owed = e.attrs.is_some() && !self.is_sent(e);
            if owed && self.sweep.is_some_and(|c| i < c) {
                self.enqueue(i);
            }
        }
    }

    /// Wants `prefix` announced with `attrs`. Announcing what the peer already has is a
    /// no-op; anything else replaces the previous announcement.
    pub fn announce(&mut self, prefix: Prefix, attrs: Arc<RouteAttrs>) {
        match self.index.entry(prefix) {
            MapEntry::Occupied(o) => {
                let i = *o.get() as usize;
                let e = &mut self.entries[i];
                let same = e
                    .attrs
                    .as_ref()
                    .is_some_and(|a| Arc::ptr_eq(a, &attrs) || **a == *attrs);
                if !same {
                    e.attrs = Some(attrs);
                    self.enqueue(i);
                }
            }
            MapEntry::Vacant(v) => {
                let i = self.entries.len();
                v.insert(i as u32);
                self.entries.push(Entry {
                    prefix,
                    attrs: Some(attrs),
                    sent_in: 0,
                    queued: false,
                });
                self.enqueue(i);
            }
        }
    }

    /// Wants `prefix` withdrawn. A prefix the peer never got is just forgotten.
    pub fn withdraw(&mut self, prefix: Prefix) {
        let Some(&i) = self.index.get(&prefix) else {
            return;
        };
        let i = i as usize;
        if self.is_sent(&self.entries[i]) {
            self.entries[i].attrs = None;
            self.enqueue(i);
        } else {
            // Never sent: forget it; a queue entry for it will find it gone.
            self.remove_at(i);
        }
    }

    /// The attributes `prefix` is (to be) announced with.
    pub fn get(&self, prefix: &Prefix) -> Option<&Arc<RouteAttrs>> {
        let i = *self.index.get(prefix)? as usize;
        self.entries[i].attrs.as_ref()
    }

    /// Prefixes wanted announced, sent or not.
    pub fn routes(&self) -> impl Iterator<Item = (&Prefix, &Arc<RouteAttrs>)> {
        self.entries
            .iter()
            .filter_map(|e| e.attrs.as_ref().map(|a| (&e.prefix, a)))
    }

    /// Number of prefixes wanted announced.
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.attrs.is_some()).count()
    }

    /// Whether nothing is wanted announced.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of prefixes the peer currently has from us.
    pub fn advertised(&self) -> usize {
        self.advertised
    }

    /// The session went down: the peer has nothing. Pending withdrawals are done. Costs
    /// the length of the queue, not of the table.
    pub fn reset(&mut self) {
        self.sweep = None;
        self.up = false;
        self.session = self.session.wrapping_add(1);
        for prefix in std::mem::take(&mut self.queue) {
            let Some(&i) = self.index.get(&prefix) else {
                continue;
            };
            let i = i as usize;
            self.entries[i].queued = false;
            if self.entries[i].attrs.is_none() {
                self.remove_at(i);
            }
        }
        self.advertised = 0;
        self.end_of_rib.clear();
    }

    /// The session came up: the whole table is owed, followed by End-of-RIB for each of
    /// `families` (RFC 4724 §2). The table goes out by a sweep in `next_batch`, so this
    /// does not walk it.
    pub fn start(&mut self, families: &[Family]) {
        self.reset();
        self.up = true;
        self.sweep = Some(0);
        self.end_of_rib = families.to_vec();
    }

    /// Sends every announced prefix of `family` again (route refresh, or attributes that
    /// changed for all routes, e.g. graceful shutdown). `None` means all families.
    pub fn resend(&mut self, family: Option<Family>) {
        for i in 0..self.entries.len() {
            let e = &self.entries[i];
            if e.attrs.is_some() && family.is_none_or(|f| e.prefix.family() == f) {
                self.enqueue(i);
            }
        }
    }

    /// Records that these prefixes, taken off the queue, did not reach the peer after
    /// all (the packer could not announce them): they count as not advertised, and go
    /// out with the next session.
    pub fn mark_unsent(&mut self, prefixes: &[Prefix]) {
        for p in prefixes {
            if let Some(&i) = self.index.get(p) {
                let i = i as usize;
                if self.is_sent(&self.entries[i]) {
                    self.entries[i].sent_in = self.session.wrapping_sub(1);
                    self.advertised -= 1;
                }
            }
        }
    }

    /// Whether changes are waiting to be sent (including the rest of the initial table).
    pub fn has_pending(&self) -> bool {
        !self.queue.is_empty() || self.sweep.is_some()
    }

    /// Whether End-of-RIB markers are still owed.
    pub fn owes_end_of_rib(&self) -> bool {
        !self.end_of_rib.is_empty()
    }

    /// The End-of-RIB markers owed once the initial table is out; empty afterwards.
    pub fn take_end_of_rib(&mut self) -> Vec<Family> {
        if self.has_pending() {
            Vec::new()
        } else {
            std::mem::take(&mut self.end_of_rib)
        }
    }

    /// Takes up to `limit` prefixes to send now (changes first, then the rest of the
    /// initial table) and records them as sent.
    pub fn next_batch(&mut self, limit: usize) -> Batch {
        let mut batch = Batch::default();
        let mut groups = Grouper::default();
        let mut taken = 0;
        while taken < limit {
            let Some(prefix) = self.queue.pop_front() else {
                break;
            };
            let Some(&i) = self.index.get(&prefix) else {
                continue;
            };
            let i = i as usize;
            if !self.entries[i].queued {
                continue;
            }
            self.entries[i].queued = false;
            taken += 1;
            match self.entries[i].attrs.clone() {
                None => {
                    batch.withdrawn.push(prefix);
                    self.remove_at(i);
                    self.advertised -= 1;
                }
                Some(attrs) => {
                    if !self.is_sent(&self.entries[i]) {
                        self.entries[i].sent_in = self.session;
                        self.advertised += 1;
                    }
                    groups.push(&mut batch, &attrs, prefix);
                }
            }
        }
        if let Some(mut cursor) = self.sweep {
            let (up, session) = (self.up, self.session);
            while taken < limit && cursor < self.entries.len() {
                let e = &mut self.entries[cursor];
                cursor += 1;
                let sent = up && e.sent_in == session;
                // Queued entries leave through the queue; pending withdrawals are queued.
                if e.queued || sent {
                    continue;
                }
                let Some(attrs) = &e.attrs else { continue };
                e.sent_in = session;
                self.advertised += 1;
                taken += 1;
                groups.push(&mut batch, attrs, e.prefix);
            }
            self.sweep = (cursor < self.entries.len()).then_some(cursor);
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
    fn the_initial_sweep_survives_removals_behind_its_cursor() {
        let mut rib = AdjRibOut::new();
        let a = attrs(1);
        let hosts: Vec<Prefix> = (0..10u32)
            .map(|i| Prefix::host(std::net::Ipv4Addr::from(i).into()))
            .collect();
        for h in &hosts {
            rib.announce(*h, a.clone());
        }
        rib.start(&[Family::IPV4_UNICAST]);
        assert!(rib.has_pending(), "the table is owed without queueing it");
        let first = rib.next_batch(3);
        assert_eq!(first.len(), 3);
        // An unsent prefix (ahead of the cursor) is forgotten and a sent one (behind it)
        // withdrawn; removing either moves the last, unvisited entry into its place.
        let sent = first.announced[0].1[0];
        let unsent = *hosts
            .iter()
            .find(|h| !first.announced[0].1.contains(h))
            .expect("one");
        rib.withdraw(unsent);
        rib.withdraw(sent);
        let rest = rib.next_batch(usize::MAX);
        assert_eq!(rest.withdrawn, vec![sent]);
        let mut all: Vec<Prefix> = first.announced[0].1.clone();
        all.extend(rest.announced.iter().flat_map(|(_, p)| p.iter().copied()));
        all.sort();
        let mut want: Vec<Prefix> = hosts.clone();
        want.retain(|h| *h != unsent);
        assert_eq!(all, want, "every prefix but the forgotten one left once");
        assert_eq!(rib.advertised(), 8);
        assert_eq!(rib.take_end_of_rib(), vec![Family::IPV4_UNICAST]);
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
