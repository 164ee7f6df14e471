//! The allocator: every pool and every Service's addresses, changed only through
//! allocate / release / pool updates, so "who holds what" is always consistent.
//!
//! Allocation is idempotent: asking again for a Service that already holds a fitting address
//! returns the same address (a restart or a resync never moves one). A refused request changes
//! nothing, so a Service keeps what it had. No I/O, no Kubernetes types.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::dual_stack::combine;
use super::error::AllocationError;
use super::pool::{Pool, PoolSpec};
use super::range::{AddressSpecError, Family, from_number, to_number};
use super::request::{AllocationRequest, ServiceRef};
use super::selection::choose_pool;
use super::sharing::{SharingTerms, may_share};

/// One address held by a Service, with the pool it comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AssignedAddress {
    /// The address.
    pub address: IpAddr,
    /// The pool (Eip) name.
    pub pool: String,
}

/// The result of [`Allocator::allocate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The Service's addresses, in its family order (write them to `status.loadBalancer.ingress`
    /// in this order).
    pub addresses: Vec<AssignedAddress>,
    /// Addresses the Service held before and no longer does (its request changed).
    pub released: Vec<AssignedAddress>,
    /// `PreferDualStack` families that could not be served, and why.
    pub missing: Vec<(Family, AllocationError)>,
    /// Whether anything changed (false for a repeated, already satisfied request).
    pub changed: bool,
}

/// Why a pool spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// `spec.address` does not parse.
    #[error(transparent)]
    InvalidAddress(#[from] AddressSpecError),
    /// `spec.address` breaks a pool rule (host bits, special-purpose addresses).
    #[error("pool {pool:?} is invalid and hands out nothing: {}", problems.join("; "))]
    Invalid {
        /// The refused pool.
        pool: String,
        /// What is wrong, one message per rule.
        problems: Vec<String>,
    },
    /// The range overlaps another pool's, which could hand out one address twice.
    #[error(
        "pool {pool:?} overlaps pool {other:?}, which was there first; it holds nothing until the ranges are disjoint"
    )]
    Overlaps {
        /// The refused pool.
        pool: String,
        /// The pool it overlaps.
        other: String,
    },
    /// The pool still has allocations and cannot be removed.
    #[error("pool {pool:?} is in use by {}; it stays until they release their addresses", services.join(", "))]
    InUse {
        /// The pool.
        pool: String,
        /// Who holds addresses from it, as `namespace/name` (at most 10).
        services: Vec<String>,
    },
}

/// The result of [`Allocator::upsert_pool`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolUpdate {
    /// Allocations the new range no longer covers; they are released, and their Services need
    /// a new allocation.
    pub evicted: Vec<(ServiceRef, AssignedAddress)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Assignment {
    pub(crate) addresses: Vec<AssignedAddress>,
    pub(crate) terms: SharingTerms,
}

/// A planned address for one family.
#[derive(Debug, Clone)]
struct Plan {
    pool: String,
    address: IpAddr,
    kept: bool,
}

/// All pools and all allocations.
#[derive(Debug, Clone, Default)]
pub struct Allocator {
    pub(crate) pools: BTreeMap<String, Pool>,
    pub(crate) services: HashMap<ServiceRef, Assignment>,
}

impl Allocator {
    /// No pools, no allocations. To start from existing allocations use
    /// [`Allocator::rebuild`].
    pub fn new() -> Allocator {
        Allocator::default()
    }

    /// Gives `request.service` one address per wanted family, keeping any it already holds
    /// that still fit the request. On error nothing changes.
    pub fn allocate(&mut self, request: &AllocationRequest) -> Result<Allocation, AllocationError> {
        let wanted = request.wanted_families()?;
        let current: &[AssignedAddress] = self
            .services
            .get(&request.service)
            .map_or(&[], |a| a.addresses.as_slice());
        let outcomes = wanted
            .iter()
            .map(|&family| {
                let held = current
                    .iter()
                    .find(|a| Family::of(a.address) == family && self.still_fits(a, request));
                let plan = match held {
                    Some(a) => Ok(Plan {
                        pool: a.pool.clone(),
                        address: a.address,
                        kept: true,
                    }),
                    None => self.plan_new(request, family),
                };
                (family, plan)
            })
            .collect();
        let (served, missing) = combine(request.policy, outcomes, |f| {
            request.address_of(f).is_some()
        })?;

        let kept_all = served.iter().all(|(_, p)| p.kept);
        let addresses: Vec<AssignedAddress> = served
            .into_iter()
            .map(|(_, p)| AssignedAddress {
                address: p.address,
                pool: p.pool,
            })
            .collect();
        let previous = self.services.get(&request.service);
        let released: Vec<AssignedAddress> = previous
            .map(|a| {
                a.addresses
                    .iter()
                    .filter(|x| !addresses.contains(x))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let changed = previous
            .is_none_or(|a| !kept_all || !released.is_empty() || a.terms != request.sharing);
        if changed {
            if previous.is_some() {
                // Re-hold everything so a changed sharing key is recorded on the address.
                self.release(&request.service);
            }
            for a in &addresses {
                if let Some(pool) = self.pools.get_mut(&a.pool) {
                    pool.hold(
                        to_number(a.address),
                        request.service.clone(),
                        request.sharing.key.as_deref(),
                    );
                }
            }
            self.services.insert(
                request.service.clone(),
                Assignment {
                    addresses: addresses.clone(),
                    terms: request.sharing.clone(),
                },
            );
        }
        Ok(Allocation {
            addresses,
            released,
            missing,
            changed,
        })
    }

    /// Whether an address the Service holds still satisfies its (possibly changed) request.
    /// A disabled pool or a changed namespace binding does not move an address.
    fn still_fits(&self, held: &AssignedAddress, request: &AllocationRequest) -> bool {
        let family = Family::of(held.address);
        let Some(pool) = self.pools.get(&held.pool) else {
            return false;
        };
        request.address_of(family).is_none_or(|a| a == held.address)
            && (request.pools.is_empty() || request.pools.contains(&held.pool))
            && self
                .check_join(pool, to_number(held.address), request)
                .is_ok()
    }

    /// Picks a new address of `family` without changing anything.
    fn plan_new(
        &self,
        request: &AllocationRequest,
        family: Family,
    ) -> Result<Plan, AllocationError> {
        if let Some(address) = request.address_of(family)
            && let Some(what) = api::validate::special_purpose(address)
        {
            return Err(AllocationError::InvalidRequest {
                field: "requested address".into(),
                value: address.to_string(),
                reason: format!("{what} is never a load-balancer address"),
            });
        }
        let pick = choose_pool(&self.pools, request, family)?;
        let pool = pick.pool;
        let plan = |n: u128| Plan {
            pool: pool.name().to_string(),
            address: from_number(family, n),
            kept: false,
        };
        if let Some(n) = pick.requested {
            self.check_join(pool, n, request)?;
            return Ok(plan(n));
        }
        if let Some(key) = &request.sharing.key
            && let Some(n) = pool
                .shared_under(key)
                .find(|n| self.check_join(pool, *n, request).is_ok())
        {
            return Ok(plan(n));
        }
        pool.lowest_free()
            .map(plan)
            .ok_or_else(|| AllocationError::PoolExhausted {
                pool: pool.name().to_string(),
            })
    }

    /// Whether `request.service` may hold address `n` of `pool` beside its current holders.
    pub(crate) fn check_join(
        &self,
        pool: &Pool,
        n: u128,
        request: &AllocationRequest,
    ) -> Result<(), AllocationError> {
        let Some(holding) = pool.holding(n) else {
            return Ok(());
        };
        let others = || holding.services.iter().filter(|s| **s != request.service);
        for other in others() {
            let Some(terms) = self.services.get(other).map(|a| &a.terms) else {
                continue;
            };
            if let Err(refusal) = may_share(terms, &request.sharing) {
                return Err(AllocationError::AddressTaken {
                    address: from_number(pool.family(), n),
                    holders: others().map(ToString::to_string).collect(),
                    refusal,
                });
            }
        }
        Ok(())
    }

    /// Releases every address of `service`; returns what it held.
    pub fn release(&mut self, service: &ServiceRef) -> Vec<AssignedAddress> {
        let Some(assignment) = self.services.remove(service) else {
            return Vec::new();
        };
        for a in &assignment.addresses {
            if let Some(pool) = self.pools.get_mut(&a.pool) {
                pool.unhold(to_number(a.address), service);
            }
        }
        assignment.addresses
    }

    /// The addresses `service` holds (empty when none), in its family order.
    pub fn addresses_of(&self, service: &ServiceRef) -> &[AssignedAddress] {
        self.services
            .get(service)
            .map_or(&[], |a| a.addresses.as_slice())
    }

    /// Every Service holding an address, in no particular order.
    pub fn services(&self) -> impl Iterator<Item = (&ServiceRef, &[AssignedAddress])> + '_ {
        self.services
            .iter()
            .map(|(s, a)| (s, a.addresses.as_slice()))
    }

    /// Adds a pool or changes one. Allocations still inside a changed range stay; the others
    /// are released and reported. A refused spec changes nothing, except that a pool nobody
    /// holds an address in is dropped when its new spec breaks a pool rule. A pool that breaks
    /// a pool rule while Services hold addresses in it (an upgrade brought the rule) keeps them
    /// and hands out nothing: `Ok`, with [`Pool::problems`] to report.
    pub fn upsert_pool(&mut self, spec: PoolSpec) -> Result<PoolUpdate, PoolError> {
        let fresh = Pool::new(spec.clone())?;
        if !fresh.problems().is_empty() {
            let problems = fresh.problems().to_vec();
            match self.pools.get_mut(&spec.name) {
                Some(old)
                    if old.in_use()
                        && old.spec().address == spec.address
                        && old.spec().skip_network_broadcast == spec.skip_network_broadcast =>
                {
                    old.set_spec(spec);
                    old.set_problems(problems);
                    return Ok(PoolUpdate::default());
                }
                Some(old) if !old.in_use() => {
                    self.pools.remove(&spec.name);
                }
                _ => {}
            }
            return Err(PoolError::Invalid {
                pool: spec.name,
                problems,
            });
        }
        self.upsert_sound_pool(spec, fresh)
    }

    /// Admits a pool at [`Allocator::rebuild`]: one that breaks a pool rule is admitted only
    /// when `holds_claims` (Services hold addresses in it), to keep them.
    pub(crate) fn admit_pool(
        &mut self,
        spec: PoolSpec,
        holds_claims: bool,
    ) -> Result<(), PoolError> {
        let fresh = Pool::new(spec.clone())?;
        if !fresh.problems().is_empty() && !holds_claims {
            return Err(PoolError::Invalid {
                pool: spec.name,
                problems: fresh.problems().to_vec(),
            });
        }
        self.upsert_sound_pool(spec, fresh).map(|_| ())
    }

    fn upsert_sound_pool(
        &mut self,
        spec: PoolSpec,
        mut fresh: Pool,
    ) -> Result<PoolUpdate, PoolError> {
        if let Some(other) = self
            .pools
            .values()
            .find(|p| p.name() != spec.name && p.spec_range().overlaps(&fresh.spec_range()))
        {
            return Err(PoolError::Overlaps {
                pool: spec.name,
                other: other.name().to_string(),
            });
        }
        let Some(old) = self.pools.remove(&spec.name) else {
            self.pools.insert(spec.name.clone(), fresh);
            return Ok(PoolUpdate::default());
        };
        if old.spec().address == spec.address
            && old.spec().skip_network_broadcast == spec.skip_network_broadcast
        {
            let mut same = old;
            same.set_spec(spec);
            self.pools.insert(same.name().to_string(), same);
            return Ok(PoolUpdate::default());
        }
        let family = old.family();
        let mut update = PoolUpdate::default();
        for (n, holding) in old.into_holdings() {
            let address = from_number(family, n);
            if fresh.contains(address) {
                for s in holding.services {
                    fresh.hold(n, s, holding.key.as_deref());
                }
                continue;
            }
            for s in holding.services {
                let gone = AssignedAddress {
                    address,
                    pool: spec.name.clone(),
                };
                if let Some(a) = self.services.get_mut(&s) {
                    a.addresses.retain(|x| *x != gone);
                    if a.addresses.is_empty() {
                        self.services.remove(&s);
                    }
                }
                update.evicted.push((s, gone));
            }
        }
        self.pools.insert(spec.name, fresh);
        Ok(update)
    }

    /// Whether any Service holds an address from pool `name` (the reconciler keeps the Eip's
    /// finalizer while this is true).
    pub fn pool_in_use(&self, name: &str) -> bool {
        self.pools.get(name).is_some_and(Pool::in_use)
    }

    /// Removes pool `name`, refused while it is in use; removing an unknown pool is a no-op.
    pub fn remove_pool(&mut self, name: &str) -> Result<(), PoolError> {
        if let Some(pool) = self.pools.get(name)
            && pool.in_use()
        {
            let mut services: Vec<String> = pool
                .allocations()
                .flat_map(|(_, holders)| holders.iter().map(ToString::to_string))
                .collect();
            services.sort();
            services.dedup();
            services.truncate(10);
            return Err(PoolError::InUse {
                pool: name.to_string(),
                services,
            });
        }
        self.pools.remove(name);
        Ok(())
    }

    /// The pool called `name`.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.get(name)
    }

    /// Every pool, by name.
    pub fn pools(&self) -> impl Iterator<Item = &Pool> + '_ {
        self.pools.values()
    }
}
