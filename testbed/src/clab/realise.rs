//! Bringing a [`Topology`] up as a [`Lab`] with router daemons.

use std::collections::BTreeMap;
use std::path::Path;

use super::exec::{ExecAction, parse_exec};
use super::topology::{NodeKind, Topology};
use crate::lab::Lab;
use crate::router::Router;
use crate::router::bird::Bird;
use crate::router::exabgp::Exabgp;
use crate::router::frr::{Daemons, Frr};
use crate::router::gobgp::Gobgp;
use crate::{Error, Result};

/// A running containerlab topology. Dropping it stops the routers, then removes the lab.
pub struct ClabLab {
    // Field order is drop order: daemons go before their namespaces.
    routers: BTreeMap<String, Box<dyn Router + Send>>,
    kinds: BTreeMap<String, NodeKind>,
    lab: Lab,
    name: String,
}

impl std::fmt::Debug for ClabLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClabLab")
            .field("name", &self.name)
            .field("routers", &self.routers.keys().collect::<Vec<_>>())
            .field("lab", &self.lab)
            .finish()
    }
}

impl ClabLab {
    /// Loads the topology file at `path` and brings it up.
    pub fn up(path: &Path) -> Result<ClabLab> {
        Self::realise(&Topology::load(path)?)
    }

    /// Brings `topology` up: namespaces, links, `exec` lines, then routers.
    pub fn realise(topology: &Topology) -> Result<ClabLab> {
        let mut lab = Lab::new(&topology.name)?;
        let mut kinds = BTreeMap::new();
        for node in topology.topology.nodes.keys() {
            let kind = topology.node_kind(node)?;
            match kind {
                NodeKind::Bridge => lab.add_bridge(node)?,
                ref k if k.is_router() => lab.add_router(node)?,
                _ => lab.add_namespace(node)?,
            };
            kinds.insert(node.clone(), kind);
        }
        for (a, b) in topology.links()? {
            lab.link((&a.node, &a.interface), (&b.node, &b.interface))?;
        }
        for node in topology.topology.nodes.keys() {
            let netns = lab.netns(node)?;
            for line in topology.exec(node) {
                match parse_exec(&line) {
                    ExecAction::AddAddress { ifname, address } => {
                        netns.add_address(&ifname, address)?;
                    }
                    ExecAction::AddRoute {
                        destination,
                        gateway,
                    } => {
                        netns.add_route(destination, gateway)?;
                    }
                    ExecAction::LinkUp(ifname) => netns.set_up(&ifname)?,
                    ExecAction::Sysctl { key, value } => netns.sysctl(&key, &value)?,
                    ExecAction::Shell(line) => {
                        netns
                            .output("sh", &["-c", &line])
                            .map_err(|e| Error::Topology(format!("exec on {node} failed: {e}")))?;
                    }
                }
            }
        }
        let mut routers: BTreeMap<String, Box<dyn Router + Send>> = BTreeMap::new();
        for (node, kind) in &kinds {
            let netns = lab.netns(node)?;
            let router: Box<dyn Router + Send> = match kind {
                NodeKind::Bird(config) => Box::new(Bird::start_with_config(netns, config)?),
                NodeKind::Frr(config) => {
                    let daemons = Daemons {
                        bfdd: config.contains(" bfd"),
                        ..Daemons::default()
                    };
                    Box::new(Frr::start_with_config(netns, config, daemons)?)
                }
                NodeKind::Gobgp(config) => Box::new(Gobgp::start_with_config(netns, config)?),
                NodeKind::Exabgp(config) => Box::new(Exabgp::start_with_config(
                    netns,
                    config,
                    config.contains("passive"),
                )?),
                NodeKind::Host | NodeKind::Bridge => continue,
            };
            routers.insert(node.clone(), router);
        }
        Ok(ClabLab {
            routers,
            kinds,
            lab,
            name: topology.name.clone(),
        })
    }

    /// The topology's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The underlying lab (namespaces by node name).
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The underlying lab, mutably (to add namespaces or links for a test).
    pub fn lab_mut(&mut self) -> &mut Lab {
        &mut self.lab
    }

    /// The router running on `node`.
    pub fn router(&self, node: &str) -> Result<&(dyn Router + Send)> {
        self.routers
            .get(node)
            .map(|r| r.as_ref())
            .ok_or_else(|| Error::Unknown(format!("router {node}")))
    }

    /// The router running on `node`, mutably (restart, stop).
    pub fn router_mut(&mut self, node: &str) -> Result<&mut (dyn Router + Send)> {
        match self.routers.get_mut(node) {
            Some(router) => Ok(router.as_mut()),
            None => Err(Error::Unknown(format!("router {node}"))),
        }
    }

    /// Node names by kind: which nodes are routers, bridges or hosts.
    pub fn kinds(&self) -> &BTreeMap<String, NodeKind> {
        &self.kinds
    }
}
