//! `Eip`: an address pool (`network.kubesphere.io/v1alpha2`, cluster-scoped).
//!
//! Field names follow OpenELB v0.6 exactly; Berth's additions (`advertisement`,
//! `skipNetworkAndBroadcast`, `nodeSelector`, `peerSelector`) are optional so OpenELB
//! manifests stay valid.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// How a pool's addresses reach the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Announced over BGP by every selected node (the default; `""` means this too).
    #[default]
    #[serde(alias = "")]
    Bgp,
    /// Answered by ARP (IPv4) and NDP (IPv6) by one node per address, chosen among the
    /// candidate nodes (`nodeSelector`, ready, not excluded, and for
    /// `externalTrafficPolicy: Local` with a ready endpoint); on the node's `interface`.
    /// kube-proxy in IPVS mode needs `strictARP: true` beside it.
    Layer2,
    /// OpenELB's keepalived (VRRP) mode. Berth allocates from such a pool, so a migration
    /// loses no address, but announces nothing: the Eip and each Service given an address get a
    /// warning. Use `bgp` or `layer2`.
    Vip,
}

// Written by hand: OpenELB manifests use `""` for bgp, which a derived enum schema would reject.
impl JsonSchema for Protocol {
    fn schema_name() -> Cow<'static, str> {
        "Protocol".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`bgp` (default; `\"\"` means bgp too), `layer2` or `vip`.",
            "type": "string",
            "enum": ["", "bgp", "layer2", "vip"]
        })
    }
}

/// Spec of an `Eip` pool.
#[allow(
    clippy::duplicated_attributes,
    reason = "each printcolumn(...) repeats the same keys; clippy reads them as duplicates"
)]
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "network.kubesphere.io",
    version = "v1alpha2",
    kind = "Eip",
    plural = "eips",
    shortname = "eip",
    status = "EipStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "An address pool Services of type LoadBalancer take their external addresses from.",
    printcolumn(name = "Address", type_ = "string", json_path = ".spec.address"),
    printcolumn(name = "Usage", type_ = "integer", json_path = ".status.usage"),
    printcolumn(name = "Total", type_ = "integer", json_path = ".status.poolSize"),
    printcolumn(
        name = "Disabled",
        type_ = "boolean",
        json_path = ".spec.disable",
        priority = 1
    ),
    printcolumn(
        name = "Protocol",
        type_ = "string",
        json_path = ".spec.protocol",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct EipSpec {
    /// One IP (`10.0.0.5`), a CIDR (`10.0.0.0/24`) or an inclusive range
    /// (`10.0.0.10-10.0.0.20`); IPv4 or IPv6. Immutable.
    ///
    /// A range may have spaces around its `-`. A pool whose range is written high to low,
    /// whose prefix has host bits set (`10.0.0.0/0` is not read as `0.0.0.0/0`), or that
    /// contains an unspecified, loopback or multicast address hands out nothing, and the
    /// controller says why in the `Valid` condition; addresses Services already hold in such a
    /// pool (from before the rule) stay theirs and stay announced until released. Pools must
    /// not overlap: of two that do, the one accepted before (status `ready`) is kept, then the
    /// one whose range holds addresses Services hold, then the older, then the first by name;
    /// the other holds nothing and says so (`Valid`: `False`, `PoolOverlaps`).
    #[x_kube(
        validation = Rule::new("self == oldSelf").message("spec.address is immutable: create a new Eip instead"),
        validation = Rule::new(crate::validate::EIP_ADDRESS_RULE).message(crate::validate::EIP_ADDRESS_MESSAGE)
    )]
    #[schemars(
        length(min = 2, max = 100),
        pattern(crate::validate::EIP_ADDRESS_PATTERN)
    )]
    pub address: String,
    /// `bgp` (default, also `""`), `layer2` or `vip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// For layer2/vip: the NIC that answers for the addresses, or `can_reach:<ip>` (the NIC
    /// the node's route to `<ip>` leaves by). Unset: the NIC of the node's default route.
    // Bounded so the CEL rule above that compares it has a bounded cost; a NIC name has at most
    // 15 characters and `can_reach:` with an IPv6 address at most 55.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub interface: Option<String>,
    /// No new allocations from this pool; existing ones stay.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable: bool,
    /// Lower wins when several namespace-bound pools match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Namespaces whose Services may use this pool without naming it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Namespaces (by label) whose Services may use this pool without naming it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespace_selector: BTreeMap<String, String>,
    /// Accepted for OpenELB compatibility; has no effect.
    #[serde(default, rename = "usingKnownIPs", skip_serializing_if = "is_false")]
    pub using_known_ips: bool,
    /// Berth: BGP attributes attached to every address of this pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertisement: Option<Advertisement>,
    /// Berth: never hand out the network and broadcast addresses of an IPv4 CIDR pool.
    /// Unset means on; set `false` for OpenELB's behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_network_and_broadcast: Option<bool>,
    /// Berth: the nodes that announce this pool's addresses; unset selects every node.
    /// For layer2, the candidates among which one owner per address is chosen; for bgp, the
    /// nodes whose sessions carry the addresses (a node not selected announces none of
    /// them, whatever its endpoints). Nodes labelled
    /// `node.kubernetes.io/exclude-from-external-load-balancers` or not Ready never announce.
    /// A bgp pool whose selector selects no node gets `Selected` `False` (reason
    /// `NoNodeSelected`) from the controller, and each speaker says why it does not announce
    /// (`berthctl vips`: `nodeNotSelected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,
    /// Berth, bgp only: the BgpPeers (by their labels) whose sessions carry this pool's
    /// addresses; unset means every BgpPeer of the announcing node. A public pool can go to
    /// the edge routers only and an internal one to the internal routers. Changing it
    /// announces or withdraws routes; no session is reset. With a `peerSelector` or a
    /// `nodeSelector`, the controller sets the condition `Selected`: `True` (reason
    /// `Selected`, how many nodes and BgpPeers), or `False` when no router is sent the pool
    /// (reasons `NoPeerSelected`, `NoNodeSelected`, `NoSession`: no selected node runs a
    /// session with a selected BgpPeer, `InvalidSelector`), with a Warning Event; each
    /// speaker says why it does not announce (`berthctl vips`: `noSelectedPeer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_selector: Option<LabelSelector>,
}

/// Berth: BGP path attributes for a pool's addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Advertisement {
    /// Standard communities, `ASN:VALUE` (each 0–65535) or a well-known name
    /// (`no-export`, `no-advertise`, `no-export-subconfed`, `blackhole`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new(crate::validate::COMMUNITIES_RULE).message("each community must be ASN:VALUE (each 0-65535), no-export, no-advertise, no-export-subconfed or blackhole"))]
    #[schemars(length(max = 64), inner(length(max = 32)))]
    pub communities: Vec<String>,
    /// Large communities, `GLOBAL:LOCAL1:LOCAL2` (each 0–4294967295).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new(crate::validate::LARGE_COMMUNITIES_RULE).message("each large community must be GLOBAL:LOCAL1:LOCAL2 (each 0-4294967295)"))]
    #[schemars(length(max = 64), inner(length(max = 32)))]
    pub large_communities: Vec<String>,
    /// LOCAL_PREF (iBGP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub med: Option<u32>,
    /// AS_PATH prepending on eBGP sessions: the path sent is the local AS followed by `count`
    /// copies of `asn` (default: the local AS), so routers prefer other paths to these
    /// addresses. Not applied on iBGP sessions (RFC 4271 §5.1.2: an iBGP speaker does not
    /// add to the AS_PATH; a router would also drop a path holding its own AS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_path_prepend: Option<AsPathPrepend>,
    /// Aggregation of an IPv4 pool (as MetalLB's `aggregationLength`): each node announces
    /// the covering prefix of this length of every address it announces, instead of one /32
    /// per address, for routers with small FIBs. The pool must be a CIDR whose prefix is no
    /// longer than this (the covering prefix stays inside the pool); otherwise the speakers
    /// announce /32s and say why, and the controller's `Valid` condition (`FieldsIgnored`)
    /// and a Warning say so. An aggregated route carries the pool's attributes (a
    /// Service's `berth.io/bgp-*` overrides do not apply to it). Unset or 32: no aggregation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 32))]
    pub aggregation_length: Option<u8>,
    /// Aggregation of an IPv6 pool, as `aggregationLength`. Unset or 128: no aggregation.
    #[serde(
        default,
        rename = "aggregationLengthV6",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0, max = 128))]
    pub aggregation_length_v6: Option<u8>,
}

/// Berth: how many times, and which AS, to prepend to the AS_PATH.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AsPathPrepend {
    /// How many copies to add after the local AS, 1 to 10.
    #[schemars(range(min = 1, max = 10))]
    pub count: u8,
    /// The AS to prepend (1 to 4294967295); unset: the local AS of the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub asn: Option<u32>,
}

/// Observed state of an `Eip`, kept exact by the controller.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EipStatus {
    /// `usage >= poolSize`.
    #[serde(default)]
    pub occupied: bool,
    /// Number of addresses in use.
    #[serde(default)]
    pub usage: u64,
    /// Number of addresses the pool can hand out. The controller counts exactly (128-bit);
    /// a pool of more than 9223372036854775807 addresses (IPv6 /65 or wider) shows that
    /// number, the largest integer the API takes.
    // The API server checks integers as int64: it refuses anything above i64::MAX here, so
    // writers clamp to i64::MAX (controller::decision::MAX_API_COUNT), not u64::MAX.
    #[serde(default)]
    pub pool_size: u64,
    /// Address → `"namespace/name"`; Services sharing an address are joined by `;`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub used: BTreeMap<String, String>,
    /// First address of the pool.
    #[serde(default, rename = "firstIP", skip_serializing_if = "String::is_empty")]
    pub first_ip: String,
    /// Last address of the pool.
    #[serde(default, rename = "lastIP", skip_serializing_if = "String::is_empty")]
    pub last_ip: String,
    /// The controller has accepted the pool's spec.
    #[serde(default)]
    pub ready: bool,
    /// The pool is IPv4.
    #[serde(default)]
    pub v4: bool,
    /// Berth: `Valid` is `False` (reason `InvalidPool` or `PoolOverlaps`, with why) when the
    /// pool hands out nothing new; a pool that already holds addresses keeps them. It is
    /// `True` with reason `FieldsIgnored` when the spec sets something Berth ignores (an
    /// `interface` on a bgp pool).
    ///
    /// Bgp pools with a `peerSelector` or a `nodeSelector` carry `Selected`, also the
    /// controller's: `True` when some node may announce the pool to some BgpPeer, `False`
    /// with why (see `spec.peerSelector`).
    ///
    /// Layer2 pools also carry `Layer2Answered`, written by the speakers (not the
    /// controller): `True` (reason `Answered`) when every address Services hold has a live
    /// owner, with how many nodes answer; `False` (reason `NotAnswered`) naming the addresses
    /// nobody answers for. A list keyed by `type`, so each writer owns its own condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<crate::Condition>,
    /// Berth, layer2 pools: which node answers for each address in use (`address: node`).
    /// Written by one speaker (the first live candidate by name) when an owner changes, never
    /// per heartbeat; every speaker computes the same owners from the heartbeats it hears.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub layer2_owners: BTreeMap<String, String>,
    /// Berth, layer2 pools: each candidate node's own entry, written by its speaker when it
    /// changes: the interface it answers on and its `InterfaceResolved` condition (`False`
    /// with reason `InterfaceNotFound` or `NoRoute` when it cannot answer for this pool;
    /// `True` with reason `SeveralInterfaces` when it chose one of several, saying which and
    /// why).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes_layer2_status: BTreeMap<String, NodeLayer2Status>,
}

/// Berth: one node's view of a layer2 pool, in `Eip.status.nodesLayer2Status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeLayer2Status {
    /// The interface this node answers on for the pool (absent: none found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// `InterfaceResolved`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<crate::Condition>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl EipSpec {
    /// The protocol, with OpenELB's default (`bgp`) applied.
    pub fn protocol(&self) -> Protocol {
        self.protocol.unwrap_or_default()
    }

    /// Whether IPv4 CIDR pools skip their network and broadcast addresses (default on).
    pub fn skips_network_and_broadcast(&self) -> bool {
        self.skip_network_and_broadcast.unwrap_or(true)
    }

    /// The priority, OpenELB's default 0 when unset.
    pub fn priority(&self) -> i32 {
        self.priority.unwrap_or(0)
    }
}

impl Eip {
    /// Whether the Eip carries OpenELB's default-pool annotation.
    pub fn is_default_pool(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(crate::keys::OPENELB_DEFAULT_POOL))
            .is_some_and(|v| v == "true")
    }
}
