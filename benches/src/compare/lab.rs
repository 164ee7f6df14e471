//! One product's lab: a fresh tor-pair topology (`testbed/labs/tor-pair.clab.yml`: BIRD tor1,
//! FRR tor2, node1..node3 wired to both, a client), a control plane in namespace `cp` on a
//! management bridge that every node reaches, and the three Node objects. Every product gets
//! its own copy, built the same way, so none inherits another's routes, objects or load.
//! Knows nothing about any load balancer.

use std::collections::BTreeMap;
use std::net::IpAddr;

use testbed::clab::ClabLab;
use testbed::k8s::{ControlPlane, ControlPlaneConfig};

use crate::incluster::objects::NODES;

/// The control plane's address on the management bridge.
pub const CP: &str = "10.99.0.1";

/// The running lab. Fields drop in order: the control plane, then the namespaces.
pub struct CompareLab {
    /// etcd, kube-apiserver, kube-controller-manager.
    pub cp: ControlPlane,
    /// The namespaces, routers and links.
    pub clab: ClabLab,
}

impl CompareLab {
    /// Builds the lab, starts the control plane and creates the Node objects.
    pub fn start() -> testbed::Result<CompareLab> {
        let topology = testbed::incluster::repository().join("testbed/labs/tor-pair.clab.yml");
        let mut clab = ClabLab::up(&topology)?;
        let lab = clab.lab_mut();
        lab.add_namespace("cp")?;
        lab.add_bridge("mgmt")?;
        lab.attach("mgmt", ("cp", "eth0"))?;
        lab.add_address("cp", "eth0", net(&format!("{CP}/24"))?)?;
        for (i, node) in NODES.iter().enumerate() {
            lab.attach("mgmt", (node, "mgmt"))?;
            lab.add_address(node, "mgmt", net(&format!("10.99.0.{}/24", 11 + i))?)?;
        }
        let address: IpAddr = CP.parse().map_err(|_| error("control plane address"))?;
        let cp = ControlPlane::start(clab.lab().netns("cp")?, ControlPlaneConfig::new(address))?;
        Ok(CompareLab { cp, clab })
    }

    /// Creates the Node objects (Ready, InternalIP = the node's address towards tor1). Call
    /// after the product's install when the product needs its CRDs first.
    pub fn add_nodes(&self) -> testbed::Result<()> {
        for (i, node) in NODES.iter().enumerate() {
            let ip: IpAddr = node_address(i + 1, 1)
                .parse()
                .map_err(|_| error("node address"))?;
            testbed::incluster::add_node(&self.cp, node, ip, &BTreeMap::new())?;
        }
        Ok(())
    }

    /// The namespace of `node`.
    pub fn netns(&self, node: &str) -> testbed::Result<&testbed::Netns> {
        self.clab.lab().netns(node)
    }
}

/// Node `n`'s address on its link to tor `tor` (1 = BIRD, 2 = FRR): `10.<tor>.<n>.2`.
pub fn node_address(n: usize, tor: usize) -> String {
    format!("10.{tor}.{n}.2")
}

/// Tor `tor`'s address on its link to node `n`: `10.<tor>.<n>.1`.
pub fn router_address(n: usize, tor: usize) -> String {
    format!("10.{tor}.{n}.1")
}

/// The routers' AS and the nodes' AS in the tor-pair lab's router configurations.
pub const ROUTER_AS: u32 = 65000;
/// The AS the routers expect from every node.
pub const NODE_AS: u32 = 65001;

fn net(text: &str) -> testbed::Result<ipnetwork::IpNetwork> {
    text.parse()
        .map_err(|_| error(&format!("bad address {text}")))
}

/// A lab error with `message`.
pub fn error(message: &str) -> testbed::Error {
    testbed::Error::Daemon(message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_tor_pair_plan() {
        assert_eq!(node_address(2, 1), "10.1.2.2");
        assert_eq!(router_address(3, 2), "10.2.3.1");
    }
}
