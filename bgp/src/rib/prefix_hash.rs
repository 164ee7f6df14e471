//! A fast hasher for the route tables keyed by `Prefix` (and by attribute pointer). std's
//! SipHash was a quarter of the sender's profile when loading a million routes; these keys
//! are a few integers, and they come from our own configuration, not from peers, so
//! resistance to chosen-key flooding buys nothing here. The mixing is FxHash's
//! multiply-add with a final rotation (as in rustc-hash 2) that moves the well-mixed high
//! bits of the product to where hashbrown takes its bucket index, so sequential
//! addresses spread over the table.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiplier from rustc-hash 2 (odd, with well-spread bits).
const K: u64 = 0xf135_7aea_2e62_a9c5;

/// An FxHash-style hasher; see the module comment for when it is fit.
#[derive(Clone, Copy, Default, Debug)]
pub struct PrefixHasher {
    hash: u64,
}

impl PrefixHasher {
    fn add(&mut self, word: u64) {
        self.hash = self.hash.wrapping_add(word).wrapping_mul(K);
    }
}

impl Hasher for PrefixHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // The length keeps "ab" and "ab\0" apart.
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash.rotate_left(26)
    }
}

/// Builds [`PrefixHasher`]s.
pub type BuildPrefixHasher = BuildHasherDefault<PrefixHasher>;

/// A `HashMap` hashing with [`PrefixHasher`].
pub type PrefixMap<K, V> = HashMap<K, V, BuildPrefixHasher>;

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;
    use std::net::Ipv4Addr;

    use super::*;
    use crate::rib::Prefix;

    #[test]
    fn sequential_hosts_spread_over_buckets() {
        // hashbrown takes the bucket from the low bits: 4,096 sequential /32s should
        // fill most of 4,096 buckets, not pile into a few.
        let build = BuildPrefixHasher::default();
        let buckets: HashSet<u64> = (0..4096u32)
            .map(|i| {
                let p = Prefix::host(Ipv4Addr::from(0x0A00_0000 + i).into());
                build.hash_one(p) & 4095
            })
            .collect();
        assert!(buckets.len() > 2000, "{} buckets used", buckets.len());
    }

    #[test]
    fn byte_strings_of_different_length_differ() {
        let build = BuildPrefixHasher::default();
        assert_ne!(
            build.hash_one(b"ab".as_slice()),
            build.hash_one(b"ab\0".as_slice())
        );
    }
}
