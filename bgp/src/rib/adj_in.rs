//! What we received from one peer. A Berth speaker imports nothing by default (DESIGN.md,
//! "safe by default"), so by default it keeps nothing per received path either: what the
//! session must know decides what is kept ([`Tracking`]).
//!
//! - No max-prefix limit and routes not kept ([`Tracking::Counters`], the default): only
//!   monotonic counters of the NLRI announced and withdrawn per family. Memory is O(1)
//!   whatever the peer sends. The number of routes the peer currently has at us is *not*
//!   known in this mode: re-announcements, withdrawals of unknown prefixes and ADD-PATH
//!   make `announced − withdrawn` no count of anything, so none is offered.
//! - A max-prefix limit ([`Tracking::Paths`]): one key per received path, for an exact
//!   count of distinct paths per family. Memory is bounded by the limit, since the session
//!   ends (RFC 4486) as soon as the count exceeds it.
//! - Routes kept for inspection ([`Tracking::Routes`]): the keys and their attributes. Only
//!   a max-prefix limit bounds this one.
//!
//! The NLRI counters run in every mode.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::route::Prefix;
use crate::wire::iana::Family;

/// One received path: the prefix and its ADD-PATH identifier, if any.
pub type PathKey = (Prefix, Option<u32>);

/// What the Adj-RIB-In keeps per received path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tracking {
    /// Nothing: NLRI counters only; the current table size is unknown.
    Counters,
    /// One key per path: exact counts of distinct paths, no attributes.
    Paths,
    /// Keys and attributes.
    Routes,
}

impl Tracking {
    /// The least a session needs: paths when it enforces a max-prefix limit (which must
    /// count distinct paths exactly), routes when asked to keep them, counters otherwise.
    pub fn for_session(max_prefix: bool, keep_received: bool) -> Tracking {
        match (max_prefix, keep_received) {
            (_, true) => Tracking::Routes,
            (true, false) => Tracking::Paths,
            (false, false) => Tracking::Counters,
        }
    }
}

/// NLRI received in UPDATEs in one family: monotonic, never reset by a session going
/// down. A prefix in an UPDATE treated as withdraw (RFC 7606) counts as withdrawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NlriCounts {
    /// Prefixes announced (a re-announcement counts again).
    pub announced: u64,
    /// Prefixes withdrawn (whether or not they had been announced).
    pub withdrawn: u64,
}

impl NlriCounts {
    /// The sum of two counts.
    pub fn plus(self, other: NlriCounts) -> NlriCounts {
        NlriCounts {
            announced: self.announced + other.announced,
            withdrawn: self.withdrawn + other.withdrawn,
        }
    }
}

/// Exact per-path state, when tracked.
#[derive(Debug)]
struct PathTable<A> {
    paths: HashMap<PathKey, Option<A>>,
    per_family: Vec<(Family, u64)>,
    keep: bool,
}

/// The Adj-RIB-In of one peer; `A` is the attribute type kept under [`Tracking::Routes`].
#[derive(Debug)]
pub struct AdjRibIn<A> {
    /// Per family, sorted; at most one entry per family a prefix can be in (two).
    nlri: Vec<(Family, NlriCounts)>,
    table: Option<PathTable<A>>,
}

/// The counter of `family` in a small sorted list, inserted at zero when missing.
fn entry<T: Default>(list: &mut Vec<(Family, T)>, family: Family) -> &mut T {
    let i = match list.binary_search_by_key(&family, |(f, _)| *f) {
        Ok(i) => i,
        Err(i) => {
            list.insert(i, (family, T::default()));
            i
        }
    };
    &mut list[i].1
}

impl<A> AdjRibIn<A> {
    /// An empty table keeping what `tracking` says.
    pub fn new(tracking: Tracking) -> Self {
        let table = (tracking != Tracking::Counters).then(|| PathTable {
            paths: HashMap::new(),
            per_family: Vec::new(),
            keep: tracking == Tracking::Routes,
        });
        Self {
            nlri: Vec::new(),
            table,
        }
    }

    /// What this table keeps.
    pub fn tracking(&self) -> Tracking {
        match &self.table {
            None => Tracking::Counters,
            Some(t) if t.keep => Tracking::Routes,
            Some(_) => Tracking::Paths,
        }
    }

    /// Records an announcement (a replacement when the path is known).
    pub fn announce(&mut self, key: PathKey, attrs: impl FnOnce() -> A) {
        let family = key.0.family();
        entry(&mut self.nlri, family).announced += 1;
        let Some(table) = &mut self.table else {
            return;
        };
        let value = table.keep.then(attrs);
        match table.paths.entry(key) {
            Entry::Occupied(mut o) => {
                o.insert(value);
            }
            Entry::Vacant(v) => {
                v.insert(value);
                *entry(&mut table.per_family, family) += 1;
            }
        }
    }

    /// Records a withdrawal.
    pub fn withdraw(&mut self, key: PathKey) {
        let family = key.0.family();
        entry(&mut self.nlri, family).withdrawn += 1;
        if let Some(table) = &mut self.table
            && table.paths.remove(&key).is_some()
        {
            *entry(&mut table.per_family, family) -= 1;
        }
    }

    /// NLRI received per family, sorted by family (every mode).
    pub fn nlri(&self) -> &[(Family, NlriCounts)] {
        &self.nlri
    }

    /// Paths the peer has at us in one family; `None` when not tracked.
    pub fn count(&self, family: Family) -> Option<u64> {
        let table = self.table.as_ref()?;
        Some(
            table
                .per_family
                .iter()
                .find(|(f, _)| *f == family)
                .map_or(0, |(_, n)| *n),
        )
    }

    /// Paths the peer has at us, all families; `None` when not tracked.
    pub fn total(&self) -> Option<u64> {
        let table = self.table.as_ref()?;
        Some(table.per_family.iter().map(|(_, n)| n).sum())
    }

    /// Paths per family, sorted by family; `None` when not tracked.
    pub fn counts(&self) -> Option<Vec<(Family, u64)>> {
        Some(self.table.as_ref()?.per_family.clone())
    }

    /// Per-path entries held now (0 under [`Tracking::Counters`]).
    pub fn stored_paths(&self) -> usize {
        self.table.as_ref().map_or(0, |t| t.paths.len())
    }

    /// Per-path entries there is memory for now (0 under [`Tracking::Counters`]).
    pub fn capacity(&self) -> usize {
        self.table.as_ref().map_or(0, |t| t.paths.capacity())
    }

    /// Kept routes (empty unless [`Tracking::Routes`]).
    pub fn routes(&self) -> impl Iterator<Item = (&PathKey, &A)> {
        self.table
            .iter()
            .flat_map(|t| t.paths.iter())
            .filter_map(|(k, a)| a.as_ref().map(|a| (k, a)))
    }

    /// The session went down: the peer's routes are gone, and so is the memory that held
    /// them. The NLRI counters stay.
    pub fn clear(&mut self) {
        if let Some(table) = &mut self.table {
            table.paths = HashMap::new();
            table.per_family.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn v4(i: u32) -> PathKey {
        (Prefix::host(Ipv4Addr::from(0x0a00_0000 + i).into()), None)
    }

    #[test]
    fn the_mode_is_the_least_the_session_needs() {
        assert_eq!(Tracking::for_session(false, false), Tracking::Counters);
        assert_eq!(Tracking::for_session(true, false), Tracking::Paths);
        assert_eq!(Tracking::for_session(false, true), Tracking::Routes);
        assert_eq!(Tracking::for_session(true, true), Tracking::Routes);
        for t in [Tracking::Counters, Tracking::Paths, Tracking::Routes] {
            assert_eq!(AdjRibIn::<u32>::new(t).tracking(), t);
        }
    }

    #[test]
    fn counting_keeps_no_entry_and_no_table_size() {
        let mut rib: AdjRibIn<u32> = AdjRibIn::new(Tracking::Counters);
        for i in 0..10_000 {
            rib.announce(v4(i), || unreachable!("attributes are not built"));
        }
        for i in 0..10 {
            rib.withdraw(v4(i));
        }
        rib.withdraw(v4(20_000));
        assert_eq!((rib.stored_paths(), rib.capacity()), (0, 0));
        assert_eq!(rib.total(), None, "no table size is made up");
        assert_eq!(rib.count(Family::IPV4_UNICAST), None);
        assert_eq!(rib.counts(), None);
        assert_eq!(
            rib.nlri(),
            [(
                Family::IPV4_UNICAST,
                NlriCounts {
                    announced: 10_000,
                    withdrawn: 11
                }
            )]
        );
        rib.clear();
        assert_eq!(rib.nlri()[0].1.announced, 10_000, "counters are monotonic");
    }

    #[test]
    fn exact_mode_counts_replacements_once_and_withdrawals_of_known_paths_only() {
        let mut rib: AdjRibIn<u32> = AdjRibIn::new(Tracking::Paths);
        let a: Prefix = "10.0.0.1".parse().expect("p");
        let b: Prefix = "2001:db8::/64".parse().expect("p");
        rib.announce((a, None), || 1);
        rib.announce((a, None), || 2);
        rib.announce((a, Some(7)), || 3);
        rib.announce((b, None), || 4);
        assert_eq!(rib.count(Family::IPV4_UNICAST), Some(2));
        assert_eq!(rib.count(Family::IPV6_UNICAST), Some(1));
        assert_eq!(rib.routes().count(), 0, "attributes are not kept");
        rib.withdraw((a, None));
        rib.withdraw((a, None));
        rib.withdraw(("10.9.9.9".parse().expect("p"), None));
        assert_eq!(rib.total(), Some(2));
        assert_eq!(
            rib.counts(),
            Some(vec![(Family::IPV4_UNICAST, 1), (Family::IPV6_UNICAST, 1)])
        );
        assert_eq!(rib.stored_paths(), 2);
        assert_eq!(
            rib.nlri()[0].1,
            NlriCounts {
                announced: 3,
                withdrawn: 3
            }
        );
        rib.clear();
        assert_eq!(rib.total(), Some(0));
        assert_eq!(rib.capacity(), 0, "a session gone releases its memory");
    }

    #[test]
    fn keeps_attributes_when_asked() {
        let mut rib: AdjRibIn<u32> = AdjRibIn::new(Tracking::Routes);
        rib.announce(("10.0.0.0/8".parse().expect("p"), None), || 9);
        rib.announce(("10.0.0.0/8".parse().expect("p"), None), || 10);
        assert_eq!(rib.routes().map(|(_, a)| *a).collect::<Vec<_>>(), vec![10]);
        assert_eq!(rib.total(), Some(1));
    }
}
