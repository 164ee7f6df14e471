//! The interop suite: three nodes each running the real `berth-speaker` binary (standalone
//! mode, one manifest directory per node: see `common::berth`) against BIRD 2, FRR 8.4 and
//! GoBGP 3 as the router, plus BIRD and ExaBGP as feeders of routes towards a speaker.
//!
//! What each item of the testbed issue is checked by:
//! 1. sessions: every ECMP test (eBGP over IPv4 and IPv6), and the iBGP test with FRR;
//! 2. and 3. one route with three next hops in the router's FIB, and client traffic spread
//!    over the three nodes: BIRD and FRR (GoBGP installs no FIB: its table holds the paths);
//! 4. SIGTERM removes exactly that next hop (drain 0 s: Cease at once); SIGKILL removes it
//!    too, at once, because the kernel closes the dead process's TCP connections (no
//!    NOTIFICATION); a speaker that hangs with its connections open (SIGSTOP) loses it only
//!    when the router's hold timer (9 s) expires, as does one whose link goes silent
//!    (blackhole routes); a restarted process brings it back each time;
//! 5. TCP MD5 right, wrong and missing;
//! 6. graceful restart: SIGKILL with GR negotiated, FRR keeps forwarding (stale paths), the
//!    new process (started `--restarting`: FRR sees the R bit) sends End-of-RIB, which
//!    clears them;
//! 7. FRR restarts, every VIP comes back;
//! 8. malformed UPDATEs from ExaBGP, one per RFC 7606 class, the speaker alive after
//!    each (the RFC 4271 §6.3 fatal errors need a raw sender: a test of their own);
//! 9. 200,000 routes from BIRD: received in full (the speaker's count), the speaker's
//!    VmRSS/VmHWM measured before and after and bounded (not flat: it keeps one key per
//!    received prefix, see the test); `spec.maxPrefix` below the table: Cease subcode 1
//!    captured on the router's interface.
//!
//! Build the binaries first (`cargo build --workspace --bins`; `./test.sh` does).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on any error"
)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::berth::{BerthPeer, BerthSpeaker, error_code_text};
use common::*;
use testbed::Lab;
use testbed::router::bird::Bird;
use testbed::router::frr::Frr;
use testbed::router::gobgp::Gobgp;
use testbed::router::{Neighbor, Router, RouterConfig, SessionState};
use testbed::traffic::{Protocol, Responder, spread};

const NODES: usize = 3;

/// Node `i`'s Berth speaker: eBGP to the router over IPv4 and IPv6, announcing both VIPs.
fn speaker(lab: &Lab, i: usize, password: Option<&str>) -> BerthSpeaker {
    speaker_with(lab, i, password, false)
}

fn speaker_with(lab: &Lab, i: usize, password: Option<&str>, restarting: bool) -> BerthSpeaker {
    speaker_from(lab, i, |peer| {
        peer.password(password).restarting(restarting)
    })
}

/// Node `i`'s speaker without graceful restart: a lost session loses its routes at once.
fn speaker_without_gr(lab: &Lab, i: usize) -> BerthSpeaker {
    speaker_from(lab, i, BerthPeer::without_graceful_restart)
}

/// Node `i`'s speaker with both sessions shaped by `peer`.
fn speaker_from(lab: &Lab, i: usize, peer: impl Fn(BerthPeer) -> BerthPeer) -> BerthSpeaker {
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

fn responders(lab: &Lab) -> Vec<Responder> {
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

/// The nodes whose links carry the router's next hops for `vip` (by interface: IPv6 next hops
/// may be link-local).
fn fib_links(router: &dyn Router, vip: ipnetwork::IpNetwork) -> BTreeSet<u32> {
    router
        .fib()
        .unwrap()
        .route(vip)
        .map(|route| route.next_hops.iter().map(|hop| hop.interface).collect())
        .unwrap_or_default()
}

fn wait_fib_links(router: &dyn Router, vip: ipnetwork::IpNetwork, count: usize) {
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

/// Sessions up, one route with three next hops (IPv4 and IPv6), and a fair spread of traffic.
fn ecmp_against(lab: &Lab, router: &dyn Router) {
    let _responders = responders(lab);
    let speakers: Vec<BerthSpeaker> = (1..=NODES).map(|i| speaker(lab, i, None)).collect();
    router.wait_established(2 * NODES, SESSION_TIMEOUT).unwrap();
    for s in &speakers {
        s.wait_established(2, SESSION_TIMEOUT);
    }
    let expected4: BTreeSet<_> = (1..=NODES).map(|i| link_addresses(i).1).collect();
    testbed::wait::until("three next hops in the BGP table", SESSION_TIMEOUT, || {
        Ok((router.bgp_table()?.next_hops(vip4()) == expected4).then_some(()))
    })
    .unwrap();
    wait_fib_links(router, vip4(), NODES);
    wait_fib_links(router, vip6(), NODES);
    assert_eq!(router.fib().unwrap().gateways(vip4()), expected4);

    for vip in [vip4(), vip6()] {
        let target: SocketAddr = (vip.ip(), 80).into();
        let result = spread(
            lab.netns("c").unwrap(),
            Protocol::Tcp,
            target,
            300,
            Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(result.failures, 0, "{target}: {result:?}");
        assert!(
            result.fair_over(&["n1", "n2", "n3"], 0.15),
            "{target}: {result:?}"
        );
    }
}

#[test]
fn bird_router_spreads_vips_over_three_berth_speakers() {
    let lab = star("interop-bird", NODES);
    let router = Bird::start(lab.netns("r").unwrap(), &router_config(NODES)).unwrap();
    ecmp_against(&lab, &router);
}

#[test]
fn frr_router_spreads_vips_over_three_berth_speakers() {
    let lab = star("interop-frr", NODES);
    let router = Frr::start(lab.netns("r").unwrap(), &router_config(NODES)).unwrap();
    ecmp_against(&lab, &router);
}

#[test]
fn gobgp_router_holds_three_paths_from_berth_speakers() {
    let lab = star("interop-gobgp", NODES);
    let router = Gobgp::start(lab.netns("r").unwrap(), &router_config(NODES)).unwrap();
    let _speakers: Vec<BerthSpeaker> = (1..=NODES).map(|i| speaker(&lab, i, None)).collect();
    router.wait_established(2 * NODES, SESSION_TIMEOUT).unwrap();
    let expected4: BTreeSet<_> = (1..=NODES).map(|i| link_addresses(i).1).collect();
    let expected6: BTreeSet<_> = (1..=NODES).map(|i| link_addresses(i).3).collect();
    testbed::wait::until("three paths per VIP in gobgp", SESSION_TIMEOUT, || {
        let table = router.bgp_table()?;
        Ok(
            (table.next_hops(vip4()) == expected4 && table.next_hops(vip6()) == expected6)
                .then_some(()),
        )
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", router.bgp_table()));
}

#[test]
fn ibgp_session_with_frr_comes_up_and_carries_the_vip() {
    let lab = star("interop-ibgp", 1);
    let (_, n4, _, _) = link_addresses(1);
    let router = Frr::start(
        lab.netns("r").unwrap(),
        &RouterConfig::new("r", "10.255.0.1".parse().unwrap(), ROUTER_AS)
            .neighbor(Neighbor::new(n4, ROUTER_AS)),
    )
    .unwrap();
    let (r4, n4, _, _) = link_addresses(1);
    let speaker = BerthSpeaker::start(
        lab.netns("n1").unwrap(),
        ROUTER_AS,
        "10.255.1.1".parse().unwrap(),
        vec![BerthPeer::new(r4, n4, ROUTER_AS).password(None)],
        vec![vip4()],
    );
    router.wait_established(1, SESSION_TIMEOUT).unwrap();
    speaker.wait_established(1, SESSION_TIMEOUT);
    testbed::wait::until("iBGP route installed", SESSION_TIMEOUT, || {
        Ok((router.fib()?.gateways(vip4()) == [n4].into()).then_some(()))
    })
    .unwrap();
}

#[test]
fn a_speaker_shutting_down_removes_exactly_its_next_hop_and_returns_on_restart() {
    let lab = star("interop-shutdown", NODES);
    let router = Bird::start(lab.netns("r").unwrap(), &router_config(NODES)).unwrap();
    let mut speakers: Vec<Option<BerthSpeaker>> =
        (1..=NODES).map(|i| Some(speaker(&lab, i, None))).collect();
    wait_fib_links(&router, vip4(), NODES);

    let start = std::time::Instant::now();
    speakers[1].take().unwrap().shutdown();
    let remaining: BTreeSet<_> = [1, 3].iter().map(|i| link_addresses(*i).1).collect();
    testbed::wait::until("n2's next hop withdrawn", SESSION_TIMEOUT, || {
        Ok((router.fib()?.gateways(vip4()) == remaining).then_some(()))
    })
    .unwrap();
    // A figure, not an assertion (100 ms polling granularity).
    eprintln!(
        "next hop gone from the router's FIB {:?} after shutdown began",
        start.elapsed()
    );
    wait_fib_links(&router, vip6(), NODES - 1);

    speakers[1] = Some(speaker(&lab, 2, None));
    wait_fib_links(&router, vip4(), NODES);
    wait_fib_links(&router, vip6(), NODES);
}

#[test]
fn md5_right_password_establishes_and_a_wrong_one_never_does() {
    let lab = star("interop-md5", 2);
    let (_, n1, _, _) = link_addresses(1);
    let (_, n2, _, _) = link_addresses(2);
    let router = Frr::start(
        lab.netns("r").unwrap(),
        &RouterConfig::new("r", "10.255.0.1".parse().unwrap(), ROUTER_AS)
            .neighbor(Neighbor::new(n1, NODE_AS).password("right"))
            .neighbor(Neighbor::new(n2, NODE_AS).password("right")),
    )
    .unwrap();
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
    let good = one_session(1, Some("right"));
    let bad = one_session(2, Some("wrong"));
    good.wait_established(1, SESSION_TIMEOUT);
    // Several connect-retry rounds for the wrong password.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(bad.established(), 0);
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
    drop(bad);
    let missing = one_session(2, None);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(missing.established(), 0);
}

/// FRR's IPv6 neighbors that lost the peer's interface: FRR 8.4 looks up the interface of a
/// session's local address once, when the session comes up; a session up before zebra has
/// told bgpd the interface addresses (right after a restart, when the node dials in at once)
/// keeps no interface (`nexthopLocal` "::", `bgpConnection` "nonSharedNetwork") and
/// withdraws every route it receives with a link-local next hop ("sent a v6 LL next-hop and
/// there's no peer interface information. Hence, withdrawing") until the session resets.
fn frr_neighbors_without_interface(router: &Frr) -> Vec<String> {
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

/// After FRR restarts, every Berth session comes back and re-sends its routes, with no
/// action on the nodes. The IPv4 VIP always comes back by itself; the IPv6 VIP too, except
/// on sessions hit by FRR 8.4's start-up race (see [`frr_neighbors_without_interface`]):
/// FRR received our UPDATE and dropped it, which no speaker can see or fix; such a session
/// is reset from the router (the operator's `clear bgp`) and must then bring the VIP back.
#[test]
fn after_a_router_restart_every_vip_comes_back() {
    let lab = star("interop-restart", NODES);
    let mut router = Frr::start(lab.netns("r").unwrap(), &router_config(NODES)).unwrap();
    let speakers: Vec<BerthSpeaker> = (1..=NODES).map(|i| speaker(&lab, i, None)).collect();
    wait_fib_links(&router, vip4(), NODES);
    wait_fib_links(&router, vip6(), NODES);
    router.restart().unwrap();
    router.wait_established(2 * NODES, SESSION_TIMEOUT).unwrap();
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
    wait_fib_links(&router, vip4(), NODES);
    let lost = frr_neighbors_without_interface(&router);
    if !lost.is_empty() {
        eprintln!("FRR start-up race: {lost:?} came up without interface; resetting them");
        for neighbor in &lost {
            router.vtysh(&format!("clear bgp {neighbor}")).unwrap();
        }
    }
    testbed::wait::until(
        &format!("{NODES} next hops for {}", vip6()),
        SESSION_TIMEOUT,
        || Ok((fib_links(&router, vip6()).len() == NODES).then_some(())),
    )
    .unwrap_or_else(|e| {
        let peers: Vec<_> = speakers.iter().flat_map(BerthSpeaker::peers).collect();
        panic!(
            "{e}\nFRR ipv6 table: {:?}\nFRR neighbors: {:?}\nBerth peers: {peers:?}",
            router.vtysh("show bgp ipv6 unicast json"),
            router.vtysh("show bgp neighbors json"),
        )
    });
    assert!(frr_neighbors_without_interface(&router).is_empty());
}

/// A BIRD feeder on `r` sending `routes` /32s (from 100.64.0.0) to node n1, logging to
/// [`feeder_log`].
fn feeder(lab: &Lab, routes: u32) -> Bird {
    let (_, n4, _, _) = link_addresses(1);
    let mut config = RouterConfig::new("feeder", "10.255.0.1".parse().unwrap(), ROUTER_AS)
        .neighbor(Neighbor::new(n4, NODE_AS));
    config.install_routes = false;
    config.announce = (0..routes)
        .map(|i| {
            ipnetwork::IpNetwork::new(std::net::Ipv4Addr::from(0x6440_0000 + i).into(), 32).unwrap()
        })
        .collect();
    let log = feeder_log(lab);
    let text = format!(
        "log \"{}\" all;\n{}",
        log.display(),
        testbed::router::bird::render(&config)
    );
    Bird::start_with_config(lab.netns("r").unwrap(), &text).unwrap()
}

/// The feeder's log: every NOTIFICATION it receives is there (`Received: ...`), where
/// `show protocols`' last error is replaced by the next failed connection attempt.
fn feeder_log(lab: &Lab) -> std::path::PathBuf {
    lab.netns("r")
        .unwrap()
        .dir()
        .unwrap()
        .join("feeder-bird.log")
}

/// The BIRD protocols' `Last error:` lines, by neighbour address (`Socket: Connection
/// closed`, `Received: <NOTIFICATION received>`, `BGP Error: <NOTIFICATION sent>`).
fn bird_last_errors(router: &Bird) -> std::collections::BTreeMap<std::net::IpAddr, String> {
    let text = router.birdc(&["show", "protocols", "all"]).unwrap();
    let mut out = std::collections::BTreeMap::new();
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

/// Item 9: 200,000 routes from BIRD to a `berth-speaker` that imports nothing, and memory
/// stays flat. Receipt is proved by the speaker's own NLRI counter (admin API); memory is
/// the process's `/proc/PID/status`, before the feeder starts and once every route has
/// arrived.
///
/// Without a max-prefix limit the speaker keeps nothing per received path
/// (`bgp::rib::Tracking::Counters`): it counts NLRI announced and withdrawn and does not
/// claim to know the table size (the admin API shows `prefixesReceived: null`). What the
/// table costs is then only what is in flight, bounded by the driver's queues whatever
/// the table size; the bound is that, see `MAX_GROWTH_KIB`. Measured figures are printed
/// and recorded in the testbed README.
#[test]
fn a_large_table_from_bird_is_received_in_full_and_the_speaker_memory_stays_flat() {
    const ROUTES: u32 = 200_000;
    // What may be in flight at once, independent of the table size: the connection
    // reader's 64 KiB read buffer and up to 64 read batches (the peer task's input queue)
    // of at most 64 KiB of frames each (4 MiB), the UPDATE being decoded (a few hundred
    // KiB of prefixes at most), plus allocator slack: 6 MiB. Keeping a key per route, as
    // the speaker did before, cost 16 MiB at the peak for this table.
    const MAX_GROWTH_KIB: u64 = 6 * 1024;
    let lab = star("interop-table", 1);
    let (r4, n4, _, _) = link_addresses(1);
    let mut speaker = BerthSpeaker::start(
        lab.netns("n1").unwrap(),
        NODE_AS,
        "10.255.1.1".parse().unwrap(),
        vec![BerthPeer::new(r4, n4, ROUTER_AS)],
        vec![],
    );
    let before = speaker.memory().expect("speaker running");
    let feeder = feeder(&lab, ROUTES);
    speaker.wait_established(1, SESSION_TIMEOUT);
    let start = std::time::Instant::now();
    // BIRD announces each route once: the announced NLRI counter reaching the table size
    // is the whole table received.
    testbed::wait::until("the whole table", Duration::from_secs(90), || {
        let announced = speaker.peers().first().map_or(0, |p| p.nlri_announced);
        Ok((announced == u64::from(ROUTES)).then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", speaker.peers()));
    let took = start.elapsed();
    let after = speaker.memory().expect("speaker running");
    // For comparison: what BIRD spends holding the same table.
    let bird_table = feeder
        .birdc(&["show", "memory"])
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Routing tables:"))
        .map(|l| {
            l.split_whitespace()
                .skip(2)
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    eprintln!(
        "{ROUTES} routes from BIRD received in {took:?} after Established; berth-speaker \
         VmRSS {} KiB -> {} KiB, VmHWM {} KiB -> {} KiB (peak growth {} KiB); BIRD's \
         routing tables hold the same routes in {bird_table}",
        before.rss_kib,
        after.rss_kib,
        before.hwm_kib,
        after.hwm_kib,
        after.hwm_kib.saturating_sub(before.hwm_kib),
    );
    assert!(speaker.alive());
    assert_eq!(speaker.established(), 1);
    let peer = speaker.peers().remove(0);
    assert_eq!(
        (peer.prefixes_received, peer.nlri_withdrawn),
        (None, 0),
        "no table size is claimed without a limit: {peer:?}"
    );
    assert!(
        after.hwm_kib.saturating_sub(before.hwm_kib) < MAX_GROWTH_KIB,
        "peak memory grew by {MAX_GROWTH_KIB} KiB or more: {before:?} -> {after:?}"
    );
}

/// tcpdump on the router's end of node n1's link (`r:eth1`), BGP only; returns once it
/// captures (it has written the file's header).
fn capture_bgp(lab: &Lab) -> (testbed::lab::Process, std::path::PathBuf) {
    let netns = lab.netns("r").unwrap();
    let file = netns.dir().unwrap().join("bgp.pcap");
    let path = file.to_str().unwrap();
    let process = netns
        .spawn(
            "tcpdump",
            &["-i", "eth1", "-s", "0", "-U", "-w", path, "tcp port 179"],
        )
        .unwrap();
    testbed::wait::until("tcpdump capturing", SESSION_TIMEOUT, || {
        Ok((std::fs::metadata(&file).map_or(0, |m| m.len()) >= 24).then_some(()))
    })
    .unwrap();
    (process, file)
}

/// The (code, subcode) of every BGP NOTIFICATION in a capture: the 16-byte marker, a
/// length, type 3. Each is small enough to sit whole in one TCP segment.
fn notifications_in(pcap: &std::path::Path) -> Vec<(u8, u8)> {
    let bytes = std::fs::read(pcap).unwrap_or_default();
    bytes
        .windows(21)
        .filter(|w| w[..16].iter().all(|b| *b == 0xff) && w[18] == 3)
        .map(|w| (w[19], w[20]))
        .collect()
}

/// Item 9: `spec.maxPrefix` below the table ends the session with Cease subcode 1
/// (RFC 4486), on the wire at the router's interface and in BIRD's own account.
///
/// BIRD reads the NOTIFICATION even though it is still sending UPDATEs when it comes:
/// the driver shuts down its write side after the NOTIFICATION and keeps reading (and
/// discarding) until BIRD closes, instead of closing with BIRD's UPDATEs unread, which
/// made the kernel send a RST that lost the NOTIFICATION about half the time (BIRD then
/// logged only "Connection closed"); see the testbed README.
#[test]
fn a_max_prefix_limit_below_the_table_ends_the_session_with_cease() {
    let lab = star("interop-maxpfx", 1);
    let (_tcpdump, pcap) = capture_bgp(&lab);
    let feeder = feeder(&lab, 5_000);
    let (r4, n4, _, _) = link_addresses(1);
    let mut peer = BerthPeer::new(r4, n4, ROUTER_AS);
    peer.max_prefix = Some(1_000);
    let speaker = BerthSpeaker::start(
        lab.netns("n1").unwrap(),
        NODE_AS,
        "10.255.1.1".parse().unwrap(),
        vec![peer],
        vec![],
    );
    // Sent: the speaker's own account.
    let cease = error_code_text(bgp::wire::ErrorCode::Cease(
        bgp::wire::CeaseSubcode::MaximumNumberOfPrefixesReached,
    ));
    testbed::wait::until("the speaker's Cease", SESSION_TIMEOUT, || {
        Ok((speaker.peers()[0].last_error_sent() == Some(cease.as_str())).then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", speaker.peers()));
    // Towards the router: Cease (6), Maximum Number of Prefixes Reached (1), and no other
    // NOTIFICATION either way.
    testbed::wait::until(
        "the Cease at the router's interface",
        SESSION_TIMEOUT,
        || Ok((!notifications_in(&pcap).is_empty()).then_some(())),
    )
    .unwrap();
    assert_eq!(notifications_in(&pcap), [(6, 1)]);
    // BIRD's own account: it received the Cease. `show protocols`' last error is replaced
    // by the next refused connection attempt, so its log is what is checked.
    let received = || -> Vec<String> {
        std::fs::read_to_string(feeder_log(&lab))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_once(": Received: ").map(|(_, e)| e.to_string()))
            .collect()
    };
    let logged = testbed::wait::until("BIRD's log of the NOTIFICATION", SESSION_TIMEOUT, || {
        let r = received();
        Ok((!r.is_empty()).then_some(r))
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: BIRD logged no NOTIFICATION received (last error {:?})",
            bird_last_errors(&feeder).get(&n4)
        )
    });
    eprintln!(
        "BIRD logged NOTIFICATIONs received: {logged:?}; last error {:?}",
        bird_last_errors(&feeder).get(&n4)
    );
    // BIRD appends the data: AFI 1, SAFI 1, the limit (1,000).
    assert_eq!(
        logged,
        ["Maximum number of prefixes reached: 000101000003e8"]
    );
    // The session stays down (the speaker waits a minute before trying again).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(speaker.established(), 0);
}

/// Item 4, SIGKILL: the process dies without a word, but the kernel closes its TCP
/// connections, so the router learns at once (no hold time needed) and, without graceful
/// restart, drops exactly that node's next hop. Restarting the process brings it back.
#[test]
fn a_killed_speaker_loses_exactly_its_next_hop_and_comes_back_when_restarted() {
    let lab = star("interop-sigkill", NODES);
    let router = Bird::start(lab.netns("r").unwrap(), &router_config(NODES)).unwrap();
    let mut speakers: Vec<Option<BerthSpeaker>> = (1..=NODES)
        .map(|i| Some(speaker_without_gr(&lab, i)))
        .collect();
    wait_fib_links(&router, vip4(), NODES);
    wait_fib_links(&router, vip6(), NODES);

    let (_, n2_v4, _, n2_v6) = link_addresses(2);
    speakers[1].take().unwrap().crash();
    let remaining: BTreeSet<_> = [1, 3].iter().map(|i| link_addresses(*i).1).collect();
    testbed::wait::until("n2's next hop removed", SESSION_TIMEOUT, || {
        Ok((router.fib()?.gateways(vip4()) == remaining).then_some(()))
    })
    .unwrap();
    wait_fib_links(&router, vip6(), NODES - 1);
    // Nothing was said: BIRD saw the connection close, no NOTIFICATION.
    let errors = bird_last_errors(&router);
    for peer in [n2_v4, n2_v6] {
        let error = errors.get(&peer).map(String::as_str);
        assert!(
            error.is_some_and(|e| !e.starts_with("Received:")),
            "{peer}: {error:?}"
        );
    }
    eprintln!("after SIGKILL, BIRD's last error for n2: {errors:?}");

    speakers[1] = Some(speaker_without_gr(&lab, 2));
    wait_fib_links(&router, vip4(), NODES);
    wait_fib_links(&router, vip6(), NODES);
}

/// Item 4, hold time: a speaker that stops answering with its connections open (SIGSTOP:
/// hung, or a machine frozen) keeps its next hop at the router until the router's hold
/// timer (9 s) expires; then exactly that next hop goes. SIGKILL and a new process bring
/// it back.
#[test]
fn a_hung_speaker_keeps_its_next_hop_until_the_hold_time_then_loses_exactly_it() {
    let lab = star("interop-sigstop", NODES);
    let router = Bird::start(lab.netns("r").unwrap(), &router_config(NODES)).unwrap();
    let mut speakers: Vec<Option<BerthSpeaker>> = (1..=NODES)
        .map(|i| Some(speaker_without_gr(&lab, i)))
        .collect();
    wait_fib_links(&router, vip4(), NODES);
    wait_fib_links(&router, vip6(), NODES);

    let (_, n2_v4, _, n2_v6) = link_addresses(2);
    let start = std::time::Instant::now();
    speakers[1].as_mut().unwrap().signal(libc::SIGSTOP);
    // The connections stay open and nothing is sent: the router keeps the next hop for now.
    assert_eq!(fib_links(&router, vip4()).len(), NODES);
    let remaining: BTreeSet<_> = [1, 3].iter().map(|i| link_addresses(*i).1).collect();
    testbed::wait::until(
        "n2's next hop removed at hold time",
        SESSION_TIMEOUT,
        || Ok((router.fib()?.gateways(vip4()) == remaining).then_some(())),
    )
    .unwrap();
    eprintln!(
        "next hop removed {:?} after SIGSTOP (hold time 9 s)",
        start.elapsed()
    );
    wait_fib_links(&router, vip6(), NODES - 1);
    let errors = bird_last_errors(&router);
    for peer in [n2_v4, n2_v6] {
        assert_eq!(
            errors.get(&peer).map(String::as_str),
            Some("BGP Error: Hold timer expired"),
            "{peer}: {errors:?}"
        );
    }

    speakers[1].take().unwrap().crash();
    speakers[1] = Some(speaker_without_gr(&lab, 2));
    wait_fib_links(&router, vip4(), NODES);
    wait_fib_links(&router, vip6(), NODES);
}

#[test]
fn a_speaker_cut_off_silently_loses_its_next_hop_at_hold_time_and_comes_back() {
    let lab = star("interop-holdtime", NODES);
    let router = Bird::start(lab.netns("r").unwrap(), &router_config(NODES)).unwrap();
    let _speakers: Vec<BerthSpeaker> = (1..=NODES).map(|i| speaker(&lab, i, None)).collect();
    wait_fib_links(&router, vip4(), NODES);

    // n2 stops hearing from and reaching the router without closing its sockets, as if it had
    // died: only the router's hold timer (9 s) can notice.
    let (r4, _, r6, _) = link_addresses(2);
    let n2 = lab.netns("n2").unwrap();
    let host = |ip| {
        ipnetwork::IpNetwork::new(
            ip,
            if matches!(ip, std::net::IpAddr::V4(_)) {
                32
            } else {
                128
            },
        )
        .unwrap()
    };
    n2.add_blackhole_route(host(r4)).unwrap();
    n2.add_blackhole_route(host(r6)).unwrap();
    let start = std::time::Instant::now();
    let remaining: BTreeSet<_> = [1, 3].iter().map(|i| link_addresses(*i).1).collect();
    testbed::wait::until(
        "n2's next hop removed at hold time",
        SESSION_TIMEOUT,
        || Ok((router.fib()?.gateways(vip4()) == remaining).then_some(())),
    )
    .unwrap();
    eprintln!(
        "next hop removed {:?} after the node went silent (hold time 9 s)",
        start.elapsed()
    );

    n2.remove_blackhole_route(host(r4)).unwrap();
    n2.remove_blackhole_route(host(r6)).unwrap();
    wait_fib_links(&router, vip4(), NODES);
    wait_fib_links(&router, vip6(), NODES);
}

#[test]
fn exabgp_announces_and_withdraws_to_a_berth_speaker() {
    let lab = star("interop-exabgp", 1);
    let (r4, n4, _, _) = link_addresses(1);
    let mut exabgp = testbed::router::exabgp::Exabgp::start(
        lab.netns("r").unwrap(),
        &RouterConfig::new("r", "10.255.0.1".parse().unwrap(), ROUTER_AS)
            .neighbor(Neighbor::new(n4, NODE_AS).local_address(r4)),
    )
    .unwrap();
    let speaker = BerthSpeaker::start(
        lab.netns("n1").unwrap(),
        NODE_AS,
        "10.255.1.1".parse().unwrap(),
        vec![BerthPeer::new(r4, n4, ROUTER_AS)],
        vec![vip4()],
    );
    speaker.wait_established(1, SESSION_TIMEOUT);
    // No max-prefix limit: the speaker keeps nothing per route, only NLRI counters.
    let received = || {
        speaker
            .peers()
            .first()
            .map(|p| (p.prefixes_received, p.nlri_announced, p.nlri_withdrawn))
    };
    exabgp.announce(net("192.0.2.1/32")).unwrap();
    exabgp.announce(net("192.0.2.2/32")).unwrap();
    testbed::wait::until("two routes from ExaBGP", SESSION_TIMEOUT, || {
        Ok((received() == Some((None, 2, 0))).then_some(()))
    })
    .unwrap();
    exabgp.withdraw(net("192.0.2.1/32")).unwrap();
    testbed::wait::until("one withdrawn", SESSION_TIMEOUT, || {
        Ok((received() == Some((None, 2, 1))).then_some(()))
    })
    .unwrap();
    // ExaBGP, as the router, sees the speaker's VIP.
    testbed::wait::until("the VIP at ExaBGP", SESSION_TIMEOUT, || {
        Ok((exabgp.bgp_table()?.next_hops(vip4()) == [n4].into()).then_some(()))
    })
    .unwrap();
}

/// Whether FRR marks any path of `prefix` stale (graceful restart in progress).
fn frr_has_stale_path(frr: &Frr, prefix: ipnetwork::IpNetwork) -> bool {
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
fn frr_r_bit(frr: &Frr, neighbor: std::net::IpAddr) -> Option<bool> {
    let text = frr
        .vtysh(&format!("show bgp neighbors {neighbor} json"))
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json[neighbor.to_string()]["gracefulRestartInfo"]["rBit"].as_bool()
}

#[test]
fn graceful_restart_keeps_forwarding_through_a_speaker_crash_and_end_of_rib_clears_stale() {
    let lab = star("interop-gr", NODES);
    let _responders = responders(&lab);
    let router = Frr::start(lab.netns("r").unwrap(), &router_config(NODES)).unwrap();
    let mut speakers: Vec<Option<BerthSpeaker>> =
        (1..=NODES).map(|i| Some(speaker(&lab, i, None))).collect();
    wait_fib_links(&router, vip4(), NODES);

    speakers[1].take().unwrap().crash();
    testbed::wait::until("n2's paths marked stale", SESSION_TIMEOUT, || {
        Ok(frr_has_stale_path(&router, vip4()).then_some(()))
    })
    .unwrap();
    // Meanwhile the router still forwards to all three nodes, and no connection fails.
    assert_eq!(fib_links(&router, vip4()).len(), NODES);
    let target: SocketAddr = (vip4().ip(), 80).into();
    let result = spread(
        lab.netns("c").unwrap(),
        Protocol::Tcp,
        target,
        150,
        Duration::from_secs(2),
    )
    .unwrap();
    assert_eq!(result.failures, 0, "{result:?}");
    assert!(result.fair_over(&["n1", "n2", "n3"], 0.1), "{result:?}");

    speakers[1] = Some(speaker_with(&lab, 2, None, true));
    speakers[1]
        .as_ref()
        .unwrap()
        .wait_established(2, SESSION_TIMEOUT);
    // The new process said it restarted (`--restarting`): FRR received the R bit from
    // it, and not from a node that never restarted.
    testbed::wait::until("FRR sees n2's R bit", SESSION_TIMEOUT, || {
        Ok((frr_r_bit(&router, link_addresses(2).1) == Some(true)).then_some(()))
    })
    .unwrap();
    assert_eq!(frr_r_bit(&router, link_addresses(1).1), Some(false));
    testbed::wait::until("End-of-RIB clears the stale paths", SESSION_TIMEOUT, || {
        Ok(
            (!frr_has_stale_path(&router, vip4()) && !frr_has_stale_path(&router, vip6()))
                .then_some(()),
        )
    })
    .unwrap();
    assert_eq!(fib_links(&router, vip4()).len(), NODES);
}

/// What RFC 7606 says a receiver does with an UPDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Route kept (attribute fine, or the bad attribute discarded / disregarded).
    Accepted,
    /// Treat-as-withdraw: route not kept, session stays up.
    Withdrawn,
    /// Session reset with an UPDATE Message Error NOTIFICATION.
    Reset,
}

#[test]
fn malformed_updates_from_exabgp_get_the_rfc_7606_treatment_and_never_crash_the_speaker() {
    use Outcome::*;
    // (what, generic attribute ExaBGP adds to an otherwise valid UPDATE, expected outcome)
    let cases = [
        (
            "unknown optional transitive attribute",
            "[ 0x63 0xc0 0x01020304 ]",
            Accepted,
        ),
        (
            "AGGREGATOR of bad length (§7.7 attribute discard)",
            "[ 0x07 0xc0 0x0102 ]",
            Accepted,
        ),
        (
            "ATOMIC_AGGREGATE with data (§7.6 attribute discard)",
            "[ 0x06 0x40 0x01 ]",
            Accepted,
        ),
        (
            "LOCAL_PREF from an eBGP peer (§7.5 disregarded)",
            "[ 0x05 0x40 0x00000064 ]",
            Accepted,
        ),
        (
            "COMMUNITIES of bad length (§7.8)",
            "[ 0x08 0xc0 0x010203 ]",
            Withdrawn,
        ),
        (
            "MULTI_EXIT_DISC of bad length (§7.4)",
            "[ 0x04 0x80 0x0102 ]",
            Withdrawn,
        ),
        (
            "ORIGIN with an undefined value (§7.1)",
            "[ 0x01 0x40 0x05 ]",
            Withdrawn,
        ),
        (
            "ORIGIN flagged optional (§3 c)",
            "[ 0x01 0x80 0x00 ]",
            Withdrawn,
        ),
        (
            "AS_PATH with an undefined segment type (§7.2)",
            "[ 0x02 0x40 0x0901000000fd ]",
            Withdrawn,
        ),
        // Last: ExaBGP resends it on every reconnect.
        (
            "MP_REACH_NLRI truncated (§7.11 session reset)",
            "[ 0x0e 0x80 0x0001 ]",
            Reset,
        ),
    ];
    let lab = star("interop-7606", 1);
    let (r4, n4, _, _) = link_addresses(1);
    let mut exabgp = testbed::router::exabgp::Exabgp::start(
        lab.netns("r").unwrap(),
        &RouterConfig::new("r", "10.255.0.1".parse().unwrap(), ROUTER_AS)
            .neighbor(Neighbor::new(n4, NODE_AS).local_address(r4)),
    )
    .unwrap();
    let mut speaker = BerthSpeaker::start(
        lab.netns("n1").unwrap(),
        NODE_AS,
        "10.255.1.1".parse().unwrap(),
        // A limit, so that the speaker counts the routes it holds exactly.
        vec![BerthPeer::new(r4, n4, ROUTER_AS).max_prefix(10_000)],
        vec![],
    );
    speaker.wait_established(1, SESSION_TIMEOUT);
    let peer = || speaker.peers().into_iter().next().expect("one peer");
    let mut expected_count = 0;
    for (i, (what, attribute, outcome)) in cases.iter().enumerate() {
        let prefix = format!("198.51.100.{}/32", i + 1);
        exabgp
            .send(&format!(
                "announce route {prefix} next-hop self attribute {attribute}"
            ))
            .unwrap();
        match outcome {
            Accepted | Withdrawn => {
                // A valid marker route after the malformed one: once it is counted, the
                // malformed UPDATE before it on the same session has been handled.
                let marker = format!("203.0.113.{}/32", i + 1);
                exabgp
                    .send(&format!("announce route {marker} next-hop self"))
                    .unwrap();
                expected_count += if *outcome == Accepted { 2 } else { 1 };
                testbed::wait::until(what, SESSION_TIMEOUT, || {
                    Ok((peer()
                        .prefixes_received_total()
                        .is_some_and(|n| n >= expected_count))
                    .then_some(()))
                })
                .unwrap_or_else(|e| panic!("{e}: {:?}", peer()));
                let p = peer();
                assert_eq!(
                    p.prefixes_received_total(),
                    Some(expected_count),
                    "{what}: {p:?}"
                );
                assert!(p.is_established(), "{what}: {p:?}");
                assert!(p.last_error.is_none(), "{what}: {p:?}");
                assert_eq!(p.flaps, 0, "{what}");
            }
            Reset => {
                let sent = testbed::wait::until(what, SESSION_TIMEOUT, || {
                    Ok(peer().last_error_sent().map(str::to_string))
                })
                .unwrap();
                assert!(sent.starts_with("Update("), "{what}: {sent:?}");
            }
        }
    }
    // The speaker is still alive and answering.
    assert!(speaker.alive());
    assert_eq!(speaker.peers().len(), 1);
}
