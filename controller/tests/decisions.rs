//! The decision logic on complete scenarios, without any API server: every case the
//! reconcilers must get right is decided here first.

use std::collections::BTreeMap;
use std::net::IpAddr;

use api::Eip;
use controller::decision::{EventType, FinalizerChange, Subject};
use controller::engine::Engine;
use controller::ipam::ServiceRef;
use controller::plan::{ClusterState, plan};
use controller::view::{ClassConfig, EipView, ServiceView};
use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};

fn eip(name: &str, address: &str, extra: Value) -> EipView {
    let mut v = json!({
        "apiVersion": "network.kubesphere.io/v1alpha2", "kind": "Eip",
        "metadata": {"name": name},
        "spec": {"address": address}
    });
    merge(&mut v, extra);
    EipView::from_eip(&serde_json::from_value::<Eip>(v).expect("eip"))
}

fn default_eip(name: &str, address: &str) -> EipView {
    eip(
        name,
        address,
        json!({"metadata": {"annotations": {"eip.openelb.kubesphere.io/is-default-eip": "true"}}}),
    )
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                if v.is_null() {
                    a.remove(&k);
                } else {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (a, b) => *a = b,
    }
}

fn service(ns: &str, name: &str, created: i64, extra: Value) -> Service {
    let mut v = json!({
        "metadata": {
            "name": name, "namespace": ns,
            "annotations": {"lb.kubesphere.io/v1alpha1": "openelb"},
            "creationTimestamp": format!(
                "2024-01-01T{:02}:{:02}:{:02}Z",
                created / 3600,
                created / 60 % 60,
                created % 60
            )
        },
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]}
    });
    merge(&mut v, extra);
    serde_json::from_value(v).expect("service")
}

fn view(s: &Service) -> ServiceView {
    ServiceView::from_service(s, &ClassConfig::default(), &BTreeMap::new())
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn with_status(s: &Service, ips: &[&str]) -> Service {
    let mut v = serde_json::to_value(s).expect("json");
    let ingress: Vec<Value> = ips.iter().map(|i| json!({"ip": i})).collect();
    v["status"] = json!({"loadBalancer": {"ingress": ingress}});
    v["metadata"]["finalizers"] = json!(["berth.io/service-address"]);
    serde_json::from_value(v).expect("service")
}

fn key(ns: &str, name: &str) -> ServiceRef {
    ServiceRef::new(ns, name)
}

#[test]
fn first_allocation_skips_network_address_and_adds_finalizer() {
    let state = ClusterState {
        eips: vec![default_eip("pool", "10.0.0.0/24")],
        services: vec![view(&service("default", "web", 1, json!({})))],
    };
    let (_, p) = plan(&state);
    let d = &p.services[&key("default", "web")];
    assert_eq!(d.ingress, Some(vec![ip("10.0.0.1")]));
    assert_eq!(d.finalizer, FinalizerChange::Add);
    assert!(d.allocated);
    assert_eq!(d.events[0].reason, "AddressAllocated");
    assert!(
        d.events[0].message.contains("10.0.0.1"),
        "{}",
        d.events[0].message
    );
    let status = p.eips["pool"].status.clone().expect("status");
    assert_eq!((status.usage, status.pool_size), (1, 254));
    assert_eq!(status.used["10.0.0.1"], "default/web");
    assert_eq!(
        (status.first_ip.as_str(), status.last_ip.as_str()),
        ("10.0.0.1", "10.0.0.254")
    );
    assert!(status.ready && status.v4 && !status.occupied);
    assert_eq!(p.eips["pool"].finalizer, FinalizerChange::Add);
}

#[test]
fn requested_address_by_annotation_beats_load_balancer_ip() {
    let s = service(
        "default",
        "web",
        1,
        json!({"metadata": {"annotations": {"eip.openelb.kubesphere.io/v1alpha1": "10.0.0.77"}},
               "spec": {"loadBalancerIP": "10.0.0.5"}}),
    );
    let (_, p) = plan(&ClusterState {
        eips: vec![default_eip("pool", "10.0.0.0/24")],
        services: vec![view(&s)],
    });
    assert_eq!(
        p.services[&key("default", "web")].ingress,
        Some(vec![ip("10.0.0.77")])
    );
}

#[test]
fn services_without_opt_in_or_with_other_class_are_left_alone() {
    let plain = service("default", "a", 1, json!({}));
    let mut v = serde_json::to_value(&plain).expect("json");
    v["metadata"]["annotations"] = json!({});
    let no_opt_in: Service = serde_json::from_value(v).expect("svc");
    let other = service(
        "default",
        "b",
        2,
        json!({"spec": {"loadBalancerClass": "other.io/lb"}}),
    );
    let ours = service(
        "default",
        "c",
        3,
        json!({"metadata": {"annotations": {"lb.kubesphere.io/v1alpha1": null}},
               "spec": {"loadBalancerClass": "berth.io/lb"}}),
    );
    let (_, p) = plan(&ClusterState {
        eips: vec![default_eip("pool", "10.0.0.0/24")],
        services: vec![view(&no_opt_in), view(&other), view(&ours)],
    });
    assert_eq!(p.services[&key("default", "a")].ingress, None);
    assert_eq!(p.services[&key("default", "b")].ingress, None);
    assert_eq!(
        p.services[&key("default", "c")].ingress,
        Some(vec![ip("10.0.0.1")])
    );
}

#[test]
fn pool_exhaustion_is_a_warning_with_the_reason() {
    let services: Vec<_> = (0..3)
        .map(|i| view(&service("default", &format!("s{i}"), i, json!({}))))
        .collect();
    let (_, p) = plan(&ClusterState {
        eips: vec![default_eip("small", "10.0.0.1-10.0.0.2")],
        services,
    });
    let last = &p.services[&key("default", "s2")];
    assert_eq!(last.ingress, Some(vec![]));
    assert_eq!(last.failure, Some("PoolExhausted"));
    let e = &last.events[0];
    assert_eq!(
        (e.type_, e.reason.as_str()),
        (EventType::Warning, "AllocationFailed")
    );
    assert!(e.message.contains("exhausted"), "{}", e.message);
    assert!(p.eips["small"].status.as_ref().expect("status").occupied);
}

#[test]
fn conflicting_requests_earlier_service_wins() {
    let want =
        json!({"metadata": {"annotations": {"eip.openelb.kubesphere.io/v1alpha1": "10.0.0.9"}}});
    let (_, p) = plan(&ClusterState {
        eips: vec![default_eip("pool", "10.0.0.0/24")],
        services: vec![
            view(&service("default", "late", 5, want.clone())),
            view(&service("default", "early", 1, want)),
        ],
    });
    assert_eq!(
        p.services[&key("default", "early")].ingress,
        Some(vec![ip("10.0.0.9")])
    );
    let late = &p.services[&key("default", "late")];
    assert_eq!(late.failure, Some("AddressTaken"));
    assert!(
        late.events[0].message.contains("default/early"),
        "{}",
        late.events[0].message
    );
}

#[test]
fn conflicting_annotations_on_one_service_are_refused() {
    let s = service(
        "default",
        "web",
        1,
        json!({"metadata": {"annotations": {
            "eip.openelb.kubesphere.io/v1alpha1": "10.0.0.9",
            "metallb.io/loadBalancerIPs": "10.0.0.10"}}}),
    );
    let (_, p) = plan(&ClusterState {
        eips: vec![default_eip("pool", "10.0.0.0/24")],
        services: vec![view(&s)],
    });
    assert_eq!(
        p.services[&key("default", "web")].failure,
        Some("ConflictingRequest")
    );
}

#[test]
fn sharing_needs_key_and_disjoint_ports() {
    let shared = |port: i32| {
        json!({"metadata": {"annotations": {
                   "metallb.io/allow-shared-ip": "k",
                   "eip.openelb.kubesphere.io/v1alpha1": "10.0.0.9"}},
               "spec": {"ports": [{"port": port, "protocol": "TCP"}]}})
    };
    let (_, p) = plan(&ClusterState {
        eips: vec![default_eip("pool", "10.0.0.0/24")],
        services: vec![
            view(&service("default", "a", 1, shared(80))),
            view(&service("default", "b", 2, shared(443))),
            view(&service("default", "c", 3, shared(80))),
        ],
    });
    assert_eq!(
        p.services[&key("default", "a")].ingress,
        Some(vec![ip("10.0.0.9")])
    );
    assert_eq!(
        p.services[&key("default", "b")].ingress,
        Some(vec![ip("10.0.0.9")])
    );
    assert_eq!(
        p.services[&key("default", "c")].failure,
        Some("AddressTaken")
    );
    let used = &p.eips["pool"].status.as_ref().expect("status").used;
    assert_eq!(used["10.0.0.9"], "default/a;default/b");
}

#[test]
fn dual_stack_gets_one_address_per_family() {
    let s = service(
        "default",
        "web",
        1,
        json!({"spec": {"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv6", "IPv4"]}}),
    );
    let (_, p) = plan(&ClusterState {
        eips: vec![
            default_eip("v4", "10.0.0.0/24"),
            default_eip("v6", "fd00::/120"),
        ],
        services: vec![view(&s)],
    });
    assert_eq!(
        p.services[&key("default", "web")].ingress,
        // IPv6 has no broadcast: the whole /120 is usable, the first address included.
        Some(vec![ip("fd00::"), ip("10.0.0.1")])
    );
    // PreferDualStack with only IPv4 available: one address and a warning for IPv6.
    let s = service(
        "default",
        "web",
        1,
        json!({"spec": {"ipFamilyPolicy": "PreferDualStack"}}),
    );
    let (_, p) = plan(&ClusterState {
        eips: vec![default_eip("v4", "10.0.0.0/24")],
        services: vec![view(&s)],
    });
    let d = &p.services[&key("default", "web")];
    assert_eq!(d.ingress, Some(vec![ip("10.0.0.1")]));
    assert!(d.events.iter().any(|e| e.type_ == EventType::Warning));
}

#[test]
fn pool_deletion_while_in_use_is_held_until_release() {
    let s = with_status(&service("default", "web", 1, json!({})), &["10.0.0.1"]);
    let pool = default_eip("pool", "10.0.0.0/24");
    let (mut engine, _) = Engine::rebuild(std::slice::from_ref(&pool), &[view(&s)]);
    let mut deleting = pool.clone();
    deleting.deleting = true;
    deleting.has_finalizer = true;
    let d = engine.reconcile_eip(&deleting);
    assert_eq!(d.finalizer, FinalizerChange::Keep);
    assert_eq!(d.events[0].reason, "PoolInUse");
    assert!(
        d.events[0].message.contains("default/web"),
        "{}",
        d.events[0].message
    );
    // The closing pool hands out nothing new.
    let other = view(&service("default", "other", 2, json!({})));
    assert_eq!(
        engine.reconcile_service(&other).failure,
        Some("PoolDisabled")
    );
    // The Service goes away: its address is released and the pool may go.
    let mut gone = view(&s);
    gone.deleting = true;
    let sd = engine.reconcile_service(&gone);
    assert_eq!(sd.finalizer, FinalizerChange::Remove);
    assert_eq!(sd.events[0].reason, "AddressReleased");
    assert_eq!(sd.pools, vec!["pool".to_string()]);
    let d = engine.reconcile_eip(&deleting);
    assert_eq!(d.finalizer, FinalizerChange::Remove);
    assert_eq!(d.status, None);
}

#[test]
fn class_change_or_type_change_releases_and_clears_status() {
    let s = with_status(&service("default", "web", 1, json!({})), &["10.0.0.1"]);
    let pool = default_eip("pool", "10.0.0.0/24");
    let (mut engine, _) = Engine::rebuild(std::slice::from_ref(&pool), &[view(&s)]);
    let mut v = serde_json::to_value(&s).expect("json");
    v["spec"]["type"] = json!("ClusterIP");
    let now_cluster_ip: Service = serde_json::from_value(v).expect("svc");
    let d = engine.reconcile_service(&view(&now_cluster_ip));
    assert_eq!(d.ingress, Some(vec![]));
    assert_eq!(d.finalizer, FinalizerChange::Remove);
    assert_eq!(d.events[0].reason, "AddressReleased");
    assert_eq!(engine.pool_status("pool").expect("pool").usage, 0);
}

#[test]
fn restart_with_1000_allocations_moves_nothing() {
    // Addresses deliberately not in allocation order, so a fresh allocation would differ.
    let services: Vec<Service> = (0..1000)
        .map(|i| {
            let n = 1000 - i;
            with_status(
                &service("ns", &format!("s{i}"), i64::from(i), json!({})),
                &[&format!("10.1.{}.{}", n / 250, n % 250 + 1)],
            )
        })
        .collect();
    let views: Vec<_> = services.iter().map(view).collect();
    let mut fresh = view(&service("ns", "new", 5000, json!({})));
    fresh.created = Some(i64::MAX);
    let mut all = views.clone();
    all.push(fresh);
    let (_, p) = plan(&ClusterState {
        eips: vec![default_eip("pool", "10.1.0.0/16")],
        services: all,
    });
    for v in &views {
        let d = &p.services[&v.key];
        assert_eq!(
            d.ingress.as_deref(),
            Some(v.ingress.as_slice()),
            "{} moved",
            v.key
        );
        assert!(!d.allocated, "{} re-allocated", v.key);
    }
    let new_ip = p.services[&key("ns", "new")]
        .ingress
        .clone()
        .expect("ingress");
    assert!(
        views.iter().all(|v| v.ingress != new_ip),
        "new Service got a taken address"
    );
    assert_eq!(p.eips["pool"].status.as_ref().expect("status").usage, 1001);
}

/// OpenELB shares an address between Services that ask for it, with no key; after a switch no
/// such Service may lose its address (issue 14 item 2). Overlapping ports are still refused.
#[test]
fn openelb_requests_for_one_address_share_it() {
    let asks = |port: i32, by_spec: bool| {
        if by_spec {
            json!({"spec": {"loadBalancerIP": "10.0.0.9",
                            "ports": [{"port": port, "protocol": "TCP"}]}})
        } else {
            json!({"metadata": {"annotations": {"eip.openelb.kubesphere.io/v1alpha1": "10.0.0.9"}},
                   "spec": {"ports": [{"port": port, "protocol": "TCP"}]}})
        }
    };
    let (_, p) = plan(&ClusterState {
        eips: vec![default_eip("pool", "10.0.0.0/24")],
        services: vec![
            view(&service("default", "a", 1, asks(80, false))),
            view(&service("default", "b", 2, asks(443, true))),
            view(&service("default", "c", 3, asks(80, false))),
        ],
    });
    for name in ["a", "b"] {
        assert_eq!(
            p.services[&key("default", name)].ingress,
            Some(vec![ip("10.0.0.9")]),
            "{name}"
        );
    }
    let c = &p.services[&key("default", "c")];
    assert_eq!(c.failure, Some("AddressTaken"));
    assert!(
        c.events[0].message.contains("port 80/TCP is used by both"),
        "{}",
        c.events[0].message
    );
    let used = &p.eips["pool"].status.as_ref().expect("status").used;
    assert_eq!(used["10.0.0.9"], "default/a;default/b");
}

/// The same two Services as OpenELB left them (both holding the address in their status):
/// the controller's first rebuild keeps it on both and refuses nothing.
#[test]
fn openelb_shared_address_survives_the_switch() {
    let asks = |port: i32| {
        json!({"metadata": {"annotations": {"eip.openelb.kubesphere.io/v1alpha1": "10.0.0.9"}},
               "spec": {"ports": [{"port": port, "protocol": "TCP"}]}})
    };
    let a = with_status(&service("default", "a", 1, asks(80)), &["10.0.0.9"]);
    let b = with_status(&service("default", "b", 2, asks(443)), &["10.0.0.9"]);
    let (_, p) = plan(&ClusterState {
        eips: vec![default_eip("pool", "10.0.0.0/24")],
        services: vec![view(&b), view(&a)],
    });
    assert!(
        p.rebuild_events
            .iter()
            .all(|e| e.reason != "AddressRefused"),
        "{:?}",
        p.rebuild_events
    );
    for name in ["a", "b"] {
        let d = &p.services[&key("default", name)];
        assert_eq!(d.ingress, Some(vec![ip("10.0.0.9")]), "{name}");
        assert_eq!(d.failure, None, "{name}");
    }
}

/// A `vip` pool (OpenELB's keepalived mode) is allocated from, so a migration loses nothing,
/// but no node announces it: the Eip says so in its condition and an event, and each Service
/// that gets such an address gets a Warning (issue 14 item 5). A bgp pool says nothing.
#[test]
fn vip_pools_allocate_and_say_nobody_announces_them() {
    let vip = eip(
        "keepalived",
        "10.0.1.0/24",
        json!({"metadata": {"annotations": {"eip.openelb.kubesphere.io/is-default-eip": "true"}},
               "spec": {"protocol": "vip", "interface": "eth0"}}),
    );
    let (_, p) = plan(&ClusterState {
        eips: vec![vip, eip("plain", "10.0.2.0/24", json!({}))],
        services: vec![
            view(&service("default", "web", 1, json!({}))),
            view(&service(
                "default",
                "api",
                2,
                json!({"metadata": {"annotations": {"eip.openelb.kubesphere.io/v1alpha2": "plain"}}}),
            )),
        ],
    });
    let web = &p.services[&key("default", "web")];
    assert_eq!(web.ingress, Some(vec![ip("10.0.1.1")]));
    let warning = web
        .events
        .iter()
        .find(|e| e.reason == "AddressNotAnnounced")
        .expect("a warning on the Service");
    assert_eq!(warning.type_, EventType::Warning);
    assert!(
        warning.message.contains("10.0.1.1 from pool keepalived")
            && warning.message.contains("no node answers"),
        "{}",
        warning.message
    );
    let status = p.eips["keepalived"].status.clone().expect("status");
    let valid = &status.conditions[0];
    assert_eq!(
        (valid.status.as_str(), valid.reason.as_str()),
        ("True", "FieldsIgnored")
    );
    assert!(
        valid.message.contains("not announced by Berth"),
        "{}",
        valid.message
    );
    assert!(
        p.eips["keepalived"]
            .events
            .iter()
            .any(|e| e.message.contains("not announced by Berth")),
        "{:?}",
        p.eips["keepalived"].events
    );

    let api = &p.services[&key("default", "api")];
    assert_eq!(api.ingress, Some(vec![ip("10.0.2.1")]));
    assert!(api.events.iter().all(|e| e.reason != "AddressNotAnnounced"));
    let plain = p.eips["plain"].status.clone().expect("status");
    assert!(plain.conditions.is_empty(), "{:?}", plain.conditions);

    // Deciding again with the status written says nothing more to the Service.
    let web_again = with_status(&service("default", "web", 1, json!({})), &["10.0.1.1"]);
    let vip = eip(
        "keepalived",
        "10.0.1.0/24",
        json!({"metadata": {"annotations": {"eip.openelb.kubesphere.io/is-default-eip": "true"}},
               "spec": {"protocol": "vip", "interface": "eth0"}}),
    );
    let (_, again) = plan(&ClusterState {
        eips: vec![vip],
        services: vec![view(&web_again)],
    });
    assert!(
        again.services[&key("default", "web")]
            .events
            .iter()
            .all(|e| e.reason != "AddressNotAnnounced")
    );
}

#[test]
fn restart_conflict_refuses_the_later_claimant() {
    let a = with_status(&service("default", "a", 1, json!({})), &["10.0.0.5"]);
    let b = with_status(&service("default", "b", 2, json!({})), &["10.0.0.5"]);
    let (_, p) = plan(&ClusterState {
        eips: vec![default_eip("pool", "10.0.0.0/24")],
        services: vec![view(&b), view(&a)],
    });
    assert_eq!(
        p.services[&key("default", "a")].ingress,
        Some(vec![ip("10.0.0.5")])
    );
    let refused: Vec<_> = p
        .rebuild_events
        .iter()
        .filter(|e| e.reason == "AddressRefused")
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].subject, Subject::Service(key("default", "b")));
    let b_ip = p.services[&key("default", "b")]
        .ingress
        .clone()
        .expect("ingress");
    assert_ne!(b_ip, vec![ip("10.0.0.5")]);
}

#[test]
fn no_pool_matches_names_the_fix() {
    let (_, p) = plan(&ClusterState {
        eips: vec![eip(
            "bound",
            "10.0.0.0/24",
            json!({"spec": {"namespaces": ["other"]}}),
        )],
        services: vec![view(&service("default", "web", 1, json!({})))],
    });
    let d = &p.services[&key("default", "web")];
    assert_eq!(d.failure, Some("NoPoolMatches"));
    assert!(
        d.events[0].message.contains("is-default-eip"),
        "{}",
        d.events[0].message
    );
}

#[test]
fn deciding_twice_changes_nothing() {
    let state = ClusterState {
        eips: vec![default_eip("pool", "10.0.0.0/24")],
        services: vec![view(&service("default", "web", 1, json!({})))],
    };
    let (mut engine, p) = plan(&state);
    let ip_now = p.services[&key("default", "web")]
        .ingress
        .clone()
        .expect("ip");
    let mut again = state.services[0].clone();
    again.ingress = ip_now.clone();
    again.has_finalizer = true;
    let d = engine.reconcile_service(&again);
    assert_eq!(d.ingress, Some(ip_now));
    assert_eq!(d.finalizer, FinalizerChange::Keep);
    assert!(d.events.is_empty(), "{:?}", d.events);
}

/// Regression (found in-cluster by `testbed/tests/kube_faults.rs`): after a restart or a
/// leader change, the rebuild admitted a Terminating Eip as an open pool, so a Service
/// reconciled before that Eip got an address from it.
#[test]
fn pool_being_deleted_hands_out_nothing_after_a_rebuild() {
    let s = with_status(&service("default", "web", 1, json!({})), &["10.0.0.1"]);
    let mut deleting = default_eip("pool", "10.0.0.0/24");
    deleting.deleting = true;
    deleting.has_finalizer = true;
    let (mut engine, events) = Engine::rebuild(std::slice::from_ref(&deleting), &[view(&s)]);
    assert!(events.is_empty(), "{events:?}");
    // Its Service keeps its address; a new one gets nothing, before the Eip is reconciled.
    assert_eq!(engine.reconcile_service(&view(&s)).failure, None);
    assert_eq!(
        engine.allocator().addresses_of(&key("default", "web"))[0].address,
        ip("10.0.0.1")
    );
    let other = view(&service("default", "other", 2, json!({})));
    assert_eq!(
        engine.reconcile_service(&other).failure,
        Some("PoolDisabled")
    );
    let d = engine.reconcile_eip(&deleting);
    assert_eq!(d.finalizer, FinalizerChange::Keep);
}

#[test]
fn unused_pool_that_vanished_hands_out_nothing_but_used_pool_stays() {
    let used = with_status(&service("default", "web", 1, json!({})), &["10.0.0.1"]);
    let a = default_eip("a", "10.0.0.0/24");
    let b = default_eip("b", "10.0.1.0/24");
    let (mut engine, _) = Engine::rebuild(&[a.clone(), b], &[view(&used)]);
    // Both Eips vanish from the cluster without our finalizer.
    engine.sync_pools(&[]);
    assert!(engine.pool_status("a").is_some(), "a pool in use must stay");
    assert!(
        engine.pool_status("b").is_none(),
        "an unused vanished pool must go"
    );
    // A pool created while we were not looking is admitted.
    engine.sync_pools(&[a, default_eip("c", "10.0.2.0/24")]);
    assert!(engine.pool_status("c").is_some());
}

#[test]
fn restored_service_whose_request_became_invalid_keeps_its_address() {
    let mut broken = with_status(&service("default", "web", 1, json!({})), &["10.0.0.7"]);
    broken
        .metadata
        .annotations
        .get_or_insert_default()
        .insert("metallb.io/loadBalancerIPs".into(), "not-an-ip".into());
    let (_, p) = plan(&ClusterState {
        eips: vec![default_eip("pool", "10.0.0.0/24")],
        services: vec![view(&broken)],
    });
    let d = &p.services[&key("default", "web")];
    assert_eq!(
        d.ingress,
        Some(vec![ip("10.0.0.7")]),
        "nothing moves on a bad edit"
    );
    assert_eq!(d.failure, Some("InvalidRequest"));
    assert!(
        d.events[0].message.contains("metallb.io/loadBalancerIPs"),
        "{}",
        d.events[0].message
    );
}
