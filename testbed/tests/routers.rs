//! Each router driver starts in a namespace, peers with another daemon, and reports sessions,
//! BGP table and kernel FIB in structured form.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::time::Duration;

use common::*;
use testbed::router::bird::Bird;
use testbed::router::exabgp::Exabgp;
use testbed::router::frr::Frr;
use testbed::router::gobgp::Gobgp;
use testbed::router::{Neighbor, Router, RouterConfig, SessionState};

/// Waits until `router`'s BGP table has `prefix` with exactly `hops` next hops.
fn wait_route(router: &dyn Router, prefix: ipnetwork::IpNetwork, hops: usize) {
    testbed::wait::until(
        &format!("{prefix} with {hops} next hops"),
        SESSION_TIMEOUT,
        || Ok((router.bgp_table()?.next_hops(prefix).len() == hops).then_some(())),
    )
    .unwrap();
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn bird_router_learns_from_a_gobgp_node_over_ipv4_and_ipv6() {
    let lab = star("bird-gobgp", 1);
    let bird = Bird::start(lab.netns("r").unwrap(), &router_config(1)).unwrap();
    let node = Gobgp::start(lab.netns("n1").unwrap(), &node_config(1, &[vip4(), vip6()])).unwrap();

    let sessions = bird.wait_established(2, SESSION_TIMEOUT).unwrap();
    assert!(sessions.iter().all(|s| s.peer.is_some()), "{sessions:?}");
    node.wait_established(2, SESSION_TIMEOUT).unwrap();
    wait_route(&bird, vip4(), 1);
    wait_route(&bird, vip6(), 1);
    let (_, n4, _, n6) = link_addresses(1);
    assert_eq!(bird.bgp_table().unwrap().next_hops(vip4()), [n4].into());
    assert_eq!(bird.bgp_table().unwrap().next_hops(vip6()), [n6].into());
    let sessions = bird.sessions().unwrap();
    assert_eq!(
        sessions.iter().map(|s| s.prefixes_received).sum::<u64>(),
        2,
        "{sessions:?}"
    );

    let fib = bird.fib().unwrap();
    assert_eq!(fib.gateways(vip4()), [n4].into(), "{fib:?}");
    assert_eq!(fib.gateways(vip6()), [n6].into(), "{fib:?}");
    assert_eq!(fib.route(vip4()).unwrap().protocol, "bird");
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn frr_router_learns_from_a_bird_node_and_survives_a_restart() {
    let lab = star("frr-bird", 1);
    let mut frr = Frr::start(lab.netns("r").unwrap(), &router_config(1)).unwrap();
    let node = Bird::start(lab.netns("n1").unwrap(), &node_config(1, &[vip4(), vip6()])).unwrap();

    frr.wait_established(2, SESSION_TIMEOUT).unwrap();
    node.wait_established(2, SESSION_TIMEOUT).unwrap();
    wait_route(&frr, vip4(), 1);
    wait_route(&frr, vip6(), 1);
    let (_, n4, _, _) = link_addresses(1);
    testbed::wait::until("FRR installs the VIP", SESSION_TIMEOUT, || {
        Ok((frr.fib()?.gateways(vip4()) == [n4].into()).then_some(()))
    })
    .unwrap();

    frr.restart().unwrap();
    frr.wait_established(2, SESSION_TIMEOUT).unwrap();
    wait_route(&frr, vip4(), 1);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn gobgp_router_and_exabgp_node_exchange_routes_through_the_api() {
    let lab = star("gobgp-exabgp", 1);
    let (r4, n4, _, _) = link_addresses(1);
    let router = Gobgp::start(
        lab.netns("r").unwrap(),
        &RouterConfig::new("r", "10.255.0.1".parse().unwrap(), ROUTER_AS)
            .neighbor(Neighbor::new(n4, NODE_AS))
            .announce(net("192.0.2.0/24")),
    )
    .unwrap();
    let mut config = RouterConfig::new("n1", "10.255.1.1".parse().unwrap(), NODE_AS)
        .neighbor(Neighbor::new(r4, ROUTER_AS).local_address(n4));
    config = config.announce(vip4());
    let mut exabgp = Exabgp::start(lab.netns("n1").unwrap(), &config).unwrap();

    router.wait_established(1, SESSION_TIMEOUT).unwrap();
    let up = exabgp.wait_established(1, SESSION_TIMEOUT);
    assert!(up.is_ok(), "{up:?}\n{}", exabgp.log());
    wait_route(&router, vip4(), 1);
    assert_eq!(router.bgp_table().unwrap().next_hops(vip4()), [n4].into());
    // ExaBGP reports what it received.
    wait_route(&exabgp, net("192.0.2.0/24"), 1);

    let extra = net("10.0.0.101/32");
    exabgp.announce(extra).unwrap();
    wait_route(&router, extra, 1);
    exabgp.withdraw(extra).unwrap();
    testbed::wait::until("withdrawal", SESSION_TIMEOUT, || {
        Ok((!router.bgp_table()?.routes.contains_key(&extra)).then_some(()))
    })
    .unwrap();
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn md5_passwords_decide_whether_a_session_comes_up() {
    let lab = star("md5", 2);
    let (_, n1, _, _) = link_addresses(1);
    let (_, n2, _, _) = link_addresses(2);
    let router = Frr::start(
        lab.netns("r").unwrap(),
        &RouterConfig::new("r", "10.255.0.1".parse().unwrap(), ROUTER_AS)
            .neighbor(Neighbor::new(n1, NODE_AS).password("right"))
            .neighbor(Neighbor::new(n2, NODE_AS).password("right")),
    )
    .unwrap();
    let good = {
        let mut c = node_config(1, &[]);
        c.neighbors.truncate(1);
        c.neighbors[0].password = Some("right".into());
        Gobgp::start(lab.netns("n1").unwrap(), &c).unwrap()
    };
    let bad = {
        let mut c = node_config(2, &[]);
        c.neighbors.truncate(1);
        c.neighbors[0].password = Some("wrong".into());
        Gobgp::start(lab.netns("n2").unwrap(), &c).unwrap()
    };
    good.wait_established(1, SESSION_TIMEOUT).unwrap();
    // Give the wrong password several connect-retry rounds.
    std::thread::sleep(Duration::from_secs(3));
    let sessions = router.sessions().unwrap();
    let state_of = |peer| {
        sessions
            .iter()
            .find(|s| s.peer == Some(peer))
            .unwrap()
            .state
            .clone()
    };
    assert_eq!(state_of(n1), SessionState::Established);
    assert_ne!(state_of(n2), SessionState::Established);
    assert!(
        bad.sessions()
            .unwrap()
            .iter()
            .all(|s| s.state != SessionState::Established)
    );
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn frr_starts_bfdd_for_bfd_neighbours() {
    let lab = star("frr-bfd", 1);
    let (_, n4, _, _) = link_addresses(1);
    let frr = Frr::start(
        lab.netns("r").unwrap(),
        &RouterConfig::new("r", "10.255.0.1".parse().unwrap(), ROUTER_AS)
            .neighbor(Neighbor::new(n4, NODE_AS).bfd()),
    )
    .unwrap();
    let peers = frr.vtysh("show bfd peers json").unwrap();
    let peers: serde_json::Value = serde_json::from_str(&peers).unwrap();
    let peers = peers.as_array().unwrap();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0]["peer"], n4.to_string());
}
