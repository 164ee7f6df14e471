//! Layer-2 mode end to end through the real binaries: a bridge as the switch, three node
//! namespaces each running `berth-speaker` in standalone mode on one manifest directory
//! (the controller in standalone mode allocates), and a client namespace on the same
//! segment with default sysctls. The nodes accept VIP traffic the way kube-proxy's IPVS
//! mode with `strictARP` does: every node holds the VIPs on a local device (`lo` here, as
//! kube-proxy holds them on `kube-ipvs0`), and `arp_ignore=1`/`arp_announce=2` keep the
//! kernel from answering ARP for them (IPv6 answers Neighbor Solicitations only for
//! addresses of the interface asked on), so only the speakers' responders do.
//!
//! Shown here: every address (three IPv4, three IPv6) has exactly one owner, on which all
//! nodes agree; owners spread two per node; the client's probes reach the owner and its
//! neighbour entry holds the owner's MAC; SIGKILL of an owner's speaker and an owner's
//! link going down each move its addresses, and the client follows.
//!
//! The binaries come from the same target directory as this test (`cargo build -p speaker
//! -p controller --bins`).

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;

use common::workspace_bin;
use testbed::Lab;
use testbed::lab::Process;
use testbed::traffic::{Protocol, Responder, spread};

/// How long a change gets to show (allocation, ownership, the client following).
const CONVERGE: Duration = Duration::from_secs(20);
/// The UDP port the nodes' responders answer on.
const PORT: u16 = 7007;
const NODES: [&str; 3] = ["node1", "node2", "node3"];

/// Writes a manifest file atomically (write, then rename), as the controller does.
fn write(dir: &Path, file: &str, text: &str) {
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(file)).unwrap();
}

fn cluster() -> String {
    cluster_with(&[])
}

/// The cluster with the nodes in `cordoned` marked unschedulable (`kubectl cordon`, the
/// first step of `kubectl drain`).
fn cluster_with(cordoned: &[&str]) -> String {
    let mut out = String::from(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: l2v4}\n\
         spec: {address: 10.9.0.200-10.9.0.209, protocol: layer2, interface: eth0}\n---\n\
         apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: l2v6}\n\
         spec: {address: \"fd09::200-fd09::209\", protocol: layer2, interface: \"can_reach:fd09::100\"}\n",
    );
    for (i, node) in NODES.iter().enumerate() {
        let n = i + 1;
        let spec = if cordoned.contains(node) {
            "spec: {unschedulable: true}\n"
        } else {
            ""
        };
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {node}\n  labels: {{kubernetes.io/hostname: {node}}}\n\
             {spec}status:\n  addresses: [{{type: InternalIP, address: 10.9.0.{n}}}]\n"
        ));
    }
    out
}

/// A Service as a user writes it (no status; the controller allocates from `pool`), with a
/// ready endpoint on node1 (policy Cluster: every node is a candidate).
fn service(name: &str, pool: &str) -> String {
    let family = if pool.ends_with('6') { "IPv6" } else { "IPv4" };
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  namespace: web\n  name: {name}\n  annotations:\n    \
         lb.kubesphere.io/v1alpha1: openelb\n    eip.openelb.kubesphere.io/v1alpha2: {pool}\n\
         spec:\n  type: LoadBalancer\n  ipFamilies: [{family}]\n  ports: [{{port: {PORT}, protocol: UDP}}]\n---\napiVersion: discovery.k8s.io/v1\n\
         kind: EndpointSlice\nmetadata:\n  namespace: web\n  name: {name}-1\n  labels: {{kubernetes.io/service-name: {name}}}\n\
         addressType: IPv4\nendpoints:\n- addresses: [10.244.1.5]\n  nodeName: node1\n  conditions: {{ready: true}}\n"
    )
}

fn allocated(state: &Path, file: &str) -> Option<IpAddr> {
    let text = std::fs::read_to_string(state.join(file)).ok()?;
    let doc = serde_yaml::Deserializer::from_str(&text).next()?;
    let svc = serde_yaml::Value::deserialize(doc).ok()?;
    svc["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()?
        .parse()
        .ok()
}

fn start_speaker(lab: &Lab, state: &Path, bin: &Path, node: &str, run: usize) -> Process {
    let netns = lab.netns(node).unwrap();
    let log = std::fs::File::create(lab.dir().join(format!("{node}-speaker-{run}.log"))).unwrap();
    let mut command = netns.command(bin);
    command
        .args(["--node-name", node, "--state-dir"])
        .arg(state)
        .args(["--restart-marker", ""])
        .args(["--drain-seconds", "0", "--log-format", "json"])
        .args([
            "--layer2-heartbeat-ms",
            "50",
            "--layer2-detect-multiplier",
            "3",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    Process::spawn(format!("berth-speaker on {node}"), command).unwrap()
}

/// Address → (owner, whether the node asked is it).
type OwnerView = BTreeMap<IpAddr, (String, bool)>;

/// One node's layer-2 view (`berthctl -o json layer2`): address → (owner, here); the owner
/// is empty when the node sees nobody live for it.
fn owners_seen_by(lab: &Lab, berthctl: &Path, node: &str) -> Option<OwnerView> {
    let out = lab
        .netns(node)
        .ok()?
        .output(berthctl.to_str()?, &["-o", "json", "layer2"])
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    let mut owners = BTreeMap::new();
    for a in v["addresses"].as_array()? {
        let ip: IpAddr = a["address"].as_str()?.parse().ok()?;
        // `null` while this node sees no live candidate for it.
        let owner = a["owner"].as_str().unwrap_or_default().to_string();
        owners.insert(ip, (owner, a["here"].as_bool()?));
    }
    Some(owners)
}

/// Whether `node` counts every one of `alive` as live (a speaker just started warms up).
fn hears_all(lab: &Lab, berthctl: &Path, node: &str, alive: &[&str]) -> Option<bool> {
    let out = lab
        .netns(node)
        .ok()?
        .output(berthctl.to_str()?, &["-o", "json", "layer2"])
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    let live: BTreeSet<&str> = v["live"]
        .as_array()?
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    Some(alive.iter().all(|n| live.contains(n)))
}

/// The owners of `vips` once the speakers on `alive` all count each other live and agree
/// on them, each address claimed (`here`) by exactly its owner; `None` while they do not.
fn agreed_owners(
    lab: &Lab,
    berthctl: &Path,
    alive: &[&str],
    vips: &BTreeSet<IpAddr>,
) -> Option<BTreeMap<IpAddr, String>> {
    for node in alive {
        if !hears_all(lab, berthctl, node, alive)? {
            return None;
        }
    }
    let views: Vec<(&str, OwnerView)> = alive
        .iter()
        .map(|n| Some((*n, owners_seen_by(lab, berthctl, n)?)))
        .collect::<Option<_>>()?;
    let mut agreed = BTreeMap::new();
    for vip in vips {
        let mut owner = None;
        for (node, view) in &views {
            let (o, here) = view.get(vip)?;
            if owner.get_or_insert(o.clone()) != o || *here != (o == node) {
                return None;
            }
        }
        let owner = owner?;
        if !alive.contains(&owner.as_str()) {
            return None;
        }
        agreed.insert(*vip, owner);
    }
    Some(agreed)
}

/// `node`'s eth0 MAC, as `ip -j link` prints it.
fn mac_of(lab: &Lab, node: &str) -> String {
    let out = lab
        .netns(node)
        .unwrap()
        .output("ip", &["-j", "link", "show", "eth0"])
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["address"].as_str().unwrap().to_string()
}

/// The MAC the client's neighbour table holds for `vip`, if any.
fn client_neighbour(lab: &Lab, vip: IpAddr) -> Option<String> {
    let out = lab
        .netns("client")
        .ok()?
        .output(
            "ip",
            &["-j", "neigh", "show", "to", &vip.to_string(), "dev", "eth0"],
        )
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    Some(v.get(0)?["lladdr"].as_str()?.to_string())
}

/// Waits until the client's probes of `vip` are all answered by `node`, and its neighbour
/// entry holds `node`'s MAC.
fn wait_client_reaches(lab: &Lab, vip: IpAddr, node: &str, macs: &BTreeMap<String, String>) {
    let client = lab.netns("client").unwrap();
    let target = SocketAddr::new(vip, PORT);
    testbed::wait::until(
        &format!("the client reaches {vip} on {node}"),
        CONVERGE,
        || {
            let s = spread(client, Protocol::Udp, target, 5, Duration::from_millis(200))?;
            let only_owner = s.failures == 0 && s.count(node) == 5;
            Ok((only_owner && client_neighbour(lab, vip).as_ref() == macs.get(node)).then_some(()))
        },
    )
    .unwrap();
}

struct Layer2Lab {
    lab: Lab,
    state: PathBuf,
    speaker: PathBuf,
    berthctl: PathBuf,
    vips: BTreeSet<IpAddr>,
    macs: BTreeMap<String, String>,
    speakers: BTreeMap<String, Process>,
    _controller: Process,
    _responders: Vec<Responder>,
}

impl Layer2Lab {
    fn up() -> Layer2Lab {
        let speaker = workspace_bin("berth-speaker");
        let berthctl = workspace_bin("berthctl");
        let controller_bin = workspace_bin("berth-controller");
        let mut lab = Lab::new("layer2").unwrap();
        lab.add_bridge("sw").unwrap();
        for (i, node) in NODES.iter().enumerate() {
            let ns = lab.add_namespace(node).unwrap();
            // What kube-proxy's IPVS mode with strictARP sets: the kernel answers ARP only
            // for addresses of the interface asked on, and sources from it.
            ns.sysctl("net/ipv4/conf/all/arp_ignore", "1").unwrap();
            ns.sysctl("net/ipv4/conf/all/arp_announce", "2").unwrap();
            lab.attach("sw", (node, "eth0")).unwrap();
            let n = i + 1;
            lab.add_address(node, "eth0", format!("10.9.0.{n}/24").parse().unwrap())
                .unwrap();
            lab.add_address(node, "eth0", format!("fd09::{n}/64").parse().unwrap())
                .unwrap();
        }
        lab.add_namespace("client").unwrap();
        lab.attach("sw", ("client", "eth0")).unwrap();
        lab.add_address("client", "eth0", "10.9.0.100/24".parse().unwrap())
            .unwrap();
        lab.add_address("client", "eth0", "fd09::100/64".parse().unwrap())
            .unwrap();
        let macs = NODES
            .iter()
            .map(|n| (n.to_string(), mac_of(&lab, n)))
            .collect();

        let state = lab.dir().join("state");
        std::fs::create_dir_all(&state).unwrap();
        write(&state, "cluster.yaml", &cluster());
        let files: Vec<(String, &str)> = ["a", "b", "c"]
            .iter()
            .map(|s| (format!("svc-{s}4"), "l2v4"))
            .chain(
                ["a", "b", "c"]
                    .iter()
                    .map(|s| (format!("svc-{s}6"), "l2v6")),
            )
            .collect();
        for (name, pool) in &files {
            write(&state, &format!("{name}.yaml"), &service(name, pool));
        }
        let log = std::fs::File::create(lab.dir().join("controller.log")).unwrap();
        let mut command = std::process::Command::new(&controller_bin);
        command
            .arg("--state-dir")
            .arg(&state)
            .args(["--metrics-addr", "", "--log-format", "json"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let controller = Process::spawn("berth-controller", command).unwrap();
        let vips: BTreeSet<IpAddr> = files
            .iter()
            .map(|(name, _)| {
                testbed::wait::until(&format!("an address for {name}"), CONVERGE, || {
                    Ok(allocated(&state, &format!("{name}.yaml")))
                })
                .unwrap()
            })
            .collect();
        assert_eq!(vips.len(), 6, "six distinct addresses: {vips:?}");
        let speakers = NODES
            .iter()
            .map(|n| (n.to_string(), start_speaker(&lab, &state, &speaker, n, 0)))
            .collect();
        // Every node accepts the VIPs' traffic and answers with its name.
        let targets: Vec<SocketAddr> = vips.iter().map(|v| SocketAddr::new(*v, PORT)).collect();
        let responders = NODES
            .iter()
            .map(|n| {
                for vip in &vips {
                    let host =
                        ipnetwork::IpNetwork::new(*vip, if vip.is_ipv4() { 32 } else { 128 });
                    lab.add_address(n, "lo", host.unwrap()).unwrap();
                }
                Responder::start(lab.netns(n).unwrap(), n, &targets).unwrap()
            })
            .collect();
        Layer2Lab {
            lab,
            state,
            speaker,
            berthctl,
            vips,
            macs,
            speakers,
            _controller: controller,
            _responders: responders,
        }
    }

    fn owners(&self, alive: &[&str]) -> BTreeMap<IpAddr, String> {
        testbed::wait::until(
            "the speakers agree on one owner per address",
            CONVERGE,
            || Ok(agreed_owners(&self.lab, &self.berthctl, alive, &self.vips)),
        )
        .unwrap()
    }

    /// Waits until the owners seen by `alive` move every address of `victim` to another
    /// node, and the client reaches each address on its new owner.
    fn failover(
        &self,
        victim: &str,
        alive: &[&str],
        before: &BTreeMap<IpAddr, String>,
    ) -> BTreeMap<IpAddr, String> {
        let after = testbed::wait::until(&format!("{victim}'s addresses move"), CONVERGE, || {
            Ok(agreed_owners(&self.lab, &self.berthctl, alive, &self.vips)
                .filter(|o| o.values().all(|n| n != victim)))
        })
        .unwrap();
        let moved: Vec<IpAddr> = before
            .iter()
            .filter(|(_, o)| o.as_str() == victim)
            .map(|(v, _)| *v)
            .collect();
        assert!(!moved.is_empty(), "{victim} owned nothing: {before:?}");
        for vip in &moved {
            wait_client_reaches(&self.lab, *vip, &after[vip], &self.macs);
        }
        after
    }
}

fn spread_of(owners: &BTreeMap<IpAddr, String>, nodes: &[&str]) -> (usize, usize) {
    let loads: Vec<usize> = nodes
        .iter()
        .map(|n| owners.values().filter(|o| o == n).count())
        .collect();
    (*loads.iter().min().unwrap(), *loads.iter().max().unwrap())
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn one_owner_per_address_and_the_client_follows_faults() {
    let mut l2 = Layer2Lab::up();

    // Every address has exactly one owner, the same on every node; two per node.
    let owners = l2.owners(&NODES);
    assert_eq!(spread_of(&owners, &NODES), (2, 2), "owners: {owners:?}");
    for (vip, owner) in &owners {
        wait_client_reaches(&l2.lab, *vip, owner, &l2.macs);
    }

    // SIGKILL the speaker owning the first IPv4 address: its addresses move.
    let first_v4 = *l2.vips.iter().find(|v| v.is_ipv4()).unwrap();
    let victim = owners[&first_v4].clone();
    let alive: Vec<&str> = NODES.iter().copied().filter(|n| *n != victim).collect();
    l2.speakers.get_mut(&victim).unwrap().kill();
    let after_kill = l2.failover(&victim, &alive, &owners);
    assert_eq!(
        spread_of(&after_kill, &alive),
        (3, 3),
        "owners: {after_kill:?}"
    );

    // The speaker comes back: the addresses spread over three nodes again.
    let restarted = start_speaker(&l2.lab, &l2.state, &l2.speaker, &victim, 1);
    l2.speakers.insert(victim.clone(), restarted);
    let owners = l2.owners(&NODES);
    assert_eq!(spread_of(&owners, &NODES), (2, 2), "owners: {owners:?}");
    for (vip, owner) in &owners {
        wait_client_reaches(&l2.lab, *vip, owner, &l2.macs);
    }

    // The link of the node owning the first IPv6 address goes down: it steps down, the
    // others stop hearing it, its addresses move.
    let first_v6 = *l2.vips.iter().find(|v| v.is_ipv6()).unwrap();
    let victim = owners[&first_v6].clone();
    let alive: Vec<&str> = NODES.iter().copied().filter(|n| *n != victim).collect();
    let victim_ns = l2.lab.netns(&victim).unwrap();
    victim_ns
        .output("ip", &["link", "set", "eth0", "down"])
        .unwrap();
    l2.failover(&victim, &alive, &owners);
    let seen_by_victim = owners_seen_by(&l2.lab, &l2.berthctl, &victim).unwrap();
    assert!(
        seen_by_victim.values().all(|(_, here)| !here),
        "{victim}, its link down, still claims an address: {seen_by_victim:?}"
    );
}

/// Drops the layer-2 heartbeats (UDP 7474) to and from `node`: it is cut off from the other
/// candidates while its link, and the client, stay up.
fn partition(lab: &Lab, node: &str) {
    let ns = lab.netns(node).unwrap();
    for tool in ["iptables", "ip6tables"] {
        for chain in [["INPUT", "--dport"], ["OUTPUT", "--dport"]] {
            ns.output(
                tool,
                &["-A", chain[0], "-p", "udp", chain[1], "7474", "-j", "DROP"],
            )
            .unwrap();
        }
    }
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn a_partitioned_candidate_stops_answering_and_a_stopped_owner_hands_over_without_loss() {
    let mut l2 = Layer2Lab::up();
    let owners = l2.owners(&NODES);

    // A planned stop (SIGTERM): the owner steps down, its standby takes over while it still
    // answers, and the client's probes, sent all along, are all answered.
    let first_v4 = *l2.vips.iter().find(|v| v.is_ipv4()).unwrap();
    let stopped = owners[&first_v4].clone();
    let client = l2.lab.netns("client").unwrap().clone();
    let target = SocketAddr::new(first_v4, PORT);
    let probing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let still = probing.clone();
    let prober = std::thread::spawn(move || {
        let mut failures = 0usize;
        let mut answered_by = BTreeSet::new();
        while still.load(std::sync::atomic::Ordering::Relaxed) {
            match spread(
                &client,
                Protocol::Udp,
                target,
                1,
                Duration::from_millis(500),
            ) {
                Ok(s) if s.failures == 0 => answered_by.extend(s.answers.into_keys()),
                _ => failures += 1,
            }
        }
        (failures, answered_by)
    });
    l2.speakers
        .get_mut(&stopped)
        .unwrap()
        .stop(Duration::from_secs(10));
    let alive: Vec<&str> = NODES.iter().copied().filter(|n| *n != stopped).collect();
    let after = l2.failover(&stopped, &alive, &owners);
    probing.store(false, std::sync::atomic::Ordering::Relaxed);
    let (failures, answered_by) = prober.join().unwrap();
    assert_eq!(failures, 0, "probes lost during a planned stop");
    assert!(
        answered_by.contains(&after[&first_v4]),
        "the client never reached the new owner: {answered_by:?}"
    );
    let restarted = start_speaker(&l2.lab, &l2.state, &l2.speaker, &stopped, 1);
    l2.speakers.insert(stopped, restarted);
    let owners = l2.owners(&NODES);

    // A partition: the owner of the first IPv6 address hears no other candidate (and they
    // not it). It stops answering, the two others take its addresses: never two owners.
    let first_v6 = *l2.vips.iter().find(|v| v.is_ipv6()).unwrap();
    let cut = owners[&first_v6].clone();
    partition(&l2.lab, &cut);
    let alive: Vec<&str> = NODES.iter().copied().filter(|n| *n != cut).collect();
    l2.failover(&cut, &alive, &owners);
    let seen_by_cut = testbed::wait::until(&format!("{cut} stops answering"), CONVERGE, || {
        Ok(owners_seen_by(&l2.lab, &l2.berthctl, &cut)
            .filter(|v| v.values().all(|(_, here)| !here)))
    })
    .unwrap();
    assert_eq!(seen_by_cut.len(), l2.vips.len());
}

/// `mac` (`aa:bb:…`) as bytes.
fn mac_bytes(mac: &str) -> [u8; 6] {
    let v: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

/// The client's probing of one VIP during planned moves: a UDP datagram and an ARP request
/// or Neighbor Solicitation every millisecond, each on its own thread in the client's
/// namespace.
struct Probing {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    udp: std::thread::JoinHandle<(u64, u64)>,
    neighbor: std::thread::JoinHandle<std::io::Result<testbed::traffic::neighbor::NeighborProbes>>,
}

impl Probing {
    fn start(lab: &Lab, vip: IpAddr) -> Probing {
        use std::sync::atomic::Ordering;
        let client = lab.netns("client").unwrap();
        let mac = mac_bytes(&mac_of(lab, "client"));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s1, s2) = (stop.clone(), stop.clone());
        let udp = client
            .spawn_thread(move || {
                let local: SocketAddr = if vip.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = std::net::UdpSocket::bind(local).unwrap();
                socket.set_nonblocking(true).unwrap();
                let (mut sent, mut answered) = (0u64, 0u64);
                let mut buf = [0u8; 64];
                let drain = |answered: &mut u64, buf: &mut [u8]| {
                    while socket.recv_from(buf).is_ok() {
                        *answered += 1;
                    }
                };
                while !s1.load(Ordering::Relaxed) {
                    if socket.send_to(b"?", SocketAddr::new(vip, PORT)).is_ok() {
                        sent += 1;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                    drain(&mut answered, &mut buf);
                }
                std::thread::sleep(Duration::from_millis(200));
                drain(&mut answered, &mut buf);
                (sent, answered)
            })
            .unwrap();
        let neighbor = client
            .spawn_thread(move || {
                testbed::traffic::neighbor::probe("eth0", mac, vip, Duration::from_millis(1), &s2)
            })
            .unwrap();
        Probing {
            stop,
            udp,
            neighbor,
        }
    }

    /// Stops; returns (UDP probes sent, answered) and what the neighbour probe saw.
    fn finish(self) -> ((u64, u64), testbed::traffic::neighbor::NeighborProbes) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let udp = self.udp.join().unwrap();
        let neighbor = self.neighbor.join().unwrap().unwrap();
        (udp, neighbor)
    }
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn planned_moves_lose_nothing() {
    let mut l2 = Layer2Lab::up();
    let owners = l2.owners(&NODES);
    let v4 = *l2.vips.iter().find(|v| v.is_ipv4()).unwrap();
    let v6 = *l2.vips.iter().find(|v| v.is_ipv6()).unwrap();
    for (vip, owner) in &owners {
        wait_client_reaches(&l2.lab, *vip, owner, &l2.macs);
    }
    let probes = [Probing::start(&l2.lab, v4), Probing::start(&l2.lab, v6)];
    let mut moved = 0usize;
    let mut owners = owners;

    // Drain, then the node back: each node in turn is cordoned (its addresses move to the
    // others) and uncordoned (its share moves back to it).
    for node in NODES {
        write(&l2.state, "cluster.yaml", &cluster_with(&[node]));
        let after = l2.failover(node, &NODES, &owners);
        moved += owners.iter().filter(|(v, o)| after[*v] != **o).count();
        write(&l2.state, "cluster.yaml", &cluster());
        let back = testbed::wait::until(&format!("{node} takes its share back"), CONVERGE, || {
            Ok(agreed_owners(&l2.lab, &l2.berthctl, &NODES, &l2.vips)
                .filter(|o| o.values().any(|n| n == node)))
        })
        .unwrap();
        moved += after.iter().filter(|(v, o)| back[*v] != **o).count();
        owners = back;
    }

    // A rolling restart of every speaker: SIGTERM, start again, wait until it is heard and
    // owns its share again, next.
    for (run, node) in NODES.iter().enumerate() {
        l2.speakers
            .get_mut(*node)
            .unwrap()
            .stop(Duration::from_secs(10));
        let alive: Vec<&str> = NODES.iter().copied().filter(|n| n != node).collect();
        let after = l2.failover(node, &alive, &owners);
        moved += owners.iter().filter(|(v, o)| after[*v] != **o).count();
        let restarted = start_speaker(&l2.lab, &l2.state, &l2.speaker, node, run + 1);
        l2.speakers.insert(node.to_string(), restarted);
        let back = testbed::wait::until(&format!("{node} owns its share again"), CONVERGE, || {
            Ok(agreed_owners(&l2.lab, &l2.berthctl, &NODES, &l2.vips)
                .filter(|o| o.values().any(|n| n == *node)))
        })
        .unwrap();
        moved += after.iter().filter(|(v, o)| back[*v] != **o).count();
        owners = back;
    }
    // The last handover's burst and confirmation are over before the probes stop.
    std::thread::sleep(Duration::from_millis(300));

    assert!(moved >= 12, "the addresses moved only {moved} times");
    for (vip, probing) in [v4, v6].iter().zip(probes) {
        let ((sent, answered), neighbor) = probing.finish();
        let unanswered = neighbor.unanswered(Duration::from_millis(100));
        eprintln!(
            "{vip}: UDP {answered}/{sent} answered; {} neighbour requests, {} unanswered, {} answered by two nodes, answers by MAC {:?}, {} frames dropped by the client's socket",
            neighbor.sent.len(),
            unanswered.len(),
            neighbor.answered_twice(),
            neighbor.by_mac(),
            neighbor.dropped
        );
        let around = |seq: u32| -> Vec<(u32, Vec<[u8; 6]>)> {
            (seq.saturating_sub(3)..seq + 4)
                .map(|s| {
                    let macs = neighbor
                        .answers
                        .get(&s)
                        .map(|a| a.iter().map(|(_, m)| *m).collect());
                    (s, macs.unwrap_or_default())
                })
                .collect()
        };
        assert!(sent > 1000, "{vip}: the UDP probe hardly ran ({sent})");
        assert_eq!(
            answered, sent,
            "{vip}: UDP probes lost during planned moves"
        );
        assert!(
            neighbor.by_mac().len() >= 2,
            "{vip}: never answered by more than one node: {:?}",
            neighbor.by_mac()
        );
        assert!(
            unanswered.is_empty(),
            "{vip}: {} of {} neighbour requests answered by nobody during planned moves: {unanswered:?}; around the first: {:?}",
            unanswered.len(),
            neighbor.sent.len(),
            unanswered.first().map(|s| around(*s))
        );
    }
}

/// Drops every frame on `node`'s link in both directions while its carrier stays up (power
/// loss seen from the switch, no FIN): a `blackhole` qdisc on the node's `eth0` (what it
/// sends) and on its bridge port (what the switch sends it). This kernel has no `sch_netem`
/// and no `act_gact`; `sch_blackhole` needs neither.
fn blackhole(lab: &Lab, node: &str, on: bool) {
    let n = NODES.iter().position(|x| *x == node).unwrap() + 1;
    let verb = if on { "add" } else { "del" };
    for (ns, dev) in [
        (node.to_string(), "eth0".to_string()),
        ("sw".into(), format!("p{n}")),
    ] {
        let mut args = vec!["qdisc", verb, "dev", &dev, "root"];
        if on {
            args.push("blackhole");
        }
        lab.netns(&ns).unwrap().output("tc", &args).unwrap();
    }
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn total_loss_on_the_owners_link_moves_its_addresses() {
    let l2 = Layer2Lab::up();
    let owners = l2.owners(&NODES);
    let first_v4 = *l2.vips.iter().find(|v| v.is_ipv4()).unwrap();
    let victim = owners[&first_v4].clone();
    let alive: Vec<&str> = NODES.iter().copied().filter(|n| *n != victim).collect();
    blackhole(&l2.lab, &victim, true);
    // The carrier stays up: only the heartbeats' silence tells.
    let link = l2
        .lab
        .netns(&victim)
        .unwrap()
        .output("ip", &["-j", "link", "show", "eth0"])
        .unwrap();
    assert!(link.contains("LOWER_UP"), "{victim}'s carrier went: {link}");
    l2.failover(&victim, &alive, &owners);
    // Hearing nobody, the victim stops claiming (bounded split brain).
    testbed::wait::until(&format!("{victim} stops answering"), CONVERGE, || {
        Ok(owners_seen_by(&l2.lab, &l2.berthctl, &victim)
            .filter(|v| v.values().all(|(_, here)| !here)))
    })
    .unwrap();
    // The link heals: the victim is heard again and takes its share back.
    blackhole(&l2.lab, &victim, false);
    let back = l2.owners(&NODES);
    assert_eq!(spread_of(&back, &NODES), (2, 2), "owners: {back:?}");
    for (vip, owner) in &back {
        wait_client_reaches(&l2.lab, *vip, owner, &l2.macs);
    }
}
