//! Kubernetes-style status conditions, as written by a speaker into its own node's entry of
//! a `BgpPeer` or `BgpConf` status.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The condition type saying whether a node's speaker accepted the object.
pub const VALID: &str = "Valid";

/// One condition, in the shape of `metav1.Condition` (without `observedGeneration`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Valid`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason, e.g. `Invalid`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human-readable detail, e.g. the validation error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_transition_time: String,
}
