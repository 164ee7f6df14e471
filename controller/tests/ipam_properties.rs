//! Property tests of the allocator: random sequences of requests and releases, random rebuilds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use controller::ipam::*;
use proptest::prelude::*;

fn pools() -> Vec<PoolSpec> {
    let mut a = PoolSpec::new("a", "10.0.0.0/29");
    a.is_default = true;
    let mut b = PoolSpec::new("b", "10.0.1.0-10.0.1.3");
    b.namespaces = vec!["x".into()];
    let mut v6 = PoolSpec::new("v6", "fd00::/125");
    v6.is_default = true;
    vec![a, b, v6]
}

fn candidate_addresses() -> Vec<IpAddr> {
    [
        "10.0.0.1", "10.0.0.2", "10.0.0.6", "10.0.1.0", "10.0.1.3", "fd00::3", "10.0.9.9",
    ]
    .iter()
    .map(|s| s.parse().expect("test address"))
    .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Allocate(AllocationRequest),
    Release(ServiceRef),
}

fn service() -> impl Strategy<Value = ServiceRef> {
    (prop_oneof![Just("x"), Just("y")], 0u8..10)
        .prop_map(|(ns, i)| ServiceRef::new(ns, format!("s{i}")))
}

fn terms(with_keys: bool) -> impl Strategy<Value = SharingTerms> {
    let key = if with_keys {
        prop_oneof![Just(None), Just(Some("k1")), Just(Some("k2"))].boxed()
    } else {
        Just(None).boxed()
    };
    (
        key,
        prop::collection::btree_set(prop_oneof![Just(80u16), Just(443), Just(53)], 1..3),
        any::<bool>(),
    )
        .prop_map(|(key, ports, local)| SharingTerms {
            key: key.map(str::to_string),
            ports: ports
                .into_iter()
                .map(|port| PortClaim {
                    port,
                    protocol: Protocol::Tcp,
                })
                .collect(),
            policy: if local {
                TrafficPolicy::Local {
                    selector: BTreeMap::from([("app".into(), "web".into())]),
                }
            } else {
                TrafficPolicy::Cluster
            },
        })
}

fn request(with_keys: bool) -> impl Strategy<Value = AllocationRequest> {
    (
        service(),
        prop::option::of(prop::sample::select(candidate_addresses())),
        prop_oneof![
            Just(FamilyPolicy::SingleStack),
            Just(FamilyPolicy::PreferDualStack),
            Just(FamilyPolicy::RequireDualStack)
        ],
        terms(with_keys),
    )
        .prop_map(|(service, address, policy, sharing)| {
            let mut r = AllocationRequest::new(service);
            r.addresses = address.into_iter().collect();
            r.policy = policy;
            r.sharing = sharing;
            r
        })
}

fn ops(with_keys: bool) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            3 => request(with_keys).prop_map(Op::Allocate),
            1 => service().prop_map(Op::Release),
        ],
        1..60,
    )
}

fn fresh() -> Allocator {
    let mut a = Allocator::new();
    for p in pools() {
        a.upsert_pool(p).expect("valid pool");
    }
    a
}

/// Every held address lies in its pool, the Services' view and the pools' view agree, and an
/// address has several holders only when they all may share it.
fn check_invariants(
    a: &Allocator,
    terms: &HashMap<ServiceRef, SharingTerms>,
) -> Result<(), TestCaseError> {
    let mut from_services: BTreeSet<(IpAddr, ServiceRef)> = BTreeSet::new();
    for (s, addresses) in a.services() {
        for x in addresses {
            let pool = a.pool(&x.pool).expect("pool of an allocation exists");
            prop_assert!(
                pool.usable().contains(x.address),
                "{} outside {}",
                x.address,
                x.pool
            );
            prop_assert!(from_services.insert((x.address, s.clone())));
        }
    }
    let mut from_pools = BTreeSet::new();
    for pool in a.pools() {
        for (address, holders) in pool.allocations() {
            prop_assert!(!pool.is_free(address));
            for (i, h) in holders.iter().enumerate() {
                from_pools.insert((address, h.clone()));
                for other in &holders[i + 1..] {
                    let (t1, t2) = (&terms[h], &terms[other]);
                    prop_assert!(
                        may_share(t1, t2).is_ok(),
                        "{address} held by {h} and {other} who may not share"
                    );
                }
            }
        }
    }
    prop_assert_eq!(from_services, from_pools);
    Ok(())
}

fn run(ops: &[Op]) -> Result<(Allocator, HashMap<ServiceRef, SharingTerms>), TestCaseError> {
    let mut a = fresh();
    let mut terms = HashMap::new();
    for op in ops {
        match op {
            Op::Allocate(r) => {
                if a.allocate(r).is_ok() {
                    terms.insert(r.service.clone(), r.sharing.clone());
                }
            }
            Op::Release(s) => {
                a.release(s);
            }
        }
        check_invariants(&a, &terms)?;
    }
    Ok((a, terms))
}

proptest! {
    #[test]
    fn no_address_handed_out_twice_without_a_sharing_key(ops in ops(false)) {
        let (a, _) = run(&ops)?;
        for pool in a.pools() {
            for (address, holders) in pool.allocations() {
                prop_assert_eq!(holders.len(), 1, "{} shared without a key", address);
            }
        }
    }

    #[test]
    fn sharing_only_when_the_rules_allow_and_never_outside_a_pool(ops in ops(true)) {
        run(&ops)?;
    }

    #[test]
    fn release_restores_capacity(ops in ops(true)) {
        let (mut a, _) = run(&ops)?;
        let services: Vec<ServiceRef> = a.services().map(|(s, _)| s.clone()).collect();
        for s in &services {
            a.release(s);
        }
        for pool in a.pools() {
            prop_assert_eq!(pool.usage(), 0);
            prop_assert_eq!(pool.free_interval_count(), 1, "free set merged back in {}", pool.name());
            prop_assert!(pool.is_free(pool.usable().first_ip()));
            prop_assert!(pool.is_free(pool.usable().last_ip()));
        }
        // The whole default pool can be handed out again.
        let size = a.pool("a").expect("exists").size();
        for i in 0..size {
            let got = a.allocate(&AllocationRequest::new(ServiceRef::new("y", format!("again{i}"))));
            prop_assert!(got.is_ok(), "allocation {} of {} failed: {:?}", i, size, got);
        }
    }

    #[test]
    fn rebuild_is_independent_of_order(
        claims in prop::collection::vec(
            (request(true), prop::collection::vec(prop::sample::select(candidate_addresses()), 0..3), prop::option::of(0i64..5)),
            0..30,
        ),
        seed in any::<u64>(),
    ) {
        let claims: Vec<ExistingClaim> = claims
            .into_iter()
            .map(|(request, addresses, created)| ExistingClaim { request, addresses, created })
            .collect();
        let mut shuffled = claims.clone();
        // A deterministic shuffle from the seed (Fisher–Yates with an LCG).
        let mut x = seed;
        for i in (1..shuffled.len()).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (x >> 33) as usize % (i + 1));
        }
        let mut reversed_pools = pools();
        reversed_pools.reverse();
        let one = Allocator::rebuild(pools(), claims);
        let two = Allocator::rebuild(reversed_pools, shuffled);
        let view = |a: &Allocator| {
            let mut v: Vec<(ServiceRef, Vec<AssignedAddress>)> =
                a.services().map(|(s, x)| (s.clone(), x.to_vec())).collect();
            v.sort();
            v
        };
        prop_assert_eq!(view(&one.allocator), view(&two.allocator));
        prop_assert_eq!(&one.refused, &two.refused);
        for pool in one.allocator.pools() {
            let other = two.allocator.pool(pool.name()).expect("same pools");
            prop_assert_eq!(pool.status(), other.status());
        }
    }
}
