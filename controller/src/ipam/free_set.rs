//! The free addresses of one pool as a set of disjoint intervals.
//!
//! A `BTreeMap` from interval start to interval end (both inclusive) makes "lowest free",
//! "take this one" and "give it back" O(log n) in the number of intervals, whatever the pool
//! size: a fresh IPv6 /64 is one entry. Addresses are plain numbers here; the family lives in
//! the pool.

use std::collections::BTreeMap;

/// Disjoint, non-adjacent inclusive intervals of free address numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreeRanges {
    /// start → end, inclusive; intervals never touch (adjacent ones are merged).
    intervals: BTreeMap<u128, u128>,
}

impl FreeRanges {
    /// Every number in `first..=last` free.
    pub fn full(first: u128, last: u128) -> FreeRanges {
        let mut intervals = BTreeMap::new();
        if first <= last {
            intervals.insert(first, last);
        }
        FreeRanges { intervals }
    }

    /// Whether nothing is free.
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    /// Number of disjoint intervals (a measure of fragmentation).
    pub fn interval_count(&self) -> usize {
        self.intervals.len()
    }

    /// The lowest free number, without taking it.
    pub fn lowest(&self) -> Option<u128> {
        self.intervals.first_key_value().map(|(start, _)| *start)
    }

    /// Whether `n` is free.
    pub fn contains(&self, n: u128) -> bool {
        self.interval_of(n).is_some()
    }

    fn interval_of(&self, n: u128) -> Option<(u128, u128)> {
        let (start, end) = self.intervals.range(..=n).next_back()?;
        (n <= *end).then_some((*start, *end))
    }

    /// Takes the lowest free number.
    pub fn take_lowest(&mut self) -> Option<u128> {
        let n = self.lowest()?;
        self.take(n);
        Some(n)
    }

    /// Takes `n`; returns false (and changes nothing) when it was not free.
    pub fn take(&mut self, n: u128) -> bool {
        let Some((start, end)) = self.interval_of(n) else {
            return false;
        };
        self.intervals.remove(&start);
        if start < n {
            self.intervals.insert(start, n - 1);
        }
        if n < end {
            self.intervals.insert(n + 1, end);
        }
        true
    }

    /// Makes `n` free again, merging with its neighbours; returns false when it already was.
    pub fn give_back(&mut self, n: u128) -> bool {
        if self.contains(n) {
            return false;
        }
        let mut start = n;
        let mut end = n;
        // The interval ending right below n, if any.
        if let Some(below) = n.checked_sub(1)
            && let Some((s, e)) = self.interval_of(below)
        {
            debug_assert_eq!(e, below);
            self.intervals.remove(&s);
            start = s;
        }
        // The interval starting right above n, if any.
        if let Some(above) = n.checked_add(1)
            && let Some(e) = self.intervals.remove(&above)
        {
            end = e;
        }
        self.intervals.insert(start, end);
        true
    }

    /// The free intervals in ascending order.
    pub fn intervals(&self) -> impl Iterator<Item = (u128, u128)> + '_ {
        self.intervals.iter().map(|(s, e)| (*s, *e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_lowest_first_and_merges_on_return() {
        let mut f = FreeRanges::full(10, 14);
        assert_eq!(f.take_lowest(), Some(10));
        assert_eq!(f.take_lowest(), Some(11));
        assert!(f.take(13));
        assert!(!f.take(13), "13 was already taken");
        assert_eq!(f.intervals().collect::<Vec<_>>(), vec![(12, 12), (14, 14)]);
        assert!(f.give_back(13));
        assert_eq!(f.intervals().collect::<Vec<_>>(), vec![(12, 14)]);
        assert!(f.give_back(10));
        assert!(f.give_back(11));
        assert_eq!(f.intervals().collect::<Vec<_>>(), vec![(10, 14)]);
        assert!(!f.give_back(12), "12 was free");
    }

    #[test]
    fn edges_of_the_number_space_do_not_overflow() {
        let mut f = FreeRanges::full(u128::MAX - 1, u128::MAX);
        assert!(f.take(u128::MAX));
        assert!(f.give_back(u128::MAX));
        assert_eq!(f.interval_count(), 1);
        let mut f = FreeRanges::full(0, 1);
        assert!(f.take(0));
        assert!(f.give_back(0));
        assert_eq!(f.intervals().collect::<Vec<_>>(), vec![(0, 1)]);
    }

    #[test]
    fn empties_and_refills() {
        let mut f = FreeRanges::full(5, 5);
        assert_eq!(f.take_lowest(), Some(5));
        assert!(f.is_empty());
        assert_eq!(f.take_lowest(), None);
        assert!(f.give_back(5));
        assert_eq!(f.lowest(), Some(5));
    }
}

#[cfg(test)]
mod model {
    use super::FreeRanges;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[derive(Debug, Clone)]
    enum Op {
        TakeLowest,
        Take(u128),
        GiveBack(u128),
    }

    proptest! {
        /// The interval set behaves exactly like a plain set of numbers, and stays canonical.
        #[test]
        fn matches_a_plain_set(ops in prop::collection::vec(prop_oneof![
            Just(Op::TakeLowest),
            (0u128..40).prop_map(Op::Take),
            (0u128..40).prop_map(Op::GiveBack),
        ], 0..200)) {
            let mut f = FreeRanges::full(5, 30);
            let mut model: BTreeSet<u128> = (5..=30).collect();
            for op in ops {
                match op {
                    Op::TakeLowest => {
                        let expected = model.pop_first();
                        prop_assert_eq!(f.take_lowest(), expected);
                    }
                    Op::Take(n) => prop_assert_eq!(f.take(n), model.remove(&n)),
                    Op::GiveBack(n) => prop_assert_eq!(f.give_back(n), model.insert(n)),
                }
                let mut seen = BTreeSet::new();
                let mut last_end: Option<u128> = None;
                for (s, e) in f.intervals() {
                    prop_assert!(s <= e);
                    if let Some(le) = last_end {
                        prop_assert!(s > le + 1, "intervals touch or overlap");
                    }
                    last_end = Some(e);
                    seen.extend(s..=e);
                }
                prop_assert_eq!(&seen, &model);
            }
        }
    }
}
