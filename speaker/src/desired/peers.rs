//! Which BGP sessions a node runs: every valid `BgpPeer` whose `nodeSelector` selects the
//! node, with the local AS (peer `localAs`, else `BgpConf.asPerRack` by the node's rack,
//! else `BgpConf.as`), the router ID (`BgpConf.routerId`, else the node's InternalIP, else
//! the host's address), timers, transport and password resolved.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use api::{BgpConf, BgpPeer};

use super::node::NodeFacts;
use super::{Afi, DesiredBfd, DesiredPeer, NodeContext, Problem, SpeakerSettings, selector};
use crate::state::{ClusterState, ObjectKey};

/// Default graceful restart time, seconds, when graceful restart is not configured: Berth
/// advertises it so that routers keep forwarding while a speaker restarts.
pub const DEFAULT_RESTART_TIME: u16 = 120;

/// BFD intervals (min TX, min RX), milliseconds, when `spec.bfd` leaves them unset.
pub const DEFAULT_BFD_INTERVAL_MS: u32 = 300;

/// BFD detect multiplier when `spec.bfd.multiplier` is unset.
pub const DEFAULT_BFD_MULTIPLIER: u8 = 3;

/// The well-known BGP port, listened on when `BgpConf.spec.listenPort` is unset.
pub const BGP_PORT: u16 = 179;

/// The speaker-wide settings and the sessions of the node described by `node`.
pub fn peers(
    ctx: &NodeContext,
    node: &NodeFacts,
    state: &ClusterState,
    problems: &mut Vec<Problem>,
) -> (Option<SpeakerSettings>, BTreeMap<IpAddr, DesiredPeer>) {
    peers_after(ctx, node, state, &BTreeMap::new(), problems)
}

/// [`peers`], knowing which `BgpPeer` runs each session now (`running`: neighbour address →
/// object name, from the previous decision).
///
/// When two `BgpPeer`s name one neighbour, the session stays with the one that has it: the
/// one running it now, else the one whose status says this node's session is Established,
/// else the older (creationTimestamp), else the one whose name sorts first. The other is
/// reported (a problem, so a `Valid: False` condition on its status for this node) and
/// changes nothing: adding a duplicate never resets a working session.
pub fn peers_after(
    ctx: &NodeContext,
    node: &NodeFacts,
    state: &ClusterState,
    running: &BTreeMap<IpAddr, String>,
    problems: &mut Vec<Problem>,
) -> (Option<SpeakerSettings>, BTreeMap<IpAddr, DesiredPeer>) {
    let Some(conf) = state.bgp_confs.get(api::keys::BGP_CONF_NAME) else {
        if !state.bgp_peers.is_empty() {
            problems.push(Problem::new(
                "BgpConf",
                api::keys::BGP_CONF_NAME,
                "no BgpConf named `default`: no session runs",
            ));
        }
        return (None, BTreeMap::new());
    };
    let Some(settings) = settings(ctx, node, conf, problems) else {
        return (None, BTreeMap::new());
    };
    let mut candidates: BTreeMap<IpAddr, Vec<DesiredPeer>> = BTreeMap::new();
    for (name, peer) in &state.bgp_peers {
        if !selector::matches(peer.spec.node_selector.as_ref(), &node.labels) {
            continue;
        }
        if let Some(p) = selector::problem(peer.spec.node_selector.as_ref()) {
            problems.push(Problem::new("BgpPeer", name, p));
            continue;
        }
        match desired_peer(ctx, node, &settings, conf, name, peer, state) {
            Ok(None) => {}
            Ok(Some(p)) => candidates.entry(p.address).or_default().push(p),
            Err(message) => problems.push(Problem::new("BgpPeer", name, message)),
        }
    }
    let mut out: BTreeMap<IpAddr, DesiredPeer> = BTreeMap::new();
    for (address, mut found) in candidates {
        found.sort_by_cached_key(|p| {
            let object = state.bgp_peers.get(&p.name);
            (
                running.get(&address) != Some(&p.name),
                !object.is_some_and(|o| established_on(o, &ctx.node_name)),
                object
                    .and_then(|o| o.metadata.creation_timestamp.clone())
                    .is_none(),
                object.and_then(|o| o.metadata.creation_timestamp.clone()),
                p.name.clone(),
            )
        });
        let mut found = found.into_iter();
        let Some(keeper) = found.next() else {
            continue;
        };
        for other in found {
            problems.push(Problem::new(
                "BgpPeer",
                &other.name,
                format!(
                    "neighbour {address} is already configured by BgpPeer {}, which keeps the session; this one is ignored",
                    keeper.name
                ),
            ));
        }
        out.insert(address, keeper);
    }
    (Some(settings), out)
}

/// Whether `peer`'s status says this node's session is Established.
fn established_on(peer: &BgpPeer, node: &str) -> bool {
    peer.status
        .as_ref()
        .and_then(|s| s.nodes_peer_status.get(node))
        .is_some_and(|n| {
            n.peer_state
                .session_state
                .eq_ignore_ascii_case("established")
        })
}

fn settings(
    ctx: &NodeContext,
    node: &NodeFacts,
    conf: &BgpConf,
    problems: &mut Vec<Problem>,
) -> Option<SpeakerSettings> {
    let name = api::keys::BGP_CONF_NAME;
    let errors = api::validate::validate_bgp_conf(&conf.spec);
    if let Some(e) = errors.first() {
        problems.push(Problem::new("BgpConf", name, e.to_string()));
        return None;
    }
    // A zero `as` is fine when this node's rack maps to an AS.
    let rack_as = node
        .rack()
        .and_then(|r| conf.spec.as_per_rack.get(r))
        .copied();
    if conf.spec.as_number == 0 && rack_as.is_none() {
        problems.push(Problem::new(
            "BgpConf",
            name,
            format!(
                "spec.as: must be 1 or more, unless spec.asPerRack maps the node's rack \
                 (node {} has rack {:?}, which spec.asPerRack does not map)",
                ctx.node_name,
                node.rack().unwrap_or("")
            ),
        ));
        return None;
    }
    if let Some(policy) = conf.spec.policy.as_deref().filter(|p| !p.is_empty()) {
        problems.push(Problem::new(
            "BgpConf",
            name,
            format!("spec.policy {policy:?} (a GoBGP policy) is not supported and is ignored"),
        ));
    }
    let local_as = rack_as.unwrap_or(conf.spec.as_number);
    let router_id = if conf.spec.router_id.is_empty() {
        node.internal_v4.or(ctx.fallback_router_id)
    } else {
        conf.spec.router_id.parse::<Ipv4Addr>().ok()
    };
    let Some(router_id) = router_id else {
        problems.push(Problem::new(
            "BgpConf",
            name,
            format!(
                "no router ID for node {}: set spec.routerId or give the node an IPv4 InternalIP",
                ctx.node_name
            ),
        ));
        return None;
    };
    let listen_port = match conf.spec.listen_port {
        None | Some(0) => Some(BGP_PORT),
        Some(p) => u16::try_from(p).ok(),
    };
    let listen_addresses = conf
        .spec
        .listen_addresses
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    Some(SpeakerSettings {
        local_as,
        router_id,
        listen_port,
        listen_addresses,
    })
}

fn secret_password(
    ctx: &NodeContext,
    peer: &BgpPeer,
    state: &ClusterState,
) -> Result<Option<String>, String> {
    if let Some(r) = &peer.spec.auth_password_secret_ref {
        let ns = r.namespace.as_deref().unwrap_or(&ctx.namespace);
        let key = r.key.as_deref().unwrap_or("password");
        let secret = state
            .secrets
            .get(&ObjectKey::new(ns, &r.name))
            .ok_or_else(|| format!("authPasswordSecretRef: Secret {ns}/{} not found", r.name))?;
        let from_data = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| String::from_utf8(b.0.clone()));
        let value = match from_data {
            Some(Ok(s)) => s,
            Some(Err(_)) => {
                return Err(format!(
                    "authPasswordSecretRef: key {key:?} of Secret {ns}/{} is not UTF-8",
                    r.name
                ));
            }
            None => secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "authPasswordSecretRef: Secret {ns}/{} has no key {key:?}",
                        r.name
                    )
                })?,
        };
        return Ok(Some(value));
    }
    Ok(peer
        .spec
        .conf
        .auth_password
        .clone()
        .filter(|p| !p.is_empty()))
}

fn families(peer: &BgpPeer, address: IpAddr) -> BTreeSet<Afi> {
    let listed: BTreeSet<Afi> = peer
        .spec
        .afi_safis
        .iter()
        .filter_map(|a| a.config.as_ref())
        .filter(|c| c.enabled)
        .filter_map(|c| match c.family.as_ref()?.afi.as_str() {
            "AFI_IP" => Some(Afi::Ipv4),
            "AFI_IP6" => Some(Afi::Ipv6),
            _ => None,
        })
        .collect();
    if listed.is_empty() {
        // GoBGP's (and so OpenELB's) default: the neighbour address's own family.
        BTreeSet::from([Afi::of(address)])
    } else {
        listed
    }
}

fn seconds_u16(n: Option<api::number::Seconds>) -> Option<u16> {
    n.map(|n| u16::try_from(n.get()).unwrap_or(u16::MAX))
}

fn desired_peer(
    ctx: &NodeContext,
    node: &NodeFacts,
    settings: &SpeakerSettings,
    conf: &BgpConf,
    name: &str,
    peer: &BgpPeer,
    state: &ClusterState,
) -> Result<Option<DesiredPeer>, String> {
    if let Some(e) = api::validate::validate_bgp_peer(&peer.spec).first() {
        return Err(e.to_string());
    }
    if peer.spec.conf.admin_down == Some(true) {
        return Ok(None);
    }
    let address: IpAddr = peer
        .spec
        .conf
        .neighbor_address
        .parse()
        .map_err(|_| "spec.conf.neighborAddress is not an IP address".to_string())?;
    let md5_password = secret_password(ctx, peer, state)?;
    let timers = peer.spec.timers.as_ref().and_then(|t| t.config.as_ref());
    let transport = peer.spec.transport.as_ref();
    let multihop_ttl = peer
        .spec
        .ebgp_multihop
        .as_ref()
        .filter(|m| m.enabled)
        .map(|m| {
            m.multihop_ttl
                .and_then(|t| u8::try_from(t).ok())
                .unwrap_or(255)
        });
    let gr = peer
        .spec
        .graceful_restart
        .as_ref()
        .or(conf.spec.graceful_restart.as_ref());
    let graceful_restart = match gr {
        None => Some(DEFAULT_RESTART_TIME),
        Some(g) if !g.enabled => None,
        Some(g) => Some(
            g.restart_time
                .map(|t| u16::try_from(t.get().min(4095)).unwrap_or(4095))
                .unwrap_or(DEFAULT_RESTART_TIME),
        ),
    };
    let families = families(peer, address);
    let source_address = peer
        .spec
        .effective_source_address()
        .and_then(|s| s.parse().ok());
    let bfd = desired_bfd(peer.spec.bfd.as_ref(), address, source_address, node)?;
    Ok(Some(DesiredPeer {
        name: name.to_string(),
        description: peer.spec.conf.description.clone().unwrap_or_default(),
        address,
        port: transport
            .and_then(|t| t.remote_port)
            .and_then(|p| u16::try_from(p).ok()),
        peer_as: peer.spec.conf.peer_as,
        local_as: peer.spec.conf.local_as.unwrap_or(settings.local_as),
        router_id: settings.router_id,
        hold_time: timers.and_then(|t| seconds_u16(t.hold_time)),
        keepalive: timers.and_then(|t| seconds_u16(t.keepalive_interval)),
        connect_retry: timers
            .and_then(|t| t.connect_retry)
            .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
        passive: transport.and_then(|t| t.passive_mode).unwrap_or(false),
        multihop_ttl,
        source_address,
        md5_password,
        max_prefix: peer.spec.max_prefix,
        graceful_restart,
        next_hop_v4: node
            .internal_v4
            .filter(|_| address.is_ipv6() && families.contains(&Afi::Ipv4)),
        next_hop_v6: node
            .internal_v6
            .filter(|_| address.is_ipv4() && families.contains(&Afi::Ipv6)),
        families,
        bfd,
    }))
}

/// The BFD session of a neighbour at `address`, from `spec.bfd`: off unless `enabled`;
/// intervals default to [`DEFAULT_BFD_INTERVAL_MS`], the multiplier to
/// [`DEFAULT_BFD_MULTIPLIER`]. Multihop needs a source address: the session's, else the
/// node's InternalIP of the neighbour's family.
pub fn desired_bfd(
    spec: Option<&api::bgppeer::Bfd>,
    address: IpAddr,
    source_address: Option<IpAddr>,
    node: &NodeFacts,
) -> Result<Option<DesiredBfd>, String> {
    let Some(spec) = spec.filter(|b| b.enabled) else {
        return Ok(None);
    };
    let multihop = spec.multihop.unwrap_or(false);
    let local = if multihop {
        let internal = match address {
            IpAddr::V4(_) => node.internal_v4.map(IpAddr::V4),
            IpAddr::V6(_) => node.internal_v6.map(IpAddr::V6),
        };
        Some(source_address.or(internal).ok_or_else(|| {
            "spec.bfd.multihop needs a source address: set spec.transport.localAddress \
             or give the node an InternalIP of the neighbour's family"
                .to_string()
        })?)
    } else {
        source_address
    };
    Ok(Some(DesiredBfd {
        min_tx_ms: spec.min_tx.unwrap_or(DEFAULT_BFD_INTERVAL_MS),
        min_rx_ms: spec.min_rx.unwrap_or(DEFAULT_BFD_INTERVAL_MS),
        multiplier: spec
            .multiplier
            .and_then(|m| u8::try_from(m).ok())
            .filter(|m| *m > 0)
            .unwrap_or(DEFAULT_BFD_MULTIPLIER),
        multihop,
        local,
    }))
}
