//! Issue 14 item 6 on the speaker's side: of two overlapping Eips, an address is announced
//! as the pool the controller keeps says (the one whose status lists it), not as the one whose
//! name sorts first. A layer2 Eip added over a bgp pool in use, named to sort first, must not
//! withdraw the pool's addresses or change their attributes.

mod common;

use common::*;
use speaker::desired::Reason;
use speaker::{ClusterState, Object, desired};

fn objects(extra: Vec<Object>) -> Vec<Object> {
    let mut objects = vec![
        node("n1", &[], Some(true), "10.0.0.1"),
        conf(65001, ""),
        peer("tor", "10.0.0.254", 65000, ""),
        eip(
            "b-in-use",
            "192.0.2.0/24",
            "bgp",
            "  advertisement: {communities: [\"65000:7\"]}\nstatus: {ready: true, used: {\"192.0.2.10\": web/a}}\n",
        ),
        service("web", "a", &["192.0.2.10"], false),
        slice("web", "a", "a-1", &[("n1", Some(true))]),
    ];
    objects.extend(extra);
    objects
}

/// Regression: the first pool by name decided, so a layer2 newcomer withdrew the address.
#[test]
fn a_newcomer_that_sorts_first_changes_no_announcement() {
    let before = desired(&ctx("n1"), &ClusterState::from_objects(objects(vec![])));
    let attrs = before.announce[&ip("192.0.2.10")].clone();
    for newcomer in [
        eip(
            "a-layer2",
            "192.0.2.0/16",
            "layer2",
            "status: {ready: false}\n",
        ),
        eip(
            "a-other-communities",
            "192.0.0.0/16",
            "bgp",
            "  advertisement: {communities: [\"65000:9\"]}\n",
        ),
    ] {
        let after = desired(
            &ctx("n1"),
            &ClusterState::from_objects(objects(vec![newcomer])),
        );
        assert_eq!(
            after.announce.get(&ip("192.0.2.10")),
            Some(&attrs),
            "{:?}",
            after.vips
        );
        let report = after
            .vips
            .iter()
            .find(|v| v.address == ip("192.0.2.10"))
            .expect("report");
        assert_eq!(report.pool.as_deref(), Some("b-in-use"));
        assert!(
            matches!(report.reason, Reason::ClusterEndpoints { .. }),
            "{report:?}"
        );
    }
}
