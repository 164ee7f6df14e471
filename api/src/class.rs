//! Which Services are Berth's: the one rule both binaries apply, so an address the controller
//! hands out is one the speakers announce (and nothing else is). Configured by the same flags
//! on both (`--class`, `--default-class`), fed from one chart value.
//!
//! Pure: looks only at a Service's type, class and annotations.

use std::collections::BTreeMap;

use crate::keys;

/// Which LoadBalancer Services this Berth answers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassConfig {
    /// The `spec.loadBalancerClass` Berth answers to ([`keys::LOAD_BALANCER_CLASS`] by default).
    pub class: String,
    /// Also handle LoadBalancer Services that have no class (Berth as the cluster's default).
    pub default_class: bool,
}

impl Default for ClassConfig {
    fn default() -> Self {
        ClassConfig {
            class: keys::LOAD_BALANCER_CLASS.to_string(),
            default_class: false,
        }
    }
}

impl ClassConfig {
    /// Whether a Service is Berth's: type LoadBalancer, and either our class, or no class
    /// (absent or empty) with OpenELB's opt-in annotation, or no class while Berth is the
    /// default.
    ///
    /// A Service with another class is never ours, even with the OpenELB annotation: the
    /// class is the API's own ownership statement and another controller answers to it.
    pub fn handles(&self, type_: Option<&str>, class: Option<&str>, opt_in: bool) -> bool {
        if type_ != Some("LoadBalancer") {
            return false;
        }
        match class.filter(|c| !c.is_empty()) {
            Some(c) => c == self.class,
            None => opt_in || self.default_class,
        }
    }
}

/// Whether a Service's annotations carry OpenELB's opt-in (`lb.kubesphere.io/v1alpha1:
/// openelb`).
pub fn opted_in(annotations: Option<&BTreeMap<String, String>>) -> bool {
    annotations
        .and_then(|a| a.get(keys::OPENELB_OPT_IN))
        .is_some_and(|v| v == keys::OPENELB_OPT_IN_VALUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_rules() {
        let c = ClassConfig::default();
        assert!(c.handles(Some("LoadBalancer"), Some("berth.io/lb"), false));
        assert!(c.handles(Some("LoadBalancer"), None, true));
        assert!(c.handles(Some("LoadBalancer"), Some(""), true));
        assert!(!c.handles(Some("LoadBalancer"), None, false));
        assert!(!c.handles(Some("LoadBalancer"), Some("other.io/lb"), true));
        assert!(!c.handles(Some("ClusterIP"), Some("berth.io/lb"), true));
        let d = ClassConfig {
            default_class: true,
            ..ClassConfig::default()
        };
        assert!(d.handles(Some("LoadBalancer"), None, false));
        assert!(d.handles(Some("LoadBalancer"), Some(""), false));
        assert!(!d.handles(Some("LoadBalancer"), Some("other.io/lb"), false));
        let own = ClassConfig {
            class: "example.com/lb".into(),
            default_class: false,
        };
        assert!(own.handles(Some("LoadBalancer"), Some("example.com/lb"), false));
        assert!(!own.handles(Some("LoadBalancer"), Some("berth.io/lb"), false));
    }

    #[test]
    fn opt_in_needs_the_exact_value() {
        let mut a = BTreeMap::new();
        assert!(!opted_in(None));
        a.insert(keys::OPENELB_OPT_IN.to_string(), "openelb".to_string());
        assert!(opted_in(Some(&a)));
        a.insert(keys::OPENELB_OPT_IN.to_string(), "other".to_string());
        assert!(!opted_in(Some(&a)));
    }
}
