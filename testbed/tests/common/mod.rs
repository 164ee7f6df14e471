//! Shared lab shapes for the integration tests.
#![allow(dead_code, reason = "each test file uses a different part")]
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnetwork::IpNetwork;
use testbed::Lab;
use testbed::router::{Neighbor, RouterConfig};

pub mod berth;
pub mod install;
pub mod kube;
pub mod nodes;
pub mod standalone;
pub mod tor_pair;

/// A binary of the workspace, next to this test's own executable.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build it first with `cargo build --workspace --bins` (./test.sh does)",
        bin.display()
    );
    bin
}

/// A containerlab topology shipped in `testbed/labs/`.
pub fn lab_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("labs")
        .join(name)
}

/// AS of the router under test.
pub const ROUTER_AS: u32 = 65000;
/// AS of every node.
pub const NODE_AS: u32 = 65001;
/// How long sessions get to come up.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(30);

pub fn net(s: &str) -> IpNetwork {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The VIPs the nodes announce.
pub fn vip4() -> IpNetwork {
    net("10.0.0.100/32")
}
pub fn vip6() -> IpNetwork {
    net("2001:db8::100/128")
}

/// Node `i` (1-based) addresses on its link to the router: (router v4, node v4, router v6, node v6).
pub fn link_addresses(i: usize) -> (IpAddr, IpAddr, IpAddr, IpAddr) {
    (
        ip(&format!("10.1.{i}.1")),
        ip(&format!("10.1.{i}.2")),
        ip(&format!("fd00:{i}::1")),
        ip(&format!("fd00:{i}::2")),
    )
}

/// A star: router `r`, nodes `n1..=nN` each on its own link (r:ethI ↔ nI:eth0), and a client
/// `c` (r:eth0 ↔ c:eth0, 10.9.0.0/24 and fd00:9::/64). Everyone routes by default via `r`.
pub fn star(label: &str, nodes: usize) -> Lab {
    let mut lab = Lab::new(label).unwrap();
    lab.add_router("r").unwrap();
    for i in 1..=nodes {
        let node = format!("n{i}");
        let rif = format!("eth{i}");
        lab.add_namespace(&node).unwrap();
        lab.link(("r", &rif), (&node, "eth0")).unwrap();
        let (r4, n4, r6, n6) = link_addresses(i);
        lab.add_address("r", &rif, IpNetwork::new(r4, 24).unwrap())
            .unwrap();
        lab.add_address(&node, "eth0", IpNetwork::new(n4, 24).unwrap())
            .unwrap();
        lab.add_address("r", &rif, IpNetwork::new(r6, 64).unwrap())
            .unwrap();
        lab.add_address(&node, "eth0", IpNetwork::new(n6, 64).unwrap())
            .unwrap();
        lab.add_route(&node, net("0.0.0.0/0"), r4).unwrap();
        lab.add_route(&node, net("::/0"), r6).unwrap();
    }
    lab.add_namespace("c").unwrap();
    lab.link(("r", "eth0"), ("c", "eth0")).unwrap();
    lab.add_address("r", "eth0", net("10.9.0.1/24")).unwrap();
    lab.add_address("c", "eth0", net("10.9.0.2/24")).unwrap();
    lab.add_address("r", "eth0", net("fd00:9::1/64")).unwrap();
    lab.add_address("c", "eth0", net("fd00:9::2/64")).unwrap();
    lab.add_route("c", net("0.0.0.0/0"), ip("10.9.0.1"))
        .unwrap();
    lab.add_route("c", net("::/0"), ip("fd00:9::1")).unwrap();
    lab
}

/// The router's configuration: one IPv4 and one IPv6 neighbour per node.
pub fn router_config(nodes: usize) -> RouterConfig {
    let mut config = RouterConfig::new("r", "10.255.0.1".parse().unwrap(), ROUTER_AS);
    for i in 1..=nodes {
        let (_, n4, _, n6) = link_addresses(i);
        config = config
            .neighbor(Neighbor::new(n4, NODE_AS))
            .neighbor(Neighbor::new(n6, NODE_AS));
    }
    config
}

/// Node `i`'s configuration: sessions to the router over IPv4 and IPv6, announcing `announce`.
pub fn node_config(i: usize, announce: &[IpNetwork]) -> RouterConfig {
    let (r4, n4, r6, n6) = link_addresses(i);
    let mut config = RouterConfig::new(
        &format!("n{i}"),
        format!("10.255.1.{i}").parse().unwrap(),
        NODE_AS,
    )
    .neighbor(Neighbor::new(r4, ROUTER_AS).local_address(n4))
    .neighbor(Neighbor::new(r6, ROUTER_AS).local_address(n6));
    config.install_routes = false;
    for prefix in announce {
        config = config.announce(*prefix);
    }
    config
}
