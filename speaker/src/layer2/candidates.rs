//! Who may answer for each layer-2 address, read off the cluster state: the same answer on
//! every node, since it depends on the objects alone (not on which node asks).
//!
//! An address of a Berth Service lying in a valid `Eip` of protocol `layer2` has as
//! candidates the nodes that are Ready, not labelled
//! `node.kubernetes.io/exclude-from-external-load-balancers`, selected by the pool's
//! `nodeSelector`, and — policy `Local` — hold a ready endpoint of the Service (policy
//! `Cluster`: the Service needs a ready endpoint anywhere, else nobody answers). Services
//! sharing an address pool their candidates. A **cordoned** node (`spec.unschedulable`, as
//! `kubectl cordon` and `kubectl drain` set it) is not a candidate while the pool selects
//! some node that is not cordoned: its addresses move, make-before-break, before the node
//! is taken down; it stays a heartbeat member (it confirms handovers, and comes back when
//! uncordoned).
//!
//! The heartbeat members are the nodes selected by a layer-2 pool in use (endpoints or
//! not): liveness is about nodes, and a node without endpoints now may get some later.
//!
//! Must not know about liveness, sockets or the BGP edge.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use api::Protocol;
use api::validate::{EipAddress, parse_eip_address};
use serde::{Deserialize, Serialize};

use super::owner::NodeName;
use crate::desired::NodeContext;
use crate::desired::node::NodeFacts;
use crate::desired::selector;
use crate::desired::vips::for_each_ready_endpoint;
use crate::state::ClusterState;

/// Where a pool's addresses are answered on a node (`Eip.spec.interface`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "camelCase")]
pub enum Interface {
    /// A NIC by name.
    Named(String),
    /// The NIC the node's route to this address leaves by (`can_reach:<ip>`).
    CanReach(IpAddr),
    /// Unset: the NIC of the node's default route (of the address's family).
    DefaultRoute,
}

impl Interface {
    /// Reads `Eip.spec.interface`.
    pub fn parse(spec: Option<&str>) -> Interface {
        match spec.map(str::trim).filter(|s| !s.is_empty()) {
            None => Interface::DefaultRoute,
            Some(s) => match s.strip_prefix("can_reach:").map(str::parse::<IpAddr>) {
                Some(Ok(ip)) => Interface::CanReach(ip),
                // Validation refuses the malformed form before this is reached.
                Some(Err(_)) | None => Interface::Named(s.to_string()),
            },
        }
    }
}

/// One layer-2 address and who may answer for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer2Vip {
    /// The Eip it lies in.
    pub pool: String,
    /// Where it is answered.
    pub interface: Interface,
    /// The Services using it (`namespace/name`).
    pub services: Vec<String>,
    /// The nodes that may answer for it (liveness not yet applied).
    pub candidates: BTreeSet<NodeName>,
}

/// A heartbeat member: a node selected by some layer-2 pool in use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// Where its heartbeats go: its InternalIP (IPv4 preferred).
    pub address: Option<IpAddr>,
}

/// Everything layer 2 needs from the cluster state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer2Plan {
    /// Layer-2 addresses, with their candidates.
    pub vips: BTreeMap<IpAddr, Layer2Vip>,
    /// The nodes that watch each other's heartbeats.
    pub members: BTreeMap<NodeName, Member>,
}

impl Layer2Plan {
    /// The candidates of every address (the input of [`super::owner::owners`]).
    pub fn candidates(&self) -> BTreeMap<IpAddr, BTreeSet<NodeName>> {
        self.vips
            .iter()
            .map(|(ip, v)| (*ip, v.candidates.clone()))
            .collect()
    }
}

fn contains(range: &EipAddress, ip: IpAddr) -> bool {
    crate::desired::vips::contains(range, ip)
}

struct Pool<'a> {
    name: &'a str,
    range: EipAddress,
    layer2: bool,
    interface: Interface,
    /// Selected and Ready: the heartbeat members.
    nodes: BTreeSet<NodeName>,
    /// The nodes that may answer: `nodes` less the cordoned ones, unless all are.
    answering: BTreeSet<NodeName>,
}

/// The nodes of a pool that may answer: the ones not cordoned, or every one when all are
/// (a fully cordoned pool still answers).
fn answering(nodes: &BTreeSet<NodeName>, cordoned: &BTreeSet<&str>) -> BTreeSet<NodeName> {
    let open: BTreeSet<NodeName> = nodes
        .iter()
        .filter(|n| !cordoned.contains(n.as_str()))
        .cloned()
        .collect();
    if open.is_empty() { nodes.clone() } else { open }
}

/// Reads the layer-2 plan off `state` (pure; `ctx` gives only the class rule).
pub fn layer2(ctx: &NodeContext, state: &ClusterState) -> Layer2Plan {
    let facts: BTreeMap<&str, NodeFacts> = state
        .nodes
        .iter()
        .map(|(name, node)| (name.as_str(), NodeFacts::of(node)))
        .collect();
    let cordoned: BTreeSet<&str> = state
        .nodes
        .iter()
        .filter(|(_, n)| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true))
        .map(|(name, _)| name.as_str())
        .collect();
    let pools: Vec<Pool<'_>> = state
        .eips
        .iter()
        .filter_map(|(name, eip)| {
            let range = parse_eip_address(&eip.spec.address).ok()?;
            let valid = api::validate::validate_eip(&eip.spec).is_empty();
            let selector = eip.spec.node_selector.as_ref();
            let layer2 = valid
                && eip.spec.protocol() == Protocol::Layer2
                && selector::problem(selector).is_none();
            let nodes = facts
                .iter()
                .filter(|(_, f)| f.ready && !f.excluded && selector::matches(selector, &f.labels))
                .map(|(n, _)| (*n).to_string())
                .collect();
            Some(Pool {
                name,
                range,
                layer2,
                interface: Interface::parse(eip.spec.interface.as_deref()),
                answering: answering(&nodes, &cordoned),
                nodes,
            })
        })
        .collect();
    // Most clusters have no layer-2 pool: then nothing below can add to the plan, and the
    // walk over every EndpointSlice and Service (a tenth of a sync at 1,000 Services) is
    // skipped.
    if !pools.iter().any(|p| p.layer2) {
        return Layer2Plan::default();
    }
    // Ready endpoints per Service: how many, and on which nodes.
    let mut ready: BTreeMap<(&str, &str), (usize, BTreeSet<&str>)> = BTreeMap::new();
    for_each_ready_endpoint(state, |service, node| {
        let entry = ready.entry(service).or_default();
        entry.0 += 1;
        entry.1.extend(node);
    });
    let mut plan = Layer2Plan::default();
    for (key, svc) in &state.services {
        let spec = svc.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) != Some("LoadBalancer") {
            continue;
        }
        let class = spec.and_then(|s| s.load_balancer_class.as_deref());
        if !ctx.class.handles(
            Some("LoadBalancer"),
            class,
            api::class::opted_in(svc.metadata.annotations.as_ref()),
        ) {
            continue;
        }
        let local = spec.and_then(|s| s.external_traffic_policy.as_deref()) == Some("Local");
        let (count, with_endpoints) = ready
            .get(&(key.namespace.as_str(), key.name.as_str()))
            .cloned()
            .unwrap_or_default();
        let ingress = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref());
        for ip in ingress
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.as_deref()?.parse::<IpAddr>().ok())
        {
            // The same pool rule as the BGP side: the first Eip by name that contains it.
            let Some(pool) = pools.iter().find(|p| contains(&p.range, ip)) else {
                continue;
            };
            if !pool.layer2 {
                continue;
            }
            for node in &pool.nodes {
                plan.members.insert(
                    node.clone(),
                    Member {
                        address: facts.get(node.as_str()).and_then(|f| {
                            f.internal_v4
                                .map(IpAddr::V4)
                                .or(f.internal_v6.map(IpAddr::V6))
                        }),
                    },
                );
            }
            let candidates: BTreeSet<NodeName> = if count == 0 {
                BTreeSet::new()
            } else if local {
                pool.answering
                    .iter()
                    .filter(|n| with_endpoints.contains(n.as_str()))
                    .cloned()
                    .collect()
            } else {
                pool.answering.clone()
            };
            let vip = plan.vips.entry(ip).or_insert_with(|| Layer2Vip {
                pool: pool.name.to_string(),
                interface: pool.interface.clone(),
                services: Vec::new(),
                candidates: BTreeSet::new(),
            });
            vip.services.push(key.to_string());
            vip.candidates.extend(candidates);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(yaml: &str) -> ClusterState {
        let (state, errors) =
            crate::source::dir::parse_files(&[(std::path::PathBuf::from("t.yaml"), yaml.into())]);
        assert!(errors.is_empty(), "{errors:?}");
        state
    }

    const NODES: &str = "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {l2: yes}}\nstatus: {addresses: [{type: InternalIP, address: 10.1.0.1}]}\n---\n\
        apiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {l2: yes}}\nstatus: {addresses: [{type: InternalIP, address: 10.1.0.2}]}\n---\n\
        apiVersion: v1\nkind: Node\nmetadata: {name: n3}\nstatus: {addresses: [{type: InternalIP, address: \"fd00::3\"}]}\n---\n";

    fn service(policy: &str, ip: &str, endpoints_on: &[&str]) -> String {
        let eps: String = endpoints_on
            .iter()
            .map(|n| format!("- addresses: [10.244.0.1]\n  nodeName: {n}\n"))
            .collect();
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{namespace: web, name: demo}}\nspec: {{type: LoadBalancer, loadBalancerClass: berth.io/lb, externalTrafficPolicy: {policy}}}\n\
             status: {{loadBalancer: {{ingress: [{{ip: \"{ip}\"}}]}}}}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{namespace: web, name: demo-1, labels: {{kubernetes.io/service-name: demo}}}}\naddressType: IPv4\nendpoints:\n{eps}"
        )
    }

    fn ctx() -> NodeContext {
        NodeContext {
            node_name: "n1".into(),
            class: api::class::ClassConfig::default(),
            ..NodeContext::default()
        }
    }

    #[test]
    fn interface_forms() {
        assert_eq!(Interface::parse(None), Interface::DefaultRoute);
        assert_eq!(Interface::parse(Some("")), Interface::DefaultRoute);
        assert_eq!(
            Interface::parse(Some("eth1")),
            Interface::Named("eth1".into())
        );
        assert_eq!(
            Interface::parse(Some("can_reach:192.0.2.1")),
            Interface::CanReach("192.0.2.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])))
        );
    }

    #[test]
    fn selected_nodes_are_candidates_and_members() {
        let pool = "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: l2}\n\
                    spec: {address: 192.0.2.0/28, protocol: layer2, interface: eth0, nodeSelector: {matchLabels: {l2: \"yes\"}}}\n---\n";
        let state = objects(&format!(
            "{NODES}{pool}{}",
            service("Cluster", "192.0.2.5", &["n3"])
        ));
        let plan = layer2(&ctx(), &state);
        let vip = &plan.vips[&"192.0.2.5"
            .parse::<IpAddr>()
            .unwrap_or(IpAddr::from([0, 0, 0, 0]))];
        assert_eq!(vip.candidates, ["n1".to_string(), "n2".to_string()].into());
        assert_eq!(vip.interface, Interface::Named("eth0".into()));
        assert_eq!(plan.members.len(), 2);
        assert_eq!(
            plan.members["n1"].address,
            Some(IpAddr::from([10, 1, 0, 1]))
        );
    }

    #[test]
    fn a_cordoned_node_stays_a_member_but_answers_only_when_every_node_is_cordoned() {
        let pool = "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: l2}\n\
                    spec: {address: 192.0.2.0/28, protocol: layer2, nodeSelector: {matchLabels: {l2: \"yes\"}}}\n---\n";
        let ip = IpAddr::from([192, 0, 2, 5]);
        let svc = service("Cluster", "192.0.2.5", &["n3"]);
        let cordon = |nodes: &str, which: &[&str]| {
            which.iter().fold(nodes.to_string(), |text, n| {
                text.replace(
                    &format!("metadata: {{name: {n}, labels: {{l2: yes}}}}\n"),
                    &format!("metadata: {{name: {n}, labels: {{l2: yes}}}}\nspec: {{unschedulable: true}}\n"),
                )
            })
        };
        let one = layer2(
            &ctx(),
            &objects(&format!("{}{pool}{svc}", cordon(NODES, &["n1"]))),
        );
        assert_eq!(one.vips[&ip].candidates, ["n2".to_string()].into());
        assert_eq!(
            one.members.len(),
            2,
            "the cordoned node still hears and is heard"
        );
        let all = layer2(
            &ctx(),
            &objects(&format!("{}{pool}{svc}", cordon(NODES, &["n1", "n2"]))),
        );
        assert_eq!(
            all.vips[&ip].candidates,
            ["n1".to_string(), "n2".to_string()].into(),
            "a pool whose every node is cordoned still answers"
        );
    }

    #[test]
    fn local_policy_narrows_to_nodes_with_endpoints_and_bgp_pools_are_not_layer2() {
        let pools = "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: l2}\nspec: {address: 192.0.2.0/28, protocol: layer2}\n---\n\
                     apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: b}\nspec: {address: 198.51.100.0/28}\n---\n";
        let state = objects(&format!(
            "{NODES}{pools}{}",
            service("Local", "192.0.2.5", &["n2", "n3"])
        ));
        let plan = layer2(&ctx(), &state);
        let ip: IpAddr = IpAddr::from([192, 0, 2, 5]);
        assert_eq!(
            plan.vips[&ip].candidates,
            ["n2".to_string(), "n3".to_string()].into()
        );
        assert_eq!(plan.members.len(), 3, "members do not depend on endpoints");
        let bgp = objects(&format!(
            "{NODES}{pools}{}",
            service("Cluster", "198.51.100.5", &["n1"])
        ));
        assert!(layer2(&ctx(), &bgp).vips.is_empty());
        let none = objects(&format!(
            "{NODES}{pools}{}",
            service("Cluster", "192.0.2.5", &[])
        ));
        assert!(layer2(&ctx(), &none).vips[&ip].candidates.is_empty());
    }
}
