//! Issue 14 items 3, 6 and 14 on whole-state decisions (the standalone mode runs exactly
//! these; the Kubernetes reconcilers start from the same `Engine::rebuild`):
//!
//! - overlapping pools: the pool Services hold addresses in is kept, then the one accepted
//!   before, then the older; a newly added overlapping pool is refused (condition, event) and
//!   holds nothing, whatever its name;
//! - pool rules: a pool with host bits set or with an unspecified, loopback or multicast
//!   address hands out nothing; one that Services already hold addresses in keeps them;
//!   requested special-purpose addresses are refused;
//! - an `interface` on a bgp pool is ignored with a condition and an event.

use std::collections::BTreeMap;
use std::net::IpAddr;

use api::Eip;
use controller::decision::{Event, EventType, Subject};
use controller::ipam::ServiceRef;
use controller::plan::{ClusterState, Plan, plan};
use controller::view::{ClassConfig, EipView, ServiceView};
use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// A default pool (so Services need no annotation to use it).
fn pool(name: &str, address: &str, extra: Value) -> EipView {
    let mut v = json!({
        "apiVersion": "network.kubesphere.io/v1alpha2", "kind": "Eip",
        "metadata": {"name": name,
                     "annotations": {"eip.openelb.kubesphere.io/is-default-eip": "true"}},
        "spec": {"address": address}
    });
    merge(&mut v, extra);
    EipView::from_eip(&serde_json::from_value::<Eip>(v).expect("eip"))
}

fn service(name: &str, ingress: &[&str], extra: Value) -> ServiceView {
    let ingress: Vec<Value> = ingress.iter().map(|i| json!({"ip": i})).collect();
    let mut v = json!({
        "metadata": {"name": name, "namespace": "ns",
                     "annotations": {"lb.kubesphere.io/v1alpha1": "openelb"},
                     "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": ingress}}
    });
    merge(&mut v, extra);
    let svc: Service = serde_json::from_value(v).expect("service");
    let mut view = ServiceView::from_service(&svc, &ClassConfig::default(), &BTreeMap::new());
    view.has_finalizer = !view.ingress.is_empty();
    view
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn decide(eips: Vec<EipView>, services: Vec<ServiceView>) -> Plan {
    plan(&ClusterState { eips, services }).1
}

fn ingress(p: &Plan, name: &str) -> Vec<IpAddr> {
    p.services[&ServiceRef::new("ns", name)]
        .ingress
        .clone()
        .unwrap_or_default()
}

fn eip_events<'a>(p: &'a Plan, name: &str) -> Vec<&'a Event> {
    p.events()
        .filter(|e| e.subject == Subject::Eip(name.to_string()))
        .collect()
}

/// The `Valid` condition of an Eip's decided status: (status, reason, message).
fn valid(p: &Plan, name: &str) -> Option<(String, String, String)> {
    let status = p.eips[name].status.as_ref()?;
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Valid")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Regression (item 6): a pool whose name sorts first, added over a pool in use, took the
/// range and stripped the Service's address (standalone at once, Kubernetes at the next
/// controller start or leader change).
#[test]
fn an_overlapping_pool_that_sorts_first_strips_nothing() {
    // Its status was written when it handed out 10.0.0.5 (and back into the file, standalone).
    let used = pool(
        "b-in-use",
        "10.0.0.0/24",
        json!({"status": {"ready": true, "used": {"10.0.0.5": "ns/web"}}}),
    );
    let newcomer = pool("a-newcomer", "10.0.0.0/16", json!({}));
    let web = service("web", &["10.0.0.5"], json!({}));
    let p = decide(
        vec![used, newcomer],
        vec![web, service("fresh", &[], json!({}))],
    );
    assert_eq!(ingress(&p, "web"), [ip("10.0.0.5")], "web kept its address");
    let b = p.eips["b-in-use"].status.as_ref().expect("status");
    assert!(b.ready && b.used.contains_key("10.0.0.5"), "{b:?}");
    let a = p.eips["a-newcomer"].status.as_ref().expect("status");
    assert!(!a.ready && a.used.is_empty() && a.usage == 0, "{a:?}");
    let (status, reason, message) = valid(&p, "a-newcomer").expect("a condition");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "PoolOverlaps")
    );
    assert!(message.contains("b-in-use"), "{message}");
    let events = eip_events(&p, "a-newcomer");
    assert!(
        events
            .iter()
            .any(|e| e.type_ == EventType::Warning && e.cause == Some("PoolOverlaps")),
        "{events:?}"
    );
    // A new Service gets its address from the kept pool, never from the refused one.
    let fresh = ingress(&p, "fresh");
    assert_eq!(fresh.len(), 1);
    assert!(
        p.eips["b-in-use"]
            .status
            .as_ref()
            .expect("status")
            .used
            .contains_key(&fresh[0].to_string())
    );
}

/// Item 6 without statuses: the pool whose range holds the addresses Services hold stays;
/// without allocations the pool accepted before (its status says ready) stays, whatever the
/// names; in Kubernetes the older one does too.
#[test]
fn without_allocations_the_pool_accepted_before_or_the_older_stays() {
    let holding = pool("z-holding", "10.4.0.0/24", json!({}));
    let newcomer = pool("a-new", "10.4.0.128/25", json!({}));
    let p = decide(
        vec![newcomer, holding],
        vec![service("web", &["10.4.0.5"], json!({}))],
    );
    assert_eq!(ingress(&p, "web"), [ip("10.4.0.5")]);
    assert!(p.eips["z-holding"].status.as_ref().expect("status").ready);
    assert_eq!(valid(&p, "a-new").expect("condition").1, "PoolOverlaps");

    let accepted = pool(
        "z-accepted",
        "10.1.0.0/24",
        json!({"status": {"ready": true}}),
    );
    let newcomer = pool("a-new", "10.1.0.0/25", json!({}));
    let p = decide(vec![newcomer, accepted], vec![]);
    assert!(p.eips["z-accepted"].status.as_ref().expect("status").ready);
    assert_eq!(valid(&p, "a-new").expect("condition").1, "PoolOverlaps");

    let older = pool(
        "z-older",
        "10.2.0.0/24",
        json!({"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"}}),
    );
    let younger = pool(
        "a-younger",
        "10.2.0.0/24",
        json!({"metadata": {"creationTimestamp": "2025-01-01T00:00:00Z"}}),
    );
    let p = decide(vec![younger, older], vec![]);
    assert!(p.eips["z-older"].status.as_ref().expect("status").ready);
    assert_eq!(valid(&p, "a-younger").expect("condition").1, "PoolOverlaps");
}

/// Regression (item 14): `10.0.0.0/0` was read as `0.0.0.0/0` and `0.0.0.0/0` handed out
/// `0.0.0.0`; such a pool now hands out nothing, but keeps what Services already hold in it.
#[test]
fn a_pool_breaking_a_pool_rule_hands_out_nothing_but_keeps_what_is_held() {
    let p = decide(
        vec![pool("all", "0.0.0.0/0", json!({}))],
        vec![service("first", &[], json!({}))],
    );
    assert_eq!(
        ingress(&p, "first"),
        Vec::<IpAddr>::new(),
        "nothing from 0.0.0.0/0"
    );
    let (status, reason, message) = valid(&p, "all").expect("condition");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "InvalidPool"));
    assert!(message.contains("unspecified"), "{message}");

    // An upgrade: 10.0.0.0/0 held 10.0.0.5 (and, from the old code, 0.0.0.0).
    let p = decide(
        vec![pool(
            "host-bits",
            "10.0.0.0/0",
            json!({"status": {"ready": true}}),
        )],
        vec![
            service("old", &["10.0.0.5"], json!({})),
            service("zero", &["0.0.0.0"], json!({})),
            service("new", &[], json!({})),
        ],
    );
    assert_eq!(ingress(&p, "old"), [ip("10.0.0.5")], "kept");
    assert_eq!(ingress(&p, "zero"), [ip("0.0.0.0")], "kept: nothing moves");
    assert_eq!(ingress(&p, "new"), Vec::<IpAddr>::new(), "nothing new");
    let new = &p.services[&ServiceRef::new("ns", "new")];
    assert_eq!(new.failure, Some("PoolInvalid"), "{:?}", new.events);
    assert!(
        new.events.iter().any(|e| e.message.contains("host bits")),
        "the Service's event says why: {:?}",
        new.events
    );
    let status = p.eips["host-bits"].status.as_ref().expect("status");
    assert!(!status.ready && status.usage == 2, "{status:?}");
    let (_, reason, message) = valid(&p, "host-bits").expect("condition");
    assert_eq!(reason, "InvalidPool");
    assert!(
        message.contains("host bits") && message.contains("2 address"),
        "{message}"
    );
    assert!(
        eip_events(&p, "host-bits")
            .iter()
            .any(|e| e.reason == "InvalidPool" && e.type_ == EventType::Warning)
    );
}

/// Item 14: a Service asking for an unspecified, loopback or multicast address is refused,
/// even from a pool that (wrongly) contains it.
#[test]
fn requested_special_purpose_addresses_are_refused() {
    for (requested, what) in [
        ("127.0.0.1", "loopback"),
        ("224.0.0.5", "multicast"),
        ("0.0.0.0", "unspecified"),
    ] {
        let p = decide(
            vec![pool("ok", "10.9.0.0/24", json!({}))],
            vec![service(
                "asks",
                &[],
                json!({"metadata": {"annotations": {"eip.openelb.kubesphere.io/v1alpha1": requested}}}),
            )],
        );
        assert_eq!(ingress(&p, "asks"), Vec::<IpAddr>::new(), "{requested}");
        let d = &p.services[&ServiceRef::new("ns", "asks")];
        assert!(
            d.events.iter().any(|e| e.message.contains(what)),
            "{requested}: {:?}",
            d.events
        );
    }
}

/// IPv6 sizes are exact up to u128 (`::/0`, the one range whose size does not fit, is
/// refused); the API status clamps to i64::MAX (documented on `status.poolSize`).
#[test]
fn ipv6_pool_sizes_are_exact() {
    let (engine, p) = plan(&ClusterState {
        eips: vec![
            pool("v6", "fd00::/64", json!({})),
            pool("wide", "2001:db8::/32", json!({})),
        ],
        services: vec![],
    });
    let size = |name: &str| {
        engine
            .allocator()
            .pool(name)
            .expect("pool")
            .status()
            .pool_size
    };
    assert_eq!(size("v6"), 1u128 << 64);
    assert_eq!(size("wide"), 1u128 << 96);
    assert_eq!(
        p.eips["wide"].status.as_ref().expect("status").pool_size,
        i64::MAX as u64
    );
    let p = decide(vec![pool("everything", "::/0", json!({}))], vec![]);
    assert_eq!(valid(&p, "everything").expect("condition").1, "InvalidPool");
}

/// Regression (item 3): an `interface` on a bgp pool refused the pool; it is now ignored,
/// with a condition and an event, and the pool allocates.
#[test]
fn an_interface_on_a_bgp_pool_is_ignored_with_a_warning() {
    let p = decide(
        vec![pool(
            "bgp",
            "10.3.0.0/24",
            json!({"spec": {"protocol": "bgp", "interface": "eth0"}}),
        )],
        vec![service("web", &[], json!({}))],
    );
    assert_eq!(ingress(&p, "web"), [ip("10.3.0.1")]);
    let (status, reason, message) = valid(&p, "bgp").expect("condition");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "FieldsIgnored")
    );
    assert!(message.contains("spec.interface"), "{message}");
    assert!(
        eip_events(&p, "bgp")
            .iter()
            .any(|e| e.reason == "FieldIgnored" && e.type_ == EventType::Warning)
    );
    assert!(p.eips["bgp"].status.as_ref().expect("status").ready);
}
