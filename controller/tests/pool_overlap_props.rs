//! Property (issue 14 item 6): a pool added later, overlapping or not, never takes an address
//! from a Service nor moves it to another pool. Pools are drawn from a few overlapping
//! ranges; the first rebuild decides who holds what, its admitted pools become "accepted"
//! (their status says ready, as the controller writes it), and a rebuild with one more pool,
//! under any name, must keep every claim in the same pool.

use std::net::IpAddr;

use controller::ipam::{AllocationRequest, Allocator, ExistingClaim, PoolSpec, ServiceRef};
use proptest::prelude::*;

const RANGES: [&str; 6] = [
    "10.0.0.0/24",
    "10.0.0.0/25",
    "10.0.0.128/25",
    "10.0.0.0/16",
    "10.0.0.100-10.0.1.20",
    "10.0.2.0/24",
];

fn claim(i: usize, last_octet: u8) -> ExistingClaim {
    let address: IpAddr = format!("10.0.0.{last_octet}").parse().expect("ip");
    ExistingClaim {
        request: AllocationRequest::new(ServiceRef::new("ns", format!("s{i}"))),
        addresses: vec![address],
        created: Some(i as i64),
    }
}

/// Who holds what, as (service, address, pool).
fn holdings(a: &Allocator) -> Vec<(String, IpAddr, String)> {
    let mut out: Vec<_> = a
        .services()
        .flat_map(|(s, addrs)| {
            addrs
                .iter()
                .map(move |x| (s.to_string(), x.address, x.pool.clone()))
        })
        .collect();
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_pool_added_later_takes_nothing(
        pools in proptest::collection::vec((0usize..RANGES.len(), "[a-z]{1,3}"), 1..4),
        claims in proptest::collection::vec(1u8..255, 0..6),
        newcomer in (0usize..RANGES.len(), "[a-z]{1,3}"),
    ) {
        let specs: Vec<PoolSpec> = pools
            .iter()
            .enumerate()
            .map(|(i, (r, name))| PoolSpec::new(format!("{name}{i}"), RANGES[*r]))
            .collect();
        let claims: Vec<ExistingClaim> = claims.iter().enumerate().map(|(i, o)| claim(i, *o)).collect();
        let first = Allocator::rebuild(specs.clone(), claims.clone());
        let before = holdings(&first.allocator);

        let mut again: Vec<PoolSpec> = specs
            .into_iter()
            .map(|mut s| {
                s.accepted = first.allocator.pool(&s.name).is_some();
                s
            })
            .collect();
        again.push(PoolSpec::new(format!("{}-new", newcomer.1), RANGES[newcomer.0]));
        // Any order: the result must not depend on it.
        again.reverse();
        let second = Allocator::rebuild(again, claims);
        // Every holding is kept, in the same pool; a claim no pool held before may find one.
        let after = holdings(&second.allocator);
        for held in &before {
            prop_assert!(after.contains(held), "{:?} lost: now {:?}", held, after);
        }
    }
}
