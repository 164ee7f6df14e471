//! The pure decision at the heart of the speaker: from this node's name and the cluster
//! state, which BGP peers it runs and which VIPs it announces to them — and, for every
//! load-balancer address in the cluster, why this node does or does not announce it.
//!
//! No I/O, no clock, no BGP driver: the same input always gives the same `Desired`,
//! whatever order the objects arrived in. Turning a `Desired` into driver calls is
//! `crate::diff`'s and `crate::sync`'s job.

pub mod attributes;
pub mod node;
pub mod peers;
pub mod selector;
pub mod vips;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::state::ClusterState;

pub use node::NodeFacts;
pub use vips::{Reason, VipReport};

/// Who is deciding: this speaker's node, and the facts it was started with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeContext {
    /// This node's name (`--node-name`).
    pub node_name: String,
    /// The speaker's own namespace: where Secret references without a namespace point.
    pub namespace: String,
    /// Router ID to use when neither `BgpConf.spec.routerId` nor an InternalIP gives one
    /// (found on the host through rtnetlink).
    pub fallback_router_id: Option<Ipv4Addr>,
    /// Which Services are Berth's (`--class`, `--default-class`): the controller's rule.
    pub class: api::class::ClassConfig,
}

/// An address family a session carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Afi {
    /// IPv4 unicast.
    Ipv4,
    /// IPv6 unicast.
    Ipv6,
}

impl Afi {
    /// The family of an address.
    pub fn of(addr: IpAddr) -> Afi {
        if addr.is_ipv4() { Afi::Ipv4 } else { Afi::Ipv6 }
    }
}

impl fmt::Display for Afi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Afi::Ipv4 => "ipv4",
            Afi::Ipv6 => "ipv6",
        })
    }
}

/// Speaker-wide settings from `BgpConf` `default`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpeakerSettings {
    /// This node's AS (`asPerRack` by rack, else `as`).
    pub local_as: u32,
    /// This node's router ID.
    pub router_id: Ipv4Addr,
    /// Port to accept BGP connections on; `None` accepts none (`listenPort: -1`).
    pub listen_port: Option<u16>,
    /// Addresses to accept on; empty means all.
    pub listen_addresses: Vec<IpAddr>,
}

/// One BGP session this node should run, fully resolved (defaults applied where the
/// cluster state decides them; `None` where the BGP library's default applies).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredPeer {
    /// The `BgpPeer` object's name.
    pub name: String,
    /// Free text (changing it resets nothing).
    pub description: String,
    /// Neighbour address (the key of the session).
    pub address: IpAddr,
    /// Neighbour TCP port; `None` is 179.
    pub port: Option<u16>,
    /// Neighbour AS.
    pub peer_as: u32,
    /// Our AS on this session.
    pub local_as: u32,
    /// Our router ID.
    pub router_id: Ipv4Addr,
    /// Proposed hold time, seconds.
    pub hold_time: Option<u16>,
    /// Keepalive interval, seconds.
    pub keepalive: Option<u16>,
    /// Connect retry, seconds.
    pub connect_retry: Option<u32>,
    /// Only accept the neighbour's connection, never connect out.
    pub passive: bool,
    /// eBGP multihop: the TTL to send with; `None` is single hop.
    pub multihop_ttl: Option<u8>,
    /// Source address of the session.
    pub source_address: Option<IpAddr>,
    /// TCP MD5 password (never shown by the admin API).
    #[serde(skip_serializing, default)]
    pub md5_password: Option<String>,
    /// Families the session carries.
    pub families: BTreeSet<Afi>,
    /// Limit on routes received.
    pub max_prefix: Option<u32>,
    /// Graceful restart time advertised; `None` does not advertise graceful restart.
    pub graceful_restart: Option<u16>,
    /// Next hop for IPv4 routes when the session is not IPv4 (the node's InternalIP).
    pub next_hop_v4: Option<Ipv4Addr>,
    /// Next hop for IPv6 routes when the session is not IPv6 (the node's InternalIP).
    pub next_hop_v6: Option<Ipv6Addr>,
    /// BFD for the session (`spec.bfd.enabled`); `None` runs none. Changing it resets
    /// nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<DesiredBfd>,
}

#[cfg(test)]
impl DesiredPeer {
    /// A unit-test fixture: eBGP from AS 65001 (router ID 10.0.0.1) to `tor`, 10.0.0.254 in
    /// AS 65000, with every option unset.
    pub(crate) fn example() -> DesiredPeer {
        DesiredPeer {
            name: "tor".into(),
            description: String::new(),
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254)),
            port: None,
            peer_as: 65000,
            local_as: 65001,
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            hold_time: None,
            keepalive: None,
            connect_retry: None,
            passive: false,
            multihop_ttl: None,
            source_address: None,
            md5_password: None,
            families: BTreeSet::new(),
            max_prefix: None,
            graceful_restart: None,
            next_hop_v4: None,
            next_hop_v6: None,
            bfd: None,
        }
    }
}

/// A BFD session that a BGP session follows, resolved from `BgpPeer.spec.bfd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredBfd {
    /// Desired Min TX interval, milliseconds.
    pub min_tx_ms: u32,
    /// Required Min RX interval, milliseconds.
    pub min_rx_ms: u32,
    /// Detect Mult.
    pub multiplier: u8,
    /// Multihop (RFC 5883) rather than single hop (RFC 5881).
    pub multihop: bool,
    /// Our source address: the session's source address, else (multihop, which needs
    /// one) the node's InternalIP of the neighbour's family; `None` lets the kernel pick.
    pub local: Option<IpAddr>,
}

impl DesiredPeer {
    /// Whether going from `self` to `new` needs a new session: anything but the
    /// description, the object's name, BFD and this side's pacing (keepalive interval,
    /// connect retry: `bgp::session::SessionConfig::needs_new_session`) does.
    pub fn needs_reset(&self, new: &DesiredPeer) -> bool {
        let strip = |p: &DesiredPeer| DesiredPeer {
            name: String::new(),
            description: String::new(),
            bfd: None,
            keepalive: None,
            connect_retry: None,
            ..p.clone()
        };
        strip(self) != strip(new)
    }

    /// Whether the session carries `afi`.
    pub fn carries(&self, afi: Afi) -> bool {
        self.families.contains(&afi)
    }
}

/// BGP attributes of an announced VIP (from its `Eip`'s `advertisement`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VipAttrs {
    /// Standard communities as 32-bit values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<u32>,
    /// Large communities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub large_communities: Vec<(u32, u32, u32)>,
    /// LOCAL_PREF (iBGP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub med: Option<u32>,
    /// Copies of `prepend_as` added to the AS_PATH after the local AS (eBGP only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub as_path_prepend: u8,
    /// The AS prepended; `None` is the session's local AS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepend_as: Option<u32>,
    /// Announced as the covering prefix of this length (the pool's aggregation), not as a
    /// host route; `None` is a host route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<u8>,
}

/// The network address of the prefix of `len` covering `ip` (host bits cleared).
pub fn network(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// An object that was skipped or could not be used, and why (for logs, events, status).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Problem {
    /// Kind of the object (`BgpPeer`, `BgpConf`, `Eip`, `Node`, …).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    fn new(kind: &str, name: &str, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            name: name.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.name, self.message)
    }
}

/// What this node should run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    /// Speaker-wide settings; `None` when no usable `BgpConf` `default` exists (then no
    /// peers run).
    pub settings: Option<SpeakerSettings>,
    /// Sessions, by neighbour address.
    pub peers: BTreeMap<IpAddr, DesiredPeer>,
    /// VIPs this node announces, with their attributes.
    pub announce: BTreeMap<IpAddr, VipAttrs>,
    /// VIPs of pools with a `peerSelector`: the only sessions (by neighbour address) that
    /// carry them. A VIP not listed goes to every session of its family.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub only_peers: BTreeMap<IpAddr, BTreeSet<IpAddr>>,
    /// Every load-balancer address seen, announced or not, and why.
    pub vips: Vec<VipReport>,
    /// Objects skipped and why.
    pub problems: Vec<Problem>,
    /// Layer-2 addresses and their candidates (who owns each is decided with liveness, by
    /// `crate::layer2`).
    #[serde(default)]
    pub layer2: crate::layer2::candidates::Layer2Plan,
}

impl Desired {
    /// Which `BgpPeer` runs the session with each neighbour.
    pub fn peer_names(&self) -> BTreeMap<IpAddr, String> {
        self.peers
            .iter()
            .map(|(a, p)| (*a, p.name.clone()))
            .collect()
    }

    /// The routes one peer should carry: every announced VIP of a family it carries, unless
    /// its pool's `peerSelector` leaves this peer out. A route is keyed by its network
    /// address: the VIP itself (a host route), or — aggregated (`VipAttrs::prefix_len`) —
    /// the covering prefix's, which the VIPs inside it share.
    pub fn routes_for(&self, peer: &DesiredPeer) -> BTreeMap<IpAddr, VipAttrs> {
        self.announce
            .iter()
            .filter(|(vip, _)| peer.carries(Afi::of(**vip)))
            .filter(|(vip, _)| {
                self.only_peers
                    .get(vip)
                    .is_none_or(|only| only.contains(&peer.address))
            })
            .map(|(vip, attrs)| match attrs.prefix_len {
                Some(len) => (network(*vip, len), attrs.clone()),
                None => (*vip, attrs.clone()),
            })
            .collect()
    }

    /// Routes per peer, for every peer.
    pub fn routes(&self) -> BTreeMap<IpAddr, BTreeMap<IpAddr, VipAttrs>> {
        self.peers
            .iter()
            .map(|(addr, peer)| (*addr, self.routes_for(peer)))
            .collect()
    }
}

/// Decides what `ctx`'s node runs, given `state`.
pub fn desired(ctx: &NodeContext, state: &ClusterState) -> Desired {
    desired_after(ctx, state, &BTreeMap::new())
}

/// [`desired`], knowing which `BgpPeer` runs each session now (`running`, from the previous
/// decision's [`Desired::peer_names`]): a session stays with it when another one names the
/// same neighbour ([`peers::peers_after`]).
pub fn desired_after(
    ctx: &NodeContext,
    state: &ClusterState,
    running: &BTreeMap<IpAddr, String>,
) -> Desired {
    let mut problems = Vec::new();
    let node = state.nodes.get(&ctx.node_name).map(|n| NodeFacts::of(n));
    if node.is_none() {
        problems.push(Problem::new(
            "Node",
            &ctx.node_name,
            "this node has no Node object: nothing is announced",
        ));
    }
    let (settings, peers) = match &node {
        Some(facts) => peers::peers_after(ctx, facts, state, running, &mut problems),
        None => (None, BTreeMap::new()),
    };
    let vips::Announcements {
        announce,
        only_peers,
        reports: vips,
    } = vips::vips(ctx, node.as_ref(), &peers, state, &mut problems);
    problems.sort();
    problems.dedup();
    Desired {
        settings,
        peers,
        announce,
        only_peers,
        vips,
        problems,
        layer2: crate::layer2::candidates::layer2(ctx, state),
    }
}
