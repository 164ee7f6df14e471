//! The tor-pair lab the demo runs on: tor1 (BIRD) and tor2 (FRR), three nodes each peering
//! with both, and a client behind the routers. The topology is embedded so the binary runs
//! from anywhere. For the cluster mode, a control-plane namespace joins the lab on a
//! management bridge every node reaches. Knows nothing about Berth.

use std::path::Path;

use anyhow::{Context, Result};
use testbed::clab::ClabLab;

/// The lab topology.
const TOPOLOGY: &str = include_str!("../../../labs/tor-pair.clab.yml");
/// The topology's router configurations, which it names relative to itself.
const TOR1_BIRD: &str = include_str!("../../../labs/tor-pair/tor1.bird.conf");
const TOR2_FRR: &str = include_str!("../../../labs/tor-pair/tor2.frr.conf");

/// The nodes of the lab, where the speakers run.
pub const NODES: [&str; 3] = ["node1", "node2", "node3"];
/// The control plane's namespace (cluster mode).
pub const CONTROL_PLANE: &str = "cp";
/// The control plane's address on the management bridge; node N is `10.99.0.1N`.
pub const CONTROL_PLANE_ADDRESS: &str = "10.99.0.1";

/// Writes the topology and its router configurations into a directory of this process, brings
/// the lab up and removes the directory again (the lab keeps what it needs).
pub fn up() -> Result<ClabLab> {
    let dir = testbed::lab::runtime_root().join(format!("demo-topology-{}", std::process::id()));
    let lab = write_and_up(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    lab
}

fn write_and_up(dir: &Path) -> Result<ClabLab> {
    std::fs::create_dir_all(dir.join("tor-pair")).context("topology directory")?;
    std::fs::write(dir.join("tor-pair.clab.yml"), TOPOLOGY).context("write topology")?;
    std::fs::write(dir.join("tor-pair/tor1.bird.conf"), TOR1_BIRD).context("write tor1")?;
    std::fs::write(dir.join("tor-pair/tor2.frr.conf"), TOR2_FRR).context("write tor2")?;
    ClabLab::up(&dir.join("tor-pair.clab.yml")).context("bring up the tor-pair lab")
}

/// Adds the control plane's namespace and a `mgmt` bridge joining it (`eth0`,
/// 10.99.0.1/24) to every node (`mgmt`, 10.99.0.11-13/24), as a cluster's management
/// network would.
pub fn add_management(clab: &mut ClabLab) -> Result<()> {
    let lab = clab.lab_mut();
    lab.add_namespace(CONTROL_PLANE)?;
    lab.add_bridge("mgmt")?;
    lab.attach("mgmt", (CONTROL_PLANE, "eth0"))?;
    lab.add_address(
        CONTROL_PLANE,
        "eth0",
        format!("{CONTROL_PLANE_ADDRESS}/24").parse()?,
    )?;
    for (i, node) in NODES.iter().enumerate() {
        lab.attach("mgmt", (node, "mgmt"))?;
        lab.add_address(node, "mgmt", format!("10.99.0.{}/24", 11 + i).parse()?)?;
    }
    Ok(())
}

/// Prints the lab's namespaces.
pub fn print_namespaces(clab: &ClabLab) {
    println!(
        "  namespaces: {}",
        clab.lab()
            .namespaces()
            .values()
            .map(|n| n.name())
            .collect::<Vec<_>>()
            .join(" ")
    );
}
