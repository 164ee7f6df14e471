//! Properties of the whole-state decision: applying a plan's statuses and deciding again
//! moves nothing (what a restart does), and no address is held by two Services unless they
//! share a key and no port. A Service that asks for an address the OpenELB way and names no
//! key has the implicit key of that address (OpenELB's sharing, kept for migrations).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use api::Eip;
use controller::plan::{ClusterState, plan};
use controller::view::{ClassConfig, EipView, ServiceView};
use k8s_openapi::api::core::v1::Service;
use proptest::prelude::*;
use serde_json::json;

#[derive(Clone, Debug)]
struct Svc {
    requested: Option<u8>,
    key: Option<u8>,
    port: u16,
    dual: bool,
}

impl Svc {
    /// The sharing key the controller reads: the named one, else the requested address's.
    fn sharing_key(&self) -> Option<String> {
        match (self.key, self.requested) {
            (Some(k), _) => Some(format!("k{k}")),
            (None, Some(r)) => Some(format!("openelb:10.0.0.{}", r % 8)),
            (None, None) => None,
        }
    }
}

fn pools() -> Vec<EipView> {
    [("v4", "10.0.0.0/29"), ("v6", "fd00::1-fd00::4")]
        .iter()
        .map(|(name, address)| {
            let eip: Eip = serde_json::from_value(json!({
                "apiVersion": "network.kubesphere.io/v1alpha2", "kind": "Eip",
                "metadata": {"name": name,
                             "annotations": {"eip.openelb.kubesphere.io/is-default-eip": "true"}},
                "spec": {"address": address}
            }))
            .expect("eip");
            EipView::from_eip(&eip)
        })
        .collect()
}

fn service(i: usize, s: &Svc, status: &[IpAddr]) -> ServiceView {
    let mut annotations = BTreeMap::from([(
        "lb.kubesphere.io/v1alpha1".to_string(),
        "openelb".to_string(),
    )]);
    if let Some(r) = s.requested {
        annotations.insert(
            "eip.openelb.kubesphere.io/v1alpha1".into(),
            format!("10.0.0.{}", r % 8),
        );
    }
    if let Some(k) = s.key {
        annotations.insert("metallb.io/allow-shared-ip".into(), format!("k{k}"));
    }
    let ingress: Vec<_> = status
        .iter()
        .map(|ip| json!({"ip": ip.to_string()}))
        .collect();
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": format!("s{i}"), "namespace": "ns", "annotations": annotations,
                     "creationTimestamp": format!("2024-01-01T00:00:{:02}Z", i % 60)},
        "spec": {"type": "LoadBalancer",
                 "ipFamilyPolicy": if s.dual { "PreferDualStack" } else { "SingleStack" },
                 "ports": [{"port": s.port, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": ingress}}
    }))
    .expect("service");
    ServiceView::from_service(&svc, &ClassConfig::default(), &BTreeMap::new())
}

fn svc_strategy() -> impl Strategy<Value = Svc> {
    (
        proptest::option::of(0u8..8),
        proptest::option::of(0u8..2),
        prop_oneof![Just(80u16), Just(443u16), Just(53u16)],
        any::<bool>(),
    )
        .prop_map(|(requested, key, port, dual)| Svc {
            requested,
            key,
            port,
            dual,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn deciding_again_from_written_statuses_moves_nothing(specs in proptest::collection::vec(svc_strategy(), 0..14)) {
        let eips = pools();
        let first: Vec<ServiceView> = specs.iter().enumerate().map(|(i, s)| service(i, s, &[])).collect();
        let (_, p1) = plan(&ClusterState { eips: eips.clone(), services: first.clone() });
        let written: Vec<Vec<IpAddr>> = first
            .iter()
            .map(|v| p1.services[&v.key].ingress.clone().unwrap_or_default())
            .collect();

        // No address held twice unless the holders share a key and no port.
        let mut holders: BTreeMap<IpAddr, Vec<usize>> = BTreeMap::new();
        for (i, ips) in written.iter().enumerate() {
            for ip in ips {
                holders.entry(*ip).or_default().push(i);
            }
        }
        for (ip, hs) in &holders {
            if hs.len() > 1 {
                let keys: BTreeSet<_> = hs.iter().map(|i| specs[*i].sharing_key()).collect();
                prop_assert!(keys.len() == 1 && !keys.contains(&None), "{ip} shared without a common key: {hs:?}");
                let ports: BTreeSet<_> = hs.iter().map(|i| specs[*i].port).collect();
                prop_assert_eq!(ports.len(), hs.len(), "{} shared on one port", ip);
            }
        }

        // A restart: the same objects with the statuses written. Nothing moves.
        let second: Vec<ServiceView> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| service(i, s, &written[i]))
            .collect();
        let (_, p2) = plan(&ClusterState { eips, services: second.clone() });
        for (i, v) in second.iter().enumerate() {
            let d = &p2.services[&v.key];
            prop_assert_eq!(d.ingress.clone().unwrap_or_default(), written[i].clone(), "{} moved", v.key);
            prop_assert!(!d.allocated, "{} re-allocated", v.key);
        }
    }
}
