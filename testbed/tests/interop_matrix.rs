//! The interop items that depend on the router, run against each of BIRD 2, FRR 8.4 and
//! GoBGP 3.10 as the router: every scenario is written once, as a function of the router
//! ([`Kind`]), and each router has a `#[test]` of its own calling it (`…_with_bird`,
//! `…_with_frr`, `…_with_gobgp`). Three nodes each run the real `berth-speaker` (see
//! `common::berth`) in the star lab of `common::star`.
//!
//! Items of the testbed issue checked here:
//! 4. SIGTERM removes exactly that node's next hop, SIGKILL too (the kernel closes the
//!    dead process's connections), SIGSTOP only at the router's hold time (9 s); a new
//!    process brings it back each time;
//! 5. TCP MD5: the right password establishes, a wrong or missing one never does;
//! 6. graceful restart: SIGKILL with GR negotiated, the router keeps the node's paths
//!    (stale) and forwards to it meanwhile, the new process sends the R bit and its
//!    End-of-RIB clears the stale state;
//! 7. the router restarts; sessions come back and every VIP reappears with no action.
//!
//! "The router forwards to a node" is read from the router's kernel FIB for BIRD and FRR
//! (next hops by link, IPv4 and IPv6), and from GoBGP's RIB for GoBGP: gobgpd runs without
//! zebra and installs nothing into the kernel, so its RIB paths and their next hops are
//! what it would forward by, and client traffic is not sent through it.
//!
//! Build the binaries first (`cargo build --workspace --bins`; `./test.sh` does).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on any error"
)]

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use common::berth::{BerthPeer, BerthSpeaker};
use common::nodes::*;
use common::*;
use ipnetwork::IpNetwork;
use testbed::Lab;
use testbed::router::bird::Bird;
use testbed::router::frr::Frr;
use testbed::router::gobgp::Gobgp;
use testbed::router::{Neighbor, Router, RouterConfig, SessionState};

/// Which daemon is the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bird,
    Frr,
    Gobgp,
}

impl Kind {
    /// A lab label naming the scenario and the router.
    fn label(self, scenario: &str) -> String {
        let kind = match self {
            Kind::Bird => "bird",
            Kind::Frr => "frr",
            Kind::Gobgp => "gobgp",
        };
        format!("{scenario}-{kind}")
    }
}

/// The router under test, running on `r` of a star lab.
enum Daemon {
    Bird(Bird),
    Frr(Frr),
    Gobgp(Gobgp),
}

impl Daemon {
    fn start(kind: Kind, lab: &Lab, config: &RouterConfig) -> Daemon {
        let netns = lab.netns("r").unwrap();
        match kind {
            Kind::Bird => Daemon::Bird(Bird::start(netns, config).unwrap()),
            Kind::Frr => Daemon::Frr(Frr::start(netns, config).unwrap()),
            Kind::Gobgp => Daemon::Gobgp(Gobgp::start(netns, config).unwrap()),
        }
    }

    fn router(&self) -> &dyn Router {
        match self {
            Daemon::Bird(r) => r,
            Daemon::Frr(r) => r,
            Daemon::Gobgp(r) => r,
        }
    }

    fn restart(&mut self) {
        match self {
            Daemon::Bird(r) => r.restart(),
            Daemon::Frr(r) => r.restart(),
            Daemon::Gobgp(r) => r.restart(),
        }
        .unwrap();
    }

    /// Whether it programs the kernel FIB (GoBGP here does not: no zebra).
    fn installs_routes(&self) -> bool {
        !matches!(self, Daemon::Gobgp(_))
    }

    /// The nodes (1-based) the router forwards `vip` to: its FIB's next hops mapped to
    /// nodes by link (IPv6 next hops may be link-local), or for GoBGP the next hops of
    /// the paths in its RIB. A next hop towards no node shows as node 0, so that it fails
    /// any comparison with a set of nodes.
    fn nodes(&self, vip: IpNetwork) -> BTreeSet<usize> {
        if let Daemon::Gobgp(gobgp) = self {
            let node_of = |hop: &IpAddr| {
                (1..=NODES)
                    .find(|&i| {
                        let (_, n4, _, n6) = link_addresses(i);
                        *hop == n4 || *hop == n6
                    })
                    .unwrap_or(0)
            };
            return gobgp
                .bgp_table()
                .unwrap()
                .next_hops(vip)
                .iter()
                .map(node_of)
                .collect();
        }
        let fib = self.router().fib().unwrap();
        // Node i's link is the interface of the router's connected route to 10.1.i.0/24.
        let node_of = |link: u32| {
            (1..=NODES)
                .find(|&i| {
                    fib.route(net(&format!("10.1.{i}.0/24")))
                        .and_then(|route| route.next_hops.first())
                        .is_some_and(|hop| hop.interface == link)
                })
                .unwrap_or(0)
        };
        fib.route(vip)
            .map(|route| {
                route
                    .next_hops
                    .iter()
                    .map(|hop| node_of(hop.interface))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until the router forwards both VIPs to exactly `nodes`.
    fn wait_nodes(&self, what: &str, nodes: &[usize]) {
        let expected: BTreeSet<usize> = nodes.iter().copied().collect();
        testbed::wait::until(what, SESSION_TIMEOUT, || {
            Ok((self.nodes(vip4()) == expected && self.nodes(vip6()) == expected).then_some(()))
        })
        .unwrap_or_else(|e| {
            panic!(
                "{e}: IPv4 {:?}, IPv6 {:?}\nFIB: {:?}\nBGP: {:?}",
                self.nodes(vip4()),
                self.nodes(vip6()),
                self.router().fib(),
                self.router().bgp_table()
            )
        });
    }

    /// Whether the router holds paths for `vip` as stale (a neighbour's graceful restart
    /// in progress): FRR's `stale` path flag, GoBGP's `stale` path flag, and for BIRD,
    /// which does not show stale routes, a neighbour of that family whose graceful restart
    /// is still active (stale routes kept until its End-of-RIB or the restart timer).
    fn has_stale(&self, vip: IpNetwork) -> bool {
        match self {
            Daemon::Frr(frr) => frr_has_stale_path(frr, vip),
            Daemon::Gobgp(gobgp) => !gobgp_stale_neighbors(gobgp, vip).is_empty(),
            Daemon::Bird(bird) => bird_graceful_restart_active(bird)
                .iter()
                .any(|peer| peer.is_ipv6() == vip.is_ipv6()),
        }
    }

    /// Whether the router's session with `neighbor` last ended because the router's hold
    /// timer expired: BIRD's last error "BGP Error: Hold timer expired", FRR's last
    /// NOTIFICATION sent 4/0 (`lastErrorCodeSubcode` "0400"), GoBGP's log "Peer Down" with
    /// reason "hold-timer-expired".
    fn ended_by_hold_timer(&self, neighbor: IpAddr) -> bool {
        match self {
            Daemon::Bird(bird) => {
                bird_last_errors(bird).get(&neighbor).map(String::as_str)
                    == Some("BGP Error: Hold timer expired")
            }
            Daemon::Frr(frr) => {
                let text = frr
                    .vtysh(&format!("show bgp neighbors {neighbor} json"))
                    .unwrap();
                let json: serde_json::Value = serde_json::from_str(&text).unwrap();
                json[neighbor.to_string()]["lastErrorCodeSubcode"].as_str() == Some("0400")
            }
            Daemon::Gobgp(gobgp) => std::fs::read_to_string(gobgp.log_path())
                .unwrap_or_default()
                .lines()
                .rev()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .find(|entry| {
                    entry["Key"].as_str() == Some(&neighbor.to_string())
                        && entry["msg"].as_str() == Some("Peer Down")
                })
                .is_some_and(|entry| entry["Reason"].as_str() == Some("hold-timer-expired")),
        }
    }

    /// The graceful-restart R bit the router received from `neighbor` on its current
    /// session (`None` when it does not say).
    fn r_bit(&self, neighbor: IpAddr) -> Option<bool> {
        match self {
            Daemon::Frr(frr) => frr_r_bit(frr, neighbor),
            Daemon::Bird(bird) => bird_r_bit(bird, neighbor),
            Daemon::Gobgp(gobgp) => gobgp_r_bit(gobgp, neighbor),
        }
    }
}

/// The router's configuration: one IPv4 and one IPv6 neighbour per node, each shaped by
/// `neighbor`.
fn router_config_with(neighbor: impl Fn(Neighbor) -> Neighbor) -> RouterConfig {
    let mut config = RouterConfig::new("r", "10.255.0.1".parse().unwrap(), ROUTER_AS);
    for i in 1..=NODES {
        let (_, n4, _, n6) = link_addresses(i);
        config = config
            .neighbor(neighbor(Neighbor::new(n4, NODE_AS)))
            .neighbor(neighbor(Neighbor::new(n6, NODE_AS)));
    }
    config
}

/// GoBGP's neighbours (`neighbor-ip`) with a path for `vip` marked stale.
fn gobgp_stale_neighbors(gobgp: &Gobgp, vip: IpNetwork) -> BTreeSet<IpAddr> {
    let family = if vip.is_ipv6() { "ipv6" } else { "ipv4" };
    let text = gobgp.gobgp(&["global", "rib", "-a", family, "-j"]).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json[vip.to_string()]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|path| path["stale"].as_bool() == Some(true))
        .filter_map(|path| path["neighbor-ip"].as_str()?.parse().ok())
        .collect()
}

/// The R bit GoBGP received from `neighbor`: its capability line "Remote: restart time N
/// sec, restart flag set, …" in `gobgp neighbor ADDR` (the JSON form carries the
/// capability as an opaque protobuf).
fn gobgp_r_bit(gobgp: &Gobgp, neighbor: IpAddr) -> Option<bool> {
    let text = gobgp.gobgp(&["neighbor", &neighbor.to_string()]).ok()?;
    if !text.contains("BGP state = ESTABLISHED") {
        return None;
    }
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("Remote: restart time"))?;
    Some(line.contains("restart flag set"))
}

/// One BIRD protocol's block of `show protocols all`, by neighbour address.
fn bird_protocol_blocks(bird: &Bird) -> Vec<(IpAddr, String)> {
    let text = bird.birdc(&["show", "protocols", "all"]).unwrap();
    let mut blocks: Vec<(Option<IpAddr>, String)> = Vec::new();
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) && !line.trim().is_empty() {
            blocks.push((None, String::new()));
        }
        let Some((address, block)) = blocks.last_mut() else {
            continue;
        };
        if let Some(a) = line.trim().strip_prefix("Neighbor address:") {
            *address = a.trim().parse().ok();
        }
        block.push_str(line);
        block.push('\n');
    }
    blocks
        .into_iter()
        .filter_map(|(address, block)| Some((address?, block)))
        .collect()
}

/// BIRD's neighbours whose graceful restart is in progress: "Neighbor graceful restart
/// active" while the session is down, a channel's "Neighbor GR:" state until the new
/// session's End-of-RIB (BIRD keeps the old routes as stale until then).
fn bird_graceful_restart_active(bird: &Bird) -> BTreeSet<IpAddr> {
    bird_protocol_blocks(bird)
        .into_iter()
        .filter(|(_, block)| {
            block.contains("Neighbor graceful restart active") || block.contains("Neighbor GR:")
        })
        .map(|(address, _)| address)
        .collect()
}

/// The R bit BIRD received from `neighbor`: "Restart recovery" under its "Neighbor
/// capabilities" (Established sessions only).
fn bird_r_bit(bird: &Bird, neighbor: IpAddr) -> Option<bool> {
    let (_, block) = bird_protocol_blocks(bird)
        .into_iter()
        .find(|(address, _)| *address == neighbor)?;
    if !block.contains("BGP state:          Established") {
        return None;
    }
    let caps = block.split_once("Neighbor capabilities")?.1;
    let caps = caps.split_once("Session:").map_or(caps, |(c, _)| c);
    Some(caps.contains("Restart recovery"))
}

/// Item 4, SIGTERM: with graceful restart negotiated (the router a helper, explicitly
/// configured), a speaker told to stop sends Cease (drain 0 s) and the router drops
/// exactly that node's next hop at once, IPv4 and IPv6, rather than keeping it stale; a
/// new process brings it back.
fn sigterm_removes_exactly_that_next_hop(kind: Kind) {
    let lab = star(&kind.label("sigterm"), NODES);
    let router = Daemon::start(kind, &lab, &router_config_with(Neighbor::graceful_restart));
    let mut speakers: Vec<Option<BerthSpeaker>> =
        (1..=NODES).map(|i| Some(speaker(&lab, i, None))).collect();
    router.wait_nodes("all three nodes", &[1, 2, 3]);

    let start = std::time::Instant::now();
    speakers[1].take().unwrap().shutdown();
    router.wait_nodes("n2's next hop withdrawn", &[1, 3]);
    // A figure, not an assertion (100 ms polling granularity).
    eprintln!(
        "{kind:?}: n2 gone {:?} after its shutdown began",
        start.elapsed()
    );
    assert!(!router.has_stale(vip4()) && !router.has_stale(vip6()));

    speakers[1] = Some(speaker(&lab, 2, None));
    router.wait_nodes("n2 back", &[1, 2, 3]);
}

/// Item 4, SIGKILL: without graceful restart, the process dies without a word but the
/// kernel closes its TCP connections, so the router learns at once (no hold time needed)
/// and drops exactly that node's next hop; a new process brings it back. BIRD also says
/// it was no NOTIFICATION ("Socket: Connection closed", not "Received: …").
fn sigkill_removes_exactly_that_next_hop(kind: Kind) {
    let lab = star(&kind.label("sigkill"), NODES);
    let router = Daemon::start(kind, &lab, &router_config(NODES));
    let mut speakers: Vec<Option<BerthSpeaker>> = (1..=NODES)
        .map(|i| Some(speaker_without_gr(&lab, i)))
        .collect();
    router.wait_nodes("all three nodes", &[1, 2, 3]);

    speakers[1].take().unwrap().crash();
    router.wait_nodes("n2's next hop removed", &[1, 3]);
    if let Daemon::Bird(bird) = &router {
        let errors = bird_last_errors(bird);
        let (_, n2_v4, _, n2_v6) = link_addresses(2);
        for peer in [n2_v4, n2_v6] {
            let error = errors.get(&peer).map(String::as_str);
            assert!(
                error.is_some_and(|e| !e.starts_with("Received:")),
                "{peer}: {error:?}"
            );
        }
    }

    speakers[1] = Some(speaker_without_gr(&lab, 2));
    router.wait_nodes("n2 back", &[1, 2, 3]);
}

/// Item 4, hold time: a speaker that stops answering with its connections open (SIGSTOP:
/// hung, or a machine frozen) keeps its next hop until the router's hold timer (9 s)
/// expires; then exactly that next hop goes, and the router says its hold timer ended
/// the session. SIGKILL and a new process bring it back.
fn sigstop_loses_that_next_hop_at_hold_time(kind: Kind) {
    let lab = star(&kind.label("sigstop"), NODES);
    let router = Daemon::start(kind, &lab, &router_config(NODES));
    let mut speakers: Vec<Option<BerthSpeaker>> = (1..=NODES)
        .map(|i| Some(speaker_without_gr(&lab, i)))
        .collect();
    router.wait_nodes("all three nodes", &[1, 2, 3]);

    let start = std::time::Instant::now();
    speakers[1].as_mut().unwrap().signal(libc::SIGSTOP);
    // The connections stay open and nothing is sent: the router keeps the next hop for now.
    assert_eq!(router.nodes(vip4()), [1, 2, 3].into());
    router.wait_nodes("n2's next hop removed at hold time", &[1, 3]);
    eprintln!(
        "{kind:?}: n2 removed {:?} after SIGSTOP (hold time 9 s)",
        start.elapsed()
    );
    let (_, n2_v4, _, n2_v6) = link_addresses(2);
    for peer in [n2_v4, n2_v6] {
        assert!(router.ended_by_hold_timer(peer), "{peer}");
    }

    speakers[1].take().unwrap().crash();
    speakers[1] = Some(speaker_without_gr(&lab, 2));
    router.wait_nodes("n2 back", &[1, 2, 3]);
}

/// Item 5: the router has password "right" for n1 and n2 (IPv4 sessions). n1 with the
/// right one establishes; n2 with a wrong one, then with none, never does (several
/// connect-retry rounds each), on either side.
fn md5_right_password_only(kind: Kind) {
    let lab = star(&kind.label("md5"), 2);
    let (_, n1, _, _) = link_addresses(1);
    let (_, n2, _, _) = link_addresses(2);
    let router = Daemon::start(
        kind,
        &lab,
        &RouterConfig::new("r", "10.255.0.1".parse().unwrap(), ROUTER_AS)
            .neighbor(Neighbor::new(n1, NODE_AS).password("right"))
            .neighbor(Neighbor::new(n2, NODE_AS).password("right")),
    );
    let one_session = |i: usize, password: Option<&str>| {
        let (r4, n4, _, _) = link_addresses(i);
        BerthSpeaker::start(
            lab.netns(&format!("n{i}")).unwrap(),
            NODE_AS,
            format!("10.255.1.{i}").parse().unwrap(),
            vec![BerthPeer::new(r4, n4, ROUTER_AS).password(password)],
            vec![vip4()],
        )
    };
    let state_of = |peer| {
        router
            .router()
            .sessions()
            .unwrap()
            .into_iter()
            .find(|s| s.peer == Some(peer))
            .unwrap_or_else(|| panic!("no session for {peer}"))
            .state
    };
    let good = one_session(1, Some("right"));
    let bad = one_session(2, Some("wrong"));
    good.wait_established(1, SESSION_TIMEOUT);
    // Several connect-retry rounds for the wrong password.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(bad.established(), 0);
    assert_eq!(state_of(n1), SessionState::Established);
    assert_ne!(state_of(n2), SessionState::Established);
    drop(bad);
    let missing = one_session(2, None);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(missing.established(), 0);
    assert_ne!(state_of(n2), SessionState::Established);
    assert_eq!(state_of(n1), SessionState::Established);
}

/// Item 6: n2's speaker is killed (SIGKILL) with graceful restart negotiated. The router
/// marks its paths stale and keeps forwarding to all three nodes; for BIRD and FRR,
/// which install into the kernel, client connections through the router meanwhile all
/// succeed and reach all three (GoBGP installs nothing: its RIB keeping n2's paths is
/// what is checked). The new process, started `--restarting`, sends the R bit (and n1,
/// which never restarted, does not), and its End-of-RIB clears the stale state.
fn graceful_restart_keeps_forwarding_and_end_of_rib_clears_stale(kind: Kind) {
    let lab = star(&kind.label("gr"), NODES);
    let _responders = responders(&lab);
    let router = Daemon::start(kind, &lab, &router_config_with(Neighbor::graceful_restart));
    let mut speakers: Vec<Option<BerthSpeaker>> =
        (1..=NODES).map(|i| Some(speaker(&lab, i, None))).collect();
    router.wait_nodes("all three nodes", &[1, 2, 3]);

    speakers[1].take().unwrap().crash();
    testbed::wait::until("n2's paths kept stale", SESSION_TIMEOUT, || {
        Ok((router.has_stale(vip4()) && router.has_stale(vip6())).then_some(()))
    })
    .unwrap();
    // Meanwhile the router still forwards to all three nodes.
    assert_eq!(router.nodes(vip4()), [1, 2, 3].into());
    assert_eq!(router.nodes(vip6()), [1, 2, 3].into());
    if router.installs_routes() {
        assert_fair_spread(&lab, 150, 0.1);
    }

    speakers[1] = Some(speaker_with(&lab, 2, None, true));
    speakers[1]
        .as_ref()
        .unwrap()
        .wait_established(2, SESSION_TIMEOUT);
    let (_, n1_v4, _, _) = link_addresses(1);
    let (_, n2_v4, _, n2_v6) = link_addresses(2);
    for peer in [n2_v4, n2_v6] {
        testbed::wait::until(&format!("the R bit from {peer}"), SESSION_TIMEOUT, || {
            Ok((router.r_bit(peer) == Some(true)).then_some(()))
        })
        .unwrap();
    }
    assert_eq!(router.r_bit(n1_v4), Some(false));
    testbed::wait::until("End-of-RIB clears the stale state", SESSION_TIMEOUT, || {
        Ok((!router.has_stale(vip4()) && !router.has_stale(vip6())).then_some(()))
    })
    .unwrap();
    router.wait_nodes("all three nodes after End-of-RIB", &[1, 2, 3]);
}

/// Item 7: the router restarts; every Berth session comes back and re-sends its routes,
/// with no action on the nodes, and the router forwards both VIPs to all three again.
///
/// FRR only: sessions hit by FRR 8.4's start-up race (see
/// `common::nodes::frr_neighbors_without_interface` and the testbed README) drop our
/// IPv6 UPDATE, which no speaker can see or fix; such a session is reset from the router
/// (the operator's `clear bgp`) and must then bring the VIP back. BIRD and GoBGP need
/// nothing of the kind.
fn after_a_router_restart_every_vip_comes_back(kind: Kind) {
    let lab = star(&kind.label("rrestart"), NODES);
    let mut router = Daemon::start(kind, &lab, &router_config(NODES));
    let speakers: Vec<BerthSpeaker> = (1..=NODES).map(|i| speaker(&lab, i, None)).collect();
    router.wait_nodes("all three nodes", &[1, 2, 3]);
    router.restart();
    router
        .router()
        .wait_established(2 * NODES, SESSION_TIMEOUT)
        .unwrap();
    for s in &speakers {
        s.wait_established(2, SESSION_TIMEOUT);
    }
    // Berth's part: every session, IPv6 included, has its VIP advertised again.
    testbed::wait::until("every session re-advertised", SESSION_TIMEOUT, || {
        let peers: Vec<_> = speakers.iter().flat_map(BerthSpeaker::peers).collect();
        Ok(peers
            .iter()
            .all(|p| p.prefixes_advertised == 1)
            .then_some(()))
    })
    .unwrap_or_else(|e| {
        let peers: Vec<_> = speakers.iter().flat_map(BerthSpeaker::peers).collect();
        panic!("{e}: {peers:?}")
    });
    if let Daemon::Frr(frr) = &router {
        testbed::wait::until("IPv4 back at FRR", SESSION_TIMEOUT, || {
            Ok((router.nodes(vip4()) == [1, 2, 3].into()).then_some(()))
        })
        .unwrap();
        let lost = frr_neighbors_without_interface(frr);
        if !lost.is_empty() {
            eprintln!("FRR start-up race: {lost:?} came up without interface; resetting them");
            for neighbor in &lost {
                frr.vtysh(&format!("clear bgp {neighbor}")).unwrap();
            }
        }
    }
    router.wait_nodes("every VIP back on all three nodes", &[1, 2, 3]);
    if let Daemon::Frr(frr) = &router {
        assert!(frr_neighbors_without_interface(frr).is_empty());
    }
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn sigterm_removes_exactly_that_next_hop_and_a_restart_brings_it_back_with_bird() {
    sigterm_removes_exactly_that_next_hop(Kind::Bird);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn sigterm_removes_exactly_that_next_hop_and_a_restart_brings_it_back_with_frr() {
    sigterm_removes_exactly_that_next_hop(Kind::Frr);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn sigterm_removes_exactly_that_next_hop_and_a_restart_brings_it_back_with_gobgp() {
    sigterm_removes_exactly_that_next_hop(Kind::Gobgp);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn sigkill_removes_exactly_that_next_hop_and_a_restart_brings_it_back_with_bird() {
    sigkill_removes_exactly_that_next_hop(Kind::Bird);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn sigkill_removes_exactly_that_next_hop_and_a_restart_brings_it_back_with_frr() {
    sigkill_removes_exactly_that_next_hop(Kind::Frr);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn sigkill_removes_exactly_that_next_hop_and_a_restart_brings_it_back_with_gobgp() {
    sigkill_removes_exactly_that_next_hop(Kind::Gobgp);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn sigstop_keeps_that_next_hop_until_the_hold_time_then_loses_only_it_with_bird() {
    sigstop_loses_that_next_hop_at_hold_time(Kind::Bird);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn sigstop_keeps_that_next_hop_until_the_hold_time_then_loses_only_it_with_frr() {
    sigstop_loses_that_next_hop_at_hold_time(Kind::Frr);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn sigstop_keeps_that_next_hop_until_the_hold_time_then_loses_only_it_with_gobgp() {
    sigstop_loses_that_next_hop_at_hold_time(Kind::Gobgp);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn md5_right_password_establishes_and_a_wrong_or_missing_one_never_does_with_bird() {
    md5_right_password_only(Kind::Bird);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn md5_right_password_establishes_and_a_wrong_or_missing_one_never_does_with_frr() {
    md5_right_password_only(Kind::Frr);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn md5_right_password_establishes_and_a_wrong_or_missing_one_never_does_with_gobgp() {
    md5_right_password_only(Kind::Gobgp);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn graceful_restart_keeps_forwarding_through_a_crash_and_end_of_rib_clears_stale_with_bird() {
    graceful_restart_keeps_forwarding_and_end_of_rib_clears_stale(Kind::Bird);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn graceful_restart_keeps_forwarding_through_a_crash_and_end_of_rib_clears_stale_with_frr() {
    graceful_restart_keeps_forwarding_and_end_of_rib_clears_stale(Kind::Frr);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn graceful_restart_keeps_paths_through_a_crash_and_end_of_rib_clears_stale_with_gobgp() {
    graceful_restart_keeps_forwarding_and_end_of_rib_clears_stale(Kind::Gobgp);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn after_a_router_restart_every_vip_comes_back_with_bird() {
    after_a_router_restart_every_vip_comes_back(Kind::Bird);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn after_a_router_restart_every_vip_comes_back_with_frr() {
    after_a_router_restart_every_vip_comes_back(Kind::Frr);
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn after_a_router_restart_every_vip_comes_back_with_gobgp() {
    after_a_router_restart_every_vip_comes_back(Kind::Gobgp);
}
