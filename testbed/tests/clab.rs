//! The shipped containerlab topologies come up as namespace labs with their routers; with GoBGP
//! standing in for the Berth speaker on the nodes, tor-pair proves ECMP end to end.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::{SESSION_TIMEOUT, ip, lab_file, net, vip4, vip6};
use testbed::clab::{ClabLab, NodeKind};
use testbed::router::gobgp::Gobgp;
use testbed::router::{Neighbor, Router, RouterConfig, SessionState};
use testbed::traffic::{Protocol, Responder, spread};

/// Node `n` of tor-pair as a GoBGP speaker: IPv4 and IPv6 sessions to both ToRs.
fn tor_pair_speaker(n: usize) -> RouterConfig {
    let mut config = RouterConfig::new(
        &format!("node{n}"),
        format!("10.255.1.{n}").parse().unwrap(),
        65001,
    )
    .announce(vip4())
    .announce(vip6());
    for tor in 1..=2 {
        config = config
            .neighbor(Neighbor::new(ip(&format!("10.{tor}.{n}.1")), 65000))
            .neighbor(Neighbor::new(ip(&format!("fd00:{tor}:{n}::1")), 65000));
    }
    config.install_routes = false;
    config
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn tor_pair_comes_up_and_spreads_a_vip_over_three_speakers() {
    let clab = ClabLab::up(&lab_file("tor-pair.clab.yml")).unwrap();
    assert_eq!(clab.name(), "tor-pair");
    assert!(matches!(clab.kinds()["tor1"], NodeKind::Bird(_)));
    assert!(matches!(clab.kinds()["tor2"], NodeKind::Frr(_)));
    assert_eq!(clab.kinds()["node1"], NodeKind::Host);
    let lab = clab.lab();
    assert_eq!(lab.namespaces().len(), 6);

    // Before any speaker: tor1 has its six sessions configured, none established.
    let sessions = clab.router("tor1").unwrap().sessions().unwrap();
    assert_eq!(sessions.len(), 6, "{sessions:?}");
    assert!(
        sessions
            .iter()
            .all(|s| s.state != SessionState::Established)
    );

    let addresses: Vec<SocketAddr> = vec![(vip4().ip(), 80).into(), (vip6().ip(), 80).into()];
    let mut responders = Vec::new();
    let mut speakers = Vec::new();
    for n in 1..=3 {
        let node = format!("node{n}");
        lab.add_address(&node, "lo", vip4()).unwrap();
        lab.add_address(&node, "lo", vip6()).unwrap();
        let netns = lab.netns(&node).unwrap();
        responders.push(Responder::start(netns, &node, &addresses).unwrap());
        speakers.push(Gobgp::start(netns, &tor_pair_speaker(n)).unwrap());
    }
    for speaker in &speakers {
        speaker.wait_established(4, SESSION_TIMEOUT).unwrap();
    }

    let expected4: BTreeSet<_> = (1..=3).map(|n| ip(&format!("10.1.{n}.2"))).collect();
    let expected4_tor2: BTreeSet<_> = (1..=3).map(|n| ip(&format!("10.2.{n}.2"))).collect();
    for (tor, expected) in [("tor1", &expected4), ("tor2", &expected4_tor2)] {
        let router = clab.router(tor).unwrap();
        testbed::wait::until(&format!("three-way ECMP on {tor}"), SESSION_TIMEOUT, || {
            let fib = router.fib()?;
            let v6 = fib.route(vip6()).map_or(0, |r| r.next_hops.len());
            Ok((fib.gateways(vip4()) == *expected && v6 == 3).then_some(()))
        })
        .unwrap();
    }

    let client = lab.netns("client").unwrap();
    for vip in [vip4(), vip6()] {
        let target: SocketAddr = (vip.ip(), 80).into();
        let result = spread(client, Protocol::Tcp, target, 300, Duration::from_secs(2)).unwrap();
        assert_eq!(result.failures, 0, "{target}: {result:?}");
        assert!(
            result.fair_over(&["node1", "node2", "node3"], 0.15),
            "{target}: {result:?}"
        );
    }
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn leaf_spine_converges_with_ecmp_across_both_spines() {
    let clab = ClabLab::up(&lab_file("leaf-spine.clab.yml")).unwrap();
    for spine in ["spine1", "spine2"] {
        clab.router(spine)
            .unwrap()
            .wait_established(2, SESSION_TIMEOUT)
            .unwrap();
    }
    let cases = [
        ("leaf1", "10.2.9.0/24", ["10.0.11.1", "10.0.12.1"]),
        ("leaf2", "10.1.1.0/24", ["10.0.21.1", "10.0.22.1"]),
    ];
    for (leaf, prefix, spines) in cases {
        let router = clab.router(leaf).unwrap();
        let expected: BTreeSet<_> = spines.iter().map(|s| ip(s)).collect();
        testbed::wait::until(
            &format!("{prefix} via both spines on {leaf}"),
            SESSION_TIMEOUT,
            || Ok((router.fib()?.gateways(net(prefix)) == expected).then_some(())),
        )
        .unwrap();
    }

    let lab = clab.lab();
    let target: SocketAddr = "10.1.1.2:8080".parse().unwrap();
    let _responder = Responder::start(lab.netns("node1").unwrap(), "node1", &[target]).unwrap();
    let result = spread(
        lab.netns("client").unwrap(),
        Protocol::Tcp,
        target,
        20,
        Duration::from_secs(2),
    )
    .unwrap();
    assert_eq!(result.count("node1"), 20, "{result:?}");
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn a_broken_topology_fails_with_a_clear_error_and_leaves_nothing_behind() {
    let dir = std::env::temp_dir().join(format!("clab-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.clab.yml");
    std::fs::write(
        &file,
        "name: bad\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - endpoints: [\"a:eth1\", \"b:this-name-is-too-long\"]\n",
    )
    .unwrap();
    let before: BTreeSet<_> = std::fs::read_dir("/run/netns")
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let err = ClabLab::up(&file).unwrap_err().to_string();
    assert!(err.contains("this-name-is-too-long"), "{err}");
    let after: BTreeSet<_> = std::fs::read_dir("/run/netns")
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let ours = format!("bt-{}-", std::process::id());
    let leaked: Vec<_> = after
        .difference(&before)
        .filter(|n| n.to_string_lossy().starts_with(&ours) && n.to_string_lossy().ends_with("-a"))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
