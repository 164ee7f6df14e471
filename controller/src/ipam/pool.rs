//! One address pool: its spec as plain inputs, its free addresses and who holds what.
//!
//! A pool knows which addresses are free and which Services hold each taken address (several
//! when they share); it does not decide who may share or which pool a Service gets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use super::free_set::FreeRanges;
use super::range::{AddressRange, AddressSpecError, Family, PoolAddresses, parse_address_spec};
use super::range::{from_number, to_number};
use super::request::ServiceRef;

/// A pool's spec as plain inputs, filled from an Eip or a standalone manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    /// The pool (Eip) name.
    pub name: String,
    /// `spec.address`: one IP, a CIDR or an inclusive range.
    pub address: String,
    /// Skip the network and broadcast address of an IPv4 CIDR (on for new pools).
    pub skip_network_broadcast: bool,
    /// `spec.disable`: hand out nothing new; existing allocations stay.
    pub disable: bool,
    /// `spec.priority`: among namespace-bound pools, lower wins.
    pub priority: i32,
    /// `spec.namespaces`: namespaces this pool is bound to.
    pub namespaces: Vec<String>,
    /// `spec.namespaceSelector.matchLabels`: binds namespaces whose labels include all of
    /// these; empty binds none.
    pub namespace_selector: BTreeMap<String, String>,
    /// Annotated `eip.openelb.kubesphere.io/is-default-eip: "true"`.
    pub is_default: bool,
    /// `metadata.creationTimestamp` as Unix seconds, if known: of two overlapping pools that
    /// hold no addresses, the older is kept.
    pub created: Option<i64>,
    /// Its status says it was accepted (`ready: true`) before: of two overlapping pools that
    /// hold no addresses, the one accepted before is kept (standalone mode knows no creation
    /// time; the status written back into the file remembers).
    pub accepted: bool,
    /// Fields set but ignored, one message each (`api::validate::eip_warnings`): reported on
    /// the Eip, changing nothing.
    pub warnings: Vec<String>,
    /// Why no node announces this pool's addresses (protocol `vip`), if so: each Service that
    /// gets one is told.
    pub not_announced: Option<String>,
}

impl PoolSpec {
    /// An enabled, unbound, non-default pool of priority 0 that skips network and broadcast.
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> PoolSpec {
        PoolSpec {
            name: name.into(),
            address: address.into(),
            skip_network_broadcast: true,
            disable: false,
            priority: 0,
            namespaces: Vec::new(),
            namespace_selector: BTreeMap::new(),
            is_default: false,
            created: None,
            accepted: false,
            warnings: Vec::new(),
            not_announced: None,
        }
    }

    /// Whether the pool is bound to a namespace with these labels, by name or selector.
    pub fn binds_namespace(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.namespaces.iter().any(|n| n == namespace)
            || (!self.namespace_selector.is_empty()
                && self
                    .namespace_selector
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v)))
    }
}

/// The Services holding one address, and the sharing key they all carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holding {
    /// Sorted, never empty.
    pub(crate) services: Vec<ServiceRef>,
    /// Equal for every holder (sharing requires it); `None` means it cannot be shared.
    pub(crate) key: Option<String>,
}

/// An address pool with its allocations.
#[derive(Debug, Clone)]
pub struct Pool {
    spec: PoolSpec,
    /// What the pool rules find wrong with `spec.address`; a pool with problems hands out
    /// nothing (it is admitted only to keep addresses Services already hold in it).
    problems: Vec<String>,
    addresses: PoolAddresses,
    free: FreeRanges,
    held: BTreeMap<u128, Holding>,
    /// sharing key → addresses held under it, to find a shareable address without a scan.
    by_key: HashMap<String, BTreeSet<u128>>,
}

impl Pool {
    /// An empty pool; fails when `spec.address` does not parse. A pool that breaks a pool rule
    /// (`api::validate::pool_address_problems`: host bits, special-purpose addresses) is built,
    /// with its [`Pool::problems`], and hands out nothing.
    pub fn new(spec: PoolSpec) -> Result<Pool, AddressSpecError> {
        let addresses = parse_address_spec(&spec.address, spec.skip_network_broadcast)?;
        Ok(Pool {
            free: FreeRanges::full(addresses.usable.first(), addresses.usable.last()),
            problems: api::validate::pool_address_problems(spec.address.trim()),
            spec,
            addresses,
            held: BTreeMap::new(),
            by_key: HashMap::new(),
        })
    }

    /// The pool name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &PoolSpec {
        &self.spec
    }

    /// Its family.
    pub fn family(&self) -> Family {
        self.addresses.spec_range.family()
    }

    /// The range new addresses come from.
    pub fn usable(&self) -> AddressRange {
        self.addresses.usable
    }

    /// Everything `spec.address` names (existing allocations anywhere in here are kept).
    pub fn spec_range(&self) -> AddressRange {
        self.addresses.spec_range
    }

    /// Number of addresses it hands out.
    pub fn size(&self) -> u128 {
        self.addresses.usable.size()
    }

    /// Number of addresses held by at least one Service.
    pub fn usage(&self) -> usize {
        self.held.len()
    }

    /// Whether no address is free (sharing may still be possible).
    pub fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    /// Whether new allocations may come from it: not disabled, and no pool rule broken.
    pub fn is_enabled(&self) -> bool {
        !self.spec.disable && self.problems.is_empty()
    }

    /// What the pool rules find wrong with its address (empty for a sound pool).
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Whether anything is allocated from it.
    pub fn in_use(&self) -> bool {
        !self.held.is_empty()
    }

    /// Whether `ip` lies in the range its spec names.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.addresses.spec_range.contains(ip)
    }

    /// Who holds `ip` (empty when free or outside).
    pub fn holders(&self, ip: IpAddr) -> &[ServiceRef] {
        if Family::of(ip) != self.family() {
            return &[];
        }
        self.held
            .get(&to_number(ip))
            .map_or(&[], |h| h.services.as_slice())
    }

    /// Every held address with its holders, in address order.
    pub fn allocations(&self) -> impl Iterator<Item = (IpAddr, &[ServiceRef])> + '_ {
        let family = self.family();
        self.held
            .iter()
            .map(move |(n, h)| (from_number(family, *n), h.services.as_slice()))
    }

    /// Number of free intervals (fragmentation), for diagnostics.
    pub fn free_interval_count(&self) -> usize {
        self.free.interval_count()
    }

    pub(crate) fn holding(&self, n: u128) -> Option<&Holding> {
        self.held.get(&n)
    }

    /// Whether `ip` is free to hand out.
    pub fn is_free(&self, ip: IpAddr) -> bool {
        Family::of(ip) == self.family() && self.free.contains(to_number(ip))
    }

    pub(crate) fn lowest_free(&self) -> Option<u128> {
        self.free.lowest()
    }

    /// Addresses held under `key`, ascending.
    pub(crate) fn shared_under(&self, key: &str) -> impl Iterator<Item = u128> + '_ {
        self.by_key.get(key).into_iter().flatten().copied()
    }

    /// Adds `service` as a holder of `n` (which must lie in the spec range); the caller has
    /// checked the sharing rules.
    pub(crate) fn hold(&mut self, n: u128, service: ServiceRef, key: Option<&str>) {
        debug_assert!(self.addresses.spec_range.contains_number(n));
        match self.held.get_mut(&n) {
            Some(holding) => {
                if let Err(at) = holding.services.binary_search(&service) {
                    holding.services.insert(at, service);
                }
            }
            None => {
                // Network/broadcast kept from an older allocation are never in `free`.
                self.free.take(n);
                if let Some(key) = key {
                    self.by_key.entry(key.to_string()).or_default().insert(n);
                }
                self.held.insert(
                    n,
                    Holding {
                        services: vec![service],
                        key: key.map(str::to_string),
                    },
                );
            }
        }
    }

    /// Removes `service` as a holder of `n`; frees it when nobody is left.
    pub(crate) fn unhold(&mut self, n: u128, service: &ServiceRef) {
        let Some(holding) = self.held.get_mut(&n) else {
            return;
        };
        if let Ok(at) = holding.services.binary_search(service) {
            holding.services.remove(at);
        }
        if !holding.services.is_empty() {
            return;
        }
        if let Some(key) = holding.key.take()
            && let Some(set) = self.by_key.get_mut(&key)
        {
            set.remove(&n);
            if set.is_empty() {
                self.by_key.remove(&key);
            }
        }
        self.held.remove(&n);
        if self.addresses.usable.contains_number(n) {
            self.free.give_back(n);
        }
    }

    /// Every holding, for moving them into a reshaped pool.
    pub(crate) fn into_holdings(self) -> impl Iterator<Item = (u128, Holding)> {
        self.held.into_iter()
    }

    /// Lets the spec change without touching addresses (when `address` and the skip flag stay).
    pub(crate) fn set_spec(&mut self, spec: PoolSpec) {
        self.spec = spec;
    }

    /// Records what the pool rules find wrong (a pool kept only for the addresses it holds).
    pub(crate) fn set_problems(&mut self, problems: Vec<String>) {
        self.problems = problems;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn holding_takes_from_free_and_unholding_gives_back() {
        let mut p = Pool::new(PoolSpec::new("p", "10.0.0.0/30")).expect("valid");
        assert_eq!(p.size(), 2);
        let a = ServiceRef::new("ns", "a");
        let n = to_number(ip("10.0.0.1"));
        p.hold(n, a.clone(), None);
        assert_eq!(p.usage(), 1);
        assert_eq!(p.lowest_free(), Some(to_number(ip("10.0.0.2"))));
        p.unhold(n, &a);
        assert_eq!(p.usage(), 0);
        assert_eq!(p.lowest_free(), Some(n));
    }

    #[test]
    fn a_kept_network_address_never_becomes_free() {
        let mut p = Pool::new(PoolSpec::new("p", "10.0.0.0/30")).expect("valid");
        let a = ServiceRef::new("ns", "a");
        let net = to_number(ip("10.0.0.0"));
        p.hold(net, a.clone(), None);
        assert_eq!(p.holders(ip("10.0.0.0")), std::slice::from_ref(&a));
        p.unhold(net, &a);
        assert!(!p.is_free(ip("10.0.0.0")));
        assert_eq!(p.usage(), 0);
    }

    #[test]
    fn shared_addresses_are_indexed_by_key() {
        let mut p = Pool::new(PoolSpec::new("p", "10.0.0.0/29")).expect("valid");
        let (a, b) = (ServiceRef::new("ns", "a"), ServiceRef::new("ns", "b"));
        let n = to_number(ip("10.0.0.3"));
        p.hold(n, a.clone(), Some("k"));
        p.hold(n, b.clone(), Some("k"));
        assert_eq!(p.shared_under("k").collect::<Vec<_>>(), vec![n]);
        p.unhold(n, &a);
        assert_eq!(p.holders(ip("10.0.0.3")), std::slice::from_ref(&b));
        p.unhold(n, &b);
        assert_eq!(p.shared_under("k").count(), 0);
        assert!(p.is_free(ip("10.0.0.3")));
    }

    #[test]
    fn namespace_binding_by_name_or_selector() {
        let mut s = PoolSpec::new("p", "10.0.0.0/24");
        let labels = BTreeMap::from([("team".to_string(), "red".to_string())]);
        assert!(
            !s.binds_namespace("x", &labels),
            "empty selector binds none"
        );
        s.namespaces = vec!["x".into()];
        assert!(s.binds_namespace("x", &BTreeMap::new()));
        s.namespaces.clear();
        s.namespace_selector = labels.clone();
        assert!(s.binds_namespace("y", &labels));
        assert!(!s.binds_namespace("y", &BTreeMap::new()));
    }
}
