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
    /// Builds the lab (with BFD at `bfd` ms × 3 on both routers' node sessions when given)
    /// and starts the control plane.
    pub fn start(bfd: Option<u32>) -> testbed::Result<CompareLab> {
        let labs = testbed::incluster::repository().join("testbed/labs");
        let mut clab = match bfd {
            None => ClabLab::up(&labs.join("tor-pair.clab.yml"))?,
            Some(ms) => {
                // A scratch copy of the topology whose router configurations add BFD.
                let scratch = std::env::temp_dir()
                    .join(format!("berth-compare-{}-bfd{ms}", std::process::id()));
                let io = |e| testbed::Error::io("scratch topology", e);
                std::fs::create_dir_all(scratch.join("tor-pair")).map_err(io)?;
                let read = |p: &str| std::fs::read_to_string(labs.join(p)).map_err(io);
                let write =
                    |p: &str, text: String| std::fs::write(scratch.join(p), text).map_err(io);
                write("tor-pair.clab.yml", read("tor-pair.clab.yml")?)?;
                write(
                    "tor-pair/tor1.bird.conf",
                    bird_with_bfd(&read("tor-pair/tor1.bird.conf")?, ms),
                )?;
                write(
                    "tor-pair/tor2.frr.conf",
                    frr_with_bfd(&read("tor-pair/tor2.frr.conf")?, ms),
                )?;
                let up = ClabLab::up(&scratch.join("tor-pair.clab.yml"));
                let _ = std::fs::remove_dir_all(&scratch);
                up?
            }
        };
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

/// The lab's BIRD configuration with BFD (`ms` × 3) on every IPv4 node session.
pub fn bird_with_bfd(config: &str, ms: u32) -> String {
    let with = config.replacen(
        "template bgp node4 {\n",
        "template bgp node4 {\n  bfd on;\n",
        1,
    );
    format!(
        "{with}\nprotocol bfd {{\n  interface \"eth*\" {{ min rx interval {ms} ms; \
         min tx interval {ms} ms; multiplier 3; }};\n}}\n"
    )
}

/// The lab's FRR configuration with BFD (`ms` × 3, a profile) on the IPv4 node peer group,
/// whose members are static neighbours instead of the `bgp listen range`: FRR creates a
/// dynamic neighbour's BFD session only once its BGP session is up, and a speaker that waits
/// for BFD Up before opening BGP (Berth does) would then never start.
pub fn frr_with_bfd(config: &str, ms: u32) -> String {
    let statics: String = (1..=3)
        .map(|n| format!(" neighbor 10.2.{n}.2 peer-group nodes\n"))
        .collect();
    let with = config
        .replacen(
            " neighbor nodes remote-as 65001\n",
            " neighbor nodes remote-as 65001\n neighbor nodes bfd profile bench\n",
            1,
        )
        .replacen(
            " bgp listen range 10.2.0.0/16 peer-group nodes\n",
            &statics,
            1,
        );
    format!(
        "bfd\n profile bench\n  receive-interval {ms}\n  transmit-interval {ms}\n  \
         detect-multiplier 3\n !\n!\n{with}"
    )
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
    fn bfd_is_added_to_both_routers() {
        let labs = testbed::incluster::repository().join("testbed/labs/tor-pair");
        let bird = std::fs::read_to_string(labs.join("tor1.bird.conf")).unwrap_or_default();
        let frr = std::fs::read_to_string(labs.join("tor2.frr.conf")).unwrap_or_default();
        let bird = bird_with_bfd(&bird, 50);
        assert!(bird.contains("bfd on;") && bird.contains("min rx interval 50 ms"));
        let frr = frr_with_bfd(&frr, 300);
        assert!(frr.contains("neighbor nodes bfd profile bench"));
        assert!(frr.contains("receive-interval 300"));
        assert!(frr.contains(" neighbor 10.2.3.2 peer-group nodes\n"));
        assert!(!frr.contains("listen range 10.2.0.0/16"));
    }

    #[test]
    fn addresses_follow_the_tor_pair_plan() {
        assert_eq!(node_address(2, 1), "10.1.2.2");
        assert_eq!(router_address(3, 2), "10.2.3.1");
    }
}
