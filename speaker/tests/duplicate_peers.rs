//! Issue 14 item 9: two `BgpPeer`s for one neighbour on a node. The session stays with the
//! one that has it — the one running it, else the one whose status says Established on this
//! node, else the older — and the newcomer is reported, whatever the names. The router-side
//! proof (the session is not reset) is `testbed/tests/duplicate_peer.rs`.

mod common;

use std::collections::BTreeMap;

use common::*;
use speaker::desired::desired_after;
use speaker::{ClusterState, Object};

fn base() -> Vec<Object> {
    vec![
        node("n1", &[], Some(true), "10.0.0.1"),
        conf(65001, ""),
        peer("z-original", "10.0.0.254", 65000, ""),
    ]
}

fn state(extra: Vec<Object>) -> ClusterState {
    let mut objects = base();
    objects.extend(extra);
    ClusterState::from_objects(objects)
}

/// Regression: the duplicate whose name sorts first took the session from the one running
/// it, so the router saw the session reset.
#[test]
fn a_duplicate_that_sorts_first_does_not_take_the_running_session() {
    let before = desired_after(&ctx("n1"), &state(vec![]), &BTreeMap::new());
    assert_eq!(before.peers[&ip("10.0.0.254")].name, "z-original");
    let dup = peer("a-duplicate", "10.0.0.254", 65009, "");
    let after = desired_after(&ctx("n1"), &state(vec![dup]), &before.peer_names());
    let kept = &after.peers[&ip("10.0.0.254")];
    assert_eq!((kept.name.as_str(), kept.peer_as), ("z-original", 65000));
    let problem = after
        .problems
        .iter()
        .find(|p| p.name == "a-duplicate")
        .expect("the newcomer is reported");
    assert!(
        problem
            .message
            .contains("already configured by BgpPeer z-original, which keeps the session"),
        "{problem:?}"
    );
    assert!(after.problems.iter().all(|p| p.name != "z-original"));
}

/// After a speaker restart (nothing running yet) the status and the creation time decide, so
/// the session comes back to the same object.
#[test]
fn without_a_running_session_established_then_older_wins() {
    let established = peer("z-established", "10.0.0.253", 65000, "");
    let Object::BgpPeer(mut established) = established else {
        unreachable!()
    };
    established.status = Some(
        serde_json::from_value(serde_json::json!({"nodesPeerStatus": {"n1": {
            "peerState": {"sessionState": "ESTABLISHED"}}}}))
        .expect("status"),
    );
    let d = desired_after(
        &ctx("n1"),
        &state(vec![
            Object::BgpPeer(established),
            peer("a-new", "10.0.0.253", 65009, ""),
        ]),
        &BTreeMap::new(),
    );
    assert_eq!(d.peers[&ip("10.0.0.253")].name, "z-established");

    let older = |name: &str, year: u32| {
        let Object::BgpPeer(mut p) = peer(name, "10.0.0.252", 65000, "") else {
            unreachable!()
        };
        p.metadata.creation_timestamp = Some(
            serde_json::from_value(serde_json::json!(format!("{year}-01-01T00:00:00Z")))
                .expect("time"),
        );
        Object::BgpPeer(p)
    };
    let d = desired_after(
        &ctx("n1"),
        &state(vec![older("z-old", 2024), older("a-young", 2025)]),
        &BTreeMap::new(),
    );
    assert_eq!(d.peers[&ip("10.0.0.252")].name, "z-old");
    assert!(d.problems.iter().any(|p| p.name == "a-young"));
}
