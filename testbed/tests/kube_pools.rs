//! Issue 14 items 3, 6 and 14 on a real control plane with the real `berth-controller`:
//!
//! - an Eip that overlaps the pool in use, named to sort first, is refused (Valid=False,
//!   PoolOverlaps, an InvalidPool Event) and holds nothing; the Service keeps its address and
//!   the pool in use keeps it in its status, across a leader change (SIGKILL) and a restart;
//! - an Eip with `protocol: bgp` and an `interface` is taken by the shipped CRD and reported
//!   (Valid=True, FieldsIgnored);
//! - an Eip whose prefix has host bits set is refused (Valid=False, InvalidPool).
//!
//! Each refusal is also one line in the controller's log. Needs root and the control plane
//! binary (`BERTH_CONTROLPLANE_BIN`).

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::kube::{Cluster, DaemonChecks, TIMEOUT, reasons_and_notes};
use serde_json::Value;
use testbed::incluster::Daemon;

fn eip(cluster: &Cluster, name: &str) -> Value {
    cluster
        .get(&format!("/apis/network.kubesphere.io/v1alpha2/eips/{name}"))
        .unwrap_or(Value::Null)
}

/// The Eip's `Valid` condition: (status, reason, message).
fn valid(cluster: &Cluster, name: &str) -> Option<(String, String, String)> {
    let e = eip(cluster, name);
    let c = e["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Valid")?
        .clone();
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Some((s("status"), s("reason"), s("message")))
}

fn wait_valid(cluster: &Cluster, name: &str, reason: &str, controller: &Daemon) -> String {
    testbed::wait::until(
        &format!("{name}: Valid condition {reason}"),
        TIMEOUT,
        || {
            Ok(valid(cluster, name)
                .filter(|(_, r, _)| r == reason)
                .map(|(_, _, m)| m))
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {}\n{}", eip(cluster, name), controller.log_tail()))
}

fn eip_events(cluster: &Cluster, name: &str) -> Vec<(String, String)> {
    let list = cluster
        .get(&format!(
            "/apis/events.k8s.io/v1/events?fieldSelector=regarding.name%3D{name}"
        ))
        .unwrap_or(Value::Null);
    reasons_and_notes(&list)
}

/// Nothing moved: `one` holds `address`, the pool in use lists it, the overlapping Eip holds
/// nothing and is still refused.
fn nothing_moved(cluster: &Cluster, address: IpAddr, when: &str) {
    assert_eq!(
        cluster.ingress("one"),
        vec![address],
        "{when}: the address moved"
    );
    let pool = cluster.pool_status();
    assert_eq!(
        pool["used"][address.to_string()].as_str(),
        Some("shop/one"),
        "{when}: the pool in use lost it: {pool}"
    );
    assert_eq!(pool["ready"], true, "{when}: {pool}");
    let overlap = eip(cluster, "a-overlap");
    assert_eq!(overlap["status"]["ready"], false, "{when}: {overlap}");
    assert!(
        overlap["status"]["used"]
            .as_object()
            .is_none_or(|u| u.is_empty()),
        "{when}: the refused pool holds something: {overlap}"
    );
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn an_overlapping_pool_moves_nothing_across_leader_changes() {
    let cluster = Cluster::start("kube-overlap", 1);
    cluster.create_service("one");
    let mut first = cluster.controller(1);
    let (address, _) = cluster.wait_address("one", &mut [&mut first]);

    // common::kube::POOL is 10.0.0.96/28; this one covers it and sorts first.
    cluster
        .cp
        .apply(
            "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: a-overlap}\n\
             spec: {address: 10.0.0.96/27}\n---\n\
             apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: b-bgp-iface}\n\
             spec: {address: 10.0.7.0/24, protocol: bgp, interface: eth0}\n---\n\
             apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: c-host-bits}\n\
             spec: {address: 10.0.8.7/24}\n",
        )
        .unwrap();
    let message = wait_valid(&cluster, "a-overlap", "PoolOverlaps", &first);
    assert!(message.contains("\"pool\""), "{message}");
    testbed::wait::until("an InvalidPool event on a-overlap", TIMEOUT, || {
        Ok(eip_events(&cluster, "a-overlap")
            .iter()
            .any(|(reason, _)| reason == "InvalidPool")
            .then_some(()))
    })
    .unwrap();
    // And a log line, once.
    first.wait_log("PoolOverlaps", TIMEOUT).unwrap();
    let ignored = wait_valid(&cluster, "b-bgp-iface", "FieldsIgnored", &first);
    assert!(ignored.contains("spec.interface"), "{ignored}");
    assert_eq!(eip(&cluster, "b-bgp-iface")["status"]["ready"], true);
    let host_bits = wait_valid(&cluster, "c-host-bits", "InvalidPool", &first);
    assert!(host_bits.contains("host bits"), "{host_bits}");
    nothing_moved(&cluster, address, "after the overlapping pool came");

    // A leader change: a second replica waits, the leader is killed, the new one rebuilds.
    let mut second = cluster.controller(2);
    second.wait_log("waiting to lead", TIMEOUT).unwrap();
    first.kill();
    testbed::wait::until("replica-2 to lead", Duration::from_secs(60), || {
        Ok((cluster.leader().as_deref() == Some("replica-2")).then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", second.log_tail()));
    // Evidence the new leader has rebuilt and works: it serves a new Service.
    cluster.create_service("two");
    let (two, _) = cluster.wait_address("two", &mut [&mut second]);
    // Pool statuses are written in batches: wait for it to list the new Service.
    testbed::wait::until("the pool in use lists two", TIMEOUT, || {
        Ok(cluster.pool_status()["used"][two.to_string()]
            .is_string()
            .then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}: {}\n{}", cluster.pool_status(), second.log_tail()));
    nothing_moved(&cluster, address, "after the leader change");

    // A restart of the only replica.
    second.kill();
    first.start_again().unwrap();
    cluster.create_service("three");
    cluster.wait_address("three", &mut [&mut first]);
    nothing_moved(&cluster, address, "after a restart");
    assert_eq!(valid(&cluster, "a-overlap").unwrap().1, "PoolOverlaps");
    first.assert_no_forbidden();
}
