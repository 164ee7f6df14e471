//! Layer 2 in Kubernetes mode, seen from the API (issue 17, status side): a bridge as the
//! switch, three node namespaces running `berth-speaker` with the shipped RBAC, a client on
//! the same segment, and a real control plane (etcd, kube-apiserver,
//! kube-controller-manager) on that segment too, with `berth-controller` allocating.
//!
//! Shown here: a layer2 Service gets an address; the Eip says who answers it
//! (`status.layer2Owners`, condition `Layer2Answered`) and the client reaches that node;
//! SIGKILL of the owner's speaker moves the address, the client follows, the Service gets
//! one `Layer2OwnerChanged` Event from the node that took over, and the Eip's owners and
//! condition follow. A second layer2 pool naming an interface no node has gets, from each
//! node, a `False` `InterfaceResolved` entry, a Warning Event and a log line, and its
//! condition says nobody answers, while the first pool keeps its owner and its client. A
//! pool without `interface`: a node with an ECMP default route chooses one NIC, the first by
//! name, and says so; nodes without a default route say so and are left out of that pool.
//! A bgp pool overlapping the layer2 pool is refused (`PoolOverlaps`) and the layer2 pool
//! keeps working. No request of any daemon is refused (RBAC).
//!
//! Needs root and the control plane (`./test.sh` builds it; `BERTH_CONTROLPLANE_BIN` names
//! it): without them it fails, it never skips.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::kube::DaemonChecks;
use common::workspace_bin;
use serde_json::Value;
use testbed::Lab;
use testbed::incluster::{self, Daemon};
use testbed::k8s::{ControlPlane, ControlPlaneConfig};
use testbed::traffic::{Protocol, Responder, spread};

/// How long a change gets to show in the API and on the wire.
const TIMEOUT: Duration = Duration::from_secs(45);
/// The UDP port the nodes' responders answer on.
const PORT: u16 = 7007;
const NODES: [&str; 3] = ["node1", "node2", "node3"];
const APP: &str = "web";
/// The control plane's address, on the segment.
const CP: &str = "10.9.0.250";

fn objects() -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {APP}}}\n---\n\
         apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {{name: lan}}\n\
         spec: {{address: 10.9.0.200-10.9.0.209, protocol: layer2, interface: eth0}}\n"
    )
}

/// A Service of `pool` without selector and its EndpointSlice: one ready endpoint on
/// node1 (policy Cluster: every node of the pool is a candidate).
fn service(name: &str, pool: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  namespace: {APP}\n  name: {name}\n  annotations:\n    \
         eip.openelb.kubesphere.io/v1alpha2: {pool}\n\
         spec:\n  type: LoadBalancer\n  loadBalancerClass: berth.io/lb\n  ipFamilies: [IPv4]\n  ports: [{{port: {PORT}, protocol: UDP}}]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  namespace: {APP}\n  name: {name}-1\n  \
         labels: {{kubernetes.io/service-name: {name}}}\n\
         addressType: IPv4\nports: [{{port: {PORT}, protocol: UDP}}]\nendpoints:\n- addresses: [10.244.1.5]\n  nodeName: node1\n  conditions: {{ready: true}}\n"
    )
}

fn get(cp: &ControlPlane, path: &str) -> Option<Value> {
    match cp.get(path).unwrap() {
        (200, body) => Some(serde_json::from_str(&body).unwrap()),
        (404, _) => None,
        (status, body) => panic!("GET {path}: {status} {body}"),
    }
}

fn eip(cp: &ControlPlane, name: &str) -> Value {
    get(
        cp,
        &format!("/apis/network.kubesphere.io/v1alpha2/eips/{name}"),
    )
    .unwrap_or_default()
}

fn condition(eip: &Value, type_: &str) -> Option<Value> {
    eip["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

/// The events of `reason` about `kind`/`name` (events.k8s.io/v1), in `namespace`.
fn events(cp: &ControlPlane, namespace: &str, kind: &str, name: &str, reason: &str) -> Vec<Value> {
    get(
        cp,
        &format!("/apis/events.k8s.io/v1/namespaces/{namespace}/events"),
    )
    .and_then(|l| l["items"].as_array().cloned())
    .unwrap_or_default()
    .into_iter()
    .filter(|e| {
        e["reason"] == reason && e["regarding"]["kind"] == kind && e["regarding"]["name"] == name
    })
    .collect()
}

fn ingress(cp: &ControlPlane, name: &str) -> Option<IpAddr> {
    get(cp, &format!("/api/v1/namespaces/{APP}/services/{name}"))?["status"]["loadBalancer"]
        ["ingress"][0]["ip"]
        .as_str()?
        .parse()
        .ok()
}

/// `node`'s eth0 MAC, as `ip -j link` prints it.
fn mac_of(lab: &Lab, node: &str) -> String {
    let out = lab
        .netns(node)
        .unwrap()
        .output("ip", &["-j", "link", "show", "eth0"])
        .unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
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
    let v: Value = serde_json::from_str(&out).ok()?;
    Some(v.get(0)?["lladdr"].as_str()?.to_string())
}

/// Waits until the client's probes of `vip` are all answered by `node` and its neighbour
/// entry holds `node`'s MAC.
fn wait_client_reaches(lab: &Lab, vip: IpAddr, node: &str, mac: &str, logs: &[&Daemon]) {
    let client = lab.netns("client").unwrap();
    let target = SocketAddr::new(vip, PORT);
    testbed::wait::until(
        &format!("the client reaches {vip} on {node}"),
        TIMEOUT,
        || {
            let s = spread(client, Protocol::Udp, target, 5, Duration::from_millis(200))?;
            let only_owner = s.failures == 0 && s.count(node) == 5;
            Ok((only_owner && client_neighbour(lab, vip).as_deref() == Some(mac)).then_some(()))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", tails(logs)));
}

/// The daemons' last log lines, and each speaker's layer-2 view (`berthctl -o json layer2`).
fn tails(logs: &[&Daemon]) -> String {
    let berthctl = workspace_bin("berthctl");
    logs.iter()
        .map(|d| {
            let view = d
                .netns()
                .output(&berthctl.to_string_lossy(), &["-o", "json", "layer2"])
                .unwrap_or_else(|e| format!("(berthctl: {e})"));
            format!("{}\nlayer-2 view: {view}", d.log_tail())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The owner the Eip `pool` names for `vip`, once its `Layer2Answered` condition is `True`
/// and the owner is one of `alive`.
fn wait_owner(
    cp: &ControlPlane,
    pool: &str,
    vip: IpAddr,
    alive: &[&str],
    logs: &[&Daemon],
) -> String {
    testbed::wait::until(
        &format!("Eip {pool} names an owner of {vip} among {alive:?}"),
        TIMEOUT,
        || {
            let e = eip(cp, pool);
            let owner = e["status"]["layer2Owners"][vip.to_string()]
                .as_str()
                .map(str::to_string);
            let answered = condition(&e, "Layer2Answered").is_some_and(|c| c["status"] == "True");
            Ok(owner.filter(|o| answered && alive.contains(&o.as_str())))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", eip(cp, pool), tails(logs)))
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn layer2_owners_events_and_bad_input_show_in_the_api() {
    let controller_bin = workspace_bin("berth-controller");
    let speaker_bin = workspace_bin("berth-speaker");
    let mut lab = Lab::new("kl2").unwrap();
    lab.add_bridge("sw").unwrap();
    for (i, node) in NODES.iter().enumerate() {
        let ns = lab.add_namespace(node).unwrap();
        // What kube-proxy's IPVS mode with strictARP sets (docs/layer2.md).
        ns.sysctl("net/ipv4/conf/all/arp_ignore", "1").unwrap();
        ns.sysctl("net/ipv4/conf/all/arp_announce", "2").unwrap();
        lab.attach("sw", (node, "eth0")).unwrap();
        lab.add_address(
            node,
            "eth0",
            format!("10.9.0.{}/24", i + 1).parse().unwrap(),
        )
        .unwrap();
    }
    for (name, address) in [("client", "10.9.0.100"), ("cp", CP)] {
        lab.add_namespace(name).unwrap();
        lab.attach("sw", (name, "eth0")).unwrap();
        lab.add_address(name, "eth0", format!("{address}/24").parse().unwrap())
            .unwrap();
    }
    let macs: BTreeMap<String, String> = NODES
        .iter()
        .map(|n| (n.to_string(), mac_of(&lab, n)))
        .collect();
    let cp = ControlPlane::start(
        lab.netns("cp").unwrap(),
        ControlPlaneConfig::new(CP.parse().unwrap()),
    )
    .unwrap_or_else(|e| panic!("control plane: {e}"));
    let install = incluster::install(&cp).unwrap_or_else(|e| panic!("install: {e}"));
    for (i, node) in NODES.iter().enumerate() {
        let ip: IpAddr = format!("10.9.0.{}", i + 1).parse().unwrap();
        incluster::add_node(&cp, node, ip, &BTreeMap::new()).unwrap();
    }
    cp.apply(&objects()).unwrap();
    let controller =
        Daemon::controller(lab.netns("cp").unwrap(), &controller_bin, &install, 1, &[]).unwrap();
    let mut speakers: BTreeMap<String, Daemon> = NODES
        .iter()
        .map(|node| {
            let d = Daemon::speaker(
                lab.netns(node).unwrap(),
                &speaker_bin,
                &install,
                node,
                0,
                &[],
            )
            .unwrap();
            (node.to_string(), d)
        })
        .collect();
    let logs = |speakers: &BTreeMap<String, Daemon>| -> String {
        let mut all: Vec<&Daemon> = speakers.values().collect();
        all.push(&controller);
        tails(&all)
    };

    // A Service of the layer2 pool: an address, an owner in the Eip, the client reaches it.
    cp.apply(&service("svc-a", "lan")).unwrap();
    let vip = testbed::wait::until("an address for svc-a", TIMEOUT, || {
        Ok(ingress(&cp, "svc-a"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&speakers)));
    let target = SocketAddr::new(vip, PORT);
    let _responders: Vec<Responder> = NODES
        .iter()
        .map(|n| {
            lab.add_address(n, "lo", ipnetwork::IpNetwork::new(vip, 32).unwrap())
                .unwrap();
            Responder::start(lab.netns(n).unwrap(), n, &[target]).unwrap()
        })
        .collect();
    let all: Vec<&Daemon> = speakers.values().chain([&controller]).collect();
    let owner = wait_owner(&cp, "lan", vip, &NODES, &all);
    wait_client_reaches(&lab, vip, &owner, &macs[&owner], &all);
    let lan = eip(&cp, "lan");
    let answered = condition(&lan, "Layer2Answered").unwrap();
    assert_eq!(answered["reason"], "Answered", "{lan}");
    assert!(
        answered["message"]
            .as_str()
            .unwrap()
            .starts_with("1 of 1 address(es) answered by 1 node(s)"),
        "{answered}"
    );
    // Every node found eth0 for the pool and says so in its own entry.
    testbed::wait::until("every node's entry of lan", TIMEOUT, || {
        let e = eip(&cp, "lan");
        let entries = &e["status"]["nodesLayer2Status"];
        Ok(NODES
            .iter()
            .all(|n| {
                entries[n]["interface"] == "eth0"
                    && entries[n]["conditions"][0]["type"] == "InterfaceResolved"
                    && entries[n]["conditions"][0]["status"] == "True"
            })
            .then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", eip(&cp, "lan")));
    // Nothing moved yet: no Event names a previous owner. (One may say the address is
    // answered now and was by nobody: the speakers can see the Service's address before its
    // EndpointSlice, and without a ready endpoint nobody answers.)
    let early = events(&cp, APP, "Service", "svc-a", "Layer2OwnerChanged");
    assert!(
        early.iter().all(|e| e["note"]
            .as_str()
            .is_some_and(|n| n.contains("was answered by nobody"))),
        "{early:?}"
    );

    // The owner's speaker is killed: the address moves, the client follows, the Service
    // gets one Event from the node that took over, and the Eip names the new owner.
    speakers.get_mut(&owner).unwrap().kill();
    let alive: Vec<&str> = NODES.iter().copied().filter(|n| *n != owner).collect();
    let all: Vec<&Daemon> = speakers.values().chain([&controller]).collect();
    let new_owner = wait_owner(&cp, "lan", vip, &alive, &all);
    wait_client_reaches(&lab, vip, &new_owner, &macs[&new_owner], &all);
    let was_owner = format!("was {owner}");
    let changed = testbed::wait::until("a Layer2OwnerChanged Event on svc-a", TIMEOUT, || {
        let e: Vec<Value> = events(&cp, APP, "Service", "svc-a", "Layer2OwnerChanged")
            .into_iter()
            .filter(|e| e["note"].as_str().is_some_and(|n| n.contains(&was_owner)))
            .collect();
        Ok((!e.is_empty()).then_some(e))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&speakers)));
    assert_eq!(changed.len(), 1, "one Event per change: {changed:?}");
    let event = &changed[0];
    assert_eq!(event["reportingInstance"], new_owner.as_str(), "{event}");
    assert_eq!(event["reportingController"], "berth-speaker", "{event}");
    assert_eq!(event["type"], "Warning", "a failover: {event}");
    let note = event["note"].as_str().unwrap();
    assert!(
        note.contains(&vip.to_string())
            && note.contains(&format!("now answered by {new_owner}"))
            && note.contains(&format!("was {owner}"))
            && note.contains("failover"),
        "{note}"
    );
    let lan = eip(&cp, "lan");
    assert_eq!(
        condition(&lan, "Layer2Answered").unwrap()["status"],
        "True",
        "{lan}"
    );
    // The controller's own condition and counts are untouched by the speakers' part.
    assert_eq!(lan["status"]["usage"], 1, "{lan}");

    // A pool naming an interface no node has: each live node reports it (entry, Event, log
    // line); nobody answers that pool; the first pool keeps its owner and its client.
    cp.apply(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: typo}\n\
         spec: {address: 10.9.0.220-10.9.0.229, protocol: layer2, interface: eth9}\n",
    )
    .unwrap();
    cp.apply(&service("svc-b", "typo")).unwrap();
    let bad_vip = testbed::wait::until("an address for svc-b", TIMEOUT, || {
        Ok(ingress(&cp, "svc-b"))
    })
    .unwrap();
    testbed::wait::until(
        "the live nodes' entries of typo say InterfaceNotFound",
        TIMEOUT,
        || {
            let e = eip(&cp, "typo");
            let entries = &e["status"]["nodesLayer2Status"];
            Ok(alive
                .iter()
                .all(|n| {
                    let c = &entries[n]["conditions"][0];
                    c["type"] == "InterfaceResolved"
                        && c["status"] == "False"
                        && c["reason"] == "InterfaceNotFound"
                        && c["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("eth9") && m.contains(n))
                        && entries[n].get("interface").is_none()
                })
                .then_some(()))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", eip(&cp, "typo"), logs(&speakers)));
    testbed::wait::until("typo says nobody answers", TIMEOUT, || {
        let e = eip(&cp, "typo");
        Ok(condition(&e, "Layer2Answered")
            .filter(|c| c["status"] == "False" && c["reason"] == "NotAnswered")
            .filter(|c| {
                c["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&bad_vip.to_string()))
            }))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", eip(&cp, "typo"), logs(&speakers)));
    let warned = testbed::wait::until("InterfaceNotFound Events on Eip typo", TIMEOUT, || {
        let e = events(&cp, "default", "Eip", "typo", "InterfaceNotFound");
        Ok((e.len() >= alive.len()).then_some(e))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&speakers)));
    for n in &alive {
        assert!(
            warned
                .iter()
                .any(|e| e["reportingInstance"] == *n && e["type"] == "Warning"),
            "no Event from {n}: {warned:?}"
        );
        let log = speakers[*n].log();
        assert!(
            log.lines()
                .any(|l| l.contains("InterfaceNotFound") && l.contains("no interface named eth9")),
            "no log line on {n}"
        );
    }
    for n in &alive {
        // The metric: a problem counted (each of the pool's addresses).
        let d = &speakers[*n];
        let problems =
            testbed::wait::until(&format!("{n} counts a layer-2 problem"), TIMEOUT, || {
                let page = d
                    .http_get(incluster::SPEAKER_METRICS, "/metrics")
                    .unwrap_or_default();
                Ok(page
                    .lines()
                    .find_map(|l| l.strip_prefix("berth_speaker_layer2_problems "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|v| *v >= 1))
            })
            .unwrap_or_else(|e| panic!("{e}\n{}", logs(&speakers)));
        assert!(problems >= 1);
    }
    assert_eq!(
        wait_owner(&cp, "lan", vip, &alive, &all),
        new_owner,
        "the good pool's owner moved"
    );
    wait_client_reaches(&lab, vip, &new_owner, &macs[&new_owner], &all);

    // A pool without `interface` (the default route's NIC): one node has an ECMP default route
    // over eth0 and a veth zz0 and chooses eth0, the first by name, saying so; the other
    // nodes have no default route, say so, and are left out of that pool's candidates, so
    // it answers its address.
    let ecmp = alive[0];
    let ecmp_ns = lab.netns(ecmp).unwrap();
    for args in [
        &["link", "add", "zz0", "type", "veth", "peer", "name", "zz1"][..],
        &["link", "set", "zz1", "up"],
        &["link", "set", "zz0", "up"],
        &["addr", "add", "192.168.77.1/24", "dev", "zz0"],
        &[
            "route",
            "add",
            "default",
            "nexthop",
            "via",
            "10.9.0.254",
            "dev",
            "eth0",
            "nexthop",
            "via",
            "192.168.77.254",
            "dev",
            "zz0",
        ],
    ] {
        ecmp_ns.output("ip", args).unwrap();
    }
    cp.apply(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: auto}\n\
         spec: {address: 10.9.0.230-10.9.0.231, protocol: layer2}\n",
    )
    .unwrap();
    cp.apply(&service("svc-c", "auto")).unwrap();
    let auto_vip = testbed::wait::until("an address for svc-c", TIMEOUT, || {
        Ok(ingress(&cp, "svc-c"))
    })
    .unwrap();
    testbed::wait::until("the entries of auto", TIMEOUT, || {
        let e = eip(&cp, "auto");
        let entries = &e["status"]["nodesLayer2Status"];
        let several = &entries[ecmp]["conditions"][0];
        let ok = entries[ecmp]["interface"] == "eth0"
            && several["status"] == "True"
            && several["reason"] == "SeveralInterfaces"
            && several["message"]
                .as_str()
                .is_some_and(|m| m.contains("eth0, zz0") && m.contains("answers on eth0"));
        let others = alive.iter().filter(|n| **n != ecmp).all(|n| {
            let c = &entries[n]["conditions"][0];
            c["status"] == "False"
                && c["reason"] == "NoRoute"
                && c["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("no default route (IPv4)"))
        });
        Ok((ok && others).then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", eip(&cp, "auto"), logs(&speakers)));
    assert_eq!(
        wait_owner(&cp, "auto", auto_vip, &[ecmp], &all),
        ecmp,
        "the only node with a default route answers"
    );

    // A bgp pool overlapping the layer2 pool: refused (PoolOverlaps), the layer2 pool keeps
    // its Valid status and its owner.
    cp.apply(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: wan}\n\
         spec: {address: 10.9.0.208-10.9.0.215}\n",
    )
    .unwrap();
    testbed::wait::until("wan refused as overlapping", TIMEOUT, || {
        let e = eip(&cp, "wan");
        Ok(condition(&e, "Valid")
            .filter(|c| c["status"] == "False" && c["reason"] == "PoolOverlaps"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", eip(&cp, "wan")));
    let lan = eip(&cp, "lan");
    assert!(
        condition(&lan, "Valid").is_none_or(|c| c["status"] == "True"),
        "{lan}"
    );
    assert_eq!(
        lan["status"]["layer2Owners"][vip.to_string()],
        new_owner.as_str()
    );
    wait_client_reaches(&lab, vip, &new_owner, &macs[&new_owner], &all);

    // Least privilege was enough: no request refused.
    for d in speakers.values().chain([&controller]) {
        let refused = d.forbidden();
        assert!(refused.is_empty(), "refused: {refused:?}");
    }
}

/// Upgrading the Eip CRD from the release before (its `status.conditions` an atomic list) to
/// this one (a list keyed by `type`, so the speakers' `Layer2Answered` and the controller's
/// `Valid` have their own owners) is accepted with an Eip holding conditions, and keeps them;
/// afterwards two field managers each apply their own condition and both stay.
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn the_eip_crd_upgrades_to_conditions_keyed_by_type() {
    let mut lab = Lab::new("kl2crd").unwrap();
    lab.add_bridge("sw").unwrap();
    lab.add_namespace("cp").unwrap();
    lab.attach("sw", ("cp", "eth0")).unwrap();
    lab.add_address("cp", "eth0", format!("{CP}/24").parse().unwrap())
        .unwrap();
    let cp = ControlPlane::start(
        lab.netns("cp").unwrap(),
        ControlPlaneConfig::new(CP.parse().unwrap()),
    )
    .unwrap_or_else(|e| panic!("control plane: {e}"));
    let shipped =
        std::fs::read_to_string(incluster::repository().join("deploy/crds/eips.yaml")).unwrap();
    let keyed = "                x-kubernetes-list-map-keys:\n                - type\n                x-kubernetes-list-type: map\n";
    assert!(
        shipped.contains(keyed),
        "the shipped CRD keys conditions by type"
    );
    let before = shipped.replace(keyed, "");
    // Files in the lab's directory: kubectl reads them from there.
    let file = |name: &str, text: &str| {
        let path = lab.dir().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let apply_crd =
        |name: &str, text: &str| cp.kubectl(&["apply", "--server-side", "-f", &file(name, text)]);
    apply_crd("eips-before.yaml", &before).unwrap();
    cp.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/eips.network.kubesphere.io",
    ])
    .unwrap();
    cp.apply(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: old}\n\
         spec: {address: 10.9.0.200-10.9.0.209, protocol: layer2}\n",
    )
    .unwrap();
    let status = |manager: &str, type_: &str| {
        let body = serde_json::json!({
            "apiVersion": "network.kubesphere.io/v1alpha2", "kind": "Eip",
            "metadata": {"name": "old"},
            "status": {"conditions": [{"type": type_, "status": "True", "reason": "R"}]},
        });
        cp.kubectl(&[
            "apply",
            "--server-side",
            "--subresource=status",
            "--force-conflicts",
            &format!("--field-manager={manager}"),
            "-f",
            &file(&format!("status-{manager}.json"), &body.to_string()),
        ])
    };
    status("berth-controller", "Valid").unwrap();
    apply_crd("eips-after.yaml", &shipped)
        .unwrap_or_else(|e| panic!("the upgrade was refused: {e}"));
    let types = |cp: &ControlPlane| -> Vec<String> {
        eip(cp, "old")["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c["type"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(
        types(&cp),
        vec!["Valid".to_string()],
        "kept across the upgrade"
    );
    status("berth-speaker-layer2", "Layer2Answered").unwrap();
    status("berth-controller", "Valid").unwrap();
    let mut after = types(&cp);
    after.sort();
    assert_eq!(
        after,
        vec!["Layer2Answered".to_string(), "Valid".to_string()],
        "each manager keeps its own condition"
    );
}
