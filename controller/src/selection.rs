//! The `Selected` condition of a bgp pool with a `nodeSelector` or a `peerSelector`: whether
//! any node will announce its addresses to any router, and if not, why — so a selector that
//! matches nothing is said on the Eip instead of silently announcing nothing.
//!
//! Pure: the labels of the Nodes and BgpPeers come from the edge (the kube caches). It knows
//! nothing of allocation, and decides nothing the speakers do: they apply the same selectors
//! (`api::label_selector`) to what they run.

use std::collections::BTreeMap;

use api::label_selector::{matches, problem};
use api::{Condition, EipSpec, Protocol};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// The condition type.
pub const SELECTED: &str = "Selected";

/// Labels of an object.
pub type Labels = BTreeMap<String, String>;

/// What the condition needs of a BgpPeer: its labels and its own `nodeSelector` (the nodes
/// that run a session with it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeerFacts {
    /// `metadata.labels`.
    pub labels: Labels,
    /// `spec.nodeSelector`.
    pub node_selector: Option<LabelSelector>,
}

fn condition(status: &str, reason: &str, message: String) -> Condition {
    Condition {
        type_: SELECTED.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: String::new(),
    }
}

fn selects(sel: Option<&LabelSelector>, labels: &Labels) -> bool {
    problem(sel).is_none() && matches(sel, labels)
}

/// The `Selected` condition of a pool, `None` when it has nothing to say (not bgp, or no
/// selector). `nodes` are the labels of every Node; `peers` every BgpPeer. Nodes labelled
/// `node.kubernetes.io/exclude-from-external-load-balancers` never count.
pub fn selected(spec: &EipSpec, nodes: &[Labels], peers: &[PeerFacts]) -> Option<Condition> {
    if spec.protocol() != Protocol::Bgp
        || (spec.node_selector.is_none() && spec.peer_selector.is_none())
    {
        return None;
    }
    for (field, sel) in [
        ("nodeSelector", spec.node_selector.as_ref()),
        ("peerSelector", spec.peer_selector.as_ref()),
    ] {
        if let Some(p) = problem(sel) {
            return Some(condition(
                "False",
                "InvalidSelector",
                format!("{field}: {p}: it selects nothing, so no node announces this pool"),
            ));
        }
    }
    let chosen_nodes: Vec<&Labels> = nodes
        .iter()
        .filter(|l| !l.contains_key(api::keys::EXCLUDE_FROM_LB_LABEL))
        .filter(|l| selects(spec.node_selector.as_ref(), l))
        .collect();
    if chosen_nodes.is_empty() {
        return Some(condition(
            "False",
            "NoNodeSelected",
            format!(
                "nodeSelector selects none of the {} node(s) that may announce: no node announces this pool",
                nodes.len()
            ),
        ));
    }
    let chosen_peers: Vec<&PeerFacts> = peers
        .iter()
        .filter(|p| selects(spec.peer_selector.as_ref(), &p.labels))
        .collect();
    if chosen_peers.is_empty() {
        return Some(condition(
            "False",
            "NoPeerSelected",
            format!(
                "peerSelector matches none of the {} BgpPeer(s): no router is sent this pool",
                peers.len()
            ),
        ));
    }
    let sessions = chosen_peers
        .iter()
        .filter(|p| {
            chosen_nodes
                .iter()
                .any(|n| selects(p.node_selector.as_ref(), n))
        })
        .count();
    if sessions == 0 {
        return Some(condition(
            "False",
            "NoSession",
            format!(
                "none of the {} selected node(s) runs a session with any of the {} selected BgpPeer(s): no router is sent this pool",
                chosen_nodes.len(),
                chosen_peers.len()
            ),
        ));
    }
    Some(condition(
        "True",
        "Selected",
        format!(
            "{} node(s) may announce this pool to {sessions} BgpPeer(s)",
            chosen_nodes.len()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn spec(extra: serde_json::Value) -> EipSpec {
        let mut v = json!({"address": "10.0.0.0/24"});
        v.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        serde_json::from_value(v).expect("spec")
    }

    fn peer(role: &str, node: &str) -> PeerFacts {
        PeerFacts {
            labels: labels(&[("router", role)]),
            node_selector: Some(
                serde_json::from_value(json!({"matchLabels": {"kubernetes.io/hostname": node}}))
                    .expect("selector"),
            ),
        }
    }

    fn nodes() -> Vec<Labels> {
        vec![
            labels(&[("kubernetes.io/hostname", "n1"), ("edge", "yes")]),
            labels(&[("kubernetes.io/hostname", "n2")]),
        ]
    }

    fn reason(c: Option<Condition>) -> Option<(String, String)> {
        c.map(|c| (c.status, c.reason))
    }

    fn pair(status: &str, reason: &str) -> Option<(String, String)> {
        Some((status.to_string(), reason.to_string()))
    }

    #[test]
    fn nothing_to_say_without_a_selector_or_for_layer2() {
        let peers = [peer("edge", "n1")];
        assert_eq!(selected(&spec(json!({})), &nodes(), &peers), None);
        let l2 = spec(json!({"protocol": "layer2", "nodeSelector": {"matchLabels": {"x": "y"}}}));
        assert_eq!(selected(&l2, &nodes(), &peers), None);
    }

    #[test]
    fn each_way_of_selecting_nothing_is_named() {
        let peers = [peer("edge", "n1"), peer("internal", "n2")];
        let none_node = spec(json!({"nodeSelector": {"matchLabels": {"edge": "no"}}}));
        assert_eq!(
            reason(selected(&none_node, &nodes(), &peers)),
            pair("False", "NoNodeSelected")
        );
        let none_peer = spec(json!({"peerSelector": {"matchLabels": {"router": "nowhere"}}}));
        assert_eq!(
            reason(selected(&none_peer, &nodes(), &peers)),
            pair("False", "NoPeerSelected")
        );
        // The edge router's session runs on n1 only; the pool is for n2 only.
        let apart = spec(json!({
            "peerSelector": {"matchLabels": {"router": "edge"}},
            "nodeSelector": {"matchLabels": {"kubernetes.io/hostname": "n2"}}
        }));
        assert_eq!(
            reason(selected(&apart, &nodes(), &peers)),
            pair("False", "NoSession")
        );
        let bad =
            spec(json!({"peerSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}));
        assert_eq!(
            reason(selected(&bad, &nodes(), &peers)),
            pair("False", "InvalidSelector")
        );
        let excluded = vec![labels(&[
            ("edge", "yes"),
            (api::keys::EXCLUDE_FROM_LB_LABEL, ""),
        ])];
        let edge_nodes = spec(json!({"nodeSelector": {"matchLabels": {"edge": "yes"}}}));
        assert_eq!(
            reason(selected(&edge_nodes, &excluded, &peers)),
            pair("False", "NoNodeSelected")
        );
    }

    #[test]
    fn a_working_selection_says_how_many() {
        let peers = [peer("edge", "n1"), peer("internal", "n2")];
        let edge = spec(json!({
            "peerSelector": {"matchLabels": {"router": "edge"}},
            "nodeSelector": {"matchLabels": {"edge": "yes"}}
        }));
        let c = selected(&edge, &nodes(), &peers).expect("condition");
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Selected"));
        assert!(
            c.message
                .starts_with("1 node(s) may announce this pool to 1 BgpPeer(s)"),
            "{}",
            c.message
        );
    }
}
