//! The numbers an Eip's status reports, computed from a pool.
//!
//! Same meaning as OpenELB's fields so dashboards keep working: `used` maps each address to
//! `namespace/name`, several sharing Services joined by `;`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::pool::Pool;
use super::range::Family;

/// Eip status numbers for one pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStatus {
    /// Addresses held by at least one Service.
    pub usage: usize,
    /// Addresses the pool hands out (network and broadcast excluded when skipped), exact: only
    /// `::/0` (2^128 addresses, refused by the pool rules for holding `::`) saturates at
    /// `u128::MAX`. Clamp when writing into a narrower field (`decision::eip_status` does).
    pub pool_size: u128,
    /// Address → `namespace/name[;namespace/name…]`.
    pub used: BTreeMap<String, String>,
    /// First address handed out.
    pub first_ip: IpAddr,
    /// Last address handed out.
    pub last_ip: IpAddr,
    /// No address is free.
    pub occupied: bool,
    /// The pool is IPv4.
    pub v4: bool,
}

impl Pool {
    /// The Eip status numbers for this pool.
    pub fn status(&self) -> PoolStatus {
        let used = self
            .allocations()
            .map(|(ip, holders)| {
                let names: Vec<String> = holders.iter().map(ToString::to_string).collect();
                (ip.to_string(), names.join(";"))
            })
            .collect();
        PoolStatus {
            usage: self.usage(),
            pool_size: self.size(),
            used,
            first_ip: self.usable().first_ip(),
            last_ip: self.usable().last_ip(),
            occupied: self.is_full(),
            v4: self.family() == Family::V4,
        }
    }
}
