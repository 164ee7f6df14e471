//! Kubernetes-style status conditions, as written by a speaker into its own node's entry of
//! a `BgpPeer` or `BgpConf` status, or into a layer2 `Eip`'s status.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The condition type saying whether a node's speaker accepted the object.
pub const VALID: &str = "Valid";

/// The condition type on a layer2 `Eip` saying whether every address in use is answered;
/// written by the speakers, never by the controller.
pub const LAYER2_ANSWERED: &str = "Layer2Answered";

/// The condition type of a node's entry in `Eip.status.nodesLayer2Status`: whether the node
/// found the interface the pool's addresses are answered on.
pub const INTERFACE_RESOLVED: &str = "InterfaceResolved";

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
