//! Issue 14 item 9 against a real router: a `berth-speaker` (standalone mode, one node of the
//! `star` lab) holds an Established session with BIRD through BgpPeer `z-original`. A second
//! BgpPeer for the same neighbour, `a-duplicate` (its name sorts first, and its peer AS is
//! wrong, so taking the session over would visibly break it), is added to the manifest
//! directory. Once the speaker's log shows it processed the newcomer (and reported it), BIRD's
//! session must be the same one: still Established, with the same "since" time, so never
//! reset.
//!
//! The binaries come from the same target directory as this test (`cargo test
//! --workspace` builds them; alone: `cargo build -p speaker --bins`).

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use testbed::lab::Process;
use testbed::router::bird::Bird;
use testbed::router::{Neighbor, Router, RouterConfig};

fn peer(name: &str, peer_as: u32) -> String {
    let (r4, n4, _, _) = link_addresses(1);
    format!(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {{name: {name}}}\nspec:\n  \
         conf: {{peerAs: {peer_as}, neighborAddress: \"{r4}\"}}\n  sourceAddress: \"{n4}\"\n  \
         timers: {{config: {{holdTime: \"90\", connectRetry: \"1\"}}}}\n"
    )
}

fn cluster() -> String {
    let (_, n4, _, _) = link_addresses(1);
    format!(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpConf\nmetadata: {{name: default}}\nspec: {{as: {NODE_AS}}}\n---\n\
         apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\nstatus:\n  addresses: [{{type: InternalIP, address: {n4}}}]\n"
    )
}

/// BIRD's `show protocols` line of the session: name, protocol, table, state, since, info.
fn session_line(bird: &Bird) -> String {
    let text = bird.birdc(&["show", "protocols"]).unwrap();
    text.lines()
        .find(|l| l.starts_with(&testbed::router::bird::protocol_name(0)))
        .unwrap_or_else(|| panic!("no session in:\n{text}"))
        .to_string()
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn a_duplicate_bgp_peer_does_not_reset_the_session() {
    let speaker_bin = workspace_bin("berth-speaker");
    let lab = star("dup-peer", 1);
    let (_, n4, _, _) = link_addresses(1);
    let mut config = RouterConfig::new("r", "10.255.0.1".parse().unwrap(), ROUTER_AS);
    config.timers.hold = 90;
    config = config.neighbor(Neighbor::new(n4, NODE_AS));
    let bird = Bird::start(lab.netns("r").unwrap(), &config).unwrap();

    let state = lab.dir().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("cluster.yaml"), cluster()).unwrap();
    std::fs::write(state.join("original.yaml"), peer("z-original", ROUTER_AS)).unwrap();
    let log_path = lab.dir().join("n1-speaker.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut command = lab.netns("n1").unwrap().command(&speaker_bin);
    command
        .args(["--node-name", "n1", "--state-dir"])
        .arg(&state)
        .args(["--drain-seconds", "0", "--log-format", "json"])
        .arg("--restart-marker")
        .arg(lab.dir().join("n1-restart-marker"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    let _speaker = Process::spawn("berth-speaker on n1".to_string(), command).unwrap();
    bird.wait_established(1, SESSION_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}: {:?}", std::fs::read_to_string(&log_path)));
    // BIRD's "since" has a resolution of a second: let it tick once past the establishment,
    // so a reset within the same second as the start would still show.
    std::thread::sleep(Duration::from_millis(1100));
    let before = session_line(&bird);
    assert!(before.contains("Established"), "{before}");

    std::fs::write(state.join("duplicate.yaml"), peer("a-duplicate", 65009)).unwrap();
    // Evidence that the speaker applied a state holding the newcomer: its status (written
    // after the apply, with the sessions it runs) reports it, naming the keeper.
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let berthctl = workspace_bin("berthctl");
    let netns = lab.netns("n1").unwrap();
    let berthctl_json = |what: &str| -> Option<serde_json::Value> {
        let out = netns
            .command(&berthctl)
            .args([what, "-o", "json"])
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    };
    let report = testbed::wait::until("the speaker reports the duplicate", SESSION_TIMEOUT, || {
        Ok(berthctl_json("status").and_then(|s| {
            s["problems"]
                .as_array()?
                .iter()
                .find(|p| p["name"] == "a-duplicate")
                .cloned()
        }))
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", log()));
    assert!(
        report
            .to_string()
            .contains("BgpPeer z-original, which keeps the session"),
        "the newcomer must be the one reported: {report}"
    );
    let peers = || berthctl_json("peers");
    let shown = peers().unwrap_or_else(|| panic!("berthctl peers:\n{}", log()));
    assert_eq!(shown.as_array().map(Vec::len), Some(1), "{shown}");
    assert_eq!(
        (shown[0]["name"].as_str(), shown[0]["peerAs"].as_u64()),
        (Some("z-original"), Some(u64::from(ROUTER_AS))),
        "{shown}"
    );
    let after = session_line(&bird);
    assert_eq!(
        after,
        before,
        "the session was reset when the duplicate came:\n{}",
        log()
    );
    let sessions = bird.sessions().unwrap();
    assert!(
        sessions
            .iter()
            .all(|s| s.state == testbed::router::SessionState::Established),
        "{sessions:?}"
    );
}
