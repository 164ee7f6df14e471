//! `BgpConf`: global BGP settings (`network.kubesphere.io/v1alpha2`, cluster-scoped).
//!
//! Only the object named `default` counts. Fields are OpenELB's; GoBGP leftovers OpenELB
//! users may still carry are accepted (preserved by the schema, ignored by Berth).

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::number::Seconds;

/// Spec of the `BgpConf` named `default`.
#[allow(
    clippy::duplicated_attributes,
    reason = "each printcolumn(...) repeats the same keys; clippy reads them as duplicates"
)]
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "network.kubesphere.io",
    version = "v1alpha2",
    kind = "BgpConf",
    plural = "bgpconfs",
    status = "BgpConfStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "Global BGP settings of every speaker; only the object named `default` counts.",
    printcolumn(name = "AS", type_ = "integer", json_path = ".spec.as"),
    printcolumn(name = "RouterID", type_ = "string", json_path = ".spec.routerId"),
    printcolumn(name = "Port", type_ = "integer", json_path = ".spec.listenPort")
)]
// `as` is a CEL reserved word: rules spell the field `__as__`.
#[x_kube(validation = Rule::new(crate::validate::CONF_AS_RULE).message("set spec.as (1-4294967295) or a non-empty spec.asPerRack"))]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct BgpConfSpec {
    /// The local AS number of every speaker (unless `asPerRack` maps the node's rack).
    /// Unset or 0: each node takes its AS from `asPerRack`, which must then map its rack.
    // Optional with no schema default, as in OpenELB: a node whose rack `asPerRack` maps needs
    // no `as` at all. (A `default: 0` under `minimum: 1` made the API server refuse the CRD.)
    #[serde(rename = "as", default, skip_serializing_if = "is_unset")]
    pub as_number: u32,
    /// Rack (node label `openelb.kubesphere.io/rack`) → local AS.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub as_per_rack: BTreeMap<String, u32>,
    /// Router ID; empty means each node uses its own InternalIP.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[x_kube(validation = Rule::new(crate::validate::OPTIONAL_IP_RULE).message("must be an IPv4 address"))]
    #[schemars(pattern(r"^$|^[0-9]{1,3}(\.[0-9]{1,3}){3}$"), length(max = 15))]
    pub router_id: String,
    /// TCP port the speakers listen on (OpenELB default 17900 when set by its chart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -1, max = 65535))]
    pub listen_port: Option<i32>,
    /// Addresses the speakers listen on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(a, isIP(a))").message("each listen address must be an IP address"))]
    #[schemars(length(max = 16), inner(length(max = 64)))]
    pub listen_addresses: Vec<String>,
    /// GoBGP families (accepted, unused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub families: Vec<u32>,
    /// Whether multiple paths are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_multiple_paths: Option<bool>,
    /// Graceful restart settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_restart: Option<GracefulRestart>,
    /// A GoBGP policy ConfigMap name: accepted, reported unsupported in status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

fn is_unset(as_number: &u32) -> bool {
    *as_number == 0
}

/// GoBGP-style graceful restart settings, shared by `BgpConf` and `BgpPeer`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(validation = Rule::new(crate::validate::GRACEFUL_RESTART_RULE).message("graceful restart times are whole seconds (a number or a string of digits)"))]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct GracefulRestart {
    /// Graceful restart on.
    #[serde(default)]
    pub enabled: bool,
    /// Restart time advertised, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_time: Option<Seconds>,
    /// Only act as helper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helper_only: Option<bool>,
    /// Deferral time, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferral_time: Option<Seconds>,
    /// Notification support (RFC 8538).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_enabled: Option<bool>,
    /// Long-lived graceful restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longlived_enabled: Option<bool>,
    /// Stale routes time, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_routes_time: Option<Seconds>,
    /// Peer restart time, seconds (GoBGP state, accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_restart_time: Option<Seconds>,
}

/// Status of the `BgpConf`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BgpConfStatus {
    /// Node name → the settings that node's speaker runs with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes_conf_status: BTreeMap<String, NodeConfStatus>,
}

/// What one node's speaker runs with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeConfStatus {
    /// Router ID in use.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub router_id: String,
    /// Local AS in use.
    #[serde(rename = "as", default)]
    pub as_number: u32,
    /// Berth: conditions of the BgpConf on this node; `Valid` is `False` (with the
    /// validation message) when the node's speaker cannot use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<crate::Condition>>,
}
