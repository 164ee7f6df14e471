//! Berth in Kubernetes mode on a real control plane (issue 22): etcd, kube-apiserver 1.37.2
//! and kube-controller-manager built from source, the shipped CRDs and RBAC unchanged, the
//! daemons with their ServiceAccount tokens, a BIRD router in a namespace. Each test names
//! the promise it checks; timings are printed (and reported in the closing notes), never
//! asserted, except the SIGTERM bound that the issue sets as behaviour.
//!
//! Needs root and the control plane (`./test.sh` builds it; `BERTH_CONTROLPLANE_BIN` names
//! it): without them these tests fail, they never skip.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::time::{Duration, Instant};

use common::kube::{Cluster, DaemonChecks, POOL, SIGTERM_BOUND, TIMEOUT, metric};
use testbed::incluster::SPEAKER_ADMIN;

/// Each session's (state, flaps, OPENs received) from the speaker's admin API.
fn sessions(speaker: &testbed::incluster::Daemon) -> Vec<(String, u64, u64)> {
    let body = speaker
        .http_get(SPEAKER_ADMIN, "/api/v1/peers")
        .expect("speaker admin API");
    let peers: serde_json::Value = serde_json::from_str(&body).unwrap();
    peers
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["state"].as_str().unwrap_or("").to_string(),
                p["flaps"].as_u64().unwrap_or(u64::MAX),
                p["received"]["open"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

fn in_pool(ip: std::net::IpAddr) -> bool {
    POOL.parse::<ipnetwork::IpNetwork>().unwrap().contains(ip)
}

/// A Service created before the controller starts and one created after both get an
/// address, the Eip status counts them, Events say so, the VIPs reach the router with the
/// node as next hop; a deleted Service's VIP is withdrawn and its finalizer removed; a
/// controller restart moves nothing; neither daemon is ever refused by RBAC.
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn services_get_addresses_reach_the_router_and_a_restart_moves_nothing() {
    let cluster = Cluster::start("kube-services", 1);
    cluster.create_service("before");
    let mut speaker = cluster.speaker(1);
    let started = Instant::now();
    let mut controller = cluster.controller(1);
    let (before, seen) = cluster.wait_address("before", &mut [&mut controller]);
    println!(
        "Service created before the controller: address {before} {:?} after the controller started",
        seen - started
    );
    assert!(in_pool(before), "{before} is not from {POOL}");

    let created = cluster.create_service("after");
    let (after, seen) = cluster.wait_address("after", &mut [&mut controller]);
    println!(
        "Service created after the controller: address {after} {:?} after create returned",
        seen - created
    );
    assert!(in_pool(after) && after != before, "{after} / {before}");
    let routed = cluster.wait_router(after, 1, true, &speaker);
    println!(
        "  and in the router's FIB {:?} after create returned",
        routed - created
    );
    cluster.wait_router(before, 1, true, &speaker);

    // The Eip status counts both (written by the coalescing pool writer).
    testbed::wait::until("the Eip status to count 2", TIMEOUT, || {
        Ok((cluster.pool_status()["usage"] == 2).then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}: {}", cluster.pool_status()));
    let used = &cluster.pool_status()["used"];
    assert_eq!(used[before.to_string()], "shop/before", "{used}");
    assert_eq!(used[after.to_string()], "shop/after", "{used}");
    let events = cluster.events_for("after");
    assert!(
        events.iter().any(|(reason, note)| reason == "AddressAllocated"
            && note.contains(&after.to_string())),
        "no AddressAllocated Event for shop/after: {events:?}"
    );
    let service = cluster.service("after").unwrap();
    assert_eq!(
        service["metadata"]["finalizers"][0], "berth.io/service-address",
        "{service}"
    );
    let page = controller
        .http_get("127.0.0.1:9091", "/metrics")
        .expect("controller metrics");
    assert_eq!(
        metric(&page, "berth_allocations_total"),
        Some(2.0),
        "{page}"
    );

    // Deleting a Service withdraws its VIP and the finalizer lets the object go.
    cluster.delete_service("after");
    cluster.wait_router(after, 1, false, &speaker);
    testbed::wait::until("shop/after to be gone", TIMEOUT, || {
        Ok(cluster.service("after").is_none().then_some(()))
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {:?}\n{}",
            cluster.service("after"),
            controller.log_tail()
        )
    });
    assert!(
        cluster.router_has(before, 1),
        "deleting one Service withdrew another"
    );

    // A controller restart moves nothing, and the new one serves.
    let took = controller.stop();
    assert!(took <= SIGTERM_BOUND, "controller took {took:?} to stop");
    controller.start_again().unwrap();
    let created = cluster.create_service("third");
    let (third, seen) = cluster.wait_address("third", &mut [&mut controller]);
    println!(
        "after a controller restart: a new Service got {third} {:?} after create returned",
        seen - created
    );
    assert_eq!(
        cluster.ingress("before"),
        vec![before],
        "the restart moved an address"
    );
    assert!(third != before && in_pool(third));
    testbed::wait::until("the Eip status to count 2 again", TIMEOUT, || {
        Ok((cluster.pool_status()["usage"] == 2).then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}: {}", cluster.pool_status()));
    cluster.wait_router(third, 1, true, &speaker);

    // The speaker wrote its session into the BgpPeer's status.
    let peer = cluster
        .get("/apis/network.kubesphere.io/v1alpha2/bgppeers/r-n1")
        .unwrap();
    assert_eq!(
        peer["status"]["nodesPeerStatus"]["n1"]["peerState"]["sessionState"], "ESTABLISHED",
        "no Established session in the BgpPeer status: {}",
        peer["status"]
    );
    let took = speaker.stop();
    assert!(took <= SIGTERM_BOUND, "speaker took {took:?} to stop");
    controller.assert_no_forbidden();
    speaker.assert_no_forbidden();
}

/// A 20 s API server outage: the speaker keeps announcing without resetting its session;
/// the controller survives it (a leader that cannot renew its Lease steps down and becomes a
/// candidate again, in-process); and a Service created after the outage gets its address and
/// reaches the router promptly (the watches re-list within seconds).
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn a_service_created_after_an_api_server_outage_gets_its_address() {
    let mut cluster = Cluster::start("kube-outage", 1);
    cluster.create_service("early");
    let mut speaker = cluster.speaker(1);
    let mut controller = cluster.controller(1);
    let (early, _) = cluster.wait_address("early", &mut [&mut controller]);
    cluster.wait_router(early, 1, true, &speaker);
    let sessions_before = sessions(&speaker);
    assert_eq!(sessions_before.len(), 1, "{sessions_before:?}");
    controller.assert_no_forbidden();
    speaker.assert_no_forbidden();

    cluster.cp.stop_apiserver();
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(20) {
        assert!(
            cluster.router_has(early, 1),
            "the router lost {early} {:?} into the outage\n{}",
            down.elapsed(),
            speaker.log_tail()
        );
        assert!(
            speaker.alive(),
            "the speaker died in the outage\n{}",
            speaker.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.cp.start_apiserver().unwrap();
    let back = Instant::now();
    let created = cluster.create_service("late");
    let (late, seen) = cluster.wait_address("late", &mut [&mut controller]);
    let routed = cluster.wait_router(late, 1, true, &speaker);
    println!(
        "after a 20 s API server outage: a new Service got {late} {:?} and was in the router's FIB {:?} after create returned ({:?} after the API server was ready again)",
        seen - created,
        routed - created,
        routed - back
    );
    assert!(
        controller.alive(),
        "the controller exited\n{}",
        controller.log_tail()
    );
    assert!(
        controller.log().contains("a candidate again")
            || controller.log().contains("caches filled"),
        "{}",
        controller.log_tail()
    );
    assert_ne!(late, early);
    assert!(cluster.router_has(early, 1));
    assert_eq!(cluster.ingress("early"), vec![early]);
    // The same session throughout: no flap, no second OPEN.
    assert_eq!(
        sessions(&speaker),
        sessions_before,
        "the session was reset during the outage"
    );
    // kube-apiserver answers 403 for a moment after a restart, while its RBAC cache fills:
    // counted, not a privilege defect.
    println!(
        "403 answers after the restart: controller {}, speaker {}",
        controller.forbidden().len(),
        speaker.forbidden().len()
    );
}

/// Two replicas: killing the leader with SIGKILL hands the Lease to the other within the
/// lease duration, and it serves new Services without moving existing ones.
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn a_second_replica_takes_over_when_the_leader_is_killed() {
    let cluster = Cluster::start("kube-leader", 1);
    cluster.create_service("one");
    let mut a = cluster.controller(1);
    let (one, _) = cluster.wait_address("one", &mut [&mut a]);
    assert_eq!(cluster.leader().as_deref(), Some("replica-1"));
    let mut b = cluster.controller(2);
    b.wait_log("waiting to lead", TIMEOUT).unwrap();
    a.kill();
    let killed = Instant::now();
    testbed::wait::until("replica-2 to lead", Duration::from_secs(60), || {
        Ok((cluster.leader().as_deref() == Some("replica-2")).then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", b.log_tail()));
    println!(
        "leader SIGKILLed: replica-2 holds the Lease {:?} later",
        killed.elapsed()
    );
    let created = cluster.create_service("two");
    let (two, seen) = cluster.wait_address("two", &mut [&mut b]);
    println!(
        "new Service served by replica-2: {two} {:?} after create ({:?} after the kill)",
        seen - created,
        seen - killed
    );
    assert_ne!(two, one);
    assert_eq!(
        cluster.ingress("one"),
        vec![one],
        "the take-over moved an address"
    );
    b.assert_no_forbidden();
}

/// Each daemon exits within 2 s of SIGTERM in every state: waiting for the Lease, leading,
/// with its caches unfilled because the API server is down, and the speaker both with an
/// Established session and with no API server.
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn sigterm_stops_each_daemon_within_two_seconds_in_every_state() {
    let mut cluster = Cluster::start("kube-sigterm", 1);
    cluster.create_service("svc");
    let mut speaker = cluster.speaker(1);
    let mut leader = cluster.controller(1);
    let (vip, _) = cluster.wait_address("svc", &mut [&mut leader]);
    cluster.wait_router(vip, 1, true, &speaker);
    let mut follower = cluster.controller(2);
    follower.wait_log("waiting to lead", TIMEOUT).unwrap();

    let mut report = Vec::new();
    let mut check = |state: &str, daemon: &mut testbed::incluster::Daemon| {
        let took = daemon.stop();
        report.push(format!("{state}: {took:?}"));
        assert!(
            took <= SIGTERM_BOUND,
            "{state}: {took:?}\n{}",
            daemon.log_tail()
        );
        assert!(
            daemon.log().contains("stopping") || daemon.log().contains("shutting down"),
            "{state}: no log line says it stops\n{}",
            daemon.log_tail()
        );
    };
    check("controller waiting for the Lease", &mut follower);
    check("controller leading", &mut leader);
    check("speaker with an Established session", &mut speaker);

    cluster.cp.stop_apiserver();
    let mut controller = cluster.controller(3);
    let mut speaker = cluster.speaker(1);
    controller.wait_log("waiting to lead", TIMEOUT).unwrap();
    check("controller with the API server down", &mut controller);
    check("speaker with the API server down", &mut speaker);

    // Without leader election it goes straight to filling its caches, which cannot fill.
    let mut unfilled = cluster.controller_with(4, &["--no-leader-election"]);
    unfilled
        .wait_log("waiting for the caches", TIMEOUT)
        .unwrap();
    check("controller with unfilled caches", &mut unfilled);
    println!("SIGTERM to exit: {}", report.join(", "));
}

/// The class rule is one rule in both binaries (issue 14 item 19): with `--class
/// example.com/lb` on the controller and the speaker, a Service of that class gets an address
/// and reaches the router, and one of Berth's default class is left alone by both.
#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn a_changed_class_is_allocated_and_announced_and_the_default_class_is_left_alone() {
    let cluster = Cluster::start("kube-class", 1);
    let class = ["--class", "example.com/lb"];
    let speaker = cluster.speaker_with(1, &class);
    let mut controller = cluster.controller_with(1, &class);
    cluster.create_service_of_class("default-class", "berth.io/lb");
    cluster.create_service_of_class("own-class", "example.com/lb");
    let (vip, _) = cluster.wait_address("own-class", &mut [&mut controller]);
    cluster.wait_router(vip, 1, true, &speaker);
    // Evidence the controller has seen the other one: the Service list holds both and the
    // controller reconciled after own-class; its status stays empty and no finalizer is set.
    let other = cluster.service("default-class").unwrap();
    assert_eq!(
        other["status"]["loadBalancer"],
        serde_json::json!({}),
        "{other}"
    );
    assert!(other["metadata"]["finalizers"].is_null(), "{other}");
    controller.assert_no_forbidden();
    speaker.assert_no_forbidden();
}
