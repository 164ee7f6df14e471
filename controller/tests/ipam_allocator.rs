//! Allocator rules end to end through the public API: one test per rule.

use std::collections::BTreeMap;
use std::net::IpAddr;

use controller::ipam::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn svc(name: &str) -> ServiceRef {
    ServiceRef::new("ns", name)
}

fn req(name: &str) -> AllocationRequest {
    AllocationRequest::new(svc(name))
}

fn default_pool(name: &str, address: &str) -> PoolSpec {
    let mut p = PoolSpec::new(name, address);
    p.is_default = true;
    p
}

fn allocator(pools: Vec<PoolSpec>) -> Allocator {
    let mut a = Allocator::new();
    for p in pools {
        a.upsert_pool(p).expect("valid pool");
    }
    a
}

fn addrs(a: &Allocation) -> Vec<IpAddr> {
    a.addresses.iter().map(|x| x.address).collect()
}

fn sharing(r: &mut AllocationRequest, key: &str, port: u16) {
    r.sharing = SharingTerms {
        key: Some(key.into()),
        ports: vec![PortClaim {
            port,
            protocol: Protocol::Tcp,
        }],
        policy: TrafficPolicy::Cluster,
    };
}

#[test]
fn lowest_free_first_and_never_the_network_address() {
    let mut a = allocator(vec![default_pool("p", "192.168.0.0/24")]);
    let first = a.allocate(&req("a")).expect("allocated");
    assert_eq!(addrs(&first), vec![ip("192.168.0.1")]);
    let second = a.allocate(&req("b")).expect("allocated");
    assert_eq!(addrs(&second), vec![ip("192.168.0.2")]);
    a.release(&svc("a"));
    let third = a.allocate(&req("c")).expect("allocated");
    assert_eq!(
        addrs(&third),
        vec![ip("192.168.0.1")],
        "freed address reused"
    );
}

#[test]
fn allocation_is_idempotent() {
    let mut a = allocator(vec![default_pool("p", "10.0.0.0/24")]);
    let first = a.allocate(&req("a")).expect("allocated");
    assert!(first.changed);
    let again = a.allocate(&req("a")).expect("allocated");
    assert_eq!(again.addresses, first.addresses);
    assert!(!again.changed);
    assert_eq!(a.pool("p").expect("exists").usage(), 1);
}

#[test]
fn requested_address_is_reserved_and_others_skip_it() {
    let mut a = allocator(vec![default_pool("p", "10.0.0.0/29")]);
    let mut r = req("a");
    r.addresses = vec![ip("10.0.0.1")];
    assert_eq!(
        addrs(&a.allocate(&r).expect("allocated")),
        vec![ip("10.0.0.1")]
    );
    assert_eq!(
        addrs(&a.allocate(&req("b")).expect("allocated")),
        vec![ip("10.0.0.2")]
    );
}

#[test]
fn taken_address_without_sharing_key_is_refused_with_the_holder() {
    let mut a = allocator(vec![default_pool("p", "10.0.0.0/29")]);
    let mut r = req("a");
    r.addresses = vec![ip("10.0.0.3")];
    a.allocate(&r).expect("allocated");
    let mut r2 = req("b");
    r2.addresses = vec![ip("10.0.0.3")];
    let e = a.allocate(&r2).expect_err("taken");
    assert_eq!(e.reason(), "AddressTaken");
    assert!(e.to_string().contains("ns/a"), "{e}");
    assert!(
        a.addresses_of(&svc("b")).is_empty(),
        "refusal changes nothing"
    );
}

#[test]
fn sharing_with_same_key_and_disjoint_ports() {
    let mut a = allocator(vec![default_pool("p", "10.0.0.0/29")]);
    let mut r1 = req("a");
    sharing(&mut r1, "k", 80);
    let got = a.allocate(&r1).expect("allocated");
    // No requested address: a sharing Service joins an address of its key.
    let mut r2 = req("b");
    sharing(&mut r2, "k", 443);
    assert_eq!(
        addrs(&a.allocate(&r2).expect("shared")),
        addrs(&got),
        "joined the address of its sharing key"
    );
    let status = a.pool("p").expect("exists").status();
    assert_eq!(
        status.used.get("10.0.0.1").map(String::as_str),
        Some("ns/a;ns/b")
    );
    assert_eq!(status.usage, 1);
    // Same port: refused when asked explicitly, a fresh address otherwise.
    let mut r3 = req("c");
    sharing(&mut r3, "k", 80);
    assert_eq!(
        addrs(&a.allocate(&r3).expect("fresh")),
        vec![ip("10.0.0.2")]
    );
    let mut r4 = req("d");
    sharing(&mut r4, "k", 443);
    r4.addresses = vec![ip("10.0.0.1")];
    let e = a.allocate(&r4).expect_err("port overlap");
    assert!(e.to_string().contains("443/TCP"), "{e}");
    // Releasing one sharer keeps the address for the other.
    a.release(&svc("a"));
    assert_eq!(addrs_of(&a, "b"), vec![ip("10.0.0.1")]);
    assert!(!a.pool("p").expect("exists").is_free(ip("10.0.0.1")));
}

fn addrs_of(a: &Allocator, name: &str) -> Vec<IpAddr> {
    a.addresses_of(&svc(name))
        .iter()
        .map(|x| x.address)
        .collect()
}

#[test]
fn local_policy_shares_only_with_same_selector() {
    let mut a = allocator(vec![default_pool("p", "10.0.0.0/29")]);
    let local = |app: &str| TrafficPolicy::Local {
        selector: BTreeMap::from([("app".to_string(), app.to_string())]),
    };
    let mut r1 = req("a");
    sharing(&mut r1, "k", 80);
    r1.sharing.policy = local("web");
    r1.addresses = vec![ip("10.0.0.4")];
    a.allocate(&r1).expect("allocated");
    let mut r2 = req("b");
    sharing(&mut r2, "k", 81);
    r2.sharing.policy = local("db");
    r2.addresses = vec![ip("10.0.0.4")];
    let e = a.allocate(&r2).expect_err("other pods");
    assert!(e.to_string().contains("externalTrafficPolicy"), "{e}");
    r2.sharing.policy = local("web");
    assert!(a.allocate(&r2).is_ok());
}

#[test]
fn exhausted_pool_says_so() {
    let mut a = allocator(vec![default_pool("p", "10.0.0.0/31")]);
    a.allocate(&req("a")).expect("1");
    a.allocate(&req("b")).expect("2");
    let e = a.allocate(&req("c")).expect_err("full");
    assert_eq!(
        e,
        AllocationError::PoolExhausted {
            pool: "p".to_string()
        }
    );
    assert!(a.pool("p").expect("exists").status().occupied);
}

#[test]
fn disabled_pool_keeps_existing_and_hands_out_nothing() {
    let mut a = allocator(vec![default_pool("p", "10.0.0.0/29")]);
    let got = a.allocate(&req("a")).expect("allocated");
    let mut off = default_pool("p", "10.0.0.0/29");
    off.disable = true;
    a.upsert_pool(off).expect("update");
    assert_eq!(
        a.allocate(&req("a")).expect("kept").addresses,
        got.addresses
    );
    assert_eq!(
        a.allocate(&req("b")).expect_err("disabled").reason(),
        "PoolDisabled"
    );
}

#[test]
fn dual_stack_gets_one_address_per_family() {
    let mut a = allocator(vec![
        default_pool("v4", "10.0.0.0/29"),
        default_pool("v6", "fd00::/64"),
    ]);
    let mut r = req("a");
    r.policy = FamilyPolicy::RequireDualStack;
    r.families = vec![Family::V6, Family::V4];
    let got = a.allocate(&r).expect("dual");
    assert_eq!(addrs(&got), vec![ip("fd00::"), ip("10.0.0.1")]);
    let mut single = req("b");
    single.families = vec![Family::V6];
    assert_eq!(
        addrs(&a.allocate(&single).expect("v6")),
        vec![ip("fd00::1")]
    );
}

#[test]
fn require_dual_stack_fails_without_a_family_and_prefer_falls_back() {
    let mut a = allocator(vec![default_pool("v4", "10.0.0.0/29")]);
    let mut r = req("a");
    r.policy = FamilyPolicy::RequireDualStack;
    let e = a.allocate(&r).expect_err("no v6 pool");
    assert!(e.to_string().contains("no IPv6 address"), "{e}");
    assert!(a.addresses_of(&svc("a")).is_empty(), "v4 rolled back");
    r.policy = FamilyPolicy::PreferDualStack;
    let got = a.allocate(&r).expect("v4 only");
    assert_eq!(addrs(&got), vec![ip("10.0.0.1")]);
    assert_eq!(got.missing.len(), 1);
    // The v6 pool appears: the next allocate adds v6 and keeps v4.
    a.upsert_pool(default_pool("v6", "fd00::/120"))
        .expect("pool");
    let got = a.allocate(&r).expect("both");
    assert_eq!(addrs(&got), vec![ip("10.0.0.1"), ip("fd00::")]);
    assert!(got.released.is_empty());
}

#[test]
fn changed_request_moves_and_reports_released() {
    let mut a = allocator(vec![
        default_pool("p", "10.0.0.0/29"),
        PoolSpec::new("q", "10.1.0.0/29"),
    ]);
    a.allocate(&req("a")).expect("allocated");
    let mut r = req("a");
    r.pools = vec!["q".into()];
    let got = a.allocate(&r).expect("moved");
    assert_eq!(addrs(&got), vec![ip("10.1.0.1")]);
    assert_eq!(
        got.released,
        vec![AssignedAddress {
            address: ip("10.0.0.1"),
            pool: "p".into()
        }]
    );
    assert!(a.pool("p").expect("exists").is_free(ip("10.0.0.1")));
}

#[test]
fn range_change_keeps_what_still_fits_and_reports_the_rest() {
    let mut a = allocator(vec![default_pool("p", "10.0.0.0/28")]);
    let mut r1 = req("in");
    r1.addresses = vec![ip("10.0.0.2")];
    a.allocate(&r1).expect("allocated");
    let mut r2 = req("out");
    r2.addresses = vec![ip("10.0.0.12")];
    a.allocate(&r2).expect("allocated");
    let update = a
        .upsert_pool(default_pool("p", "10.0.0.0/29"))
        .expect("shrunk");
    assert_eq!(
        update.evicted,
        vec![(
            svc("out"),
            AssignedAddress {
                address: ip("10.0.0.12"),
                pool: "p".into()
            }
        )]
    );
    assert_eq!(addrs_of(&a, "in"), vec![ip("10.0.0.2")]);
    assert!(addrs_of(&a, "out").is_empty());
    let s = a.pool("p").expect("exists").status();
    assert_eq!(s.usage, 1);
    assert_eq!(s.pool_size, 6);
}

#[test]
fn pool_in_use_cannot_be_removed() {
    let mut a = allocator(vec![default_pool("p", "10.0.0.0/29")]);
    a.allocate(&req("a")).expect("allocated");
    assert!(a.pool_in_use("p"));
    let e = a.remove_pool("p").expect_err("in use");
    assert!(e.to_string().contains("ns/a"), "{e}");
    a.release(&svc("a"));
    assert!(!a.pool_in_use("p"));
    a.remove_pool("p").expect("free now");
    assert!(a.pool("p").is_none());
}

#[test]
fn overlapping_pools_are_refused() {
    let mut a = allocator(vec![PoolSpec::new("p", "10.0.0.0/24")]);
    let e = a
        .upsert_pool(PoolSpec::new("q", "10.0.0.200-10.0.1.10"))
        .expect_err("overlap");
    assert!(matches!(e, PoolError::Overlaps { .. }), "{e}");
}

#[test]
fn status_numbers() {
    let mut a = allocator(vec![default_pool("p", "10.0.0.0/30")]);
    a.allocate(&req("a")).expect("allocated");
    let s = a.pool("p").expect("exists").status();
    assert_eq!(s.usage, 1);
    assert_eq!(s.pool_size, 2);
    assert_eq!(s.first_ip, ip("10.0.0.1"));
    assert_eq!(s.last_ip, ip("10.0.0.2"));
    assert!(!s.occupied);
    assert!(s.v4);
    assert_eq!(
        s.used,
        BTreeMap::from([("10.0.0.1".to_string(), "ns/a".to_string())])
    );
}

#[test]
fn ipv6_slash_64_allocates_without_materialising() {
    let mut a = allocator(vec![default_pool("v6", "2001:db8::/64")]);
    let mut r = req("a");
    r.families = vec![Family::V6];
    assert_eq!(addrs(&a.allocate(&r).expect("v6")), vec![ip("2001:db8::")]);
    let s = a.pool("v6").expect("exists").status();
    assert_eq!(s.pool_size, 1u128 << 64);
    assert!(!s.v4);
}

#[test]
fn service_facts_to_allocation() {
    let mut a = allocator(vec![
        default_pool("p", "10.0.0.0/24"),
        PoolSpec::new("named", "10.9.0.0/24"),
    ]);
    let facts = ServiceFacts {
        namespace: "shop".into(),
        name: "web".into(),
        annotations: BTreeMap::from([(OPENELB_POOL_ANNOTATION.to_string(), "named".to_string())]),
        ports: vec![ServicePortFacts {
            port: 443,
            protocol: Some("TCP".into()),
        }],
        ..ServiceFacts::default()
    };
    let r = request_for_service(&facts).expect("valid");
    let got = a.allocate(&r).expect("allocated");
    assert_eq!(got.addresses[0].pool, "named");
    assert_eq!(got.addresses[0].address, ip("10.9.0.1"));
}

#[test]
fn rebuild_keeps_addresses_and_refuses_the_later_conflict() {
    let pools = vec![default_pool("p", "10.0.0.0/24")];
    let claim = |name: &str, address: &str, created: i64| ExistingClaim {
        request: req(name),
        addresses: vec![ip(address)],
        created: Some(created),
    };
    let claims = vec![
        claim("late", "10.0.0.7", 200),
        claim("early", "10.0.0.7", 100),
        // OpenELB handed out network addresses: a restart keeps them.
        claim("legacy", "10.0.0.0", 50),
    ];
    let rebuilt = Allocator::rebuild(pools, claims);
    let a = &rebuilt.allocator;
    assert_eq!(addrs_of(a, "early"), vec![ip("10.0.0.7")]);
    assert_eq!(addrs_of(a, "legacy"), vec![ip("10.0.0.0")]);
    assert!(addrs_of(a, "late").is_empty());
    assert_eq!(rebuilt.refused.len(), 1);
    assert_eq!(rebuilt.refused[0].service, svc("late"));
    assert_eq!(rebuilt.refused[0].error.reason(), "AddressTaken");
    // Nothing moves on the next allocate of a kept Service.
    let mut a = rebuilt.allocator;
    assert!(!a.allocate(&req("early")).expect("kept").changed);
    assert!(!a.allocate(&req("legacy")).expect("kept").changed);
    // The refused one gets a fresh address, not the network address.
    assert_eq!(
        addrs(&a.allocate(&req("late")).expect("fresh")),
        vec![ip("10.0.0.1")]
    );
}

#[test]
fn rebuild_reports_addresses_outside_every_pool() {
    let rebuilt = Allocator::rebuild(
        vec![default_pool("p", "10.0.0.0/24")],
        vec![ExistingClaim {
            request: req("a"),
            addresses: vec![ip("172.16.0.1")],
            created: None,
        }],
    );
    assert_eq!(rebuilt.refused[0].error.reason(), "AddressNotInAnyPool");
}

#[test]
fn metallb_dual_stack_request_from_service_facts() {
    let mut a = allocator(vec![
        default_pool("v4", "10.0.0.0/24"),
        default_pool("v6", "fd00::/64"),
    ]);
    let facts = ServiceFacts {
        namespace: "ns".into(),
        name: "dual".into(),
        annotations: BTreeMap::from([(
            METALLB_IPS_ANNOTATION.to_string(),
            "fd00::10,10.0.0.10".to_string(),
        )]),
        ip_family_policy: Some("RequireDualStack".into()),
        ip_families: vec!["IPv4".into(), "IPv6".into()],
        ..ServiceFacts::default()
    };
    let got = a
        .allocate(&request_for_service(&facts).expect("valid"))
        .expect("both families");
    assert_eq!(addrs(&got), vec![ip("10.0.0.10"), ip("fd00::10")]);
}

#[test]
fn prefer_dual_stack_reports_a_failed_requested_address() {
    let mut a = allocator(vec![default_pool("v4", "10.0.0.0/24")]);
    let mut r = req("a");
    r.policy = FamilyPolicy::PreferDualStack;
    r.addresses = vec![ip("fd00::1")];
    let e = a.allocate(&r).expect_err("asked v6 address has no pool");
    assert_eq!(e.reason(), "AddressNotInAnyPool");
}

#[test]
fn namespace_selector_binds_by_labels() {
    let mut bound = PoolSpec::new("team", "10.5.0.0/24");
    bound.namespace_selector = BTreeMap::from([("team".to_string(), "red".to_string())]);
    let mut a = allocator(vec![default_pool("def", "10.0.0.0/24"), bound]);
    let mut r = AllocationRequest::new(ServiceRef::new("red-ns", "a"));
    r.namespace_labels = BTreeMap::from([("team".to_string(), "red".to_string())]);
    assert_eq!(a.allocate(&r).expect("bound").addresses[0].pool, "team");
    let other = AllocationRequest::new(ServiceRef::new("blue-ns", "a"));
    assert_eq!(
        a.allocate(&other).expect("default").addresses[0].pool,
        "def"
    );
}

#[test]
fn skip_flag_off_hands_out_network_address_and_toggling_keeps_allocations() {
    let mut spec = default_pool("p", "10.0.0.0/30");
    spec.skip_network_broadcast = false;
    let mut a = allocator(vec![spec]);
    assert_eq!(
        addrs(&a.allocate(&req("a")).expect("allocated")),
        vec![ip("10.0.0.0")]
    );
    let update = a
        .upsert_pool(default_pool("p", "10.0.0.0/30"))
        .expect("skip on");
    assert!(update.evicted.is_empty(), "still inside the spec range");
    assert_eq!(addrs_of(&a, "a"), vec![ip("10.0.0.0")]);
    assert_eq!(a.pool("p").expect("exists").size(), 2);
}

#[test]
fn rebuild_keeps_valid_sharers_and_duplicate_claims_are_harmless() {
    let mut r1 = req("a");
    sharing(&mut r1, "k", 80);
    let mut r2 = req("b");
    sharing(&mut r2, "k", 443);
    let claim = |request: AllocationRequest| ExistingClaim {
        request,
        addresses: vec![ip("10.0.0.5")],
        created: Some(1),
    };
    let rebuilt = Allocator::rebuild(
        vec![default_pool("p", "10.0.0.0/24")],
        vec![claim(r1.clone()), claim(r2), claim(r1)],
    );
    assert!(rebuilt.refused.is_empty(), "{:?}", rebuilt.refused);
    let status = rebuilt.allocator.pool("p").expect("exists").status();
    assert_eq!(
        status.used.get("10.0.0.5").map(String::as_str),
        Some("ns/a;ns/b")
    );
}

#[test]
fn many_ipv6_allocations_stay_in_order() {
    let mut a = allocator(vec![default_pool("v6", "2001:db8::/64")]);
    for i in 0..1000u32 {
        let mut r = AllocationRequest::new(ServiceRef::new("ns", format!("s{i}")));
        r.families = vec![Family::V6];
        let got = a.allocate(&r).expect("room");
        assert_eq!(
            got.addresses[0].address,
            IpAddr::V6(std::net::Ipv6Addr::from(
                0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + u128::from(i)
            ))
        );
    }
    assert_eq!(a.pool("v6").expect("exists").free_interval_count(), 1);
}
