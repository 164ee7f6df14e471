//! The switch from OpenELB, played on the `tor-pair` lab (BIRD on tor1, FRR on tor2): the
//! manifests in `testbed/openelb/`, written the way OpenELB's documentation shows them
//! (default Eip by annotation, a named range Eip, BgpConf `default` with `routerId: ""`,
//! BgpPeers with GoBGP leftovers and string timers, annotated Services whose status already
//! holds the addresses OpenELB gave them, one of them a CIDR pool's network address), are
//! copied unchanged into a standalone state directory. `berth-controller` and three
//! `berth-speaker`s start on it; every Service keeps exactly its address, every address is
//! announced by all three nodes to both routers and answers the client, a Service created
//! after the switch gets an address no existing Service holds, and each Eip's status accounts
//! every address to its Service.
//!
//! The binaries come from the same target directory as this test (`cargo build -p speaker
//! -p controller --bins`; `cargo test --workspace` builds them).

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ipnetwork::IpNetwork;
use serde::Deserialize;

use common::{SESSION_TIMEOUT, ip, lab_file, workspace_bin};
use testbed::clab::ClabLab;
use testbed::lab::Process;
use testbed::traffic::{Protocol, Responder, spread};

/// How long an announcement or an allocation gets to happen.
const CONVERGE: Duration = Duration::from_secs(20);

/// The OpenELB manifests, copied as they are.
const MANIFESTS: [&str; 5] = [
    "eip.yaml",
    "bgpconf.yaml",
    "bgppeers.yaml",
    "nodes.yaml",
    "services.yaml",
];

fn openelb_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openelb")
}

/// Every document of a multi-document YAML file.
fn documents(path: &Path) -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// Each Service's `namespace/name` and the IPs in its `status.loadBalancer.ingress`.
fn service_addresses(path: &Path) -> BTreeMap<String, Vec<IpAddr>> {
    documents(path)
        .into_iter()
        .filter(|d| d["kind"] == "Service")
        .map(|d| {
            let key = format!(
                "{}/{}",
                d["metadata"]["namespace"].as_str().unwrap_or("default"),
                d["metadata"]["name"].as_str().unwrap()
            );
            let ips = d["status"]["loadBalancer"]["ingress"]
                .as_sequence()
                .map(|s| {
                    s.iter()
                        .map(|i| i["ip"].as_str().unwrap().parse().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            (key, ips)
        })
        .collect()
}

/// Waits until both routers' kernel FIBs route `vip` over all three nodes.
fn wait_announced(clab: &ClabLab, vip: IpAddr) {
    let host = IpNetwork::new(vip, 32).unwrap();
    for (tor, name) in [(1, "tor1"), (2, "tor2")] {
        let router = clab.router(name).unwrap();
        let expected: BTreeSet<IpAddr> = (1..=3).map(|n| ip(&format!("10.{tor}.{n}.2"))).collect();
        testbed::wait::until(
            &format!("{vip} via three nodes on {name}"),
            CONVERGE,
            || Ok((router.fib()?.gateways(host) == expected).then_some(())),
        )
        .unwrap();
    }
}

/// A Service created after the switch, as a user writes it: no status.
const NEW_SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: late\n  namespace: web\n  \
annotations:\n    lb.kubesphere.io/v1alpha1: openelb\n    protocol.openelb.kubesphere.io/v1alpha1: bgp\n\
spec:\n  selector: {app: late}\n  type: LoadBalancer\n  ports: [{name: http, port: 80, targetPort: 8080}]\n\
---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: late-abc12\n  namespace: web\n  \
labels: {kubernetes.io/service-name: late}\naddressType: IPv4\nendpoints:\n- addresses: [10.244.2.11]\n  \
nodeName: node2\n  conditions: {ready: true}\n";

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn openelb_manifests_switch_over_with_no_address_moving() {
    let speaker_bin = workspace_bin("berth-speaker");
    let controller_bin = workspace_bin("berth-controller");

    let originals = service_addresses(&openelb_dir().join("services.yaml"));
    assert_eq!(originals.len(), 5, "{originals:?}");
    assert!(
        originals.values().all(|ips| ips.len() == 1),
        "{originals:?}"
    );
    let vips: BTreeSet<IpAddr> = originals.values().flatten().copied().collect();
    assert_eq!(
        vips.len(),
        4,
        "two Services share 10.0.0.205 the OpenELB way, the others have their own address"
    );
    assert!(
        vips.contains(&ip("10.0.0.96")),
        "a Service holds the CIDR pool's network address"
    );

    let clab = ClabLab::up(&lab_file("tor-pair.clab.yml")).unwrap();
    let lab = clab.lab();
    let state = lab.dir().join("state");
    std::fs::create_dir_all(&state).unwrap();
    for file in MANIFESTS {
        let source = openelb_dir().join(file);
        std::fs::copy(&source, state.join(file)).unwrap();
        assert_eq!(
            std::fs::read(state.join(file)).unwrap(),
            std::fs::read(&source).unwrap(),
            "{file} is loaded unchanged"
        );
    }

    // Every node answers on every VIP; BGP decides who gets the traffic.
    let targets: Vec<SocketAddr> = vips.iter().map(|v| (*v, 80).into()).collect();
    let mut responders = Vec::new();
    for n in 1..=3 {
        let node = format!("node{n}");
        for vip in &vips {
            lab.add_address(&node, "lo", IpNetwork::new(*vip, 32).unwrap())
                .unwrap();
        }
        responders.push(Responder::start(lab.netns(&node).unwrap(), &node, &targets).unwrap());
    }

    let log = std::fs::File::create(lab.dir().join("controller.log")).unwrap();
    let mut command = std::process::Command::new(&controller_bin);
    command
        .arg("--state-dir")
        .arg(&state)
        .args(["--metrics-addr", "", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    let _controller = Process::spawn("berth-controller", command).unwrap();
    let _speakers: Vec<Process> = (1..=3)
        .map(|n| {
            let node = format!("node{n}");
            let netns = lab.netns(&node).unwrap();
            let log = std::fs::File::create(lab.dir().join(format!("{node}-speaker.log"))).unwrap();
            let mut command = netns.command(&speaker_bin);
            command
                .args(["--node-name", &node, "--state-dir"])
                .arg(&state)
                .args(["--log-format", "json"])
                // The lab's own marker, never the host's /run/berth/restart.
                .arg("--restart-marker")
                .arg(lab.dir().join(format!("{node}-restart-marker")))
                .stdout(Stdio::null())
                .stderr(Stdio::from(log));
            Process::spawn(format!("berth-speaker on {node}"), command).unwrap()
        })
        .collect();
    for name in ["tor1", "tor2"] {
        clab.router(name)
            .unwrap()
            .wait_established(3, SESSION_TIMEOUT)
            .unwrap();
    }

    // Every address OpenELB gave is announced by all three nodes to both routers, and the
    // client's connections reach the nodes.
    for vip in &vips {
        wait_announced(&clab, *vip);
    }
    let client = lab.netns("client").unwrap();
    for target in &targets {
        let result = spread(client, Protocol::Tcp, *target, 60, Duration::from_secs(2)).unwrap();
        assert_eq!(result.failures, 0, "{target}: {result:?}");
        assert_eq!(result.answered(), 60, "{target}: {result:?}");
        assert!(
            result.answers.len() >= 2
                && result
                    .answers
                    .keys()
                    .all(|k| ["node1", "node2", "node3"].contains(&k.as_str())),
            "{target}: connections spread over the nodes: {result:?}"
        );
    }

    // A Service created after the switch gets an address of the default pool that no
    // existing Service holds, and it is announced too.
    std::fs::write(state.join("late.yaml"), NEW_SERVICE).unwrap();
    let late = testbed::wait::until("an address for web/late", CONVERGE, || {
        Ok(service_addresses(&state.join("late.yaml"))
            .get("web/late")
            .and_then(|ips| ips.first().copied()))
    })
    .unwrap();
    assert!(
        !vips.contains(&late),
        "{late} is already held by an OpenELB Service"
    );
    let default_pool: IpNetwork = "10.0.0.96/28".parse().unwrap();
    assert!(default_pool.contains(late), "{late} is not from eip-pool");
    wait_announced(&clab, late);

    // The controller has run over the directory (it allocated web/late): every Service
    // still holds exactly the address OpenELB gave it.
    let after = service_addresses(&state.join("services.yaml"));
    assert_eq!(after, originals, "a Service's address moved");
    for vip in &vips {
        wait_announced(&clab, *vip);
    }

    // Each pool's status accounts every address to its Service, the adopted network address
    // of eip-pool included.
    let expected: BTreeMap<String, BTreeMap<String, String>> = [
        (
            "eip-pool",
            vec![
                ("10.0.0.96", "web/nginx"),
                ("10.0.0.97", "web/api"),
                (&*late.to_string(), "web/late"),
            ],
        ),
        (
            "eip-range",
            vec![
                ("10.0.0.200", "shop/frontend"),
                ("10.0.0.205", "shop/checkout;shop/checkout-admin"),
            ],
        ),
    ]
    .into_iter()
    .map(|(eip, used)| {
        let used = used
            .into_iter()
            .map(|(ip, svc)| (ip.to_string(), svc.to_string()))
            .collect();
        (eip.to_string(), used)
    })
    .collect();
    testbed::wait::until("the Eips' status.used", CONVERGE, || {
        Ok((eip_used(&state.join("eip.yaml")) == expected).then_some(()))
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: expected {expected:?}, found {:?}",
            eip_used(&state.join("eip.yaml"))
        )
    });
}

/// Each Eip's `status.used` (IP → `namespace/name`).
fn eip_used(path: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    documents(path)
        .into_iter()
        .filter(|d| d["kind"] == "Eip")
        .map(|d| {
            let used = d["status"]["used"]
                .as_mapping()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().unwrap_or_default().to_string(),
                                v.as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            (d["metadata"]["name"].as_str().unwrap().to_string(), used)
        })
        .collect()
}
