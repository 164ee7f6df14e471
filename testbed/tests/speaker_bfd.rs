//! `berth-speaker` with BFD end to end: one node on the `star` lab runs the real binary in
//! standalone mode with a BgpPeer `bfd: {enabled: true}` to FRR, whose neighbour has `bfd`
//! (bfdd, 300 ms × 3). The BFD session reaches Up on both sides, the BGP session is
//! Established behind it, and `berthctl peers -o json` shows the BFD state.
//!
//! The binaries come from the same target directory as this test (`cargo test
//! --workspace` builds them; alone: `cargo build -p speaker --bins`).

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use testbed::lab::Process;
use testbed::router::frr::Frr;
use testbed::router::{Neighbor, Router, RouterConfig};

fn manifests() -> String {
    let (r4, n4, _, _) = link_addresses(1);
    format!(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpConf\nmetadata: {{name: default}}\nspec: {{as: {NODE_AS}}}\n---\n\
         apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\nstatus:\n  addresses: [{{type: InternalIP, address: {n4}}}]\n---\n\
         apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {{name: r}}\nspec:\n  \
         conf: {{peerAs: {ROUTER_AS}, neighborAddress: \"{r4}\"}}\n  sourceAddress: \"{n4}\"\n  \
         timers: {{config: {{holdTime: \"90\", connectRetry: \"1\"}}}}\n  bfd: {{enabled: true}}\n"
    )
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn speaker_with_bfd_enabled_reaches_bfd_up_with_frr_bfdd() {
    let speaker_bin = workspace_bin("berth-speaker");
    let berthctl = workspace_bin("berthctl");
    let lab = star("spk-bfd", 1);
    let (_, n4, _, _) = link_addresses(1);
    let mut config = RouterConfig::new("r", "10.255.0.1".parse().unwrap(), ROUTER_AS);
    config.timers.hold = 90;
    config = config.neighbor(Neighbor::new(n4, NODE_AS).bfd());
    let frr = Frr::start(lab.netns("r").unwrap(), &config).unwrap();

    let state = lab.dir().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("cluster.yaml"), manifests()).unwrap();
    let netns = lab.netns("n1").unwrap();
    let log = std::fs::File::create(lab.dir().join("n1-speaker.log")).unwrap();
    let mut command = netns.command(&speaker_bin);
    command
        .args(["--node-name", "n1", "--state-dir"])
        .arg(&state)
        .args(["--drain-seconds", "0", "--log-format", "json"])
        // The lab's own marker, never the host's /run/berth/restart.
        .arg("--restart-marker")
        .arg(lab.dir().join("n1-restart-marker"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    let _speaker = Process::spawn("berth-speaker on n1".to_string(), command).unwrap();

    let frr_bfd = || -> Option<String> {
        let text = frr.vtysh("show bfd peers json").ok()?;
        let peers: serde_json::Value = serde_json::from_str(&text).ok()?;
        peers
            .as_array()?
            .iter()
            .find(|p| p["peer"] == n4.to_string())
            .and_then(|p| p["status"].as_str().map(str::to_string))
    };
    testbed::wait::until("FRR's BFD session up", SESSION_TIMEOUT, || {
        Ok((frr_bfd().as_deref() == Some("up")).then_some(()))
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: FRR says {:?}; {:?}",
            frr.vtysh("show bfd peers"),
            std::fs::read_to_string(lab.dir().join("n1-speaker.log"))
        )
    });
    frr.wait_established(1, SESSION_TIMEOUT).unwrap();

    let peers = || -> Option<serde_json::Value> {
        let out = netns
            .command(&berthctl)
            .args(["peers", "-o", "json"])
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    };
    testbed::wait::until("berthctl shows BFD Up", SESSION_TIMEOUT, || {
        Ok(peers()
            .filter(|v| v[0]["bfd"] == "Up" && v[0]["state"] == "Established")
            .map(|_| ()))
    })
    .unwrap_or_else(|e| panic!("{e}: berthctl says {:?}", peers()));
    // Up is steady, not a passing state.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(frr_bfd().as_deref(), Some("up"), "stays up");
}
