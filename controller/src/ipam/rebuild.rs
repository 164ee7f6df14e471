//! Restart safety: the allocator rebuilt from the addresses Services already hold.
//!
//! Run before allocating anything. The result depends only on the set of pools and claims,
//! never on the order they arrive in: claims are applied oldest first (creation time, then
//! `namespace/name`), so when two Services claim one address without a valid sharing key, the
//! earlier keeps it and the later is reported as refused. An address is kept wherever it lies
//! in its pool's spec range, even on a skipped network or broadcast address or in a disabled
//! pool: a restart never moves an address.

use std::net::IpAddr;

use super::allocator::{Allocator, AssignedAddress, Assignment, PoolError};
use super::error::AllocationError;
use super::pool::PoolSpec;
use super::range::{Family, parse_address_spec, to_number};
use super::request::{AllocationRequest, ServiceRef};

/// Addresses a Service already holds (from its `status.loadBalancer.ingress`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingClaim {
    /// The Service's current request (its sharing terms decide who may share).
    pub request: AllocationRequest,
    /// The addresses in its status.
    pub addresses: Vec<IpAddr>,
    /// `metadata.creationTimestamp` as Unix seconds; `None` sorts after every timestamp.
    pub created: Option<i64>,
}

/// An address a claim could not keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Who claimed it.
    pub service: ServiceRef,
    /// The address.
    pub address: IpAddr,
    /// Why it was refused (e.g. `AddressTaken` by the earlier Service).
    pub error: AllocationError,
}

/// The result of [`Allocator::rebuild`].
#[derive(Debug, Clone)]
pub struct Rebuilt {
    /// The allocator holding every kept claim.
    pub allocator: Allocator,
    /// Pools that were refused (invalid address, overlap with a pool kept before it).
    pub pool_errors: Vec<(String, PoolError)>,
    /// Claims that could not be kept, sorted by Service then address.
    pub refused: Vec<Refusal>,
}

impl Allocator {
    /// Builds the allocator from pool specs and existing claims; see the module docs.
    ///
    /// Of two overlapping pools the one kept is, in this order: the one accepted before (its
    /// status says ready, `PoolSpec::accepted`; a pool that handed out the addresses Services
    /// hold was), the one whose range holds addresses Services hold, the older
    /// (`PoolSpec::created`), the one whose name sorts first. So adding a pool never takes an
    /// address away, and a restart or a leader change keeps the pool it kept before. A pool
    /// that breaks a pool rule is kept only when Services hold addresses in it, handing out
    /// nothing.
    pub fn rebuild(
        pools: impl IntoIterator<Item = PoolSpec>,
        claims: impl IntoIterator<Item = ExistingClaim>,
    ) -> Rebuilt {
        let mut allocator = Allocator::new();
        let mut pool_errors = Vec::new();
        let claims: Vec<ExistingClaim> = claims.into_iter().collect();
        let mut claimed: Vec<u128> = Vec::new();
        let mut claimed_v6: Vec<u128> = Vec::new();
        for address in claims.iter().flat_map(|c| c.addresses.iter()) {
            match Family::of(*address) {
                Family::V4 => claimed.push(to_number(*address)),
                Family::V6 => claimed_v6.push(to_number(*address)),
            }
        }
        claimed.sort_unstable();
        claimed_v6.sort_unstable();
        let holds_claims = |spec: &PoolSpec| {
            let Ok(range) = parse_address_spec(&spec.address, spec.skip_network_broadcast) else {
                return false;
            };
            let range = range.spec_range;
            let sorted = match range.family() {
                Family::V4 => &claimed,
                Family::V6 => &claimed_v6,
            };
            let from = sorted.partition_point(|n| *n < range.first());
            sorted.get(from).is_some_and(|n| *n <= range.last())
        };
        let mut specs: Vec<(bool, PoolSpec)> = pools
            .into_iter()
            .map(|spec| (holds_claims(&spec), spec))
            .collect();
        specs.sort_by(|(held_a, a), (held_b, b)| {
            (
                !a.accepted,
                !held_a,
                a.created.is_none(),
                a.created,
                &a.name,
                &a.address,
            )
                .cmp(&(
                    !b.accepted,
                    !held_b,
                    b.created.is_none(),
                    b.created,
                    &b.name,
                    &b.address,
                ))
        });
        for (held, spec) in specs {
            let name = spec.name.clone();
            if let Err(e) = allocator.admit_pool(spec, held) {
                pool_errors.push((name, e));
            }
        }

        let mut claims = claims;
        for c in &mut claims {
            c.addresses.sort();
            c.addresses.dedup();
        }
        // Sort references: claims are large and moving them dominated the rebuild.
        let mut order: Vec<&ExistingClaim> = claims.iter().collect();
        order.sort_unstable_by(|a, b| {
            (a.created.is_none(), a.created, &a.request.service)
                .cmp(&(b.created.is_none(), b.created, &b.request.service))
                .then_with(|| a.addresses.cmp(&b.addresses))
                .then_with(|| a.request.cmp(&b.request))
        });
        let mut refused = Vec::new();
        for claim in order {
            for &address in &claim.addresses {
                if let Err(error) = allocator.restore(&claim.request, address) {
                    refused.push(Refusal {
                        service: claim.request.service.clone(),
                        address,
                        error,
                    });
                }
            }
        }
        refused.sort_by(|a, b| (&a.service, a.address).cmp(&(&b.service, b.address)));
        Rebuilt {
            allocator,
            pool_errors,
            refused,
        }
    }

    /// Records that `request.service` holds `address`, if no earlier claim prevents it.
    fn restore(
        &mut self,
        request: &AllocationRequest,
        address: IpAddr,
    ) -> Result<(), AllocationError> {
        let held = self.addresses_of(&request.service);
        if held.iter().any(|a| a.address == address) {
            return Ok(());
        }
        if let Some(other) = held
            .iter()
            .find(|a| Family::of(a.address) == Family::of(address))
        {
            return Err(AllocationError::ConflictingRequest(format!(
                "{} already holds {} ({}); a Service holds one address per family",
                request.service,
                other.address,
                Family::of(address)
            )));
        }
        let pool = self
            .pools
            .values()
            .find(|p| p.contains(address))
            .ok_or(AllocationError::AddressNotInAnyPool { address })?;
        let n = to_number(address);
        self.check_join(pool, n, request)?;
        let pool_name = pool.name().to_string();
        if let Some(pool) = self.pools.get_mut(&pool_name) {
            pool.hold(n, request.service.clone(), request.sharing.key.as_deref());
        }
        match self.services.get_mut(&request.service) {
            None => {
                self.services.insert(
                    request.service.clone(),
                    Assignment {
                        addresses: vec![AssignedAddress {
                            address,
                            pool: pool_name,
                        }],
                        terms: request.sharing.clone(),
                    },
                );
            }
            Some(assignment) => {
                assignment.addresses.push(AssignedAddress {
                    address,
                    pool: pool_name,
                });
                // Family order as the Service wants it, so a later allocate reports the same.
                let order = request.wanted_families().unwrap_or_default();
                assignment.addresses.sort_by_key(|a| {
                    let f = Family::of(a.address);
                    order.iter().position(|x| *x == f).unwrap_or(order.len())
                });
            }
        }
        Ok(())
    }
}
