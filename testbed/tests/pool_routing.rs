//! Issue 18, items 1–3, end to end through the real binaries against real routers: three
//! `berth-speaker`s in standalone mode on the `tor-pair` lab (BIRD on tor1, FRR on tor2).
//!
//! - **Which routers, which nodes.** Pool `public` selects the BgpPeers labelled
//!   `router: edge` (the sessions to tor1) and the nodes labelled `pool-public: "yes"`
//!   (node1, node2); pool `internal` selects `router: internal` (tor2). Each router ends up
//!   holding exactly its pool, and node3 announces nothing of `public` even though the
//!   `public` Service's endpoint is on it. A `peerSelector` that matches nothing withdraws the
//!   pool from every router and changes nothing else.
//! - **AS-path prepend.** Each router shows the path the pool asked for: `public` prepends a
//!   chosen AS once, `internal` the local AS twice.
//! - **Per-Service overrides.** A Service's `berth.io/bgp-*` annotations add communities and
//!   replace MED and the prepending, read back from both routers; a Service with one
//!   malformed annotation keeps its pool's attributes, and the speaker logs why. Two Services
//!   on one address: their communities are all added, a MED they disagree on is the pool's.
//! - **No session resets.** Every one of these edits is a new UPDATE: at the end each
//!   speaker's sessions have never flapped and the routers still hold every session.
//!
//! The binaries come from the same target directory as this test (`cargo build -p speaker
//! --bins`).

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::standalone::{self, SessionSeen, write};
use common::{SESSION_TIMEOUT, ip, lab_file, workspace_bin};
use ipnetwork::IpNetwork;
use testbed::Lab;
use testbed::clab::ClabLab;
use testbed::lab::Process;

/// How long an announcement change gets to reach both routers.
const CONVERGE: Duration = Duration::from_secs(20);

/// The address of pool `public`'s Service and of pool `internal`'s.
const PUBLIC_VIP: &str = "10.0.0.97";
const INTERNAL_VIP: &str = "10.0.0.113";

/// BgpConf (AS 65001), the three Nodes (node1 and node2 labelled `pool-public: "yes"`), and
/// per node one BgpPeer to tor1 (`router: edge`) and one to tor2 (`router: internal`).
fn cluster() -> String {
    let mut out = String::from(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpConf\nmetadata: {name: default}\nspec: {as: 65001}\n",
    );
    for n in 1..=3 {
        let public = if n < 3 { ", pool-public: \"yes\"" } else { "" };
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: node{n}\n  labels: {{kubernetes.io/hostname: node{n}{public}}}\n\
             status:\n  addresses: [{{type: InternalIP, address: 10.1.{n}.2}}]\n"
        ));
        for (tor, role) in [(1, "edge"), (2, "internal")] {
            out.push_str(&format!(
                "---\napiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\n\
                 metadata: {{name: tor{tor}-node{n}, labels: {{router: {role}}}}}\nspec:\n  \
                 conf: {{peerAs: 65000, neighborAddress: \"10.{tor}.{n}.1\"}}\n  \
                 timers: {{config: {{holdTime: \"9\", connectRetry: \"1\"}}}}\n  \
                 nodeSelector: {{matchLabels: {{kubernetes.io/hostname: node{n}}}}}\n"
            ));
        }
    }
    out
}

/// The two pools; `public_spec` and `internal_spec` are extra spec lines (indented two).
fn pools(public_spec: &str, internal_spec: &str) -> String {
    format!(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {{name: public}}\n\
         spec:\n  address: 10.0.0.96/28\n{public_spec}---\n\
         apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {{name: internal}}\n\
         spec:\n  address: 10.0.0.112/28\n{internal_spec}"
    )
}

/// Service `web/{name}` holding `vip`, policy Cluster, its one ready endpoint on `node`, with
/// `annotations`.
fn service(name: &str, vip: &str, node: usize, annotations: &[(&str, &str)]) -> String {
    let annotations: String = annotations
        .iter()
        .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
        .collect();
    let annotations = if annotations.is_empty() {
        String::new()
    } else {
        format!("  annotations:\n{annotations}")
    };
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  namespace: web\n  name: {name}\n{annotations}spec:\n  \
         type: LoadBalancer\n  loadBalancerClass: berth.io/lb\n  externalTrafficPolicy: Cluster\n  ports: [{{port: 80}}]\n\
         status:\n  loadBalancer:\n    ingress: [{{ip: \"{vip}\"}}]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  namespace: web\n  name: {name}-1\n  \
         labels: {{kubernetes.io/service-name: {name}}}\naddressType: IPv4\nendpoints:\n\
         - addresses: [10.244.{node}.5]\n  nodeName: node{node}\n  conditions: {{ready: true}}\n"
    )
}

fn host(vip: &str) -> IpNetwork {
    IpNetwork::new(ip(vip), 32).unwrap()
}

/// One path of a prefix as a router holds it, read back in structured form.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Path4 {
    /// The neighbour it came from (the node's address on that router's link).
    from: IpAddr,
    as_path: Vec<u32>,
    med: Option<u32>,
    /// `A:B`.
    communities: BTreeSet<String>,
    /// `A:B:C`.
    large_communities: BTreeSet<String>,
}

/// BIRD's paths for `prefix` (`show route for P all`; `BGP.*` lines per path).
fn bird_paths(lab: &Lab, prefix: IpNetwork) -> Vec<Path4> {
    let socket = lab
        .netns("tor1")
        .unwrap()
        .dir()
        .unwrap()
        .join("bird/bird.ctl");
    let out = Command::new("birdc")
        .arg("-s")
        .arg(&socket)
        .args(["show", "route", "for", &prefix.to_string(), "all"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut paths: Vec<Path4> = Vec::new();
    let pairs = |s: &str, n: usize| -> BTreeSet<String> {
        s.split(')')
            .map(|p| p.trim().trim_start_matches('(').replace(' ', ""))
            .filter(|p| p.split(',').count() == n)
            .map(|p| p.replace(',', ":"))
            .collect()
    };
    for line in text.lines() {
        let t = line.trim();
        if t.contains("unicast [") {
            paths.push(Path4 {
                from: IpAddr::from([0, 0, 0, 0]),
                as_path: Vec::new(),
                med: None,
                communities: BTreeSet::new(),
                large_communities: BTreeSet::new(),
            });
            continue;
        }
        let Some(path) = paths.last_mut() else {
            continue;
        };
        if let Some(v) = t.strip_prefix("BGP.as_path:") {
            path.as_path = v
                .split_whitespace()
                .filter_map(|a| a.parse().ok())
                .collect();
        } else if let Some(v) = t.strip_prefix("BGP.next_hop:") {
            path.from = v.split_whitespace().next().unwrap().parse().unwrap();
        } else if let Some(v) = t.strip_prefix("BGP.med:") {
            path.med = v.trim().parse().ok();
        } else if let Some(v) = t.strip_prefix("BGP.community:") {
            path.communities = pairs(v, 2);
        } else if let Some(v) = t.strip_prefix("BGP.large_community:") {
            path.large_communities = pairs(v, 3);
        }
    }
    paths.sort_by_key(|p| p.from);
    paths
}

/// FRR's paths for `prefix` (`show bgp ipv4 unicast P json`).
fn frr_paths(lab: &Lab, prefix: IpNetwork) -> Vec<Path4> {
    let vty = lab.netns("tor2").unwrap().dir().unwrap().join("frr");
    let out = Command::new("vtysh")
        .arg("--vty_socket")
        .arg(&vty)
        .args(["-c", &format!("show bgp ipv4 unicast {prefix} json")])
        .output()
        .unwrap();
    assert!(out.status.success(), "vtysh: {out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let words = |v: &serde_json::Value| -> BTreeSet<String> {
        v["string"]
            .as_str()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let mut paths: Vec<Path4> = json["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| Path4 {
            from: p["peer"]["peerId"].as_str().unwrap().parse().unwrap(),
            as_path: p["aspath"]["string"]
                .as_str()
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|a| a.parse().ok())
                .collect(),
            med: p["metric"]
                .as_u64()
                .or(p["med"].as_u64())
                .map(|m| u32::try_from(m).unwrap()),
            communities: words(&p["community"]),
            large_communities: words(&p["largeCommunity"]),
        })
        .collect();
    paths.sort_by_key(|p| p.from);
    paths
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// What a router should hold for one VIP: from these nodes, each path like `like` (its
/// `from` aside).
struct Expect {
    nodes: Vec<usize>,
    like: Path4,
}

fn expect(
    nodes: &[usize],
    as_path: &[u32],
    med: Option<u32>,
    comms: &[&str],
    large: &[&str],
) -> Expect {
    Expect {
        nodes: nodes.to_vec(),
        like: Path4 {
            from: IpAddr::from([0, 0, 0, 0]),
            as_path: as_path.to_vec(),
            med,
            communities: set(comms),
            large_communities: set(large),
        },
    }
}

/// The paths `expect` describes on router `tor` (1: BIRD, 2: FRR).
fn wanted(tor: usize, e: &Expect) -> Vec<Path4> {
    e.nodes
        .iter()
        .map(|n| Path4 {
            from: ip(&format!("10.{tor}.{n}.2")),
            ..e.like.clone()
        })
        .collect()
}

/// Waits until tor1 (BIRD) and tor2 (FRR) hold exactly these paths for both VIPs.
fn wait_tables(lab: &Lab, what: &str, tor1: [&Expect; 2], tor2: [&Expect; 2]) {
    for (tor, expects) in [(1, tor1), (2, tor2)] {
        let read = |prefix| {
            if tor == 1 {
                bird_paths(lab, prefix)
            } else {
                frr_paths(lab, prefix)
            }
        };
        let want: Vec<Vec<Path4>> = expects.iter().map(|e| wanted(tor, e)).collect();
        let got = || -> Vec<Vec<Path4>> {
            [PUBLIC_VIP, INTERNAL_VIP]
                .iter()
                .map(|v| read(host(v)))
                .collect()
        };
        let done = testbed::wait::until(&format!("{what} on tor{tor}"), CONVERGE, || {
            Ok((got() == want).then_some(()))
        });
        if let Err(e) = done {
            panic!("{e}\nwant: {want:#?}\ngot: {:#?}", got());
        }
    }
}

/// Node `n`'s speaker, draining on SIGTERM, with a restart marker.
fn start_speaker(lab: &Lab, state: &Path, bin: &Path, n: usize) -> Process {
    let node = format!("node{n}");
    let marker = lab
        .netns(&node)
        .unwrap()
        .dir()
        .unwrap()
        .join("restart-marker");
    let marker = marker.to_str().unwrap();
    let extra = [
        "--drain-seconds",
        "1",
        "--on-sigterm",
        "drain",
        "--restart-marker",
        marker,
    ];
    standalone::start_speaker(lab, state, bin, &node, &extra)
}

/// Every session of node `n` as its speaker reports them, each Established.
fn sessions(lab: &Lab, berthctl: &Path, n: usize) -> Vec<SessionSeen> {
    let seen = standalone::sessions(lab, berthctl, &format!("node{n}"));
    for s in &seen {
        assert_eq!(s.state, "Established", "{s:?}");
    }
    seen
}

/// Node `n`'s verdict on `vip` (`berthctl vips`): the reason's code.
fn vip_reason(lab: &Lab, berthctl: &Path, n: usize, vip: &str) -> String {
    let out = lab
        .netns(&format!("node{n}"))
        .unwrap()
        .output(berthctl.to_str().unwrap(), &["vips", "-o", "json"])
        .unwrap();
    let vips: serde_json::Value = serde_json::from_str(&out).unwrap();
    vips.as_array()
        .unwrap()
        .iter()
        .find(|v| v["address"] == vip)
        .map(|v| v["reason"]["code"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn pools_reach_only_their_routers_and_nodes_with_their_attributes_and_no_session_resets() {
    let speaker_bin = workspace_bin("berth-speaker");
    let berthctl = workspace_bin("berthctl");
    let clab = ClabLab::up(&lab_file("tor-pair.clab.yml")).unwrap();
    let lab = clab.lab();
    let state = lab.dir().join("state");
    std::fs::create_dir_all(&state).unwrap();
    write(&state, "cluster.yaml", &cluster());
    write(&state, "pools.yaml", &pools("", ""));
    write(
        &state,
        "public.yaml",
        &service("public", PUBLIC_VIP, 3, &[]),
    );
    write(
        &state,
        "internal.yaml",
        &service("internal", INTERNAL_VIP, 1, &[]),
    );
    let _speakers: Vec<Process> = (1..=3)
        .map(|n| start_speaker(lab, &state, &speaker_bin, n))
        .collect();
    for tor in ["tor1", "tor2"] {
        clab.router(tor)
            .unwrap()
            .wait_established(3, SESSION_TIMEOUT)
            .unwrap();
    }

    // 0. No selectors, no attributes: both pools from every node on both routers.
    let everywhere = expect(&[1, 2, 3], &[65001], None, &[], &[]);
    wait_tables(
        lab,
        "both pools everywhere",
        [&everywhere, &everywhere],
        [&everywhere, &everywhere],
    );
    let before: Vec<Vec<SessionSeen>> = (1..=3).map(|n| sessions(lab, &berthctl, n)).collect();

    // 1 + 2. Selectors and prepending: each router holds exactly its pool; node3 is not
    // selected for `public` (its endpoint is there: policy Cluster announces from nodes 1, 2).
    let public_spec = "  peerSelector: {matchLabels: {router: edge}}\n  \
                       nodeSelector: {matchLabels: {pool-public: \"yes\"}}\n  \
                       advertisement: {communities: [\"65000:1\"], asPathPrepend: {count: 1, asn: 64999}}\n";
    let internal_spec = "  peerSelector: {matchExpressions: [{key: router, operator: In, values: [internal]}]}\n  \
                         advertisement: {communities: [\"65000:2\"], med: 10, asPathPrepend: {count: 2}}\n";
    write(&state, "pools.yaml", &pools(public_spec, internal_spec));
    let public = expect(&[1, 2], &[65001, 64999], None, &["65000:1"], &[]);
    let internal = expect(
        &[1, 2, 3],
        &[65001, 65001, 65001],
        Some(10),
        &["65000:2"],
        &[],
    );
    let nothing = expect(&[], &[], None, &[], &[]);
    wait_tables(
        lab,
        "each router exactly its pool",
        [&public, &nothing],
        [&nothing, &internal],
    );
    assert_eq!(
        vip_reason(lab, &berthctl, 3, PUBLIC_VIP),
        "nodeNotSelected",
        "node3 says why it does not announce the public VIP"
    );

    // 3. Per-Service overrides: `internal` adds a community and a large community, replaces
    // MED and the prepending (a chosen AS three times); `public` has one malformed value among
    // valid ones: all refused, it keeps its pool's attributes.
    write(
        &state,
        "internal.yaml",
        &service(
            "internal",
            INTERNAL_VIP,
            1,
            &[
                ("berth.io/bgp-communities", "65000:100"),
                ("berth.io/bgp-large-communities", "65000:7:7"),
                ("berth.io/bgp-med", "50"),
                ("berth.io/bgp-as-path-prepend", "3"),
                ("berth.io/bgp-as-path-prepend-asn", "64888"),
            ],
        ),
    );
    write(
        &state,
        "public.yaml",
        &service(
            "public",
            PUBLIC_VIP,
            3,
            &[
                ("berth.io/bgp-communities", "65000:555"),
                ("berth.io/bgp-med", "ten"),
            ],
        ),
    );
    let internal_overridden = expect(
        &[1, 2, 3],
        &[65001, 64888, 64888, 64888],
        Some(50),
        &["65000:2", "65000:100"],
        &["65000:7:7"],
    );
    wait_tables(
        lab,
        "the Service's overrides",
        [&public, &nothing],
        [&nothing, &internal_overridden],
    );
    let log_line = testbed::wait::until("the refusal in node1's log", CONVERGE, || {
        let log = std::fs::read_to_string(lab.dir().join("node1-speaker.log")).unwrap();
        Ok(log
            .lines()
            .find(|l| l.contains("web/public") && l.contains("berth.io/bgp-med"))
            .map(str::to_string))
    })
    .unwrap();
    assert!(log_line.contains("\\\"ten\\\""), "{log_line}");

    // A second Service on the same address: its communities are added; its MED conflicts
    // with the first's, so the pool's MED is used; the prepending only the first sets stays.
    write(
        &state,
        "internal-b.yaml",
        &service(
            "internal-b",
            INTERNAL_VIP,
            2,
            &[
                ("berth.io/bgp-communities", "65000:200"),
                ("berth.io/bgp-med", "60"),
            ],
        ),
    );
    let shared = expect(
        &[1, 2, 3],
        &[65001, 64888, 64888, 64888],
        Some(10),
        &["65000:2", "65000:100", "65000:200"],
        &["65000:7:7"],
    );
    wait_tables(
        lab,
        "two Services' overrides on one address",
        [&public, &nothing],
        [&nothing, &shared],
    );
    std::fs::remove_file(state.join("internal-b.yaml")).unwrap();
    wait_tables(
        lab,
        "the first Service's overrides again",
        [&public, &nothing],
        [&nothing, &internal_overridden],
    );

    // A peerSelector that selects nothing: the pool leaves every router; nothing else moves.
    let public_nowhere = public_spec.replace("router: edge", "router: nowhere");
    write(&state, "pools.yaml", &pools(&public_nowhere, internal_spec));
    wait_tables(
        lab,
        "public withdrawn, internal kept",
        [&nothing, &nothing],
        [&nothing, &internal_overridden],
    );
    assert_eq!(
        vip_reason(lab, &berthctl, 1, PUBLIC_VIP),
        "noSelectedPeer",
        "node1 says why"
    );

    // No session was reset by any of it: every speaker's sessions never flapped and are as
    // old as before; the routers still hold all of them.
    for n in 1..=3 {
        let after = sessions(lab, &berthctl, n);
        assert_eq!(after.len(), 2, "node{n}: {after:?}");
        for s in &after {
            let address = &s.address;
            assert_eq!(s.flaps, 0, "node{n} session {address} flapped: {after:?}");
            let was = before[n - 1]
                .iter()
                .find(|b| b.address == *address)
                .unwrap_or_else(|| panic!("node{n}: {address} is new"));
            assert!(
                s.uptime >= was.uptime,
                "node{n} {address}: uptime went back"
            );
        }
    }
    let established = |tor: &str| {
        clab.router(tor)
            .unwrap()
            .sessions()
            .unwrap()
            .iter()
            .filter(|s| s.state == testbed::router::SessionState::Established)
            .count()
    };
    assert_eq!((established("tor1"), established("tor2")), (3, 3));
}
