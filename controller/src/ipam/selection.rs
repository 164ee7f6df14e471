//! Which pool serves one family of a request, in OpenELB's order.
//!
//! 1. a requested address: the pool whose range holds it (restricted to the named pools, if any);
//! 2. named pools (`eip.openelb.kubesphere.io/v1alpha2` / `metallb.io/address-pool`);
//! 3. pools bound to the Service's namespace (by `spec.namespaces` or `spec.namespaceSelector`):
//!    not full first, then lowest `spec.priority`, then name;
//! 4. the default pool (`is-default-eip`);
//! 5. otherwise a clear error.
//!
//! Disabled pools hand out nothing new. This module only chooses; it changes nothing.

use std::collections::BTreeMap;

use super::error::AllocationError;
use super::pool::Pool;
use super::range::{Family, to_number};
use super::request::AllocationRequest;

/// The pool chosen for one family, and the requested address in it, if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pick<'a> {
    pub(crate) pool: &'a Pool,
    pub(crate) requested: Option<u128>,
}

/// Ranks candidate pools: not full first, then lowest priority, then name.
fn best<'a>(candidates: impl Iterator<Item = &'a Pool>) -> Option<&'a Pool> {
    candidates.min_by(|a, b| {
        (a.is_full(), a.spec().priority, a.name()).cmp(&(b.is_full(), b.spec().priority, b.name()))
    })
}

/// Chooses the pool for `family` of `request`.
pub(crate) fn choose_pool<'a>(
    pools: &'a BTreeMap<String, Pool>,
    request: &AllocationRequest,
    family: Family,
) -> Result<Pick<'a>, AllocationError> {
    for name in &request.pools {
        if !pools.contains_key(name) {
            return Err(AllocationError::PoolNotFound { pool: name.clone() });
        }
    }
    let named = || {
        request
            .pools
            .iter()
            .filter_map(|n| pools.get(n))
            .filter(move |p| p.family() == family)
    };

    if let Some(address) = request.address_of(family) {
        let pool = if request.pools.is_empty() {
            pools
                .values()
                .find(|p| p.contains(address))
                .ok_or(AllocationError::AddressNotInAnyPool { address })?
        } else {
            named().find(|p| p.contains(address)).ok_or_else(|| {
                AllocationError::AddressNotInPool {
                    address,
                    pool: request.pools.join(","),
                }
            })?
        };
        if !pool.is_enabled() {
            return Err(closed(pool));
        }
        if !pool.usable().contains(address) {
            return Err(AllocationError::AddressReserved {
                address,
                pool: pool.name().to_string(),
            });
        }
        return Ok(Pick {
            pool,
            requested: Some(to_number(address)),
        });
    }

    if !request.pools.is_empty() {
        let first = named()
            .next()
            .ok_or_else(|| AllocationError::PoolFamilyMismatch {
                pools: request.pools.clone(),
                family,
            })?;
        let pool = best(named().filter(|p| p.is_enabled())).ok_or_else(|| closed(first))?;
        return Ok(Pick {
            pool,
            requested: None,
        });
    }

    let namespace = &request.service.namespace;
    let family_pools = || pools.values().filter(move |p| p.family() == family);
    if let Some(pool) = best(family_pools().filter(|p| {
        p.is_enabled()
            && p.spec()
                .binds_namespace(namespace, &request.namespace_labels)
    })) {
        return Ok(Pick {
            pool,
            requested: None,
        });
    }

    // Enabled defaults first, so a disabled default only explains the failure.
    let default = best(family_pools().filter(|p| p.spec().is_default && p.is_enabled()))
        .or_else(|| best(family_pools().filter(|p| p.spec().is_default)));
    match default {
        Some(pool) if pool.is_enabled() => Ok(Pick {
            pool,
            requested: None,
        }),
        Some(pool) => Err(closed(pool)),
        None => Err(AllocationError::NoPoolMatches {
            family,
            namespace: namespace.clone(),
        }),
    }
}

/// Why `pool` hands out nothing new: a broken pool rule, else `spec.disable`.
fn closed(pool: &Pool) -> AllocationError {
    if pool.problems().is_empty() {
        AllocationError::PoolDisabled {
            pool: pool.name().to_string(),
        }
    } else {
        AllocationError::PoolInvalid {
            pool: pool.name().to_string(),
            problems: pool.problems().join("; "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pool::PoolSpec;
    use super::super::request::ServiceRef;
    use super::*;
    use std::net::IpAddr;

    fn pools(specs: Vec<PoolSpec>) -> BTreeMap<String, Pool> {
        specs
            .into_iter()
            .map(|s| (s.name.clone(), Pool::new(s).expect("valid pool")))
            .collect()
    }

    fn request(ns: &str) -> AllocationRequest {
        AllocationRequest::new(ServiceRef::new(ns, "svc"))
    }

    fn chosen(
        pools: &BTreeMap<String, Pool>,
        r: &AllocationRequest,
    ) -> Result<String, AllocationError> {
        choose_pool(pools, r, Family::V4).map(|p| p.pool.name().to_string())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn named_pool_wins_over_everything() {
        let mut bound = PoolSpec::new("bound", "10.1.0.0/24");
        bound.namespaces = vec!["ns".into()];
        let mut def = PoolSpec::new("def", "10.2.0.0/24");
        def.is_default = true;
        let ps = pools(vec![bound, def, PoolSpec::new("named", "10.3.0.0/24")]);
        let mut r = request("ns");
        r.pools = vec!["named".into()];
        assert_eq!(chosen(&ps, &r).as_deref(), Ok("named"));
        r.pools = vec!["nope".into()];
        assert_eq!(
            chosen(&ps, &r),
            Err(AllocationError::PoolNotFound {
                pool: "nope".into()
            })
        );
    }

    #[test]
    fn requested_address_picks_its_pool() {
        let mut def = PoolSpec::new("def", "10.2.0.0/24");
        def.is_default = true;
        let ps = pools(vec![def, PoolSpec::new("other", "10.3.0.0/24")]);
        let mut r = request("ns");
        r.addresses = vec![ip("10.3.0.9")];
        let pick = choose_pool(&ps, &r, Family::V4).expect("found");
        assert_eq!(pick.pool.name(), "other");
        assert_eq!(pick.requested, Some(to_number(ip("10.3.0.9"))));
        r.addresses = vec![ip("10.9.0.9")];
        assert_eq!(
            chosen(&ps, &r).expect_err("outside").reason(),
            "AddressNotInAnyPool"
        );
        r.addresses = vec![ip("10.3.0.0")];
        assert_eq!(
            chosen(&ps, &r).expect_err("network").reason(),
            "AddressReserved"
        );
        r.addresses = vec![ip("10.3.0.9")];
        r.pools = vec!["def".into()];
        assert_eq!(
            chosen(&ps, &r).expect_err("not in named").reason(),
            "AddressNotInPool"
        );
    }

    #[test]
    fn namespace_bound_pools_by_fullness_then_priority() {
        let mut low = PoolSpec::new("low", "10.1.0.1");
        low.namespaces = vec!["ns".into()];
        low.priority = 1;
        let mut high = PoolSpec::new("high", "10.2.0.0/24");
        high.namespaces = vec!["ns".into()];
        high.priority = 5;
        let mut def = PoolSpec::new("def", "10.3.0.0/24");
        def.is_default = true;
        let mut ps = pools(vec![low, high, def]);
        assert_eq!(chosen(&ps, &request("ns")).as_deref(), Ok("low"));
        assert_eq!(chosen(&ps, &request("elsewhere")).as_deref(), Ok("def"));
        // Fill "low": the not-full "high" comes first despite its priority.
        let n = to_number(ip("10.1.0.1"));
        ps.get_mut("low")
            .expect("exists")
            .hold(n, ServiceRef::new("ns", "x"), None);
        assert_eq!(chosen(&ps, &request("ns")).as_deref(), Ok("high"));
    }

    #[test]
    fn disabled_pools_hand_out_nothing() {
        let mut def = PoolSpec::new("def", "10.3.0.0/24");
        def.is_default = true;
        def.disable = true;
        let mut bound = PoolSpec::new("bound", "10.1.0.0/24");
        bound.namespaces = vec!["ns".into()];
        bound.disable = true;
        let ps = pools(vec![def, bound]);
        assert_eq!(
            chosen(&ps, &request("ns")),
            Err(AllocationError::PoolDisabled { pool: "def".into() })
        );
        let mut r = request("ns");
        r.addresses = vec![ip("10.1.0.7")];
        assert_eq!(
            chosen(&ps, &r),
            Err(AllocationError::PoolDisabled {
                pool: "bound".into()
            })
        );
    }

    #[test]
    fn no_pool_is_a_clear_error() {
        let ps = pools(vec![PoolSpec::new("v6", "fd00::/64")]);
        let e = chosen(&ps, &request("ns")).expect_err("no v4 pool");
        assert_eq!(e.reason(), "NoPoolMatches");
        assert!(e.to_string().contains("is-default-eip"), "{e}");
        let mut r = request("ns");
        r.pools = vec!["v6".into()];
        assert_eq!(
            chosen(&ps, &r).expect_err("family").reason(),
            "PoolFamilyMismatch"
        );
    }
}
