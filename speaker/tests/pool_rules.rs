//! Issue 14 items 3 and 14 on the speaker's side: what was announced stays announced.
//! A bgp pool with an `interface` (OpenELB accepts it; Berth ignores it) announces its
//! addresses, and a pool the controller now refuses for a pool rule (host bits, a
//! special-purpose address) still announces the addresses Services hold in it.

mod common;

use common::*;
use speaker::{ClusterState, Object, desired};

fn objects(pool: Object, vip: &str) -> Vec<Object> {
    vec![
        node("n1", &[], Some(true), "10.0.0.1"),
        conf(65001, ""),
        peer("tor", "10.0.0.254", 65000, ""),
        pool,
        service("web", "a", &[vip], false),
        slice("web", "a", "a-1", &[("n1", Some(true))]),
    ]
}

/// Regression (item 3): the interface made the pool invalid and its addresses withdrawn.
#[test]
fn a_bgp_pool_with_an_interface_announces() {
    let pool = eip("p", "192.0.2.0/24", "bgp", "  interface: eth0\n");
    let d = desired(
        &ctx("n1"),
        &ClusterState::from_objects(objects(pool, "192.0.2.10")),
    );
    assert!(d.announce.contains_key(&ip("192.0.2.10")), "{:?}", d.vips);
    assert!(d.problems.is_empty(), "{:?}", d.problems);
}

/// Item 14: a pool rule keeps the pool from handing out anything new, but the addresses
/// Services already hold in it stay announced.
#[test]
fn a_pool_breaking_a_pool_rule_keeps_announcing_what_is_held() {
    for (address, vip) in [("10.0.0.0/0", "10.0.0.5"), ("0.0.0.0/0", "10.0.0.6")] {
        let pool = eip("p", address, "bgp", "");
        let d = desired(&ctx("n1"), &ClusterState::from_objects(objects(pool, vip)));
        assert!(d.announce.contains_key(&ip(vip)), "{address}: {:?}", d.vips);
    }
}
