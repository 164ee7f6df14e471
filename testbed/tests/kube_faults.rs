//! Faults, with nothing lost (issue 13 item 5), proven in-cluster on the tor-pair lab: tor1
//! (BIRD) and tor2 (FRR), three nodes each peering with both over IPv4 and IPv6, a real
//! control plane (etcd, kube-apiserver, kube-controller-manager) on a management bridge,
//! Berth installed from `deploy/` with two controller replicas (leader election) and one
//! speaker per node. Each fault runs while a watcher polls both routers' kernel FIBs and
//! fails the test if any VIP ever loses any of its three next hops.
//!
//! - the API server and etcd stopped for 60 s: announcements and BGP sessions unchanged,
//!   everything resyncs when they return, and the leading controller SIGKILLed afterwards;
//! - an Eip deleted while Services use it: it stays Terminating (finalizer
//!   `berth.io/pool-in-use`, `docs/reference.md`), addresses and announcements are kept, it
//!   hands out nothing new (not even across a leader change), and it goes once its Services
//!   are gone; then a speaker restarted with `--on-sigterm restart` (graceful restart).
//!
//! Needs root and the control plane (`./test.sh` builds it; `BERTH_CONTROLPLANE_BIN` names
//! it): without them these tests fail, they never skip. Timings are printed, not asserted.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::kube::DaemonChecks;
use common::tor_pair::{self, NODES, TorPair, host, merge};
use common::workspace_bin;
use serde_json::Value;
use testbed::Netns;
use testbed::clab::ClabLab;
use testbed::incluster::{Daemon, SPEAKER_ADMIN};
use testbed::k8s::{Component, ControlPlane};

const NS: &str = "shop";
const TIMEOUT: Duration = Duration::from_secs(45);
/// The controller's Lease duration and renew period (`berth-controller`'s defaults): a
/// killed leader's Lease is taken over at most this long after its last renewal.
const LEASE_DURATION: Duration = Duration::from_secs(15);
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How long the restarted speaker stays down.
const GR_GAP: Duration = Duration::from_secs(3);
const EIPS: &str = "/apis/network.kubesphere.io/v1alpha2/eips";

/// The default BgpConf (graceful restart left at the speakers' default: on, 120 s), one
/// BgpPeer per node, router and family, the default pools `v4` and `v6`, the pool `doomed`
/// that only Services naming it use, and the application's namespace.
fn berth_objects() -> String {
    let mut docs = tor_pair::default_objects();
    docs.extend([
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: doomed}\n\
         spec: {address: 10.0.0.128/28}\n"
            .to_string(),
        format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NS}}}\n"),
    ]);
    docs.extend(tor_pair::bgp_peers());
    docs.join("---\n")
}

/// The lab, its control plane with Berth installed and configured, and Berth's daemons.
struct Cluster {
    /// Dropped first (fields drop in order): no Berth process outlives its API server.
    controllers: Vec<Daemon>,
    speakers: Vec<Daemon>,
    cp: ControlPlane,
    clab: ClabLab,
}

impl Cluster {
    /// Brings it all up; the speakers run with `speaker_extra`.
    fn start(speaker_extra: &[&str]) -> Cluster {
        let TorPair { cp, install, clab } = tor_pair::up(&berth_objects());
        let lab = clab.lab();
        let cp_ns = lab.netns("cp").unwrap();
        let controller_bin = workspace_bin("berth-controller");
        let controllers = (1..=2)
            .map(|r| Daemon::controller(cp_ns, &controller_bin, &install, r, &[]).unwrap())
            .collect();
        let speaker_bin = workspace_bin("berth-speaker");
        let speakers = NODES
            .iter()
            .map(|node| {
                Daemon::speaker(
                    lab.netns(node).unwrap(),
                    &speaker_bin,
                    &install,
                    node,
                    0,
                    speaker_extra,
                )
                .unwrap()
            })
            .collect();
        Cluster {
            controllers,
            speakers,
            cp,
            clab,
        }
    }

    fn get(&self, path: &str) -> Option<Value> {
        match self.cp.get(path) {
            Ok((200, body)) => Some(serde_json::from_str(&body).unwrap()),
            Ok((404, _)) => None,
            Ok((status, body)) => panic!("GET {path}: {status} {body}"),
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    /// Creates a LoadBalancer Service with `extra` merged in and its own EndpointSlices
    /// (IPv4 and IPv6) with a ready endpoint on every node; returns when the API server
    /// has them.
    fn create_service(&self, name: &str, extra: Value) -> Instant {
        let mut svc = serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "berth.io/lb",
                     "externalTrafficPolicy": "Cluster",
                     "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]},
        });
        merge(&mut svc, extra);
        let mut docs = vec![svc.to_string()];
        for (family, address) in [("IPv4", "10.244.{n}.10"), ("IPv6", "fd00:244:{n}::10")] {
            let endpoints: Vec<Value> = (1..=3)
                .map(|n| {
                    serde_json::json!({
                        "addresses": [address.replace("{n}", &n.to_string())],
                        "nodeName": format!("node{n}"),
                        "conditions": {"ready": true},
                    })
                })
                .collect();
            docs.push(
                serde_json::json!({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"namespace": NS, "name": format!("{name}-{}", family.to_lowercase()),
                                 "labels": {"kubernetes.io/service-name": name,
                                            "endpointslice.kubernetes.io/managed-by": "berth-test"}},
                    "addressType": family,
                    "ports": [{"port": 8080, "protocol": "TCP"}],
                    "endpoints": endpoints,
                })
                .to_string(),
            );
        }
        self.cp.apply(&docs.join("\n---\n")).unwrap();
        Instant::now()
    }

    /// A Service taking its address from the pool `pool` (OpenELB's annotations).
    fn create_service_in(&self, name: &str, pool: &str) -> Instant {
        self.create_service(
            name,
            serde_json::json!({"metadata": {"annotations": {
                "lb.kubesphere.io/v1alpha1": "openelb",
                "eip.openelb.kubesphere.io/v1alpha2": pool}},
                "spec": {"loadBalancerClass": null}}),
        )
    }

    fn delete(&self, kind: &str, name: &str) {
        let mut args = vec!["delete", kind, name, "--wait=false"];
        if kind == "service" {
            args.extend(["-n", NS]);
        }
        self.cp.kubectl(&args).unwrap();
    }

    fn ingress(&self, name: &str) -> Vec<IpAddr> {
        self.get(&format!("/api/v1/namespaces/{NS}/services/{name}"))
            .and_then(|s| s["status"]["loadBalancer"]["ingress"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|i| i["ip"].as_str()?.parse().ok())
            .collect()
    }

    /// Waits until the Service has `count` addresses; returns them and when they were seen.
    fn wait_ingress(&self, name: &str, count: usize) -> (Vec<IpAddr>, Instant) {
        testbed::wait::until(&format!("{count} addresses for {name}"), TIMEOUT, || {
            let ips = self.ingress(name);
            Ok((ips.len() == count).then(|| (ips, Instant::now())))
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs(&self.controllers)))
    }

    /// Waits until both routers route `vip` via all three nodes (`true`) or not at all.
    fn wait_routed(&self, vip: IpAddr, routed: bool) -> Instant {
        testbed::wait::until(
            &format!(
                "{vip} {} both routers",
                if routed { "in" } else { "gone from" }
            ),
            TIMEOUT,
            || {
                let ok = ROUTERS.iter().all(|(tor, router)| {
                    let fib = self.clab.lab().netns(router).unwrap().fib().unwrap();
                    if routed {
                        all_hops(*tor, vip, &fib.gateways(host(vip)))
                    } else {
                        fib.route(host(vip)).is_none()
                    }
                });
                Ok(ok.then(Instant::now))
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs(&self.speakers)))
    }

    /// The Lease holder's index in `controllers`.
    fn leader(&self) -> Option<usize> {
        let lease = self
            .get("/apis/coordination.k8s.io/v1/namespaces/berth-system/leases/berth-controller")?;
        let holder = lease["spec"]["holderIdentity"].as_str()?;
        (1..=self.controllers.len())
            .find(|r| holder == format!("replica-{r}"))
            .map(|r| r - 1)
    }

    /// SIGKILLs the leading replica and waits for the other to hold the Lease; returns how
    /// long that took.
    fn kill_leader(&mut self) -> Duration {
        let leader = testbed::wait::until("a leader", TIMEOUT, || Ok(self.leader()))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs(&self.controllers)));
        self.controllers[leader].kill();
        let killed = Instant::now();
        let other = 1 - leader;
        testbed::wait::until(
            &format!("replica-{} to lead", other + 1),
            LEASE_DURATION + RENEW_EVERY + Duration::from_secs(5),
            || Ok((self.leader() == Some(other)).then_some(())),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.controllers[other].log_tail()));
        killed.elapsed()
    }

    /// The Events about the cluster-scoped or `NS` object `name`: `(reason, note)`.
    fn events_for(&self, name: &str) -> Vec<(String, String)> {
        let list = self
            .get(&format!(
                "/apis/events.k8s.io/v1/events?fieldSelector=regarding.name%3D{name}"
            ))
            .unwrap_or(Value::Null);
        common::kube::reasons_and_notes(&list)
    }

    /// A watcher on both routers' FIBs for `vips`, polling every `every`.
    fn watch(&self, vips: &[IpAddr], every: Duration) -> FibWatch {
        let routers = ROUTERS
            .iter()
            .map(|(tor, name)| (*tor, self.clab.lab().netns(name).unwrap().clone()))
            .collect();
        FibWatch::start(routers, vips.to_vec(), every)
    }

    fn logs(&self, daemons: &[Daemon]) -> String {
        daemons
            .iter()
            .map(Daemon::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

const ROUTERS: [(usize, &str); 2] = [(1, "tor1"), (2, "tor2")];

/// Whether `hops` (tor `tor`'s gateways for `vip`) are all three nodes: their link addresses
/// for IPv4; for IPv6, whose next hops may be link-local, three of them.
fn all_hops(tor: usize, vip: IpAddr, hops: &BTreeSet<IpAddr>) -> bool {
    if vip.is_ipv4() {
        let want: BTreeSet<IpAddr> = (1..=3)
            .map(|n| format!("10.{tor}.{n}.2").parse().unwrap())
            .collect();
        *hops == want
    } else {
        hops.len() == 3
    }
}

/// A thread polling the routers' FIBs, recording every moment a VIP lacked a next hop.
struct FibWatch {
    stop: Arc<AtomicBool>,
    polls: Arc<AtomicU64>,
    thread: Option<JoinHandle<Vec<String>>>,
}

impl FibWatch {
    fn start(routers: Vec<(usize, Netns)>, vips: Vec<IpAddr>, every: Duration) -> FibWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicU64::new(0));
        let (flag, count) = (stop.clone(), polls.clone());
        let thread = std::thread::spawn(move || {
            let epoch = Instant::now();
            let mut lost = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                for (tor, netns) in &routers {
                    let fib = netns.fib().unwrap();
                    for vip in &vips {
                        let hops = fib.gateways(host(*vip));
                        if !all_hops(*tor, *vip, &hops) {
                            lost.push(format!(
                                "{:?}: tor{tor} had {vip} via {hops:?}",
                                epoch.elapsed()
                            ));
                        }
                    }
                }
                count.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(every);
            }
            lost
        });
        FibWatch {
            stop,
            polls,
            thread: Some(thread),
        }
    }

    /// Stops it; fails with every moment a next hop was missing, else returns the polls.
    fn finish(mut self, during: &str) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let lost = self.thread.take().unwrap().join().unwrap();
        assert!(
            lost.is_empty(),
            "{during}: a VIP lost a next hop ({} of {} polls):\n{}",
            lost.len(),
            self.polls.load(Ordering::Relaxed),
            lost[..lost.len().min(20)].join("\n")
        );
        self.polls.load(Ordering::Relaxed)
    }
}

impl Drop for FibWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Each session's (neighbour, state, flaps, OPENs received) from the speaker's admin API.
fn sessions(speaker: &Daemon) -> Option<Vec<(String, String, u64, u64)>> {
    let body = speaker.http_get(SPEAKER_ADMIN, "/api/v1/peers")?;
    let peers: Value = serde_json::from_str(&body).unwrap();
    let mut all: Vec<_> = peers
        .as_array()?
        .iter()
        .map(|p| {
            (
                p["address"].as_str().unwrap_or("").to_string(),
                p["state"].as_str().unwrap_or("").to_string(),
                p["flaps"].as_u64().unwrap_or(u64::MAX),
                p["received"]["open"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    all.sort();
    Some(all)
}

/// Waits until the speaker has four Established sessions (both routers, both families).
fn wait_established(speaker: &Daemon) -> Vec<(String, String, u64, u64)> {
    testbed::wait::until("four Established sessions", TIMEOUT, || {
        Ok(sessions(speaker)
            .filter(|s| s.len() == 4 && s.iter().all(|(_, state, _, _)| state == "Established")))
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", sessions(speaker), speaker.log_tail()))
}

/// The API server and etcd stopped for 60 s with three nodes: both routers keep every VIP
/// with all three next hops the whole time and no BGP session resets; when they return the
/// controllers and speakers resync and a new Service gets its address and reaches the
/// routers. Then the leading controller is SIGKILLed: the other replica takes the Lease
/// within the lease duration (plus one renew period), no address moves, no next hop goes,
/// and the new leader serves a new Service.
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn an_api_server_and_etcd_outage_then_a_killed_leader_lose_nothing() {
    let mut cluster = Cluster::start(&[]);
    cluster.create_service("web", serde_json::json!({}));
    cluster.create_service(
        "dual",
        serde_json::json!({"spec": {"ipFamilyPolicy": "RequireDualStack",
                                    "ipFamilies": ["IPv4", "IPv6"]}}),
    );
    let (web, _) = cluster.wait_ingress("web", 1);
    let (dual, _) = cluster.wait_ingress("dual", 2);
    let vips: Vec<IpAddr> = web.iter().chain(&dual).copied().collect();
    for vip in &vips {
        cluster.wait_routed(*vip, true);
    }
    let before: Vec<_> = cluster.speakers.iter().map(wait_established).collect();

    let watch = cluster.watch(&vips, Duration::from_millis(200));
    cluster.cp.stop_apiserver();
    cluster.cp.stop_component(Component::Etcd);
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(60) {
        for s in &mut cluster.speakers {
            assert!(s.alive(), "a speaker died in the outage\n{}", s.log_tail());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let outage = down.elapsed();
    let restarting = Instant::now();
    cluster.cp.start_component(Component::Etcd).unwrap();
    cluster.cp.start_apiserver().unwrap();
    let back = Instant::now();
    println!(
        "API server and etcd down for {outage:?}; ready again {:?} after their restart began",
        back - restarting
    );
    let created = cluster.create_service("after", serde_json::json!({}));
    let (after, seen) = cluster.wait_ingress("after", 1);
    let routed = cluster.wait_routed(after[0], true);
    println!(
        "after the outage: Service 'after' got {} {:?} after create ({:?} after the API \
         server was ready), in both routers' FIBs via 3 nodes {:?} after create",
        after[0],
        seen - created,
        seen - back,
        routed - created
    );
    let polls = watch.finish("the API server and etcd outage");
    println!("  every VIP kept all 3 next hops on both routers through {polls} FIB polls (200 ms)");
    let now: Vec<_> = cluster.speakers.iter().map(wait_established).collect();
    assert_eq!(now, before, "a BGP session was reset by the outage");
    for c in &mut cluster.controllers {
        assert!(c.alive(), "a controller exited\n{}", c.log_tail());
    }
    assert_eq!(cluster.ingress("web"), web, "the outage moved an address");
    assert_eq!(cluster.ingress("dual"), dual, "the outage moved an address");
    // The speakers resynced too: each wrote its session back into the BgpPeer status.
    for n in 1..=3 {
        let name = format!("tor1-v4-node{n}");
        testbed::wait::until(&format!("{name} status"), TIMEOUT, || {
            let peer = cluster
                .get(&format!(
                    "/apis/network.kubesphere.io/v1alpha2/bgppeers/{name}"
                ))
                .unwrap();
            Ok(
                (peer["status"]["nodesPeerStatus"][format!("node{n}")]["peerState"]["sessionState"]
                    == "ESTABLISHED")
                    .then_some(()),
            )
        })
        .unwrap();
    }

    // SIGKILL the leader: the other takes over; nothing moves, nothing is withdrawn.
    let vips: Vec<IpAddr> = vips.into_iter().chain(after.iter().copied()).collect();
    let watch = cluster.watch(&vips, Duration::from_millis(200));
    let took = cluster.kill_leader();
    println!(
        "leader SIGKILLed: the other replica holds the Lease {took:?} later (lease {LEASE_DURATION:?})"
    );
    let created = cluster.create_service("later", serde_json::json!({}));
    let (later, seen) = cluster.wait_ingress("later", 1);
    let routed = cluster.wait_routed(later[0], true);
    println!(
        "  new Service served by the new leader: {} {:?} after create, routed {:?} after create",
        later[0],
        seen - created,
        routed - created
    );
    let polls = watch.finish("the leader change");
    println!("  every VIP kept all 3 next hops through {polls} FIB polls");
    assert_eq!(
        cluster.ingress("web"),
        web,
        "the take-over moved an address"
    );
    assert_eq!(
        cluster.ingress("dual"),
        dual,
        "the take-over moved an address"
    );
    assert_eq!(
        cluster.ingress("after"),
        after,
        "the take-over moved an address"
    );
    assert!(!vips.contains(&later[0]), "{later:?} handed out twice");
    println!(
        "403 answers after the API server restart: controllers {:?}, speakers {:?}",
        cluster
            .controllers
            .iter()
            .map(|d| d.forbidden().len())
            .collect::<Vec<_>>(),
        cluster
            .speakers
            .iter()
            .map(|d| d.forbidden().len())
            .collect::<Vec<_>>()
    );
}

/// An Eip deleted while two Services use it behaves as `docs/reference.md` says of the
/// `berth.io/pool-in-use` finalizer: it stays (Terminating) while any Service holds one of
/// its addresses, the addresses stay and stay announced, it hands out nothing new (across a
/// leader change too), and it goes once the last Service is deleted. Then node2's speaker is
/// restarted (`--on-sigterm restart`, graceful restart): both routers keep its next hops
/// for every VIP throughout, polled every 100 ms.
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn a_deleted_eip_in_use_and_a_restarted_speaker_lose_nothing() {
    let mut cluster = Cluster::start(&["--on-sigterm", "restart"]);
    cluster.create_service("web", serde_json::json!({}));
    cluster.create_service_in("a", "doomed");
    cluster.create_service_in("b", "doomed");
    let (web, _) = cluster.wait_ingress("web", 1);
    let (a, _) = cluster.wait_ingress("a", 1);
    let (b, _) = cluster.wait_ingress("b", 1);
    let (web, a, b) = (web[0], a[0], b[0]);
    for vip in [web, a, b] {
        cluster.wait_routed(vip, true);
    }
    testbed::wait::until("the doomed Eip's finalizer", TIMEOUT, || {
        let eip = cluster.get(&format!("{EIPS}/doomed")).unwrap();
        Ok((eip["metadata"]["finalizers"][0] == "berth.io/pool-in-use").then_some(()))
    })
    .unwrap();

    let watch = cluster.watch(&[web, a, b], Duration::from_millis(200));
    cluster.delete("eip", "doomed");
    let deleted = Instant::now();
    testbed::wait::until("a PoolInUse Event on the Eip", TIMEOUT, || {
        Ok(cluster
            .events_for("doomed")
            .into_iter()
            .find(|(reason, _)| reason == "PoolInUse"))
    })
    .map(|(_, note)| println!("deleted Eip in use: Event PoolInUse {note:?}"))
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs(&cluster.controllers)));
    // A Service naming the Terminating pool gets nothing from it.
    cluster.create_service_in("c", "doomed");
    std::thread::sleep(Duration::from_secs(5));
    let eip = cluster
        .get(&format!("{EIPS}/doomed"))
        .expect("the Eip went while in use");
    assert!(
        eip["metadata"]["deletionTimestamp"].is_string(),
        "not Terminating: {eip}"
    );
    assert_eq!(
        eip["metadata"]["finalizers"],
        serde_json::json!(["berth.io/pool-in-use"]),
        "{eip}"
    );
    assert_eq!(cluster.ingress("a"), vec![a], "a lost its address");
    assert_eq!(cluster.ingress("b"), vec![b], "b lost its address");
    assert_eq!(
        cluster.ingress("c"),
        Vec::<IpAddr>::new(),
        "a Terminating pool handed out an address"
    );
    println!(
        "  {:?} after the delete: Eip Terminating with its finalizer, a and b keep {a} and {b}, \
         c has none; events on c: {:?}",
        deleted.elapsed(),
        cluster.events_for("c")
    );

    // Across a leader change (a fresh rebuild, with the Terminating Eip in it) too.
    let took = cluster.kill_leader();
    let taken = Instant::now();
    let leader = cluster.leader().unwrap();
    cluster.controllers[leader]
        .wait_log("rebuilt allocations", TIMEOUT)
        .unwrap();
    // Time for the new leader to reconcile every Service and Eip.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(cluster.ingress("a"), vec![a], "the leader change moved a");
    assert_eq!(cluster.ingress("b"), vec![b], "the leader change moved b");
    assert_eq!(
        cluster.ingress("c"),
        Vec::<IpAddr>::new(),
        "after a leader change, the Terminating pool handed out an address"
    );
    println!(
        "  leader SIGKILLed with the Eip Terminating: taken over {took:?} later; {:?} on, \
         nothing moved and c still has no address",
        taken.elapsed()
    );

    // The watch ends here: deleting a next withdraws a's VIP on purpose.
    let polls = watch.finish("deleting an Eip in use");
    println!(
        "  every VIP kept all 3 next hops through {polls} FIB polls while the Eip was Terminating"
    );
    // The Eip goes with its last Service, not before.
    cluster.delete("service", "c");
    cluster.delete("service", "a");
    testbed::wait::until("Service a to be gone", TIMEOUT, || {
        Ok(cluster
            .get(&format!("/api/v1/namespaces/{NS}/services/a"))
            .is_none()
            .then_some(()))
    })
    .unwrap();
    cluster.wait_routed(a, false);
    assert!(
        cluster.get(&format!("{EIPS}/doomed")).is_some(),
        "the Eip went while b still holds {b}"
    );
    assert_eq!(cluster.ingress("b"), vec![b], "b lost its address");
    cluster.wait_routed(b, true);
    let last = Instant::now();
    cluster.delete("service", "b");
    testbed::wait::until("the Eip to go", TIMEOUT, || {
        Ok(cluster
            .get(&format!("{EIPS}/doomed"))
            .is_none()
            .then(Instant::now))
    })
    .map(|gone| {
        println!(
            "  last Service deleted: the Eip was gone {:?} later",
            gone - last
        )
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs(&cluster.controllers)));
    cluster.wait_routed(b, false);

    // Restart node2's speaker: graceful restart keeps its next hops on both routers.
    let vips = [web];
    let before = wait_established(&cluster.speakers[1]);
    let watch = cluster.watch(&vips, Duration::from_millis(100));
    let stopped = Instant::now();
    let took = cluster.speakers[1]
        .sigterm(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    // Down long enough for many polls: the routers hold its routes as stale meanwhile.
    std::thread::sleep(GR_GAP);
    cluster.speakers[1].start_again().unwrap();
    let after = wait_established(&cluster.speakers[1]);
    let up = Instant::now();
    // Past the routers' end-of-RIB handling: stale routes are swept then.
    std::thread::sleep(Duration::from_secs(5));
    let polls = watch.finish("node2's speaker restart");
    println!(
        "node2's speaker restarted: exited {took:?} after SIGTERM, started again {GR_GAP:?} \
         later, 4 sessions Established again {:?} after SIGTERM; both routers kept its next \
         hops through {polls} FIB polls (100 ms)",
        up - stopped
    );
    assert_eq!(before.len(), after.len());
    assert!(
        cluster.speakers[1]
            .log()
            .contains("restart marker left for the next start"),
        "{}",
        cluster.speakers[1].log_tail()
    );
    for d in cluster.controllers.iter().chain(&cluster.speakers) {
        d.assert_no_forbidden();
    }
}
