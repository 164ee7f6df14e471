//! Which VIPs a node announces, and why each load-balancer address is or is not announced.
//!
//! An address of a Service of type LoadBalancer (`status.loadBalancer.ingress[].ip`, as the
//! controller writes it) is announced by this node when: it lies in an `Eip` of protocol
//! `bgp` that validates; the node exists, is Ready and is not labelled
//! `node.kubernetes.io/exclude-from-external-load-balancers`; the pool's `nodeSelector`
//! selects it; some peer of this node carries its family (and, with a `peerSelector`, is
//! selected by it: only those peers carry it); and — policy `Local` — this node has a ready
//! endpoint of the Service, or — policy `Cluster` — the Service has a ready endpoint anywhere.
//! The attributes are the pool's with the Services' `berth.io/bgp-*` overrides merged in
//! (`super::attributes`); a Service whose overrides do not parse keeps the pool's, and is
//! reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;

use api::bgp_overrides::BgpOverrides;
use api::validate::{EipAddress, parse_eip_address};
use api::{Eip, Protocol};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};

use super::node::NodeFacts;
use super::selector;
use super::{Afi, DesiredPeer, NodeContext, Problem, VipAttrs};
use crate::state::ClusterState;

/// Label on an EndpointSlice naming its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Why an address is (or is not) announced by this node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "camelCase")]
pub enum Reason {
    /// Announced: policy `Local` and this node has ready endpoints.
    LocalEndpoints {
        /// Ready endpoints on this node.
        count: usize,
    },
    /// Announced: policy `Cluster` and the Service has ready endpoints.
    ClusterEndpoints {
        /// Ready endpoints in the cluster.
        count: usize,
    },
    /// The Service has another `loadBalancerClass`.
    OtherClass {
        /// The class.
        class: String,
    },
    /// The Service has no class and does not opt in (OpenELB's annotation), and Berth is not
    /// the cluster's default class.
    NotOptedIn,
    /// The address lies in no `Eip`.
    NoPool,
    /// The address's `Eip` is of protocol `layer2`: one node answers ARP/NDP for it (see
    /// the layer-2 owners), no BGP session carries it.
    Layer2 {
        /// The Eip.
        pool: String,
    },
    /// The address's `Eip` is not announced over BGP.
    PoolNotBgp {
        /// The Eip.
        pool: String,
    },
    /// The address's `Eip` does not validate.
    PoolInvalid {
        /// The Eip.
        pool: String,
        /// What is wrong.
        message: String,
    },
    /// This node has no Node object.
    NodeMissing,
    /// This node is not Ready.
    NodeNotReady,
    /// This node is labelled to be excluded from load balancers.
    NodeExcluded,
    /// No BGP session of this node carries the address's family.
    NoPeer {
        /// The family.
        family: Afi,
    },
    /// The pool's `nodeSelector` does not select this node.
    NodeNotSelected {
        /// The Eip.
        pool: String,
    },
    /// No BGP session of this node that carries the family is selected by the pool's
    /// `peerSelector`.
    NoSelectedPeer {
        /// The Eip.
        pool: String,
        /// The family.
        family: Afi,
    },
    /// Policy `Local` and this node has no ready endpoint of the Service.
    NoLocalEndpoint,
    /// The Service has no ready endpoint anywhere.
    NoReadyEndpoint,
}

impl Reason {
    /// Whether the reason is one to announce.
    pub fn announces(&self) -> bool {
        matches!(
            self,
            Reason::LocalEndpoints { .. } | Reason::ClusterEndpoints { .. }
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::LocalEndpoints { count } => {
                write!(f, "policy Local: {count} ready endpoint(s) on this node")
            }
            Reason::ClusterEndpoints { count } => {
                write!(
                    f,
                    "policy Cluster: {count} ready endpoint(s) in the cluster"
                )
            }
            Reason::OtherClass { class } => {
                write!(f, "loadBalancerClass {class:?} is not Berth's")
            }
            Reason::NotOptedIn => f.write_str(
                "no loadBalancerClass and no lb.kubesphere.io/v1alpha1: openelb, and Berth is not the default class",
            ),
            Reason::NoPool => f.write_str("the address is in no Eip"),
            Reason::Layer2 { pool } => {
                write!(f, "Eip {pool} is of protocol layer2: answered by ARP/NDP, not BGP")
            }
            Reason::PoolNotBgp { pool } => write!(f, "Eip {pool} is not of protocol bgp"),
            Reason::PoolInvalid { pool, message } => write!(f, "Eip {pool} is invalid: {message}"),
            Reason::NodeMissing => f.write_str("this node has no Node object"),
            Reason::NodeNotReady => f.write_str("this node is not Ready"),
            Reason::NodeExcluded => write!(
                f,
                "this node is labelled {}",
                api::keys::EXCLUDE_FROM_LB_LABEL
            ),
            Reason::NoPeer { family } => {
                write!(f, "no BGP session of this node carries {family}")
            }
            Reason::NodeNotSelected { pool } => {
                write!(f, "Eip {pool}'s nodeSelector does not select this node")
            }
            Reason::NoSelectedPeer { pool, family } => write!(
                f,
                "no BGP session of this node carrying {family} is selected by Eip {pool}'s peerSelector"
            ),
            Reason::NoLocalEndpoint => f.write_str("policy Local: no ready endpoint on this node"),
            Reason::NoReadyEndpoint => f.write_str("the Service has no ready endpoint"),
        }
    }
}

/// One load-balancer address and this node's verdict on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VipReport {
    /// The Service, `namespace/name`.
    pub service: String,
    /// The address.
    pub address: IpAddr,
    /// The Eip it lies in.
    pub pool: Option<String>,
    /// `Local` or `Cluster`.
    pub policy: String,
    /// Whether this node announces it.
    pub announced: bool,
    /// Why.
    pub reason: Reason,
    /// `reason` in words.
    pub why: String,
}

struct Pool<'a> {
    name: &'a str,
    range: EipAddress,
    verdict: Result<VipAttrs, Reason>,
    node_selector: Option<&'a LabelSelector>,
    peer_selector: Option<&'a LabelSelector>,
    /// The aggregation length for the pool's family, when it aggregates.
    aggregation: Option<u8>,
}

/// Whether `ip` lies in `range` (one address, a range, or a CIDR).
pub(crate) fn contains(range: &EipAddress, ip: IpAddr) -> bool {
    match *range {
        EipAddress::Single(a) => a == ip,
        EipAddress::Range(a, b) => a.is_ipv4() == ip.is_ipv4() && a <= ip && ip <= b,
        EipAddress::Cidr(net, len) => match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(len))
                };
                u32::from(i) & mask == u32::from(n)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(len))
                };
                u128::from(i) & mask == u128::from(n)
            }
            _ => false,
        },
    }
}

/// The pool an address belongs to. Of overlapping pools, the controller's choice, read from
/// the Eip statuses it writes: the one whose `used` lists the address, else the one accepted
/// (`ready`), else the older, else the first by name (pools are visited by name). So a pool
/// added over one in use never changes how its addresses are announced.
fn pool_holding<'p, 'a>(
    pools: &'p [Pool<'a>],
    ip: IpAddr,
    state: &ClusterState,
) -> Option<&'p Pool<'a>> {
    let text = ip.to_string();
    pools
        .iter()
        .filter(|p| contains(&p.range, ip))
        .min_by_key(|p| {
            let eip = state.eips.get(p.name);
            let status = eip.and_then(|e| e.status.as_ref());
            let created = eip.and_then(|e| e.metadata.creation_timestamp.clone());
            (
                !status.is_some_and(|s| s.used.contains_key(&text)),
                !status.is_some_and(|s| s.ready),
                created.is_none(),
                created,
            )
        })
}

fn pool_of<'a>(name: &'a str, eip: &'a Eip, problems: &mut Vec<Problem>) -> Option<Pool<'a>> {
    let Ok(range) = parse_eip_address(&eip.spec.address) else {
        problems.push(Problem::new(
            "Eip",
            name,
            format!("spec.address {:?} does not parse", eip.spec.address),
        ));
        return None;
    };
    let errors = api::validate::validate_eip(&eip.spec);
    let verdict = if let Some(e) = errors.first() {
        problems.push(Problem::new("Eip", name, e.to_string()));
        Err(Reason::PoolInvalid {
            pool: name.to_string(),
            message: e.to_string(),
        })
    } else if eip.spec.protocol() == Protocol::Layer2 {
        Err(Reason::Layer2 {
            pool: name.to_string(),
        })
    } else if eip.spec.protocol() != Protocol::Bgp {
        Err(Reason::PoolNotBgp {
            pool: name.to_string(),
        })
    } else {
        Ok(super::attributes::of_pool(
            &eip.spec.advertisement.clone().unwrap_or_default(),
        ))
    };
    let node_selector = eip.spec.node_selector.as_ref();
    let peer_selector = eip.spec.peer_selector.as_ref();
    let aggregation = match &eip.spec.advertisement {
        Some(adv) if verdict.is_ok() => {
            api::validate::aggregation(&range, adv).unwrap_or_else(|e| {
                problems.push(Problem::new("Eip", name, e));
                None
            })
        }
        _ => None,
    };
    if verdict.is_ok() {
        for (field, sel) in [
            ("nodeSelector", node_selector),
            ("peerSelector", peer_selector),
        ] {
            if let Some(p) = selector::problem(sel) {
                problems.push(Problem::new(
                    "Eip",
                    name,
                    format!("{field}: {p}: it selects nothing"),
                ));
            }
        }
    }
    Some(Pool {
        name,
        range,
        verdict,
        node_selector,
        peer_selector,
        aggregation,
    })
}

/// Ready endpoints of one Service: in the cluster, and on this node.
#[derive(Clone, Copy, Debug, Default)]
struct Ready {
    anywhere: usize,
    here: usize,
}

/// Calls `each` with the Service (`namespace`, `name`) and the node of every ready endpoint
/// of every EndpointSlice: the one reading of the readiness rule, for the BGP and the layer-2
/// decisions alike. An endpoint whose readiness is unknown counts as ready (the API says so);
/// one without addresses does not.
pub(crate) fn for_each_ready_endpoint<'a>(
    state: &'a ClusterState,
    mut each: impl FnMut((&'a str, &'a str), Option<&'a str>),
) {
    for (key, slice) in &state.endpoint_slices {
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        for ep in slice.endpoints.iter().flatten() {
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if ready && !ep.addresses.is_empty() {
                each(
                    (key.namespace.as_str(), service.as_str()),
                    ep.node_name.as_deref(),
                );
            }
        }
    }
}

fn ready_endpoints<'a>(
    node_name: &str,
    state: &'a ClusterState,
) -> HashMap<(&'a str, &'a str), Ready> {
    let mut out: HashMap<(&str, &str), Ready> = HashMap::new();
    for_each_ready_endpoint(state, |service, node| {
        let entry = out.entry(service).or_default();
        entry.anywhere += 1;
        if node == Some(node_name) {
            entry.here += 1;
        }
    });
    out
}

fn is_local(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.external_traffic_policy.as_deref())
        == Some("Local")
}

fn ingress_ips(svc: &Service) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// What [`vips`] decides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Announcements {
    /// The announced VIPs, with their attributes.
    pub announce: BTreeMap<IpAddr, VipAttrs>,
    /// Announced VIPs whose pool has a `peerSelector`: the sessions that carry them.
    pub only_peers: BTreeMap<IpAddr, BTreeSet<IpAddr>>,
    /// A report on every load-balancer address.
    pub reports: Vec<VipReport>,
}

/// A Service's `berth.io/bgp-*` overrides; a Service whose annotations do not parse gets
/// none (it keeps the pool's attributes), and a problem saying why.
fn overrides_of(key: &str, svc: &Service, problems: &mut Vec<Problem>) -> BgpOverrides {
    let empty = BTreeMap::new();
    let annotations = svc.metadata.annotations.as_ref().unwrap_or(&empty);
    match api::bgp_overrides::parse(annotations) {
        Ok(o) => o,
        Err(errors) => {
            problems.push(Problem::new(
                "Service",
                key,
                format!(
                    "BGP attribute annotations refused, the pool's attributes apply: {}",
                    errors.join("; ")
                ),
            ));
            BgpOverrides::default()
        }
    }
}

/// The announced VIPs (with attributes and peer restrictions) and a report on every
/// load-balancer address.
pub fn vips(
    ctx: &NodeContext,
    node: Option<&NodeFacts>,
    peers: &BTreeMap<IpAddr, DesiredPeer>,
    state: &ClusterState,
    problems: &mut Vec<Problem>,
) -> Announcements {
    let pools: Vec<Pool<'_>> = state
        .eips
        .iter()
        .filter_map(|(name, eip)| pool_of(name, eip, problems))
        .collect();
    let ready = ready_endpoints(&ctx.node_name, state);
    // Per announced VIP: the pool's attributes, and the overrides of each Service announcing it.
    let mut announced: BTreeMap<IpAddr, (VipAttrs, Vec<(String, BgpOverrides)>)> = BTreeMap::new();
    // Announced VIPs of aggregating pools: the pool's attributes, as the covering prefix.
    let mut aggregated: BTreeMap<IpAddr, VipAttrs> = BTreeMap::new();
    let mut only_peers: BTreeMap<IpAddr, BTreeSet<IpAddr>> = BTreeMap::new();
    let mut reports = Vec::new();
    for (key, svc) in &state.services {
        let spec = svc.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) != Some("LoadBalancer") {
            continue;
        }
        let local = is_local(svc);
        let counts = ready
            .get(&(key.namespace.as_str(), key.name.as_str()))
            .copied()
            .unwrap_or_default();
        let class = spec.and_then(|s| s.load_balancer_class.as_deref());
        let ours = ctx.class.handles(
            Some("LoadBalancer"),
            class,
            api::class::opted_in(svc.metadata.annotations.as_ref()),
        );
        let mut overrides = None;
        for ip in ingress_ips(svc) {
            let pool = pool_holding(&pools, ip, state);
            let verdict = decide(ip, (ours, class), pool, node, peers, state, local, counts);
            let (reason, attrs) = match verdict {
                Ok((reason, attrs, selected)) => {
                    if let Some(selected) = selected {
                        only_peers.insert(ip, selected);
                    }
                    (reason, Some(attrs))
                }
                Err(reason) => (reason, None),
            };
            if let (Some(attrs), Some(len)) = (&attrs, pool.and_then(|p| p.aggregation)) {
                aggregated.insert(
                    ip,
                    VipAttrs {
                        prefix_len: Some(len),
                        ..attrs.clone()
                    },
                );
            } else if let Some(attrs) = attrs {
                let o = overrides
                    .get_or_insert_with(|| overrides_of(&key.to_string(), svc, problems))
                    .clone();
                announced
                    .entry(ip)
                    .or_insert_with(|| (attrs, Vec::new()))
                    .1
                    .push((key.to_string(), o));
            }
            reports.push(VipReport {
                service: key.to_string(),
                address: ip,
                pool: pool.map(|p| p.name.to_string()),
                policy: if local { "Local" } else { "Cluster" }.into(),
                announced: reason.announces(),
                why: reason.to_string(),
                reason,
            });
        }
    }
    let mut announce = BTreeMap::new();
    for (ip, (pool_attrs, services)) in announced {
        let all: Vec<&BgpOverrides> = services.iter().map(|(_, o)| o).collect();
        let (attrs, conflicts) = super::attributes::merge(&pool_attrs, &all);
        for conflict in conflicts {
            for (service, _) in &services {
                problems.push(Problem::new(
                    "Service",
                    service,
                    format!("{ip}: {conflict}"),
                ));
            }
        }
        announce.insert(ip, attrs);
    }
    announce.extend(aggregated);
    Announcements {
        announce,
        only_peers,
        reports,
    }
}

/// Announced: the reason, the pool's attributes, and — the pool has a `peerSelector` — the
/// sessions selected to carry it.
type Verdict = (Reason, VipAttrs, Option<BTreeSet<IpAddr>>);

/// The sessions of `family` the pool's `peerSelector` selects (by their BgpPeer's labels);
/// `None` without a selector.
fn selected_peers(
    pool: &Pool<'_>,
    family: Afi,
    peers: &BTreeMap<IpAddr, DesiredPeer>,
    state: &ClusterState,
) -> Option<BTreeSet<IpAddr>> {
    let sel = pool.peer_selector?;
    let empty = BTreeMap::new();
    Some(
        peers
            .values()
            .filter(|p| p.carries(family))
            .filter(|p| {
                let labels = state
                    .bgp_peers
                    .get(&p.name)
                    .and_then(|b| b.metadata.labels.as_ref())
                    .unwrap_or(&empty);
                selector::problem(Some(sel)).is_none() && selector::matches(Some(sel), labels)
            })
            .map(|p| p.address)
            .collect(),
    )
}

#[allow(
    clippy::too_many_arguments,
    reason = "one pure decision over every input it reads"
)]
fn decide(
    ip: IpAddr,
    (ours, class): (bool, Option<&str>),
    pool: Option<&Pool<'_>>,
    node: Option<&NodeFacts>,
    peers: &BTreeMap<IpAddr, DesiredPeer>,
    state: &ClusterState,
    local: bool,
    counts: Ready,
) -> Result<Verdict, Reason> {
    if !ours {
        return Err(match class.filter(|c| !c.is_empty()) {
            Some(class) => Reason::OtherClass {
                class: class.to_string(),
            },
            None => Reason::NotOptedIn,
        });
    }
    let pool = pool.ok_or(Reason::NoPool)?;
    let attrs = pool.verdict.clone()?;
    let node = node.ok_or(Reason::NodeMissing)?;
    if node.excluded {
        return Err(Reason::NodeExcluded);
    }
    if !node.ready {
        return Err(Reason::NodeNotReady);
    }
    let selects_node = pool.node_selector.is_none_or(|sel| {
        selector::problem(Some(sel)).is_none() && selector::matches(Some(sel), &node.labels)
    });
    if !selects_node {
        return Err(Reason::NodeNotSelected {
            pool: pool.name.to_string(),
        });
    }
    let family = Afi::of(ip);
    if !peers.values().any(|p| p.carries(family)) {
        return Err(Reason::NoPeer { family });
    }
    let selected = selected_peers(pool, family, peers, state);
    if selected.as_ref().is_some_and(BTreeSet::is_empty) {
        return Err(Reason::NoSelectedPeer {
            pool: pool.name.to_string(),
            family,
        });
    }
    if local {
        if counts.here == 0 {
            return Err(if counts.anywhere == 0 {
                Reason::NoReadyEndpoint
            } else {
                Reason::NoLocalEndpoint
            });
        }
        Ok((
            Reason::LocalEndpoints { count: counts.here },
            attrs,
            selected,
        ))
    } else {
        if counts.anywhere == 0 {
            return Err(Reason::NoReadyEndpoint);
        }
        Ok((
            Reason::ClusterEndpoints {
                count: counts.anywhere,
            },
            attrs,
            selected,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregation_stays_inside_the_pool() {
        use api::validate::aggregation;
        let adv = |v4: Option<u8>, v6: Option<u8>| api::Advertisement {
            aggregation_length: v4,
            aggregation_length_v6: v6,
            ..api::Advertisement::default()
        };
        let cidr = parse_eip_address("10.0.0.0/24").expect("cidr");
        assert_eq!(aggregation(&cidr, &adv(Some(26), None)), Ok(Some(26)));
        assert_eq!(aggregation(&cidr, &adv(Some(24), None)), Ok(Some(24)));
        assert_eq!(
            aggregation(&cidr, &adv(None, Some(64))),
            Ok(None),
            "v6 length on a v4 pool"
        );
        assert_eq!(
            aggregation(&cidr, &adv(Some(32), None)),
            Ok(None),
            "a /32 is no aggregate"
        );
        assert!(
            aggregation(&cidr, &adv(Some(16), None)).is_err(),
            "reaches outside"
        );
        let range = parse_eip_address("10.0.0.10-10.0.0.20").expect("range");
        assert!(aggregation(&range, &adv(Some(28), None)).is_err());
        let six = parse_eip_address("fd00::/64").expect("v6");
        assert_eq!(aggregation(&six, &adv(Some(24), Some(120))), Ok(Some(120)));
    }

    #[test]
    fn aggregated_vips_share_one_route_keyed_by_the_network() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let agg = VipAttrs {
            prefix_len: Some(28),
            ..VipAttrs::default()
        };
        let mut peer = DesiredPeer::example();
        peer.families.insert(Afi::Ipv4);
        let desired = super::super::Desired {
            peers: [(peer.address, peer.clone())].into(),
            announce: [
                (ip("10.0.0.97"), agg.clone()),
                (ip("10.0.0.110"), agg.clone()),
                (ip("10.0.0.200"), VipAttrs::default()),
            ]
            .into(),
            ..Default::default()
        };
        let routes = desired.routes_for(&peer);
        assert_eq!(
            routes.keys().copied().collect::<Vec<_>>(),
            vec![ip("10.0.0.96"), ip("10.0.0.200")]
        );
        assert_eq!(routes[&ip("10.0.0.96")], agg);
        assert_eq!(super::super::network(ip("fd00::1:2"), 112), ip("fd00::1:0"));
        assert_eq!(super::super::network(ip("10.1.2.3"), 0), ip("0.0.0.0"));
    }

    #[test]
    fn containment_per_shape() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let cidr = parse_eip_address("10.0.0.0/24").expect("cidr");
        assert!(contains(&cidr, ip("10.0.0.255")));
        assert!(!contains(&cidr, ip("10.0.1.0")));
        assert!(!contains(&cidr, ip("::a00:1")));
        let range = parse_eip_address("fd00::10-fd00::20").expect("range");
        assert!(contains(&range, ip("fd00::15")));
        assert!(!contains(&range, ip("fd00::21")));
        let one = parse_eip_address("192.0.2.7").expect("one");
        assert!(contains(&one, ip("192.0.2.7")));
        assert!(!contains(&one, ip("192.0.2.8")));
        let all = parse_eip_address("0.0.0.0/0").expect("all");
        assert!(contains(&all, ip("203.0.113.1")));
    }
}
