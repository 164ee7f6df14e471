//! The tor-pair lab in-cluster (issue 13 items 3 and 4): tor1 (BIRD) and tor2 (FRR), three
//! nodes each peering with both over IPv4 and IPv6, a client behind the routers, and a real
//! control plane (etcd, kube-apiserver, kube-controller-manager) in a namespace every node
//! reaches over a management bridge. Berth is installed from `deploy/` and runs as two
//! controller replicas with leader election and one speaker per node, each with its
//! ServiceAccount token. Pods are created with `nodeName` and marked Ready, so the real
//! EndpointSlice controller writes the slices the speakers read.
//!
//! Needs root and the control plane (`./test.sh` builds it); it fails, never skips,
//! without them. Timings are printed, not asserted.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::kube::DaemonChecks;
use common::tor_pair::{self, NODES, TorPair, merge};
use common::workspace_bin;
use ipnetwork::IpNetwork;
use serde_json::Value;
use testbed::clab::ClabLab;
use testbed::incluster::Daemon;
use testbed::k8s::ControlPlane;
use testbed::router::Router;
use testbed::traffic::{Protocol, Responder, spread};

const APP: &str = "web";
const TIMEOUT: Duration = Duration::from_secs(45);

/// The cluster's Berth objects, as a user would write them: the `default` BgpConf, one
/// BgpPeer per node, router and family (each node has its own links), an IPv4 and an IPv6
/// pool, and the application's namespace.
fn berth_objects() -> String {
    let mut docs = tor_pair::default_objects();
    docs.push(format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {APP}}}\n"
    ));
    docs.extend(tor_pair::bgp_peers());
    docs.join("---\n")
}

/// A Pod of `app` on `node`, created by the API (no kubelet: `nodeName` set by hand), then
/// marked Running and Ready with `ip` as a kubelet would.
fn add_pod(cp: &ControlPlane, name: &str, app: &str, node: &str, ip: &str) {
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": APP, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "web:1",
                 "ports": [{"containerPort": 80}]}]},
    });
    cp.apply(&pod.to_string()).unwrap();
    set_ready(cp, name, ip, true);
}

/// Patches a Pod's status Ready (or not), as its kubelet would.
fn set_ready(cp: &ControlPlane, name: &str, ip: &str, ready: bool) {
    let ready = if ready { "True" } else { "False" };
    let status = serde_json::json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.99.0.2",
        "conditions": [{"type": "Ready", "status": ready}, {"type": "ContainersReady", "status": ready}],
    }});
    cp.kubectl(&[
        "patch",
        "pod",
        "-n",
        APP,
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ])
    .unwrap();
}

/// A Service of type LoadBalancer: Berth's class, selector `app`, port 80, and `extra`
/// merged into it (annotations, families, policy).
fn add_service(cp: &ControlPlane, name: &str, app: &str, extra: Value) -> Instant {
    let mut svc = serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": APP},
        "spec": {"type": "LoadBalancer", "loadBalancerClass": "berth.io/lb",
                 "selector": {"app": app}, "ports": [{"port": 80, "protocol": "TCP"}]},
    });
    merge(&mut svc, extra);
    cp.apply(&svc.to_string()).unwrap();
    Instant::now()
}

fn get(cp: &ControlPlane, path: &str) -> Option<Value> {
    match cp.get(path).unwrap() {
        (200, body) => Some(serde_json::from_str(&body).unwrap()),
        (404, _) => None,
        (status, body) => panic!("GET {path}: {status} {body}"),
    }
}

fn ingress(cp: &ControlPlane, name: &str) -> Vec<IpAddr> {
    get(cp, &format!("/api/v1/namespaces/{APP}/services/{name}"))
        .and_then(|s| s["status"]["loadBalancer"]["ingress"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i["ip"].as_str()?.parse().ok())
        .collect()
}

/// Waits until the Service has `count` addresses.
fn wait_ingress(cp: &ControlPlane, name: &str, count: usize, logs: &[&Daemon]) -> Vec<IpAddr> {
    testbed::wait::until(&format!("{count} addresses for {name}"), TIMEOUT, || {
        let ips = ingress(cp, name);
        Ok((ips.len() == count).then_some(ips))
    })
    .unwrap_or_else(|e| {
        let tails: Vec<String> = logs.iter().map(|d| d.log_tail()).collect();
        panic!("{e}\n{}", tails.join("\n"))
    })
}

/// The next hops (gateways) a router's kernel FIB has for `vip`.
fn next_hops(router: &dyn Router, vip: IpAddr) -> BTreeSet<IpAddr> {
    let prefix = IpNetwork::new(vip, if vip.is_ipv4() { 32 } else { 128 }).unwrap();
    router.fib().unwrap().gateways(prefix)
}

/// Node `n`'s address on its link to `tor` (1 or 2), in `vip`'s family.
fn node_hop(tor: usize, n: usize, vip: IpAddr) -> IpAddr {
    let text = if vip.is_ipv4() {
        format!("10.{tor}.{n}.2")
    } else {
        format!("fd00:{tor}:{n}::2")
    };
    text.parse().unwrap()
}

/// Waits until both routers route `vip` via exactly the nodes `nodes` (1-based); returns
/// when that was first seen.
fn wait_hops(clab: &ClabLab, vip: IpAddr, nodes: &[usize], speakers: &[Daemon]) -> Instant {
    for (tor, router) in [(1, "tor1"), (2, "tor2")] {
        let router = clab.router(router).unwrap();
        let want: BTreeSet<IpAddr> = nodes.iter().map(|n| node_hop(tor, *n, vip)).collect();
        testbed::wait::until(
            &format!("tor{tor} routing {vip} via nodes {nodes:?}"),
            TIMEOUT,
            || {
                let hops = next_hops(router, vip);
                // IPv6 next hops may be link-local: compare by count then.
                let matched = if vip.is_ipv4() {
                    hops == want
                } else {
                    hops.len() == want.len()
                };
                Ok(matched.then_some(()))
            },
        )
        .unwrap_or_else(|e| {
            let tails: Vec<String> = speakers.iter().map(|d| d.log_tail()).collect();
            panic!("{e}: {:?}\n{}", next_hops(router, vip), tails.join("\n"))
        });
    }
    Instant::now()
}

fn cluster() -> TorPair {
    let cluster = tor_pair::up(&berth_objects());
    // Pods need the namespace's `default` ServiceAccount, which kube-controller-manager makes.
    testbed::wait::until("the default ServiceAccount", TIMEOUT, || {
        Ok(get(
            &cluster.cp,
            &format!("/api/v1/namespaces/{APP}/serviceaccounts/default"),
        )
        .map(|_| ()))
    })
    .unwrap();
    cluster
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn tor_pair_in_cluster_allocates_announces_spreads_and_follows_endpoints() {
    let TorPair { cp, install, clab } = cluster();
    let lab = clab.lab();
    let controller_bin = workspace_bin("berth-controller");
    let speaker_bin = workspace_bin("berth-speaker");
    let cp_ns = lab.netns("cp").unwrap();
    let mut controllers = vec![
        Daemon::controller(cp_ns, &controller_bin, &install, 1, &[]).unwrap(),
        Daemon::controller(cp_ns, &controller_bin, &install, 2, &[]).unwrap(),
    ];
    let speakers: Vec<Daemon> = NODES
        .iter()
        .map(|node| {
            Daemon::speaker(
                lab.netns(node).unwrap(),
                &speaker_bin,
                &install,
                node,
                0,
                &["--vip-interface", "lo"],
            )
            .unwrap()
        })
        .collect();
    // Each node answers every connection with its own name, on any address.
    let _responders: Vec<Responder> = NODES
        .iter()
        .map(|node| {
            let any: SocketAddr = ([0, 0, 0, 0], 80).into();
            Responder::start(lab.netns(node).unwrap(), node, &[any]).unwrap()
        })
        .collect();
    for (i, node) in NODES.iter().enumerate() {
        add_pod(
            &cp,
            &format!("web-{}", i + 1),
            "web",
            node,
            &format!("10.244.{}.10", i + 1),
        );
    }
    let logs: Vec<&Daemon> = controllers.iter().collect();

    // A Service of Berth's class: address, EXTERNAL-IP, Events, Eip status, both routers
    // with three next hops, traffic on all three nodes.
    let created = add_service(&cp, "web", "web", serde_json::json!({}));
    let vip = wait_ingress(&cp, "web", 1, &logs)[0];
    let addressed = Instant::now();
    let routed = wait_hops(&clab, vip, &[1, 2, 3], &speakers);
    println!(
        "web: {vip} in status {:?}, in both routers' FIBs with 3 next hops {:?} after create",
        addressed - created,
        routed - created
    );
    let table = cp.kubectl(&["get", "svc", "-n", APP, "web"]).unwrap();
    println!("$ kubectl get svc -n {APP} web\n{table}");
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|row| row.contains(&vip.to_string())),
        "EXTERNAL-IP missing:\n{table}"
    );
    let events = cp
        .kubectl(&[
            "get",
            "events",
            "-n",
            APP,
            "--field-selector",
            "involvedObject.name=web",
        ])
        .unwrap();
    assert!(events.contains("AddressAllocated"), "{events}");
    let v4 = get(&cp, "/apis/network.kubesphere.io/v1alpha2/eips/v4").unwrap();
    testbed::wait::until("Eip v4 to count web", TIMEOUT, || {
        let eip = get(&cp, "/apis/network.kubesphere.io/v1alpha2/eips/v4").unwrap();
        Ok((eip["status"]["used"][vip.to_string()] == "web/web").then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}: {}", v4["status"]));
    for n in 1..=3 {
        let name = format!("tor1-v4-node{n}");
        let peer = get(
            &cp,
            &format!("/apis/network.kubesphere.io/v1alpha2/bgppeers/{name}"),
        )
        .unwrap();
        testbed::wait::until(&format!("{name} status"), TIMEOUT, || {
            let peer = get(
                &cp,
                &format!("/apis/network.kubesphere.io/v1alpha2/bgppeers/{name}"),
            )
            .unwrap();
            Ok(
                (peer["status"]["nodesPeerStatus"][format!("node{n}")]["peerState"]["sessionState"]
                    == "ESTABLISHED")
                    .then_some(()),
            )
        })
        .unwrap_or_else(|e| panic!("{e}: {}", peer["status"]));
    }
    let result = spread(
        lab.netns("client").unwrap(),
        Protocol::Tcp,
        (vip, 80).into(),
        300,
        Duration::from_secs(2),
    )
    .unwrap();
    println!("300 connections to {vip}: {:?}", result.answers);
    assert_eq!(result.failures, 0, "{result:?}");
    assert!(result.fair_over(&NODES, 0.15), "{result:?}");

    // Dual stack: one address per family, both announced.
    add_service(
        &cp,
        "dual",
        "web",
        serde_json::json!({"spec": {"ipFamilyPolicy": "RequireDualStack",
                                    "ipFamilies": ["IPv4", "IPv6"]}}),
    );
    let dual = wait_ingress(&cp, "dual", 2, &logs);
    assert!(
        dual.iter().any(IpAddr::is_ipv4) && dual.iter().any(IpAddr::is_ipv6),
        "{dual:?}"
    );
    for ip in &dual {
        wait_hops(&clab, *ip, &[1, 2, 3], &speakers);
    }
    let v6 = *dual.iter().find(|ip| ip.is_ipv6()).unwrap();
    // A /64 pool: its size (2^64) is past the API's int64; the status is still written.
    testbed::wait::until("Eip v6 status", TIMEOUT, || {
        let eip = get(&cp, "/apis/network.kubesphere.io/v1alpha2/eips/v6").unwrap();
        Ok((eip["status"]["used"][v6.to_string()] == "web/dual").then_some(eip))
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {:?}",
            get(&cp, "/apis/network.kubesphere.io/v1alpha2/eips/v6")
        )
    });
    // The speakers put the VIP on `lo` (--vip-interface); answer on it.
    let _responders6: Vec<Responder> = NODES
        .iter()
        .map(|node| Responder::start(lab.netns(node).unwrap(), node, &[(v6, 80).into()]).unwrap())
        .collect();
    let result = spread(
        lab.netns("client").unwrap(),
        Protocol::Tcp,
        (v6, 80).into(),
        60,
        Duration::from_secs(2),
    )
    .unwrap();
    assert_eq!(result.failures, 0, "{v6}: {result:?}");

    // OpenELB's annotations (no class) and MetalLB's requested address.
    let mut openelb = serde_json::json!({
        "metadata": {"annotations": {"lb.kubesphere.io/v1alpha1": "openelb",
                                      "eip.openelb.kubesphere.io/v1alpha2": "v4"}},
    });
    openelb["spec"] = serde_json::json!({"loadBalancerClass": null});
    add_service(&cp, "openelb", "web", openelb);
    let from_openelb = wait_ingress(&cp, "openelb", 1, &logs)[0];
    assert!(from_openelb.is_ipv4() && !dual.contains(&from_openelb) && from_openelb != vip);
    add_service(
        &cp,
        "metallb",
        "web",
        serde_json::json!({"metadata": {"annotations":
            {"metallb.io/loadBalancerIPs": "10.0.0.110"}}}),
    );
    assert_eq!(
        wait_ingress(&cp, "metallb", 1, &logs),
        vec!["10.0.0.110".parse::<IpAddr>().unwrap()]
    );
    wait_hops(&clab, "10.0.0.110".parse().unwrap(), &[1, 2, 3], &speakers);

    // externalTrafficPolicy Local: announced only where a ready endpoint is, and the next
    // hops follow the endpoint when it moves.
    add_pod(&cp, "solo-1", "solo", "node1", "10.244.1.20");
    add_service(
        &cp,
        "local",
        "solo",
        serde_json::json!({"spec": {"externalTrafficPolicy": "Local"}}),
    );
    let local = wait_ingress(&cp, "local", 1, &logs)[0];
    wait_hops(&clab, local, &[1], &speakers);
    add_pod(&cp, "solo-2", "solo", "node2", "10.244.2.20");
    wait_hops(&clab, local, &[1, 2], &speakers);
    let moved = Instant::now();
    set_ready(&cp, "solo-1", "10.244.1.20", false);
    let followed = wait_hops(&clab, local, &[2], &speakers);
    println!(
        "Local: endpoint on node1 turned unready, routers follow to node2 alone {:?} later",
        followed - moved
    );

    for d in controllers.iter().chain(&speakers) {
        d.assert_no_forbidden();
    }
    for c in &mut controllers {
        c.stop();
    }
}
