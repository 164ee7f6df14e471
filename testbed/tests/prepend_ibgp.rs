//! Issue 18 item 2 on iBGP: a pool's `asPathPrepend` is not applied on an iBGP session (RFC
//! 4271 §5.1.2; the router would also drop a path holding its own AS as a loop), while its
//! LOCAL_PREF is — and a Service's `berth.io/bgp-local-pref` replaces it for that Service.
//! One `berth-speaker` (standalone mode) in AS 65001 peers with a router in AS 65001: BIRD in
//! one test, FRR in the other; both read the routes back. (eBGP prepending is
//! `pool_routing.rs`.)

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{SESSION_TIMEOUT, link_addresses, star, workspace_bin};
use testbed::Lab;
use testbed::lab::Process;
use testbed::router::bird::Bird;
use testbed::router::frr::Frr;
use testbed::router::{Neighbor, Router, RouterConfig};

/// The AS of both ends.
const AS: u32 = 65001;

/// The pool's route (pool LOCAL_PREF) and the overriding Service's.
const POOL_VIP: &str = "10.0.0.97";
const OVERRIDE_VIP: &str = "10.0.0.98";

fn manifests() -> String {
    let (r4, n4, _, _) = link_addresses(1);
    let mut out = format!(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpConf\nmetadata: {{name: default}}\nspec: {{as: {AS}}}\n---\n\
         apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n  labels: {{kubernetes.io/hostname: n1}}\n\
         status:\n  addresses: [{{type: InternalIP, address: {n4}}}]\n---\n\
         apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {{name: r}}\nspec:\n  \
         conf: {{peerAs: {AS}, neighborAddress: \"{r4}\"}}\n  \
         timers: {{config: {{holdTime: \"9\", connectRetry: \"1\"}}}}\n---\n\
         apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {{name: pool}}\nspec:\n  \
         address: 10.0.0.96/28\n  advertisement: {{localPref: 150, asPathPrepend: {{count: 3}}}}\n"
    );
    for (name, vip, annotations) in [
        ("plain", POOL_VIP, ""),
        (
            "preferred",
            OVERRIDE_VIP,
            "  annotations: {berth.io/bgp-local-pref: \"250\"}\n",
        ),
    ] {
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  namespace: web\n  name: {name}\n{annotations}spec:\n  \
             type: LoadBalancer\n  loadBalancerClass: berth.io/lb\n  ports: [{{port: 80}}]\n\
             status:\n  loadBalancer:\n    ingress: [{{ip: \"{vip}\"}}]\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  namespace: web\n  name: {name}-1\n  \
             labels: {{kubernetes.io/service-name: {name}}}\naddressType: IPv4\nendpoints:\n\
             - addresses: [10.244.1.5]\n  nodeName: n1\n  conditions: {{ready: true}}\n"
        ));
    }
    out
}

fn router_config() -> RouterConfig {
    let (_, n4, _, _) = link_addresses(1);
    RouterConfig::new("r", "10.255.0.1".parse().unwrap(), AS).neighbor(Neighbor::new(n4, AS))
}

fn start_speaker(lab: &Lab) -> Process {
    let state = lab.dir().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("cluster.yaml"), manifests()).unwrap();
    let netns = lab.netns("n1").unwrap();
    let log = std::fs::File::create(lab.dir().join("n1-speaker.log")).unwrap();
    let mut command = netns.command(workspace_bin("berth-speaker"));
    command
        .args(["--node-name", "n1", "--state-dir"])
        .arg(&state)
        .arg("--restart-marker")
        .arg(netns.dir().unwrap().join("restart-marker"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    Process::spawn("berth-speaker on n1", command).unwrap()
}

/// `(AS_PATH, LOCAL_PREF)` of the router's route to each VIP, as `read` gives it; waits
/// until both are there.
fn wait_routes(lab: &Lab, read: impl Fn(&str) -> Option<(Vec<u32>, u32)>) -> [(Vec<u32>, u32); 2] {
    let found = testbed::wait::until("both routes on the router", Duration::from_secs(20), || {
        Ok(read(POOL_VIP).zip(read(OVERRIDE_VIP)))
    });
    let (a, b) = found.unwrap_or_else(|e| {
        panic!(
            "{e}\n{}",
            std::fs::read_to_string(lab.dir().join("n1-speaker.log")).unwrap_or_default()
        )
    });
    [a, b]
}

fn bird_route(socket: &Path, vip: &str) -> Option<(Vec<u32>, u32)> {
    let out = Command::new("birdc")
        .arg("-s")
        .arg(socket)
        .args(["show", "route", "for", &format!("{vip}/32"), "all"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(str::trim))
            .map(str::to_string)
    };
    let path = field("BGP.as_path:")?
        .split_whitespace()
        .map(|a| a.parse().unwrap())
        .collect();
    Some((path, field("BGP.local_pref:")?.parse().unwrap()))
}

fn frr_route(frr: &Frr, vip: &str) -> Option<(Vec<u32>, u32)> {
    let json: serde_json::Value = serde_json::from_str(
        &frr.vtysh(&format!("show bgp ipv4 unicast {vip}/32 json"))
            .ok()?,
    )
    .ok()?;
    let path = json["paths"].as_array()?.first()?.clone();
    // FRR writes an empty AS_PATH as "Local".
    let as_path = path["aspath"]["string"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches("Local")
        .split_whitespace()
        .map(|a| a.parse().unwrap())
        .collect();
    Some((as_path, u32::try_from(path["locPrf"].as_u64()?).unwrap()))
}

/// What both routers must show: no AS added on iBGP (so no prepending), the pool's
/// LOCAL_PREF for the plain Service, the Service's for the other.
fn assert_ibgp(routes: [(Vec<u32>, u32); 2]) {
    assert_eq!(
        routes,
        [(Vec::new(), 150), (Vec::new(), 250)],
        "(AS_PATH, LOCAL_PREF) of {POOL_VIP} and {OVERRIDE_VIP}"
    );
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn no_prepending_on_ibgp_and_local_pref_reaches_bird() {
    let lab = star("pibgp-bird", 1);
    let router = Bird::start(lab.netns("r").unwrap(), &router_config()).unwrap();
    let _speaker = start_speaker(&lab);
    router.wait_established(1, SESSION_TIMEOUT).unwrap();
    let socket = router.socket();
    assert_ibgp(wait_routes(&lab, |vip| bird_route(&socket, vip)));
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn no_prepending_on_ibgp_and_local_pref_reaches_frr() {
    let lab = star("pibgp-frr", 1);
    let router = Frr::start(lab.netns("r").unwrap(), &router_config()).unwrap();
    let _speaker = start_speaker(&lab);
    router.wait_established(1, SESSION_TIMEOUT).unwrap();
    assert_ibgp(wait_routes(&lab, |vip| frr_route(&router, vip)));
}
