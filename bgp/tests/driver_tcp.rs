//! The driver over real loopback TCP (real time: sockets and paused time do not mix):
//! two speakers on 127.0.0.x with ephemeral ports peer over IPv4 and IPv6, with TCP MD5,
//! exchange routes; strangers are closed without a byte read.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bgp::driver::{PeerConfig, Speaker, SpeakerConfig, Target};
use bgp::rib::{Prefix, RouteAttrs};
use bgp::session::State;
use tokio::io::AsyncReadExt;

fn config(addr: IpAddr, asn: u32, id: u8) -> SpeakerConfig {
    SpeakerConfig {
        local_as: asn,
        router_id: Ipv4Addr::new(10, 0, 0, id),
        listen_addresses: vec![addr],
        listen_port: 0,
    }
}

fn peer_of(me: &Speaker, them: &Speaker) -> PeerConfig {
    let theirs = them.local_addrs()[0];
    let mine = me.local_addrs()[0];
    let mut p = PeerConfig::new(
        theirs.ip(),
        me.config().local_as,
        them.config().local_as,
        me.config().router_id,
    );
    p.transport.remote_port = theirs.port();
    p.transport.local = Some(mine.ip());
    p.session.connect_retry = Duration::from_secs(1);
    p.session.idle_hold = Duration::from_millis(200);
    p
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn pair(a_addr: &str, b_addr: &str, password: Option<&str>) -> (Speaker, Speaker) {
    let a = Speaker::start(config(a_addr.parse().expect("ip"), 65001, 1))
        .await
        .expect("start a");
    let b = Speaker::start(config(b_addr.parse().expect("ip"), 65002, 2))
        .await
        .expect("start b");
    let mut pa = peer_of(&a, &b);
    let mut pb = peer_of(&b, &a);
    pa.transport.md5_password = password.map(String::from);
    pb.transport.md5_password = password.map(String::from);
    a.add_peer(pa).expect("add");
    b.add_peer(pb).expect("add");
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_speakers_over_ipv4_loopback_with_md5_exchange_routes() {
    let (a, b) = pair("127.0.0.11", "127.0.0.12", Some("s3cret")).await;
    let b_addr = b.local_addrs()[0].ip();
    let a_addr = a.local_addrs()[0].ip();
    let vips: Vec<Prefix> = (0..5000u32)
        .map(|i| Prefix::host(Ipv4Addr::from(0xC633_0000 + i).into()))
        .collect();
    a.announce(vips, RouteAttrs::default(), Target::All)
        .await
        .expect("announce");
    until("routes at b", || {
        b.peer(a_addr)
            .is_some_and(|p| p.nlri_received_total().announced == 5000)
    })
    .await;
    let p = a.peer(b_addr).expect("peer");
    assert_eq!(p.state, State::Established);
    assert_eq!(p.prefixes_advertised, 5000);
    assert!(
        p.sent.update <= 8,
        "5000 /32s need 7 UPDATEs + End-of-RIB, sent {}",
        p.sent.update
    );
    a.shutdown("test over", Duration::ZERO).await;
    until("b sees the cease", || {
        b.peer(a_addr)
            .is_some_and(|p| p.last_error_received.is_some())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_speakers_over_ipv6_loopback_exchange_ipv6_routes() {
    let (a, b) = pair("::1", "::1", None).await;
    // Both on ::1, told apart by port: each speaker has one peer, ::1.
    let a_addr = a.local_addrs()[0].ip();
    let vips: Vec<Prefix> = (0..300u128)
        .map(|i| Prefix::host(std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | i).into()))
        .collect();
    a.announce(vips, RouteAttrs::default(), Target::All)
        .await
        .expect("announce");
    until("routes at b", || {
        b.peer(a_addr)
            .is_some_and(|p| p.nlri_received_total().announced == 300)
    })
    .await;
    let n = b
        .peer(a_addr)
        .and_then(|p| p.negotiated)
        .expect("negotiated");
    assert!(n.families.contains(&bgp::wire::Family::IPV6_UNICAST));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_from_strangers_are_closed_without_reading() {
    let a = Speaker::start(config("127.0.0.21".parse().expect("ip"), 65001, 1))
        .await
        .expect("start");
    let mut stranger = tokio::net::TcpStream::connect(a.local_addrs()[0])
        .await
        .expect("connect");
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), stranger.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "a stranger gets nothing but a close: {n:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gtsm_on_both_ends_establishes_and_a_ttl_1_sender_is_dropped() {
    // Loopback keeps the TTL at what was sent: GTSM (255) passes, TTL 1 does not.
    let a = Speaker::start(config("127.0.0.31".parse().expect("ip"), 65001, 1))
        .await
        .expect("a");
    let b = Speaker::start(config("127.0.0.32".parse().expect("ip"), 65002, 2))
        .await
        .expect("b");
    let mut pa = peer_of(&a, &b);
    let mut pb = peer_of(&b, &a);
    pa.transport.gtsm_hops = Some(1);
    pb.transport.gtsm_hops = Some(1);
    a.add_peer(pa.clone()).expect("add");
    b.add_peer(pb).expect("add");
    let b_addr = b.local_addrs()[0].ip();
    until("GTSM session", || {
        a.peer(b_addr)
            .is_some_and(|p| p.state == State::Established)
    })
    .await;
    // A stops GTSM and sends with TTL 1: B's minimum TTL 255 (on its listener, since its
    // only peer uses GTSM, and on its connections) drops every packet.
    let a_addr = a.local_addrs()[0].ip();
    pa.transport.gtsm_hops = None;
    pa.transport.ttl = Some(1);
    a.update_peer(pa).await.expect("update");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_ne!(b.peer(a_addr).map(|p| p.state), Some(State::Established));
    assert_ne!(a.peer(b_addr).map(|p| p.state), Some(State::Established));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_peer_starts_a_new_session() {
    let (a, b) = pair("127.0.0.41", "127.0.0.42", None).await;
    let b_addr = b.local_addrs()[0].ip();
    until("up", || {
        a.peer(b_addr)
            .is_some_and(|p| p.state == State::Established)
    })
    .await;
    a.reset_peer(b_addr).await.expect("reset");
    until("flapped and back", || {
        a.peer(b_addr)
            .is_some_and(|p| p.state == State::Established && p.flaps >= 1)
    })
    .await;
    let p = a.peer(b_addr).expect("peer");
    assert!(
        p.last_error_sent.is_some(),
        "the reset's Cease is remembered"
    );
}
