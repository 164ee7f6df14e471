//! When two Services may share one address (MetalLB's `metallb.io/allow-shared-ip` rule).
//!
//! Both carry the same sharing key, no port+protocol is used by both, and their traffic
//! policies are compatible: both `Cluster`, or both `Local` with the same pod selector (a
//! `Local` Service only answers on nodes with its own endpoints, so a shared address is only
//! correct when both select the same pods). OpenELB shared silently with no check; Berth refuses
//! with a reason.

use std::collections::BTreeMap;
use std::fmt;

/// A transport protocol of a Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP (the Kubernetes default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// Parses a Kubernetes port protocol (`TCP`, `UDP`, `SCTP`).
    pub fn from_k8s(s: &str) -> Option<Protocol> {
        match s {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// One port a Service listens on at its load-balancer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortClaim {
    /// The Service port number.
    pub port: u16,
    /// Its protocol.
    pub protocol: Protocol,
}

impl fmt::Display for PortClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol)
    }
}

/// The Service's `externalTrafficPolicy`, with what makes `Local` Services compatible.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum TrafficPolicy {
    /// Any node forwards to any endpoint.
    #[default]
    Cluster,
    /// Only nodes with a local endpoint answer; `selector` is the Service's pod selector.
    Local {
        /// `spec.selector` of the Service.
        selector: BTreeMap<String, String>,
    },
}

/// What a Service brings to the sharing decision.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SharingTerms {
    /// The `metallb.io/allow-shared-ip` value; `None` never shares.
    pub key: Option<String>,
    /// Ports the Service uses.
    pub ports: Vec<PortClaim>,
    /// Its traffic policy.
    pub policy: TrafficPolicy,
}

/// Why two Services may not share an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharingRefusal {
    /// The holder has no sharing key.
    #[error("the Service holding it has no metallb.io/allow-shared-ip annotation")]
    HolderDoesNotShare,
    /// The newcomer has no sharing key.
    #[error(
        "this Service has no metallb.io/allow-shared-ip annotation; add the holder's sharing key to share it"
    )]
    RequesterDoesNotShare,
    /// The keys differ.
    #[error("sharing key {requester:?} differs from the holder's key {holder:?}")]
    KeyMismatch {
        /// The holder's key.
        holder: String,
        /// The newcomer's key.
        requester: String,
    },
    /// A port+protocol is used by both.
    #[error("port {0} is used by both Services")]
    PortOverlap(PortClaim),
    /// Traffic policies are incompatible.
    #[error(
        "externalTrafficPolicy differs (both must be Cluster, or both Local with the same pod selector)"
    )]
    TrafficPolicy,
}

/// Whether `requester` may share an address with `holder`.
pub fn may_share(holder: &SharingTerms, requester: &SharingTerms) -> Result<(), SharingRefusal> {
    let holder_key = holder
        .key
        .as_deref()
        .ok_or(SharingRefusal::HolderDoesNotShare)?;
    let requester_key = requester
        .key
        .as_deref()
        .ok_or(SharingRefusal::RequesterDoesNotShare)?;
    if holder_key != requester_key {
        return Err(SharingRefusal::KeyMismatch {
            holder: holder_key.to_string(),
            requester: requester_key.to_string(),
        });
    }
    if holder.policy != requester.policy {
        return Err(SharingRefusal::TrafficPolicy);
    }
    if let Some(port) = requester.ports.iter().find(|p| holder.ports.contains(p)) {
        return Err(SharingRefusal::PortOverlap(*port));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(key: Option<&str>, ports: &[(u16, Protocol)], policy: TrafficPolicy) -> SharingTerms {
        SharingTerms {
            key: key.map(str::to_string),
            ports: ports
                .iter()
                .map(|(port, protocol)| PortClaim {
                    port: *port,
                    protocol: *protocol,
                })
                .collect(),
            policy,
        }
    }

    fn local(app: &str) -> TrafficPolicy {
        TrafficPolicy::Local {
            selector: BTreeMap::from([("app".to_string(), app.to_string())]),
        }
    }

    #[test]
    fn same_key_disjoint_ports_cluster_shares() {
        let a = terms(Some("k"), &[(80, Protocol::Tcp)], TrafficPolicy::Cluster);
        let b = terms(Some("k"), &[(443, Protocol::Tcp)], TrafficPolicy::Cluster);
        assert_eq!(may_share(&a, &b), Ok(()));
    }

    #[test]
    fn same_port_number_other_protocol_shares() {
        let a = terms(Some("k"), &[(53, Protocol::Tcp)], TrafficPolicy::Cluster);
        let b = terms(Some("k"), &[(53, Protocol::Udp)], TrafficPolicy::Cluster);
        assert_eq!(may_share(&a, &b), Ok(()));
    }

    #[test]
    fn missing_or_different_keys_refuse() {
        let none = terms(None, &[(80, Protocol::Tcp)], TrafficPolicy::Cluster);
        let k = terms(Some("k"), &[(81, Protocol::Tcp)], TrafficPolicy::Cluster);
        let j = terms(Some("j"), &[(82, Protocol::Tcp)], TrafficPolicy::Cluster);
        assert_eq!(
            may_share(&none, &k),
            Err(SharingRefusal::HolderDoesNotShare)
        );
        assert_eq!(
            may_share(&k, &none),
            Err(SharingRefusal::RequesterDoesNotShare)
        );
        assert!(matches!(
            may_share(&k, &j),
            Err(SharingRefusal::KeyMismatch { .. })
        ));
    }

    #[test]
    fn overlapping_port_refuses() {
        let a = terms(Some("k"), &[(80, Protocol::Tcp)], TrafficPolicy::Cluster);
        let b = terms(
            Some("k"),
            &[(443, Protocol::Tcp), (80, Protocol::Tcp)],
            TrafficPolicy::Cluster,
        );
        let e = may_share(&a, &b).expect_err("80/TCP overlaps");
        assert_eq!(e.to_string(), "port 80/TCP is used by both Services");
    }

    #[test]
    fn local_needs_same_selector() {
        let a = terms(Some("k"), &[(80, Protocol::Tcp)], local("web"));
        let b = terms(Some("k"), &[(81, Protocol::Tcp)], local("web"));
        let c = terms(Some("k"), &[(82, Protocol::Tcp)], local("db"));
        let d = terms(Some("k"), &[(83, Protocol::Tcp)], TrafficPolicy::Cluster);
        assert_eq!(may_share(&a, &b), Ok(()));
        assert_eq!(may_share(&a, &c), Err(SharingRefusal::TrafficPolicy));
        assert_eq!(may_share(&a, &d), Err(SharingRefusal::TrafficPolicy));
    }
}
