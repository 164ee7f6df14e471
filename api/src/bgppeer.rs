//! `BgpPeer`: one BGP neighbour (`network.kubesphere.io/v1alpha2`, cluster-scoped).
//!
//! OpenELB's fields (GoBGP's shapes) plus Berth's optional additions: an MD5 password from a
//! Secret, a source address, BFD and a max-prefix limit. Unknown GoBGP leftovers are accepted.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bgpconf::GracefulRestart;
use crate::number::{Number, Seconds};

/// Spec of a `BgpPeer`.
#[allow(
    clippy::duplicated_attributes,
    reason = "each printcolumn(...) repeats the same keys; clippy reads them as duplicates"
)]
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "network.kubesphere.io",
    version = "v1alpha2",
    kind = "BgpPeer",
    plural = "bgppeers",
    status = "BgpPeerStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A BGP neighbour the speakers on the selected nodes connect to.",
    printcolumn(
        name = "Neighbor",
        type_ = "string",
        json_path = ".spec.conf.neighborAddress"
    ),
    printcolumn(name = "PeerAS", type_ = "integer", json_path = ".spec.conf.peerAs")
)]
#[x_kube(
    validation = Rule::new("!has(self.authPasswordSecretRef) || !has(self.conf.authPassword) || self.conf.authPassword == ''").message("set conf.authPassword or authPasswordSecretRef, not both"),
    validation = Rule::new(crate::validate::SOURCE_FAMILY_RULE).message("spec.sourceAddress (or transport.localAddress) must be the same family as conf.neighborAddress")
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct BgpPeerSpec {
    /// The neighbour itself.
    pub conf: PeerConf,
    /// eBGP multihop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebgp_multihop: Option<EbgpMultihop>,
    /// Session timers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timers: Option<Timers>,
    /// Transport settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// Graceful restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_restart: Option<GracefulRestart>,
    /// Address families.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub afi_safis: Vec<AfiSafi>,
    /// Nodes that peer with this neighbour; empty selects all nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,
    /// Berth: the TCP MD5 password, read from a Secret (instead of plain `conf.authPassword`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password_secret_ref: Option<SecretKeyRef>,
    /// Berth: the local address the session is sourced from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(crate::validate::OPTIONAL_IP_RULE).message("must be an IP address"))]
    #[schemars(pattern(r"^[0-9A-Fa-f:.]*$"), length(max = 64))]
    pub source_address: Option<String>,
    /// Berth: BFD for this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<Bfd>,
    /// Berth: close the session when the neighbour sends more prefixes than this (Cease,
    /// RFC 4486). Setting it also makes the speaker count received prefixes exactly (one key per
    /// prefix, at most this many); without it the speaker keeps nothing per received route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_prefix: Option<u32>,
}

/// `spec.conf`: the neighbour.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct PeerConf {
    /// The neighbour's AS.
    #[schemars(range(min = 1, max = 4294967295u32))]
    pub peer_as: u32,
    /// The neighbour's address. When two BgpPeers name one neighbour on a node, the
    /// session stays with the one that has it (running it, else Established in its status,
    /// else the older, else the first by name); the other gets `Valid: False` for that node
    /// and never resets the session.
    #[x_kube(validation = Rule::new(crate::validate::IP_RULE).message("must be an IP address"))]
    #[schemars(pattern(r"^[0-9A-Fa-f:.]+$"), length(max = 64))]
    pub neighbor_address: String,
    /// TCP MD5 password in plain text (OpenELB); prefer `authPasswordSecretRef`. At most 80
    /// characters, the kernel's TCP MD5 key limit.
    // The bound also keeps the cost of the spec's CEL rule, which compares it, bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 80))]
    pub auth_password: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Local AS for this session (overrides `BgpConf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_as: Option<u32>,
    /// Keep the session administratively down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_down: Option<bool>,
}

/// `spec.ebgpMultihop`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct EbgpMultihop {
    /// Multihop on.
    #[serde(default)]
    pub enabled: bool,
    /// The IP TTL to send with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 255))]
    pub multihop_ttl: Option<u32>,
}

/// `spec.timers`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct Timers {
    /// Configured timers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<TimersConfig>,
}

/// `spec.timers.config`: seconds, each a number or a string holding one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(validation = Rule::new(crate::validate::TIMERS_RULE).message("timers are whole seconds (a number or a string of digits), and holdTime is 0 or 3-65535"))]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct TimersConfig {
    /// Connect retry, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_retry: Option<Seconds>,
    /// Hold time, seconds (0, or 3 and more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_time: Option<Seconds>,
    /// Keepalive interval, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_interval: Option<Seconds>,
    /// Minimum advertisement interval, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_advertisement_interval: Option<Seconds>,
}

/// `spec.transport`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct Transport {
    /// Wait for the neighbour to connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_mode: Option<bool>,
    /// The neighbour's TCP port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub remote_port: Option<u32>,
    /// Local address (OpenELB; Berth honours it when `sourceAddress` is unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(crate::validate::OPTIONAL_IP_RULE).message("must be an IP address"))]
    #[schemars(length(max = 64))]
    pub local_address: Option<String>,
}

/// One `spec.afiSafis[]` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct AfiSafi {
    /// The family and whether it is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<AfiSafiConfig>,
    /// ADD-PATH settings (accepted; Berth announces next-hop self and needs none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_paths: Option<AddPaths>,
    /// Per-family graceful restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mp_graceful_restart: Option<MpGracefulRestart>,
}

/// `afiSafis[].config`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct AfiSafiConfig {
    /// The family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    /// The family is on.
    #[serde(default)]
    pub enabled: bool,
}

/// An AFI/SAFI pair in GoBGP's spelling.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Family {
    /// `AFI_IP` or `AFI_IP6`.
    #[schemars(extend("enum" = ["AFI_IP", "AFI_IP6"]))]
    pub afi: String,
    /// `SAFI_UNICAST`.
    #[schemars(extend("enum" = ["SAFI_UNICAST"]))]
    pub safi: String,
}

/// `afiSafis[].addPaths`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddPaths {
    /// ADD-PATH settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<AddPathsConfig>,
}

/// `afiSafis[].addPaths.config`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddPathsConfig {
    /// Receive several paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive: Option<bool>,
    /// Send at most this many paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_max: Option<u32>,
}

/// `afiSafis[].mpGracefulRestart`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MpGracefulRestart {
    /// Settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<MpGracefulRestartConfig>,
}

/// `afiSafis[].mpGracefulRestart.config`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MpGracefulRestartConfig {
    /// On for this family.
    #[serde(default)]
    pub enabled: bool,
}

/// Berth: a key of a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Secret namespace; the speaker's own namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Key in the Secret's data; `password` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Berth: BFD (RFC 5880/5881/5883) for one session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bfd {
    /// BFD on.
    #[serde(default)]
    pub enabled: bool,
    /// Required minimum receive interval, milliseconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub min_rx: Option<u32>,
    /// Desired minimum transmit interval, milliseconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub min_tx: Option<u32>,
    /// Detection multiplier (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 255))]
    pub multiplier: Option<u32>,
    /// Multihop BFD (RFC 5883, UDP 4784) instead of single hop (UDP 3784).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multihop: Option<bool>,
}

/// Status of a `BgpPeer`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeerStatus {
    /// Node name → that node's session with this neighbour.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes_peer_status: BTreeMap<String, NodePeerStatus>,
}

/// One node's session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodePeerStatus {
    /// Session state.
    #[serde(default)]
    pub peer_state: PeerState,
    /// Timers.
    #[serde(default)]
    pub timers_state: TimersState,
    /// Berth: state of the BFD session this session follows (`Up`, `Down`, `Init`,
    /// `AdminDown`); absent without BFD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_state: Option<String>,
    /// Berth: conditions of this BgpPeer on this node; `Valid` is `False` (with the
    /// validation message) when the node's speaker skips it as invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<crate::Condition>>,
}

/// Session state as OpenELB reported it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerState {
    /// FSM state, e.g. `ESTABLISHED`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session_state: String,
    /// Neighbour address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub neighbor_address: String,
    /// Neighbour AS.
    #[serde(default)]
    pub peer_as: u32,
    /// Local AS.
    #[serde(default)]
    pub local_as: u32,
    /// Neighbour router ID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub router_id: String,
    /// Message counters.
    #[serde(default)]
    pub messages: Messages,
}

/// Message counters, received and sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Messages {
    /// Received.
    #[serde(default)]
    pub received: MessageCounts,
    /// Sent.
    #[serde(default)]
    pub sent: MessageCounts,
}

/// Counts per message type (GoBGP encodes them as strings; numbers accepted too).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct MessageCounts {
    /// OPEN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<Number>,
    /// UPDATE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Number>,
    /// NOTIFICATION.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Number>,
    /// KEEPALIVE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<Number>,
    /// ROUTE-REFRESH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<Number>,
    /// All.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Number>,
}

/// Timer state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct TimersState {
    /// Negotiated hold time, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negotiated_hold_time: Option<Number>,
    /// Up since (RFC 3339) or seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime: Option<String>,
    /// Down since (RFC 3339) or seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime: Option<String>,
}

impl BgpPeerSpec {
    /// The BGP source address: Berth's `sourceAddress`, else OpenELB's `transport.localAddress`.
    pub fn effective_source_address(&self) -> Option<&str> {
        self.source_address
            .as_deref()
            .or_else(|| self.transport.as_ref()?.local_address.as_deref())
            .filter(|s| !s.is_empty())
    }
}
