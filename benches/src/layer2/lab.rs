//! The failover lab: a bridge `sw` as the switch, nodes `node1..=3` (`eth0` on bridge ports
//! `p1..=p3`), a client (`p4`) with default sysctls. Every node holds the VIPs on `lo` and
//! answers UDP probes on them with its name; `arp_ignore=1`/`arp_announce=2` (kube-proxy's
//! `strictARP`) leave answering ARP to whoever owns the address: Berth's speakers, or
//! keepalived (which puts the VIP on the master's `eth0`).
//!
//! With `extra` addresses (the 1,000-address run), each family gets that many more VIPs
//! (`10.9.16.0` on, `fd09::1:0` on), every node accepts them through one local route per
//! family (AnyIP on `lo`), and the responders listen on the wildcard address.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use testbed::Lab;
use testbed::lab::Process;
use testbed::traffic::Responder;

/// The nodes.
pub const NODES: [&str; 3] = ["node1", "node2", "node3"];
/// The UDP port the nodes answer probes on.
pub const PORT: u16 = 7007;
/// The IPv4 VIP.
pub const VIP4: &str = "10.9.0.200";
/// The IPv6 VIP.
pub const VIP6: &str = "fd09::200";

/// What answers ARP/NDP for the VIPs.
#[derive(Clone, Debug, PartialEq)]
pub enum Announcer {
    /// `berth-speaker` in standalone mode, heartbeat interval (ms) and multiplier.
    Berth {
        /// Heartbeat interval, ms.
        interval_ms: u64,
        /// Detect multiplier.
        multiplier: u32,
    },
    /// keepalived VRRP (v3) at `advert_int` seconds.
    Keepalived {
        /// `advert_int`, seconds.
        advert_int: f64,
    },
}

/// A running lab.
pub struct FailoverLab {
    /// The namespaces.
    pub lab: Lab,
    /// Node → eth0 MAC (`aa:bb:…`).
    pub macs: BTreeMap<String, String>,
    /// Node → its announcer's log.
    pub logs: BTreeMap<String, PathBuf>,
    /// The announcer processes by node.
    pub daemons: BTreeMap<String, Process>,
    /// The extra VIPs (both families).
    pub extra: Vec<IpAddr>,
    announcer: Announcer,
    bins: PathBuf,
    state: PathBuf,
    runs: usize,
    _responders: Vec<Responder>,
}

/// Every how many extra VIPs one is in the sample the client probes.
pub const SAMPLE_EVERY: usize = 50;

/// The `n`th extra VIP of a family: `10.9.16.1 + n`, `fd09::1:0 + n`.
pub fn extra_vip(v6: bool, n: u32) -> IpAddr {
    if v6 {
        IpAddr::V6(std::net::Ipv6Addr::from(
            0xfd09_0000_0000_0000_0000_0000_0001_0000_u128 + u128::from(n),
        ))
    } else {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a09_1001_u32 + n))
    }
}

/// The manifests: the pools, the nodes (those in `cordoned` unschedulable), the two VIPs'
/// Services and `extra` more per family.
pub fn manifests(cordoned: &[&str], extra: u32) -> String {
    let mut out = String::from(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: l2v4}\n\
         spec: {address: 10.9.0.200-10.9.0.209, protocol: layer2, interface: eth0}\n---\n\
         apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: l2v6}\n\
         spec: {address: \"fd09::200-fd09::209\", protocol: layer2, interface: eth0}\n---\n\
         apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: l2x4}\n\
         spec: {address: 10.9.16.0/20, protocol: layer2, interface: eth0}\n---\n\
         apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: l2x6}\n\
         spec: {address: \"fd09::1:0/116\", protocol: layer2, interface: eth0}\n",
    );
    for (i, node) in NODES.iter().enumerate() {
        let spec = if cordoned.contains(node) {
            "spec: {unschedulable: true}\n"
        } else {
            ""
        };
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata: {{name: {node}}}\n{spec}status: {{addresses: [{{type: InternalIP, address: 10.9.0.{}}}]}}\n",
            i + 1
        ));
    }
    let extras = (0..extra).flat_map(|n| {
        [
            (format!("x4-{n}"), extra_vip(false, n).to_string()),
            (format!("x6-{n}"), extra_vip(true, n).to_string()),
        ]
    });
    let named = [("v4", VIP4), ("v6", VIP6)]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()));
    for (name, vip) in named.chain(extras) {
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  namespace: web\n  name: {name}\n  annotations: {{lb.kubesphere.io/v1alpha1: openelb}}\n\
             spec: {{type: LoadBalancer, ports: [{{port: {PORT}, protocol: UDP}}]}}\nstatus: {{loadBalancer: {{ingress: [{{ip: \"{vip}\"}}]}}}}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{namespace: web, name: {name}-1, labels: {{kubernetes.io/service-name: {name}}}}}\n\
             addressType: IPv4\nendpoints:\n- addresses: [10.244.1.5]\n  nodeName: node1\n"
        ));
    }
    out
}

fn keepalived_conf(node: &str, n: usize, advert_int: f64) -> String {
    let priority = 150 - 10 * n;
    let mut out = format!("global_defs {{\n  router_id {node}\n  vrrp_version 3\n}}\n");
    for (name, id, vip) in [
        ("V4", 51, format!("{VIP4}/32")),
        ("V6", 52, format!("{VIP6}/128")),
    ] {
        out.push_str(&format!(
            "vrrp_instance {name} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {id}\n  priority {priority}\n  \
             advert_int {advert_int}\n  virtual_ipaddress {{\n    {vip} dev eth0\n  }}\n}}\n"
        ));
    }
    out
}

fn mac_of(lab: &Lab, node: &str) -> String {
    let out = lab
        .netns(node)
        .and_then(|ns| ns.output("ip", &["-j", "link", "show", "eth0"]))
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    v[0]["address"].as_str().unwrap_or_default().to_string()
}

impl FailoverLab {
    /// Builds the lab and starts `announcer` on every node; `bins` holds `berth-speaker`;
    /// `extra` more VIPs per family.
    pub fn up(announcer: &Announcer, bins: &Path, extra: u32) -> testbed::Result<FailoverLab> {
        let mut lab = Lab::new("layer2-failover")?;
        lab.add_bridge("sw")?;
        let vips: Vec<IpAddr> = [VIP4, VIP6].iter().filter_map(|v| v.parse().ok()).collect();
        for (i, node) in NODES.iter().enumerate() {
            let ns = lab.add_namespace(node)?;
            ns.sysctl("net/ipv4/conf/all/arp_ignore", "1")?;
            ns.sysctl("net/ipv4/conf/all/arp_announce", "2")?;
            lab.attach("sw", (node, "eth0"))?;
            let n = i + 1;
            lab.add_address(node, "eth0", format!("10.9.0.{n}/24").parse().map_err(bad)?)?;
            lab.add_address(node, "eth0", format!("fd09::{n}/64").parse().map_err(bad)?)?;
            for vip in &vips {
                let len = if vip.is_ipv4() { 32 } else { 128 };
                lab.add_address(
                    node,
                    "lo",
                    ipnetwork::IpNetwork::new(*vip, len).map_err(bad)?,
                )?;
            }
        }
        lab.add_namespace("client")?;
        lab.attach("sw", ("client", "eth0"))?;
        lab.add_address("client", "eth0", "10.9.0.100/24".parse().map_err(bad)?)?;
        lab.add_address("client", "eth0", "fd09::100/64".parse().map_err(bad)?)?;
        let mut targets: Vec<SocketAddr> = vips.iter().map(|v| SocketAddr::new(*v, PORT)).collect();
        if extra > 0 {
            // The extra VIPs are on the segment for the client, local to every node.
            lab.netns("client")?
                .output("ip", &["route", "add", "10.9.16.0/20", "dev", "eth0"])?;
            for node in NODES {
                let ns = lab.netns(node)?;
                ns.output(
                    "ip",
                    &["route", "add", "local", "10.9.16.0/20", "dev", "lo"],
                )?;
                ns.output(
                    "ip",
                    &["-6", "route", "add", "local", "fd09::1:0/116", "dev", "lo"],
                )?;
            }
            // The sample the client probes (every 50th) is on `lo` too, so the
            // responders can bind it and answer from it.
            for n in (0..extra).step_by(SAMPLE_EVERY) {
                for vip in [extra_vip(false, n), extra_vip(true, n)] {
                    let len = if vip.is_ipv4() { 32 } else { 128 };
                    for node in NODES {
                        lab.add_address(
                            node,
                            "lo",
                            ipnetwork::IpNetwork::new(vip, len).map_err(bad)?,
                        )?;
                    }
                    targets.push(SocketAddr::new(vip, PORT));
                }
            }
        }
        let responders = NODES
            .iter()
            .map(|n| Responder::start(lab.netns(n)?, n, &targets))
            .collect::<testbed::Result<Vec<_>>>()?;
        let macs = NODES
            .iter()
            .map(|n| (n.to_string(), mac_of(&lab, n)))
            .collect();
        let state = lab.dir().join("state");
        std::fs::create_dir_all(&state).map_err(|e| testbed::Error::io("state dir", e))?;
        std::fs::write(state.join("cluster.yaml"), manifests(&[], extra))
            .map_err(|e| testbed::Error::io("manifests", e))?;
        let mut this = FailoverLab {
            lab,
            macs,
            logs: BTreeMap::new(),
            daemons: BTreeMap::new(),
            extra: (0..extra)
                .flat_map(|n| [extra_vip(false, n), extra_vip(true, n)])
                .collect(),
            announcer: announcer.clone(),
            bins: bins.to_path_buf(),
            state,
            runs: 0,
            _responders: responders,
        };
        for node in NODES {
            this.start(node)?;
        }
        Ok(this)
    }

    /// Rewrites the manifests with `cordoned` nodes unschedulable.
    pub fn cordon(&self, cordoned: &[&str]) -> testbed::Result<()> {
        let extra = u32::try_from(self.extra.len() / 2).unwrap_or(0);
        let tmp = self.state.join(".cluster.yaml.tmp");
        std::fs::write(&tmp, manifests(cordoned, extra))
            .map_err(|e| testbed::Error::io("manifests", e))?;
        std::fs::rename(&tmp, self.state.join("cluster.yaml"))
            .map_err(|e| testbed::Error::io("manifests", e))
    }

    /// Starts (again) the announcer of `node`; its log goes on in the same file.
    pub fn start(&mut self, node: &str) -> testbed::Result<()> {
        let i = NODES.iter().position(|n| *n == node).unwrap_or(0);
        self.runs += 1;
        let (lab, state, bins, announcer) = (&self.lab, &self.state, &self.bins, &self.announcer);
        {
            let log_path = lab.dir().join(format!("{node}.log"));
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|e| testbed::Error::io("log", e))?;
            let netns = lab.netns(node)?;
            let mut command: Command = match announcer {
                Announcer::Berth {
                    interval_ms,
                    multiplier,
                } => {
                    let mut c = netns.command(bins.join("berth-speaker"));
                    c.args(["--node-name", node, "--state-dir"])
                        .arg(state)
                        .args(["--restart-marker", "", "--log-format", "json"])
                        .args(["--layer2-heartbeat-ms", &interval_ms.to_string()])
                        .args(["--layer2-detect-multiplier", &multiplier.to_string()]);
                    c
                }
                Announcer::Keepalived { advert_int } => {
                    let dir = lab.dir().join(format!("{node}-keepalived"));
                    std::fs::create_dir_all(&dir).map_err(|e| testbed::Error::io("dir", e))?;
                    let conf = dir.join("keepalived.conf");
                    std::fs::write(&conf, keepalived_conf(node, i + 1, *advert_int))
                        .map_err(|e| testbed::Error::io("conf", e))?;
                    let mut c = netns.command("keepalived");
                    c.args(["-n", "-l", "-P", "-f"])
                        .arg(&conf)
                        .arg("-p")
                        .arg(dir.join("keepalived.pid"))
                        .arg("-r")
                        .arg(dir.join("vrrp.pid"));
                    c
                }
            };
            command.stdout(Stdio::from(
                log.try_clone().map_err(|e| testbed::Error::io("log", e))?,
            ));
            command.stderr(Stdio::from(log));
            let process = Process::spawn(format!("{node} announcer {}", self.runs), command)?;
            self.daemons.insert(node.to_string(), process);
            self.logs.insert(node.to_string(), log_path);
        }
        Ok(())
    }

    /// The bridge port of `node`.
    pub fn port_of(node: &str) -> String {
        let n = NODES.iter().position(|x| *x == node).unwrap_or(0) + 1;
        format!("p{n}")
    }

    /// Drops every frame to and from `node` while its carrier stays up (power loss, no
    /// FIN): a `blackhole` qdisc on its `eth0` and on its bridge port (this kernel has no
    /// `sch_netem` and no `act_gact`).
    pub fn set_blackhole(&self, node: &str, on: bool) -> testbed::Result<()> {
        let port = Self::port_of(node);
        for (ns, dev) in [(node, "eth0"), ("sw", port.as_str())] {
            let mut args = vec!["qdisc", if on { "add" } else { "del" }, "dev", dev, "root"];
            if on {
                args.push("blackhole");
            }
            self.lab.netns(ns)?.output("tc", &args)?;
        }
        Ok(())
    }

    /// Cuts `node` off from the other candidates' heartbeats (UDP 7474 both ways) while it
    /// still reaches the client: a partition between the candidates.
    pub fn set_partition(&self, node: &str, on: bool) -> testbed::Result<()> {
        let ns = self.lab.netns(node)?;
        for tool in ["iptables", "ip6tables"] {
            for (chain, dir) in [("INPUT", "--dport"), ("OUTPUT", "--dport")] {
                ns.output(
                    tool,
                    &[
                        if on { "-A" } else { "-D" },
                        chain,
                        "-p",
                        "udp",
                        dir,
                        "7474",
                        "-j",
                        "DROP",
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Sets the bridge port of `node` up or down (its cable plugged or pulled).
    pub fn set_cable(&self, node: &str, up: bool) -> testbed::Result<()> {
        self.lab.netns("sw")?.output(
            "ip",
            &[
                "link",
                "set",
                &Self::port_of(node),
                if up { "up" } else { "down" },
            ],
        )?;
        Ok(())
    }
}

fn bad(e: impl std::fmt::Display) -> testbed::Error {
    testbed::Error::Topology(e.to_string())
}
