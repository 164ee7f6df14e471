//! The lab the benchmark measures: the tor-pair topology (`testbed/labs/tor-pair.clab.yml`:
//! BIRD tor1, FRR tor2, three nodes wired to both), a control plane in namespace `cp` on a
//! management bridge, Berth installed from `deploy/` with one controller and a speaker per
//! node, each with its ServiceAccount's token (as `testbed/tests/kube_tor_pair.rs` builds it,
//! with one controller replica and IPv4 sessions only).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use testbed::clab::ClabLab;
use testbed::incluster::{self, Daemon};
use testbed::k8s::{ControlPlane, ControlPlaneConfig};

use super::objects::{NAMESPACE, NODES, berth_objects};

const CP: &str = "10.99.0.1";
const TIMEOUT: Duration = Duration::from_secs(60);

/// The running lab. Fields drop in order: daemons first, then the control plane, then the
/// namespaces.
pub struct Bench {
    /// `berth-controller` (one replica, leader election on).
    pub controller: Daemon,
    /// `berth-speaker` on node1..node3.
    pub speakers: Vec<Daemon>,
    /// etcd, kube-apiserver, kube-controller-manager.
    pub cp: ControlPlane,
    /// The namespaces, routers and links.
    pub clab: ClabLab,
    /// Where the daemons' binaries came from.
    pub bin_dir: PathBuf,
}

impl Bench {
    /// Builds the lab, installs Berth and starts its daemons from `bin_dir`; returns once
    /// every speaker's two sessions are Established (both routers list them).
    pub fn start(bin_dir: &Path) -> testbed::Result<Bench> {
        let topology = incluster::repository().join("testbed/labs/tor-pair.clab.yml");
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
        let address: IpAddr = CP.parse().map_err(|_| daemon("control plane address"))?;
        let cp = ControlPlane::start(clab.lab().netns("cp")?, ControlPlaneConfig::new(address))?;
        let install = incluster::install(&cp)?;
        for (i, node) in NODES.iter().enumerate() {
            let ip: IpAddr = format!("10.1.{}.2", i + 1)
                .parse()
                .map_err(|_| daemon("node address"))?;
            incluster::add_node(&cp, node, ip, &BTreeMap::new())?;
        }
        cp.apply(&berth_objects())?;
        let lab = clab.lab();
        let controller = Daemon::controller(
            lab.netns("cp")?,
            &bin_dir.join("berth-controller"),
            &install,
            1,
            &[],
        )?;
        let speakers = NODES
            .iter()
            .map(|node| {
                Daemon::speaker(
                    lab.netns(node)?,
                    &bin_dir.join("berth-speaker"),
                    &install,
                    node,
                    0,
                    &[],
                )
            })
            .collect::<testbed::Result<Vec<_>>>()?;
        let bench = Bench {
            controller,
            speakers,
            cp,
            clab,
            bin_dir: bin_dir.to_path_buf(),
        };
        bench.wait_sessions()?;
        Ok(bench)
    }

    /// Waits until every BgpPeer reports its session Established (the speakers write it).
    fn wait_sessions(&self) -> testbed::Result<()> {
        testbed::wait::until("all six sessions Established", TIMEOUT, || {
            let (status, body) = self
                .cp
                .get("/apis/network.kubesphere.io/v1alpha2/bgppeers")?;
            if status != 200 {
                return Ok(None);
            }
            let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let established = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|p| {
                    p["status"]["nodesPeerStatus"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(_, s)| s["peerState"]["sessionState"].clone())
                        .collect::<Vec<_>>()
                })
                .filter(|s| s == "ESTABLISHED")
                .count();
            Ok((established >= 2 * NODES.len()).then_some(()))
        })
        .map_err(|e| {
            let tails: Vec<String> = self.speakers.iter().map(Daemon::log_tail).collect();
            daemon(&format!("{e}\n{}", tails.join("\n")))
        })?;
        // The namespace's default ServiceAccount is not needed (no Pods), but wait for the
        // namespace to be served before creating into it.
        testbed::wait::until("the bench namespace", TIMEOUT, || {
            let (status, _) = self.cp.get(&format!("/api/v1/namespaces/{NAMESPACE}"))?;
            Ok((status == 200).then_some(()))
        })
    }

    /// A version line of each piece of software in the lab, for the results.
    pub fn versions(&self) -> BTreeMap<String, String> {
        let mut v = BTreeMap::new();
        let first_line = |program: &str, args: &[&str]| {
            std::process::Command::new(program)
                .args(args)
                .output()
                .ok()
                .map(|o| {
                    let text = format!(
                        "{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    );
                    text.lines().next().unwrap_or("").trim().to_string()
                })
                .unwrap_or_default()
        };
        v.insert("berth".into(), env!("CARGO_PKG_VERSION").into());
        v.insert(
            "berth_commit".into(),
            first_line(
                "git",
                &[
                    "-C",
                    &incluster::repository().to_string_lossy(),
                    "rev-parse",
                    "HEAD",
                ],
            ),
        );
        // Daemons built from a work tree with uncommitted changes say so.
        let dirty = std::process::Command::new("git")
            .args(["-C", &incluster::repository().to_string_lossy()])
            .args([
                "status",
                "--porcelain",
                "--",
                "api",
                "bgp",
                "bfd",
                "controller",
                "speaker",
            ])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter(|w| w.contains('/'))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        v.insert("berth_uncommitted".into(), dirty);
        if let Ok((200, body)) = self.cp.get("/version") {
            let version: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            v.insert(
                "kube_apiserver".into(),
                version["gitVersion"].as_str().unwrap_or("").into(),
            );
        }
        v.insert("bird".into(), first_line("bird", &["--version"]));
        v.insert(
            "frr".into(),
            first_line("/usr/lib/frr/bgpd", &["--version"]),
        );
        v.insert("kernel".into(), first_line("uname", &["-r"]));
        v
    }
}

fn net(text: &str) -> testbed::Result<ipnetwork::IpNetwork> {
    text.parse()
        .map_err(|_| daemon(&format!("bad address {text}")))
}

fn daemon(message: &str) -> testbed::Error {
    testbed::Error::Daemon(message.to_string())
}
