//! The interop suites' star lab seen from both ends: the three nodes' Berth speakers and
//! responders, and what the router under test reports about them (its FIB, and what only
//! one daemon tells: BIRD's last errors, FRR's stale paths and R bit).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnetwork::IpNetwork;
use testbed::Lab;
use testbed::router::Router;
use testbed::router::bird::Bird;
use testbed::router::frr::Frr;
use testbed::traffic::{Protocol, Responder, spread};

use super::berth::{BerthPeer, BerthSpeaker};
use super::{NODE_AS, ROUTER_AS, SESSION_TIMEOUT, link_addresses, vip4, vip6};

/// Nodes of the interop star.
pub const NODES: usize = 3;

/// Node `i`'s Berth speaker: eBGP to the router over IPv4 and IPv6, announcing both VIPs.
pub fn speaker(lab: &Lab, i: usize, password: Option<&str>) -> BerthSpeaker {
    speaker_with(lab, i, password, false)
}

/// Same, started `--restarting` when `restarting` (the R bit in its OPENs).
pub fn speaker_with(lab: &Lab, i: usize, password: Option<&str>, restarting: bool) -> BerthSpeaker {
    speaker_from(lab, i, |peer| {
        peer.password(password).restarting(restarting)
    })
}

/// Node `i`'s speaker without graceful restart: a lost session loses its routes at once.
pub fn speaker_without_gr(lab: &Lab, i: usize) -> BerthSpeaker {
    speaker_from(lab, i, BerthPeer::without_graceful_restart)
}

/// Node `i`'s speaker with both sessions shaped by `peer`.
pub fn speaker_from(lab: &Lab, i: usize, peer: impl Fn(BerthPeer) -> BerthPeer) -> BerthSpeaker {
    let (r4, n4, r6, n6) = link_addresses(i);
    let peers = vec![
        peer(BerthPeer::new(r4, n4, ROUTER_AS)),
        peer(BerthPeer::new(r6, n6, ROUTER_AS)),
    ];
    BerthSpeaker::start(
        lab.netns(&format!("n{i}")).unwrap(),
        NODE_AS,
        format!("10.255.1.{i}").parse().unwrap(),
        peers,
        vec![vip4(), vip6()],
    )
}

/// A responder on every node, answering on both VIPs (added to the node's loopback), port 80.
pub fn responders(lab: &Lab) -> Vec<Responder> {
    (1..=NODES)
        .map(|i| {
            let node = format!("n{i}");
            lab.add_address(&node, "lo", vip4()).unwrap();
            lab.add_address(&node, "lo", vip6()).unwrap();
            let addresses: Vec<SocketAddr> =
                vec![(vip4().ip(), 80).into(), (vip6().ip(), 80).into()];
            Responder::start(lab.netns(&node).unwrap(), &node, &addresses).unwrap()
        })
        .collect()
}

/// Opens `probes` TCP connections from the client `c` to each VIP, port 80: none may fail,
/// and each of the three nodes must answer at least `min_share` of them.
pub fn assert_fair_spread(lab: &Lab, probes: usize, min_share: f64) {
    for vip in [vip4(), vip6()] {
        let target: SocketAddr = (vip.ip(), 80).into();
        let result = spread(
            lab.netns("c").unwrap(),
            Protocol::Tcp,
            target,
            probes,
            Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(result.failures, 0, "{target}: {result:?}");
        assert!(
            result.fair_over(&["n1", "n2", "n3"], min_share),
            "{target}: {result:?}"
        );
    }
}

/// The nodes whose links carry the router's next hops for `vip` (by interface: IPv6 next hops
/// may be link-local).
pub fn fib_links(router: &dyn Router, vip: IpNetwork) -> BTreeSet<u32> {
    router
        .fib()
        .unwrap()
        .route(vip)
        .map(|route| route.next_hops.iter().map(|hop| hop.interface).collect())
        .unwrap_or_default()
}

/// Waits until the router's FIB has `count` next hops (links) for `vip`.
pub fn wait_fib_links(router: &dyn Router, vip: IpNetwork, count: usize) {
    testbed::wait::until(
        &format!("{count} next hops for {vip}"),
        SESSION_TIMEOUT,
        || Ok((fib_links(router, vip).len() == count).then_some(())),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nFIB: {:?}\nBGP: {:?}",
            router.fib(),
            router.bgp_table()
        )
    });
}

/// The BIRD protocols' `Last error:` lines, by neighbour address (`Socket: Connection
/// closed`, `Received: <NOTIFICATION received>`, `BGP Error: <NOTIFICATION sent>`).
pub fn bird_last_errors(router: &Bird) -> BTreeMap<IpAddr, String> {
    let text = router.birdc(&["show", "protocols", "all"]).unwrap();
    let mut out = BTreeMap::new();
    let mut neighbor = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(addr) = line.strip_prefix("Neighbor address:") {
            neighbor = addr.trim().parse().ok();
        } else if let Some(error) = line.strip_prefix("Last error:") {
            if let Some(addr) = neighbor {
                out.insert(addr, error.trim().to_string());
            }
        } else if line.contains(" BGP ") {
            // The next protocol's header line.
            neighbor = None;
        }
    }
    out
}

/// Whether FRR marks any path of `prefix` stale (graceful restart in progress).
pub fn frr_has_stale_path(frr: &Frr, prefix: IpNetwork) -> bool {
    let family = if prefix.is_ipv6() { "ipv6" } else { "ipv4" };
    let text = frr
        .vtysh(&format!("show bgp {family} unicast json"))
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["routes"][prefix.to_string()]
        .as_array()
        .into_iter()
        .flatten()
        .any(|path| path["stale"].as_bool() == Some(true))
}

/// The graceful-restart R bit FRR received from `neighbor` (`rBit` of `show bgp neighbors
/// json`, set only from the peer's capability on an Established session).
pub fn frr_r_bit(frr: &Frr, neighbor: IpAddr) -> Option<bool> {
    let text = frr
        .vtysh(&format!("show bgp neighbors {neighbor} json"))
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json[neighbor.to_string()]["gracefulRestartInfo"]["rBit"].as_bool()
}

/// FRR's IPv6 neighbors that lost the peer's interface: FRR 8.4 looks up the interface of a
/// session's local address once, when the session comes up; a session up before zebra has
/// told bgpd the interface addresses (right after a restart, when the node dials in at once)
/// keeps no interface (`nexthopLocal` "::", `bgpConnection` "nonSharedNetwork") and
/// withdraws every route it receives with a link-local next hop ("sent a v6 LL next-hop and
/// there's no peer interface information. Hence, withdrawing") until the session resets.
pub fn frr_neighbors_without_interface(router: &Frr) -> Vec<String> {
    let text = router.vtysh("show bgp neighbors json").unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json.as_object()
        .into_iter()
        .flatten()
        .filter(|(name, peer)| {
            name.contains(':')
                && peer.get("bgpState").and_then(|v| v.as_str()) == Some("Established")
                && peer.get("nexthopLocal").and_then(|v| v.as_str()) == Some("::")
        })
        .map(|(name, _)| name.clone())
        .collect()
}
