//! ECMP without Berth: three nodes announce the same VIP (IPv4 /32 and IPv6 /128) with next hop
//! self; the router's kernel FIB holds one route with three next hops, and connections from the
//! client reach all three nodes.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::nodes::responders;
use common::*;
use testbed::Lab;
use testbed::router::Router;
use testbed::router::bird::Bird;
use testbed::router::frr::Frr;
use testbed::router::gobgp::Gobgp;
use testbed::traffic::{Protocol, spread};

const NODES: usize = 3;
const PROBES: usize = 300;

/// Waits for a three-way route in the router's FIB, then proves the spread with real traffic.
fn assert_ecmp(lab: &Lab, router: &dyn Router) {
    let expected4: std::collections::BTreeSet<_> =
        (1..=NODES).map(|i| link_addresses(i).1).collect();
    testbed::wait::until("three next hops in the kernel FIB", SESSION_TIMEOUT, || {
        let fib = router.fib()?;
        // IPv6 next hops may be the nodes' global or link-local addresses (FRR prefers the
        // link-local one BIRD sends along): count one per node link.
        let links6: std::collections::BTreeSet<u32> = fib
            .route(vip6())
            .map(|route| route.next_hops.iter().map(|hop| hop.interface).collect())
            .unwrap_or_default();
        let hops6 = fib.route(vip6()).map_or(0, |route| route.next_hops.len());
        Ok(
            (fib.gateways(vip4()) == expected4 && links6.len() == NODES && hops6 == NODES)
                .then_some(()),
        )
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nFIB: {:?}\nBGP: {:?}",
            router.fib(),
            router.bgp_table()
        )
    });
    assert_eq!(router.bgp_table().unwrap().next_hops(vip4()), expected4);

    let client = lab.netns("c").unwrap();
    let names = ["n1", "n2", "n3"];
    for (protocol, vip) in [
        (Protocol::Tcp, vip4()),
        (Protocol::Tcp, vip6()),
        (Protocol::Udp, vip4()),
        (Protocol::Udp, vip6()),
    ] {
        let target: SocketAddr = (vip.ip(), 80).into();
        let result = spread(client, protocol, target, PROBES, Duration::from_secs(2)).unwrap();
        assert_eq!(result.failures, 0, "{protocol:?} {target}: {result:?}");
        // A fair share: each of three nodes gets at least 15 % of 300 probes (expected 33 %).
        assert!(
            result.fair_over(&names, 0.15),
            "{protocol:?} {target}: {result:?}"
        );
    }
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn bird_router_spreads_a_vip_over_three_gobgp_nodes() {
    let lab = star("ecmp-bird", NODES);
    let _responders = responders(&lab);
    let router = Bird::start(lab.netns("r").unwrap(), &router_config(NODES)).unwrap();
    let _nodes: Vec<Gobgp> = (1..=NODES)
        .map(|i| {
            let netns = lab.netns(&format!("n{i}")).unwrap();
            Gobgp::start(netns, &node_config(i, &[vip4(), vip6()])).unwrap()
        })
        .collect();
    router.wait_established(2 * NODES, SESSION_TIMEOUT).unwrap();
    assert_ecmp(&lab, &router);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn frr_router_spreads_a_vip_over_three_bird_nodes() {
    let lab = star("ecmp-frr", NODES);
    let _responders = responders(&lab);
    let router = Frr::start(lab.netns("r").unwrap(), &router_config(NODES)).unwrap();
    let _nodes: Vec<Bird> = (1..=NODES)
        .map(|i| {
            let netns = lab.netns(&format!("n{i}")).unwrap();
            Bird::start(netns, &node_config(i, &[vip4(), vip6()])).unwrap()
        })
        .collect();
    router.wait_established(2 * NODES, SESSION_TIMEOUT).unwrap();
    assert_ecmp(&lab, &router);
}
