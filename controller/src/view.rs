//! Plain views of the Kubernetes objects the decisions read, and their conversion from the
//! typed objects. Pure: the kube layer and the standalone layer both build these.
//!
//! Which Services Berth handles is decided here ([`ClassConfig::handles`]), so both layers
//! apply the same rule.

use std::collections::BTreeMap;
use std::net::IpAddr;

use api::Eip;
use api::keys;
use k8s_openapi::api::core::v1::Service;

use crate::ipam::{PoolSpec, ServiceFacts, ServicePortFacts, ServiceRef};

pub use api::class::ClassConfig;

/// A Service as the decisions see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceView {
    /// `namespace/name`.
    pub key: ServiceRef,
    /// Berth handles it (see [`ClassConfig::handles`]).
    pub managed: bool,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// Carries [`keys::SERVICE_FINALIZER`].
    pub has_finalizer: bool,
    /// Allocation-relevant fields.
    pub facts: ServiceFacts,
    /// Addresses in `status.loadBalancer.ingress[].ip` now.
    pub ingress: Vec<IpAddr>,
    /// `metadata.creationTimestamp`, seconds since the epoch: the earlier claimant wins.
    pub created: Option<i64>,
}

impl ServiceView {
    /// Builds the view of a Kubernetes Service. `namespace_labels` are its namespace's labels.
    pub fn from_service(
        svc: &Service,
        config: &ClassConfig,
        namespace_labels: &BTreeMap<String, String>,
    ) -> ServiceView {
        let meta = &svc.metadata;
        let annotations = meta.annotations.clone().unwrap_or_default();
        let spec = svc.spec.clone().unwrap_or_default();
        let opt_in = api::class::opted_in(Some(&annotations));
        let managed = config.handles(
            spec.type_.as_deref(),
            spec.load_balancer_class.as_deref(),
            opt_in,
        );
        let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
        let name = meta.name.clone().unwrap_or_default();
        let ingress = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .map(|ing| {
                ing.iter()
                    .filter_map(|i| i.ip.as_deref()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let facts = ServiceFacts {
            namespace: namespace.clone(),
            name: name.clone(),
            annotations,
            namespace_labels: namespace_labels.clone(),
            load_balancer_ip: spec.load_balancer_ip.clone(),
            ip_family_policy: spec.ip_family_policy.clone(),
            ip_families: spec.ip_families.clone().unwrap_or_default(),
            ports: spec
                .ports
                .iter()
                .flatten()
                .map(|p| ServicePortFacts {
                    port: p.port,
                    protocol: p.protocol.clone(),
                })
                .collect(),
            external_traffic_policy: spec.external_traffic_policy.clone(),
            selector: spec.selector.clone().unwrap_or_default(),
        };
        ServiceView {
            key: ServiceRef::new(namespace, name),
            managed,
            deleting: meta.deletion_timestamp.is_some(),
            has_finalizer: meta
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == keys::SERVICE_FINALIZER),
            facts,
            ingress,
            created: meta.creation_timestamp.as_ref().map(|t| t.0.as_second()),
        }
    }
}

/// An Eip as the decisions see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EipView {
    /// The pool as the allocator takes it.
    pub spec: PoolSpec,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// Carries [`keys::EIP_FINALIZER`].
    pub has_finalizer: bool,
}

impl EipView {
    /// Builds the view of an Eip.
    pub fn from_eip(eip: &Eip) -> EipView {
        let s = &eip.spec;
        EipView {
            spec: PoolSpec {
                name: eip.metadata.name.clone().unwrap_or_default(),
                address: s.address.clone(),
                skip_network_broadcast: s.skips_network_and_broadcast(),
                disable: s.disable,
                priority: s.priority(),
                namespaces: s.namespaces.clone(),
                namespace_selector: s.namespace_selector.clone(),
                is_default: eip.is_default_pool(),
                created: eip
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.as_second()),
                accepted: eip.status.as_ref().is_some_and(|st| st.ready),
                warnings: api::validate::eip_warnings(s)
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                not_announced: (s.protocol() == api::eip::Protocol::Vip)
                    .then(|| api::validate::VIP_NOT_ANNOUNCED.to_string()),
            },
            deleting: eip.metadata.deletion_timestamp.is_some(),
            has_finalizer: eip
                .metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == keys::EIP_FINALIZER),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_view_reads_fields() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web", "namespace": "shop",
                "annotations": {"lb.kubesphere.io/v1alpha1": "openelb"},
                "finalizers": ["berth.io/service-address"],
                "creationTimestamp": "2024-01-01T00:00:00Z"
            },
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}
        }))
        .expect("service");
        let v = ServiceView::from_service(&svc, &ClassConfig::default(), &BTreeMap::new());
        assert!(v.managed && v.has_finalizer && !v.deleting);
        assert_eq!(v.key, ServiceRef::new("shop", "web"));
        assert_eq!(v.ingress, vec!["10.0.0.1".parse::<IpAddr>().expect("ip")]);
        assert_eq!(v.created, Some(1_704_067_200));
        assert_eq!(v.facts.ports[0].port, 80);
    }
}
