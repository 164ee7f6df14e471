//! A Service's `berth.io/bgp-*` annotations (issue 18): a malformed value gets a Warning on
//! that Service alone, and changes nothing of its allocation nor of any other Service.

use std::collections::BTreeMap;

use api::Eip;
use controller::decision::EventType;
use controller::ipam::ServiceRef;
use controller::plan::{ClusterState, plan};
use controller::view::{ClassConfig, EipView, ServiceView};
use k8s_openapi::api::core::v1::Service;
use serde_json::json;

fn pool() -> EipView {
    let eip: Eip = serde_json::from_value(json!({
        "apiVersion": "network.kubesphere.io/v1alpha2", "kind": "Eip",
        "metadata": {"name": "pool", "annotations": {"eip.openelb.kubesphere.io/is-default-eip": "true"}},
        "spec": {"address": "10.0.0.0/24", "advertisement": {"med": 5}}
    }))
    .expect("eip");
    EipView::from_eip(&eip)
}

fn service(name: &str, annotations: &[(&str, &str)]) -> ServiceView {
    let mut all: BTreeMap<&str, &str> = annotations.iter().copied().collect();
    all.insert("lb.kubesphere.io/v1alpha1", "openelb");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "web", "annotations": all,
                     "creationTimestamp": "2024-01-01T00:00:01Z"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]}
    }))
    .expect("service");
    ServiceView::from_service(&svc, &ClassConfig::default(), &BTreeMap::new())
}

#[test]
fn a_malformed_bgp_annotation_is_a_warning_on_that_service_alone() {
    let state = ClusterState {
        eips: vec![pool()],
        services: vec![
            service(
                "bad",
                &[
                    ("berth.io/bgp-med", "ten"),
                    ("berth.io/bgp-communities", "65000:1"),
                ],
            ),
            service(
                "good",
                &[
                    ("berth.io/bgp-med", "10"),
                    ("berth.io/bgp-communities", "65000:1"),
                ],
            ),
        ],
    };
    let (_, p) = plan(&state);
    let bad = &p.services[&ServiceRef::new("web", "bad")];
    let warning = bad
        .events
        .iter()
        .find(|e| e.reason == "InvalidBgpAttributes")
        .expect("a warning on the bad Service");
    assert_eq!(warning.type_, EventType::Warning);
    assert!(
        warning.message.contains("berth.io/bgp-med") && warning.message.contains("\"ten\""),
        "{}",
        warning.message
    );
    assert!(bad.allocated, "the Service still gets its address");
    let good = &p.services[&ServiceRef::new("web", "good")];
    assert!(good.allocated);
    assert!(
        good.events
            .iter()
            .all(|e| e.reason != "InvalidBgpAttributes"),
        "{:?}",
        good.events
    );
}
