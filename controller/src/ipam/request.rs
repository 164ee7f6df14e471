//! What a Service asks the allocator for, and how its fields and annotations say it.
//!
//! [`request_for_service`] reads a plain [`ServiceFacts`] (filled by the reconciler from a
//! Kubernetes Service or from a standalone manifest) into an [`AllocationRequest`]. It knows the
//! OpenELB and MetalLB annotations but not the Kubernetes types.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use super::error::AllocationError;
use super::range::Family;
use super::sharing::{PortClaim, Protocol, SharingTerms, TrafficPolicy};

// The annotation keys are `api::keys`' (one copy for both binaries); these names keep the
// controller's call sites short.
/// OpenELB: the address a Service asks for (beats `spec.loadBalancerIP`).
pub const OPENELB_IP_ANNOTATION: &str = api::keys::OPENELB_REQUESTED_IP;
/// OpenELB: the pool (Eip name) a Service asks for.
pub const OPENELB_POOL_ANNOTATION: &str = api::keys::OPENELB_POOL;
/// MetalLB: the addresses a Service asks for, comma-separated, at most one per family.
pub const METALLB_IPS_ANNOTATION: &str = api::keys::METALLB_LOAD_BALANCER_IPS;
/// MetalLB: the pool a Service asks for.
pub const METALLB_POOL_ANNOTATION: &str = api::keys::METALLB_ADDRESS_POOL;
/// MetalLB: the sharing key.
pub const METALLB_SHARING_ANNOTATION: &str = api::keys::METALLB_ALLOW_SHARED_IP;

/// Prefix of the sharing key a Service gets when it asks for an address the OpenELB way and
/// names no key of its own (see [`openelb_sharing_key`]).
pub const OPENELB_SHARING_PREFIX: &str = "openelb-requested:";

/// A Service by namespace and name; displayed and ordered as `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ServiceRef {
    /// A Service reference.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> ServiceRef {
        ServiceRef {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The Service's `spec.ipFamilyPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum FamilyPolicy {
    /// One address, of the first `ipFamilies` entry (IPv4 when empty).
    #[default]
    SingleStack,
    /// One address per family where a pool serves it; at least one.
    PreferDualStack,
    /// One address per family, or nothing.
    RequireDualStack,
}

impl FamilyPolicy {
    /// Parses the Kubernetes value; empty means `SingleStack`.
    pub fn from_k8s(s: &str) -> Option<FamilyPolicy> {
        match s {
            "" | "SingleStack" => Some(FamilyPolicy::SingleStack),
            "PreferDualStack" => Some(FamilyPolicy::PreferDualStack),
            "RequireDualStack" => Some(FamilyPolicy::RequireDualStack),
            _ => None,
        }
    }
}

/// Everything the allocator needs to know about one Service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AllocationRequest {
    /// Who asks.
    pub service: ServiceRef,
    /// Labels of the Service's namespace, matched against pools' `namespaceSelector`.
    pub namespace_labels: BTreeMap<String, String>,
    /// Named pools (Eip names); empty lets the allocator choose. Several names let a
    /// dual-stack Service name one pool per family.
    pub pools: Vec<String>,
    /// Requested addresses, at most one per family.
    pub addresses: Vec<IpAddr>,
    /// `spec.ipFamilyPolicy`.
    pub policy: FamilyPolicy,
    /// `spec.ipFamilies` in order (may be empty).
    pub families: Vec<Family>,
    /// Sharing key, ports and traffic policy.
    pub sharing: SharingTerms,
}

impl AllocationRequest {
    /// A request for one address of any pool that serves the namespace, single-stack IPv4.
    pub fn new(service: ServiceRef) -> AllocationRequest {
        AllocationRequest {
            service,
            namespace_labels: BTreeMap::new(),
            pools: Vec::new(),
            addresses: Vec::new(),
            policy: FamilyPolicy::SingleStack,
            families: Vec::new(),
            sharing: SharingTerms::default(),
        }
    }

    /// The requested address of `family`, if any.
    pub fn address_of(&self, family: Family) -> Option<IpAddr> {
        self.addresses
            .iter()
            .copied()
            .find(|ip| Family::of(*ip) == family)
    }
}

/// One Service port as the reconciler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePortFacts {
    /// `port`.
    pub port: i32,
    /// `protocol`; `None` means TCP.
    pub protocol: Option<String>,
}

/// The fields of a Service that matter to address allocation, as plain data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceFacts {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// Labels of the Service's namespace (for pools' `namespaceSelector`).
    pub namespace_labels: BTreeMap<String, String>,
    /// `spec.loadBalancerIP`.
    pub load_balancer_ip: Option<String>,
    /// `spec.ipFamilyPolicy`.
    pub ip_family_policy: Option<String>,
    /// `spec.ipFamilies`.
    pub ip_families: Vec<String>,
    /// `spec.ports`.
    pub ports: Vec<ServicePortFacts>,
    /// `spec.externalTrafficPolicy`.
    pub external_traffic_policy: Option<String>,
    /// `spec.selector`.
    pub selector: BTreeMap<String, String>,
}

/// Reads a Service's fields and annotations into an allocation request.
///
/// Address: the OpenELB annotation beats `spec.loadBalancerIP`; `metallb.io/loadBalancerIPs`
/// (one per family) must agree with whichever of the two is set. Pool: the OpenELB and
/// MetalLB pool annotations must agree when both are set; either may list one pool per family,
/// comma-separated.
pub fn request_for_service(facts: &ServiceFacts) -> Result<AllocationRequest, AllocationError> {
    let annotation = |key: &str| {
        facts
            .annotations
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let invalid = |field: &str, value: &str, reason: &str| AllocationError::InvalidRequest {
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let parse_ips = |field: &str, value: &str| -> Result<Vec<IpAddr>, AllocationError> {
        let mut ips = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpAddr>()
                    .map_err(|_| invalid(field, value, &format!("{s:?} is not an IP address")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        ips.sort();
        ips.dedup();
        Ok(ips)
    };

    let openelb_ip = annotation(OPENELB_IP_ANNOTATION)
        .map(|v| parse_ips(OPENELB_IP_ANNOTATION, v))
        .transpose()?;
    if let Some(ips) = &openelb_ip
        && ips.len() > 1
    {
        return Err(invalid(
            OPENELB_IP_ANNOTATION,
            annotation(OPENELB_IP_ANNOTATION).unwrap_or_default(),
            "holds one address; use metallb.io/loadBalancerIPs for one per family",
        ));
    }
    let metallb_ips = annotation(METALLB_IPS_ANNOTATION)
        .map(|v| parse_ips(METALLB_IPS_ANNOTATION, v))
        .transpose()?;
    let spec_ip = facts
        .load_balancer_ip
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| parse_ips("spec.loadBalancerIP", v))
        .transpose()?;
    let primary = openelb_ip.clone().or(spec_ip.clone());
    let addresses = match (metallb_ips, primary) {
        (Some(m), Some(p)) if !p.iter().all(|ip| m.contains(ip)) => {
            let source = if openelb_ip.is_some() {
                OPENELB_IP_ANNOTATION
            } else {
                "spec.loadBalancerIP"
            };
            return Err(AllocationError::ConflictingRequest(format!(
                "{source} asks for {} but {METALLB_IPS_ANNOTATION} asks for {}; keep one of them",
                join(&p),
                join(&m)
            )));
        }
        (Some(m), _) => m,
        (None, Some(p)) => p,
        (None, None) => Vec::new(),
    };

    let pool_names = |key: &str| {
        annotation(key).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
    };
    let pools = match (
        pool_names(OPENELB_POOL_ANNOTATION),
        pool_names(METALLB_POOL_ANNOTATION),
    ) {
        (Some(a), Some(b)) if a != b => {
            return Err(AllocationError::ConflictingRequest(format!(
                "{OPENELB_POOL_ANNOTATION} names {a:?} but {METALLB_POOL_ANNOTATION} names {b:?}; keep one of them"
            )));
        }
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => Vec::new(),
    };

    let policy_text = facts.ip_family_policy.as_deref().unwrap_or("");
    let policy = FamilyPolicy::from_k8s(policy_text).ok_or_else(|| {
        invalid(
            "spec.ipFamilyPolicy",
            policy_text,
            "expected SingleStack, PreferDualStack or RequireDualStack",
        )
    })?;
    let families = facts
        .ip_families
        .iter()
        .map(|f| {
            Family::from_k8s(f)
                .ok_or_else(|| invalid("spec.ipFamilies", f, "expected IPv4 or IPv6"))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let ports = facts
        .ports
        .iter()
        .map(|p| {
            let port = u16::try_from(p.port)
                .ok()
                .filter(|n| *n != 0)
                .ok_or_else(|| {
                    invalid(
                        "spec.ports[].port",
                        &p.port.to_string(),
                        "expected 1 to 65535",
                    )
                })?;
            let proto_text = p.protocol.as_deref().unwrap_or("TCP");
            let protocol = Protocol::from_k8s(proto_text).ok_or_else(|| {
                invalid(
                    "spec.ports[].protocol",
                    proto_text,
                    "expected TCP, UDP or SCTP",
                )
            })?;
            Ok(PortClaim { port, protocol })
        })
        .collect::<Result<Vec<_>, AllocationError>>()?;
    let traffic = match facts.external_traffic_policy.as_deref().unwrap_or("") {
        "" | "Cluster" => TrafficPolicy::Cluster,
        "Local" => TrafficPolicy::Local {
            selector: facts.selector.clone(),
        },
        other => {
            return Err(invalid(
                "spec.externalTrafficPolicy",
                other,
                "expected Cluster or Local",
            ));
        }
    };

    let explicit_key = annotation(METALLB_SHARING_ANNOTATION).map(str::to_string);
    let openelb_request = openelb_ip.is_some()
        || (spec_ip.is_some() && api::class::opted_in(Some(&facts.annotations)));
    let key = match explicit_key {
        Some(key) => Some(key),
        None if openelb_request => Some(openelb_sharing_key(&addresses)),
        None => None,
    };
    let request = AllocationRequest {
        service: ServiceRef::new(&facts.namespace, &facts.name),
        namespace_labels: facts.namespace_labels.clone(),
        pools,
        addresses,
        policy,
        families,
        sharing: SharingTerms {
            key,
            ports,
            policy: traffic,
        },
    };
    // Catch one-per-family and family mismatches here, where the user's words are at hand.
    request.wanted_families()?;
    Ok(request)
}

/// The sharing key of a Service that asks for `addresses` the OpenELB way — by
/// `eip.openelb.kubesphere.io/v1alpha1`, or by `spec.loadBalancerIP` when it opts in with
/// `lb.kubesphere.io/v1alpha1: openelb` — and names no `metallb.io/allow-shared-ip` key.
///
/// OpenELB lets Services that ask for the same address share it without a key, and its docs
/// say so; Services migrated from it must keep their address. So such Services form one sharing
/// group per requested address: the usual port and traffic-policy rules still apply (two of
/// them on the same port are refused with an event), and a Service that names a key of its own
/// shares only by that key.
pub fn openelb_sharing_key(addresses: &[IpAddr]) -> String {
    format!("{OPENELB_SHARING_PREFIX}{}", join(addresses))
}

pub(crate) fn join(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(annotations: &[(&str, &str)]) -> ServiceFacts {
        ServiceFacts {
            namespace: "ns".into(),
            name: "svc".into(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ports: vec![ServicePortFacts {
                port: 80,
                protocol: None,
            }],
            ..ServiceFacts::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn openelb_annotation_beats_load_balancer_ip() {
        let mut f = facts(&[(OPENELB_IP_ANNOTATION, "10.0.0.5")]);
        f.load_balancer_ip = Some("10.0.0.9".into());
        let r = request_for_service(&f).expect("valid");
        assert_eq!(r.addresses, vec![ip("10.0.0.5")]);
        f.annotations.clear();
        let r = request_for_service(&f).expect("valid");
        assert_eq!(r.addresses, vec![ip("10.0.0.9")]);
    }

    #[test]
    fn metallb_ips_one_per_family() {
        let mut f = facts(&[(METALLB_IPS_ANNOTATION, "10.0.0.5, fd00::5")]);
        f.ip_family_policy = Some("RequireDualStack".into());
        let r = request_for_service(&f).expect("valid");
        assert_eq!(r.addresses, vec![ip("10.0.0.5"), ip("fd00::5")]);
        let f = facts(&[(METALLB_IPS_ANNOTATION, "10.0.0.5,10.0.0.6")]);
        let e = request_for_service(&f).expect_err("two IPv4");
        assert_eq!(e.reason(), "ConflictingRequest");
        assert!(e.to_string().contains("at most one per family"), "{e}");
    }

    #[test]
    fn metallb_ips_must_agree_with_load_balancer_ip() {
        let mut f = facts(&[(METALLB_IPS_ANNOTATION, "10.0.0.5")]);
        f.load_balancer_ip = Some("10.0.0.6".into());
        let e = request_for_service(&f).expect_err("disagree");
        assert!(e.to_string().contains("keep one of them"), "{e}");
        f.load_balancer_ip = Some("10.0.0.5".into());
        assert!(request_for_service(&f).is_ok());
    }

    #[test]
    fn pool_annotations_and_sharing_key() {
        let f = facts(&[
            (OPENELB_POOL_ANNOTATION, "a"),
            (METALLB_SHARING_ANNOTATION, " key "),
        ]);
        let r = request_for_service(&f).expect("valid");
        assert_eq!(r.pools, vec!["a".to_string()]);
        assert_eq!(r.sharing.key.as_deref(), Some("key"));
        let f = facts(&[(METALLB_POOL_ANNOTATION, "v4pool,v6pool")]);
        let r = request_for_service(&f).expect("valid");
        assert_eq!(r.pools, vec!["v4pool".to_string(), "v6pool".to_string()]);
        let f = facts(&[
            (OPENELB_POOL_ANNOTATION, "a"),
            (METALLB_POOL_ANNOTATION, "b"),
        ]);
        assert_eq!(
            request_for_service(&f).expect_err("disagree").reason(),
            "ConflictingRequest"
        );
    }

    #[test]
    fn openelb_requests_share_by_address_unless_a_key_is_named() {
        let by_annotation =
            request_for_service(&facts(&[(OPENELB_IP_ANNOTATION, "10.0.0.5")])).expect("valid");
        assert_eq!(
            by_annotation.sharing.key.as_deref(),
            Some("openelb-requested:10.0.0.5")
        );

        let mut by_spec = facts(&[(api::keys::OPENELB_OPT_IN, "openelb")]);
        by_spec.load_balancer_ip = Some("10.0.0.5".into());
        let by_spec = request_for_service(&by_spec).expect("valid");
        assert_eq!(by_spec.sharing.key, by_annotation.sharing.key);

        // spec.loadBalancerIP alone (not opted in the OpenELB way) is not OpenELB's promise.
        let mut plain = facts(&[]);
        plain.load_balancer_ip = Some("10.0.0.5".into());
        assert_eq!(
            request_for_service(&plain).expect("valid").sharing.key,
            None
        );

        // No requested address: nothing to share.
        let no_ip = facts(&[(api::keys::OPENELB_OPT_IN, "openelb")]);
        assert_eq!(
            request_for_service(&no_ip).expect("valid").sharing.key,
            None
        );

        // A key of its own wins.
        let named = facts(&[
            (OPENELB_IP_ANNOTATION, "10.0.0.5"),
            (METALLB_SHARING_ANNOTATION, "k"),
        ]);
        assert_eq!(
            request_for_service(&named)
                .expect("valid")
                .sharing
                .key
                .as_deref(),
            Some("k")
        );
    }

    #[test]
    fn bad_values_are_named() {
        let e = request_for_service(&facts(&[(OPENELB_IP_ANNOTATION, "10.0.0.300")]))
            .expect_err("bad ip");
        assert!(e.to_string().contains(OPENELB_IP_ANNOTATION), "{e}");
        let mut f = facts(&[]);
        f.ip_family_policy = Some("Sometimes".into());
        assert_eq!(
            request_for_service(&f).expect_err("bad policy").reason(),
            "InvalidRequest"
        );
        let mut f = facts(&[]);
        f.ports[0].protocol = Some("ICMP".into());
        assert!(request_for_service(&f).is_err());
    }

    #[test]
    fn local_policy_carries_selector() {
        let mut f = facts(&[]);
        f.external_traffic_policy = Some("Local".into());
        f.selector = BTreeMap::from([("app".into(), "web".into())]);
        let r = request_for_service(&f).expect("valid");
        assert_eq!(
            r.sharing.policy,
            TrafficPolicy::Local {
                selector: f.selector.clone()
            }
        );
    }
}
