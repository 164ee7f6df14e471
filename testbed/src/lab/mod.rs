//! Labs: network namespaces joined by veth pairs and bridges, built through rtnetlink and
//! removed on drop (also when a test panics). Names carry the creating pid, so every lab is
//! unique and the next run sweeps what a killed run left behind.
//!
//! Nothing in the root namespace is touched: veths are created inside a lab namespace with the
//! peer placed directly into the other one, and a bridge lives in a namespace of its own.

mod fib;
pub mod names;
mod namespace;
pub mod netns;
mod process;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use ipnetwork::IpNetwork;
use tracing::debug;

pub use fib::{Fib, FibNextHop, FibRoute};
pub use namespace::Netns;
pub use process::{Memory, Process};

use crate::{Error, Result};

/// The device name of the bridge inside a bridge namespace.
pub const BRIDGE_DEVICE: &str = "br0";

static LAB_SEQ: AtomicU32 = AtomicU32::new(0);
static SWEEP: Mutex<bool> = Mutex::new(false);

/// Where labs keep per-lab runtime files (router configs, sockets, logs).
pub fn runtime_root() -> PathBuf {
    std::env::temp_dir().join("berth-testbed")
}

/// Fails with a clear message unless the process can build labs (root, `ip` installed).
pub fn require_root() -> Result<()> {
    // SAFETY-free check: the effective uid is in /proc/self/status.
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| Error::io("read /proc/self/status", e))?;
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("");
    if euid != "0" {
        return Err(Error::Missing(
            "root (labs create network namespaces; run the tests as root)".into(),
        ));
    }
    Ok(())
}

/// A set of namespaces and the links between them. Dropping it kills every process inside,
/// deletes the namespaces (and with them their links) and the runtime directory.
#[derive(Debug)]
pub struct Lab {
    id: String,
    dir: PathBuf,
    namespaces: BTreeMap<String, Netns>,
    bridges: BTreeMap<String, u32>,
    processes: Vec<Process>,
}

impl Lab {
    /// Starts an empty lab (and first, once per process, sweeps leftovers of dead runs).
    /// `label` only names the runtime directory's log line; it needs not be unique.
    pub fn new(label: &str) -> Result<Lab> {
        require_root()?;
        {
            let mut swept = SWEEP.lock().unwrap_or_else(|e| e.into_inner());
            if !*swept {
                netns::sweep(&runtime_root());
                *swept = true;
            }
        }
        let id = names::lab_id(std::process::id(), LAB_SEQ.fetch_add(1, Ordering::Relaxed));
        let dir = runtime_root().join(&id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        debug!(id, label, "lab created");
        Ok(Lab {
            id,
            dir,
            namespaces: BTreeMap::new(),
            bridges: BTreeMap::new(),
            processes: Vec::new(),
        })
    }

    /// The unique id (`bt-PID-SEQ`), the prefix of every namespace name.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The lab's private runtime directory (removed on drop).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds a namespace called `node`, with loopback up, IPv6 DAD off and no forwarding (a
    /// new namespace otherwise takes `ip_forward` from the host, which a container engine on
    /// the host may have turned on: a lab behaves the same on every machine).
    pub fn add_namespace(&mut self, node: &str) -> Result<&Netns> {
        if !names::valid_node(node) {
            return Err(Error::Topology(format!("invalid node name {node:?}")));
        }
        if self.namespaces.contains_key(node) {
            return Err(Error::Topology(format!("node {node} exists")));
        }
        let name = names::netns_name(&self.id, node);
        let path = netns::create(&name)?;
        let ns = Netns::new(node, &name, path, self.dir.join(node));
        // Registered before configuring, so a failure below still removes it on drop.
        self.namespaces.insert(node.to_string(), ns.clone());
        ns.set_up("lo")?;
        ns.sysctl("net/ipv6/conf/all/accept_dad", "0")?;
        ns.sysctl("net/ipv6/conf/default/accept_dad", "0")?;
        ns.sysctl("net/ipv4/ip_forward", "0")?;
        ns.sysctl("net/ipv6/conf/all/forwarding", "0")?;
        Ok(&self.namespaces[node])
    }

    /// Adds a namespace that forwards IPv4 and IPv6 with L4 multipath hashing.
    pub fn add_router(&mut self, node: &str) -> Result<&Netns> {
        self.add_namespace(node)?.enable_routing()?;
        Ok(&self.namespaces[node])
    }

    /// Adds a shared L2 segment: a namespace `name` holding bridge [`BRIDGE_DEVICE`]; links to
    /// it (by [`Lab::link`] or [`Lab::attach`]) become bridge ports.
    pub fn add_bridge(&mut self, name: &str) -> Result<&Netns> {
        self.add_namespace(name)?;
        self.bridges.insert(name.to_string(), 0);
        self.namespaces[name].add_bridge(BRIDGE_DEVICE)?;
        Ok(&self.namespaces[name])
    }

    /// The namespace of `node`.
    pub fn netns(&self, node: &str) -> Result<&Netns> {
        self.namespaces
            .get(node)
            .ok_or_else(|| Error::Unknown(format!("node {node}")))
    }

    /// All namespaces by node name.
    pub fn namespaces(&self) -> &BTreeMap<String, Netns> {
        &self.namespaces
    }

    /// Whether `node` is a bridge.
    pub fn is_bridge(&self, node: &str) -> bool {
        self.bridges.contains_key(node)
    }

    /// Connects `a.0:a.1` and `b.0:b.1` with a veth pair (both ends up). An end in a bridge
    /// namespace is attached to its bridge.
    pub fn link(&mut self, a: (&str, &str), b: (&str, &str)) -> Result<()> {
        for (_, ifname) in [a, b] {
            if !names::valid_ifname(ifname) {
                return Err(Error::Topology(format!(
                    "invalid interface name {ifname:?}"
                )));
            }
        }
        let (ns_a, ns_b) = (self.netns(a.0)?.clone(), self.netns(b.0)?.clone());
        ns_a.add_veth(a.1, &ns_b, b.1)?;
        for (node, ifname) in [a, b] {
            if self.is_bridge(node) {
                self.namespaces[node].attach_to_bridge(ifname, BRIDGE_DEVICE)?;
            }
        }
        Ok(())
    }

    /// Plugs `node:ifname` into `bridge` (the port on the bridge side is named automatically).
    pub fn attach(&mut self, bridge: &str, node: (&str, &str)) -> Result<()> {
        let port = {
            let count = self
                .bridges
                .get_mut(bridge)
                .ok_or_else(|| Error::Unknown(format!("bridge {bridge}")))?;
            *count += 1;
            format!("p{}", *count)
        };
        self.link(node, (bridge, &port))
    }

    /// Adds `address` to `node:ifname`.
    pub fn add_address(&self, node: &str, ifname: &str, address: IpNetwork) -> Result<()> {
        self.netns(node)?.add_address(ifname, address)
    }

    /// Adds a route on `node` to `destination` via `gateway`.
    pub fn add_route(&self, node: &str, destination: IpNetwork, gateway: IpAddr) -> Result<()> {
        self.netns(node)?.add_route(destination, gateway)
    }

    /// Spawns `program args` in `node`; the lab kills it on drop.
    pub fn spawn(&mut self, node: &str, program: &str, args: &[&str]) -> Result<u32> {
        let process = self.netns(node)?.spawn(program, args)?;
        let pid = process.pid();
        self.processes.push(process);
        Ok(pid)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for mut process in self.processes.drain(..) {
            process.kill();
        }
        for ns in self.namespaces.values() {
            netns::kill_all_in(ns.path());
        }
        for ns in self.namespaces.values() {
            netns::remove(ns.path());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        debug!(id = self.id, "lab removed");
    }
}
