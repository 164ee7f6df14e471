//! What the speaker needs to know about its own Node: labels, readiness, exclusion, and
//! its InternalIP addresses.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use k8s_openapi::api::core::v1::Node;

/// The facts about one Node that decisions use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeFacts {
    /// The Node's labels.
    pub labels: BTreeMap<String, String>,
    /// Ready: the `Ready` condition is `True`, or (hand-written standalone manifests) the
    /// Node carries no `Ready` condition at all.
    pub ready: bool,
    /// Labelled `node.kubernetes.io/exclude-from-external-load-balancers`.
    pub excluded: bool,
    /// First IPv4 InternalIP.
    pub internal_v4: Option<Ipv4Addr>,
    /// First IPv6 InternalIP.
    pub internal_v6: Option<Ipv6Addr>,
}

impl NodeFacts {
    /// Reads the facts off a Node.
    pub fn of(node: &Node) -> Self {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let status = node.status.as_ref();
        // A kubelet always reports Ready; a Node without the condition was written by hand
        // (standalone mode), where "exists" is the only meaningful readiness.
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .is_none_or(|c| c.status == "True");
        let excluded = labels.contains_key(api::keys::EXCLUDE_FROM_LB_LABEL);
        let mut internal_v4 = None;
        let mut internal_v6 = None;
        for a in status
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
        {
            if a.type_ != "InternalIP" {
                continue;
            }
            match a.address.parse::<IpAddr>() {
                Ok(IpAddr::V4(v4)) if internal_v4.is_none() => internal_v4 = Some(v4),
                Ok(IpAddr::V6(v6)) if internal_v6.is_none() => internal_v6 = Some(v6),
                _ => {}
            }
        }
        Self {
            labels,
            ready,
            excluded,
            internal_v4,
            internal_v6,
        }
    }

    /// The node's rack (label `openelb.kubesphere.io/rack`).
    pub fn rack(&self) -> Option<&str> {
        self.labels
            .get(api::keys::OPENELB_RACK_LABEL)
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeCondition, NodeStatus};

    fn node(conditions: Option<Vec<(&str, &str)>>, addresses: &[(&str, &str)]) -> Node {
        Node {
            status: Some(NodeStatus {
                conditions: conditions.map(|cs| {
                    cs.into_iter()
                        .map(|(t, s)| NodeCondition {
                            type_: t.into(),
                            status: s.into(),
                            ..Default::default()
                        })
                        .collect()
                }),
                addresses: Some(
                    addresses
                        .iter()
                        .map(|(t, a)| NodeAddress {
                            type_: t.to_string(),
                            address: a.to_string(),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn readiness() {
        assert!(NodeFacts::of(&node(Some(vec![("Ready", "True")]), &[])).ready);
        assert!(!NodeFacts::of(&node(Some(vec![("Ready", "False")]), &[])).ready);
        assert!(!NodeFacts::of(&node(Some(vec![("Ready", "Unknown")]), &[])).ready);
        assert!(NodeFacts::of(&node(Some(vec![("MemoryPressure", "False")]), &[])).ready);
        assert!(NodeFacts::of(&node(None, &[])).ready);
    }

    #[test]
    fn addresses_pick_internal_ips_per_family() {
        let f = NodeFacts::of(&node(
            None,
            &[
                ("ExternalIP", "192.0.2.1"),
                ("InternalIP", "fd00::5"),
                ("InternalIP", "10.0.0.5"),
                ("InternalIP", "10.0.0.6"),
                ("Hostname", "n1"),
            ],
        ));
        assert_eq!(f.internal_v4, Some(Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!(f.internal_v6, "fd00::5".parse().ok());
    }
}
