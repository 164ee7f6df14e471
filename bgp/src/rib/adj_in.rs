//! What we received from one peer. A Berth speaker imports nothing by default (DESIGN.md,
//! "safe by default"): received routes are counted per family against the max-prefix
//! limit, and their attributes are kept only when asked.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::route::Prefix;
use crate::wire::iana::Family;

/// One received path: the prefix and its ADD-PATH identifier, if any.
pub type PathKey = (Prefix, Option<u32>);

/// The Adj-RIB-In of one peer, counting by default; `A` is the attribute type kept when
/// asked to keep routes.
#[derive(Debug)]
pub struct AdjRibIn<A> {
    paths: HashMap<PathKey, Option<A>>,
    per_family: HashMap<Family, u64>,
    keep: bool,
}

impl<A> AdjRibIn<A> {
    /// An empty table; `keep` says whether attributes are stored.
    pub fn new(keep: bool) -> Self {
        Self {
            paths: HashMap::new(),
            per_family: HashMap::new(),
            keep,
        }
    }

    /// Records an announcement (a replacement when the path is known).
    pub fn announce(&mut self, key: PathKey, attrs: impl FnOnce() -> A) {
        let value = self.keep.then(attrs);
        match self.paths.entry(key) {
            Entry::Occupied(mut o) => {
                o.insert(value);
            }
            Entry::Vacant(v) => {
                v.insert(value);
                *self.per_family.entry(key.0.family()).or_default() += 1;
            }
        }
    }

    /// Records a withdrawal.
    pub fn withdraw(&mut self, key: PathKey) {
        if self.paths.remove(&key).is_some()
            && let Some(n) = self.per_family.get_mut(&key.0.family())
        {
            *n -= 1;
        }
    }

    /// Received paths of one family.
    pub fn count(&self, family: Family) -> u64 {
        self.per_family.get(&family).copied().unwrap_or(0)
    }

    /// Received paths of all families.
    pub fn total(&self) -> u64 {
        self.per_family.values().sum()
    }

    /// Counts per family.
    pub fn counts(&self) -> Vec<(Family, u64)> {
        let mut v: Vec<_> = self.per_family.iter().map(|(f, n)| (*f, *n)).collect();
        v.sort();
        v
    }

    /// Kept routes (empty unless keeping).
    pub fn routes(&self) -> impl Iterator<Item = (&PathKey, &A)> {
        self.paths
            .iter()
            .filter_map(|(k, a)| a.as_ref().map(|a| (k, a)))
    }

    /// The session went down: the peer's routes are gone.
    pub fn clear(&mut self) {
        self.paths.clear();
        self.per_family.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_family_and_replacements_do_not_count_twice() {
        let mut rib: AdjRibIn<u32> = AdjRibIn::new(false);
        let a: Prefix = "10.0.0.1".parse().expect("p");
        let b: Prefix = "2001:db8::/64".parse().expect("p");
        rib.announce((a, None), || 1);
        rib.announce((a, None), || 2);
        rib.announce((a, Some(7)), || 3);
        rib.announce((b, None), || 4);
        assert_eq!(rib.count(Family::IPV4_UNICAST), 2);
        assert_eq!(rib.count(Family::IPV6_UNICAST), 1);
        assert_eq!(rib.routes().count(), 0, "not kept by default");
        rib.withdraw((a, None));
        rib.withdraw((a, None));
        assert_eq!(rib.total(), 2);
        rib.clear();
        assert_eq!(rib.total(), 0);
    }

    #[test]
    fn keeps_attributes_when_asked() {
        let mut rib: AdjRibIn<u32> = AdjRibIn::new(true);
        rib.announce(("10.0.0.0/8".parse().expect("p"), None), || 9);
        assert_eq!(rib.routes().map(|(_, a)| *a).collect::<Vec<_>>(), vec![9]);
    }
}
