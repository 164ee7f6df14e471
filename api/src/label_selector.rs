//! Kubernetes label selectors (`matchLabels` and `matchExpressions`), as `BgpPeer.spec.nodeSelector`
//! and `Eip.spec.nodeSelector`/`peerSelector` use them; one reading for the speaker (what
//! it announces) and the controller (the Eip's `Selected` condition). Semantics follow
//! `k8s.io/apimachinery/pkg/labels`: all requirements must hold; an empty selector selects
//! everything; an unknown operator selects nothing.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// Whether `selector` selects an object with `labels`. `None` selects everything.
pub fn matches(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    labels_ok
        && selector
            .match_expressions
            .iter()
            .flatten()
            .all(|r| requirement_holds(r, labels))
}

fn requirement_holds(r: &LabelSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&r.key);
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// A selector that `matches` refuses outright (unknown operator, or values where none are
/// allowed), described for a status message; `None` when it is well formed.
pub fn problem(selector: Option<&LabelSelector>) -> Option<String> {
    for r in selector?.match_expressions.iter().flatten() {
        let n = r.values.as_ref().map_or(0, Vec::len);
        match r.operator.as_str() {
            "In" | "NotIn" if n == 0 => {
                return Some(format!(
                    "nodeSelector: operator {} on {:?} needs values",
                    r.operator, r.key
                ));
            }
            "Exists" | "DoesNotExist" if n > 0 => {
                return Some(format!(
                    "nodeSelector: operator {} on {:?} takes no values",
                    r.operator, r.key
                ));
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => {
                return Some(format!(
                    "nodeSelector: unknown operator {other:?} (In, NotIn, Exists, DoesNotExist)"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn empty_selects_all() {
        assert!(matches(None, &labels(&[])));
        assert!(matches(
            Some(&LabelSelector::default()),
            &labels(&[("a", "b")])
        ));
    }

    #[test]
    fn match_labels_need_every_pair() {
        let s = LabelSelector {
            match_labels: Some(labels(&[("rack", "r1"), ("role", "edge")])),
            ..Default::default()
        };
        assert!(matches(
            Some(&s),
            &labels(&[("rack", "r1"), ("role", "edge"), ("x", "y")])
        ));
        assert!(!matches(Some(&s), &labels(&[("rack", "r1")])));
        assert!(!matches(
            Some(&s),
            &labels(&[("rack", "r2"), ("role", "edge")])
        ));
    }

    #[test]
    fn each_operator() {
        let node = labels(&[("rack", "r1")]);
        let sel = |r| LabelSelector {
            match_expressions: Some(vec![r]),
            ..Default::default()
        };
        assert!(matches(
            Some(&sel(expr("rack", "In", &["r1", "r2"]))),
            &node
        ));
        assert!(!matches(Some(&sel(expr("rack", "In", &["r3"]))), &node));
        assert!(!matches(Some(&sel(expr("zone", "In", &["r1"]))), &node));
        assert!(matches(Some(&sel(expr("rack", "NotIn", &["r3"]))), &node));
        assert!(!matches(Some(&sel(expr("rack", "NotIn", &["r1"]))), &node));
        assert!(matches(Some(&sel(expr("zone", "NotIn", &["r1"]))), &node));
        assert!(matches(Some(&sel(expr("rack", "Exists", &[]))), &node));
        assert!(!matches(Some(&sel(expr("zone", "Exists", &[]))), &node));
        assert!(matches(
            Some(&sel(expr("zone", "DoesNotExist", &[]))),
            &node
        ));
        assert!(!matches(
            Some(&sel(expr("rack", "DoesNotExist", &[]))),
            &node
        ));
        assert!(!matches(Some(&sel(expr("rack", "Gt", &["1"]))), &node));
    }

    #[test]
    fn problems_are_named() {
        let sel = |r| LabelSelector {
            match_expressions: Some(vec![r]),
            ..Default::default()
        };
        assert!(problem(Some(&sel(expr("rack", "In", &["r1"])))).is_none());
        assert!(problem(Some(&sel(expr("rack", "In", &[])))).is_some());
        assert!(problem(Some(&sel(expr("rack", "Exists", &["x"])))).is_some());
        let p = problem(Some(&sel(expr("rack", "Gt", &["1"])))).unwrap_or_default();
        assert!(p.contains("unknown operator"), "{p}");
    }
}
