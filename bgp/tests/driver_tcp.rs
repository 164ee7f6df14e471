//! The driver over real loopback TCP (real time: sockets and paused time do not mix):
//! two speakers on 127.0.0.x with ephemeral ports peer over IPv4 and IPv6, with TCP MD5,
//! exchange routes; strangers are closed without a byte read; a NOTIFICATION sent while
//! the peer floods us with UPDATEs reaches it intact, followed by a FIN, never a RST; a
//! router reconnecting while the speaker shuts down is refused, not accepted and reset.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bgp::driver::{PeerConfig, Speaker, SpeakerConfig, Target};
use bgp::rib::{Prefix, RouteAttrs};
use bgp::session::State;
use common::speaker::until_within;
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

/// Waits (15 s of real time at most) until `f` holds.
async fn until(what: &str, f: impl FnMut() -> bool) {
    until_within(Duration::from_secs(15), what, f).await;
}

/// Speakers A (AS 65001) at `a_addr` and B (AS 65002) at `b_addr`, each the other's peer
/// ([`peer_of`]) with `tweak` applied to both configurations.
async fn pair(a_addr: &str, b_addr: &str, tweak: impl Fn(&mut PeerConfig)) -> (Speaker, Speaker) {
    let a = Speaker::start(config(a_addr.parse().expect("ip"), 65001, 1))
        .await
        .expect("start a");
    let b = Speaker::start(config(b_addr.parse().expect("ip"), 65002, 2))
        .await
        .expect("start b");
    let mut pa = peer_of(&a, &b);
    let mut pb = peer_of(&b, &a);
    tweak(&mut pa);
    tweak(&mut pb);
    a.add_peer(pa).expect("add");
    b.add_peer(pb).expect("add");
    (a, b)
}

/// Announces `vips` from `a` to every peer and waits until `b` has received them all.
async fn announce_until_received(a: &Speaker, b: &Speaker, vips: Vec<Prefix>) {
    let count = u64::try_from(vips.len()).expect("count");
    let a_addr = a.local_addrs()[0].ip();
    a.announce(vips, RouteAttrs::default(), Target::All)
        .await
        .expect("announce");
    until("routes at b", || {
        b.peer(a_addr)
            .is_some_and(|p| p.nlri_received_total().announced == count)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_speakers_over_ipv4_loopback_with_md5_exchange_routes() {
    let (a, b) = pair("127.0.0.11", "127.0.0.12", |p| {
        p.transport.md5_password = Some("s3cret".into());
    })
    .await;
    let b_addr = b.local_addrs()[0].ip();
    let a_addr = a.local_addrs()[0].ip();
    let vips = (0..5000u32).map(|i| Prefix::host(Ipv4Addr::from(0xC633_0000 + i).into()));
    announce_until_received(&a, &b, vips.collect()).await;
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
    let (a, b) = pair("::1", "::1", |_| {}).await;
    // Both on ::1, told apart by port: each speaker has one peer, ::1.
    let a_addr = a.local_addrs()[0].ip();
    let vips = (0..300u128)
        .map(|i| Prefix::host(std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | i).into()));
    announce_until_received(&a, &b, vips.collect()).await;
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
    let (a, b) = pair("127.0.0.31", "127.0.0.32", |p| {
        p.transport.gtsm_hops = Some(1)
    })
    .await;
    let b_addr = b.local_addrs()[0].ip();
    let mut pa = a.peer_config(b_addr).expect("config");
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
    let (a, b) = pair("127.0.0.41", "127.0.0.42", |_| {}).await;
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

/// A speaker (AS 65001) at `addr` waiting in passive mode, its configuration of the peer
/// changed by `tweak` first, for a raw router (AS 65002) at `router` to connect.
async fn waiting_for_router(
    addr: &str,
    router: IpAddr,
    tweak: impl FnOnce(&mut PeerConfig),
) -> Speaker {
    let speaker = Speaker::start(config(addr.parse().expect("ip"), 65001, 1))
        .await
        .expect("start");
    let mut p = PeerConfig::new(router, 65001, 65002, speaker.config().router_id);
    p.session.mode = bgp::session::ConnectMode::Passive;
    tweak(&mut p);
    speaker.add_peer(p).expect("add");
    until("waiting for the router", || {
        speaker
            .peer(router)
            .is_some_and(|p| p.state == State::Active)
    })
    .await;
    speaker
}

/// A TCP connection from `local` (any port) to `remote`, as a router would open it.
async fn connect_from(
    local: IpAddr,
    remote: std::net::SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(local, 0))?;
    socket.connect(remote).await
}

/// The OPEN of a router at 127.0.0.`last` (AS 65002, identifier 10.0.0.`last`, hold time
/// 90 s, IPv4 unicast and four-octet AS numbers).
fn router_open(last: u8) -> bgp::wire::Message {
    use bgp::wire::{Capability, Family, Message, Open};
    Message::Open(Open::new(
        65002,
        90,
        Ipv4Addr::new(10, 0, 0, last),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::FourOctetAs(65002),
        ],
    ))
}

/// A router's immediate reconnect while the speaker shuts down must be refused by the
/// kernel (the listener is closed before any session ends), not accepted into the
/// listen backlog and reset when the process goes: a router that sees the handshake
/// complete starts a new session and drops the node's path when the RST comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_during_shutdown_is_refused_not_accepted_then_reset() {
    use bgp::wire::{Context, Message, frame};
    use tokio::io::AsyncWriteExt;

    let router: IpAddr = "127.0.0.62".parse().expect("ip");
    let speaker = waiting_for_router("127.0.0.61", router, |_| {}).await;
    let listening = speaker.local_addrs()[0];
    let connect = || connect_from(router, listening);

    // The router's session, Established.
    let mut stream = connect().await.expect("connect");
    let open = router_open(62);
    let plain = Context::default();
    stream
        .write_all(&open.to_bytes(&plain).expect("encode"))
        .await
        .expect("write OPEN");
    stream
        .write_all(&Message::Keepalive.to_bytes(&plain).expect("encode"))
        .await
        .expect("write KEEPALIVE");
    until("established", || {
        speaker
            .peer(router)
            .is_some_and(|p| p.state == State::Established)
    })
    .await;

    // A restart: the speaker closes its session. The router never closes its side, so
    // the speaker's lingering close keeps the shutdown going while the router reconnects.
    let closing = tokio::spawn({
        let speaker = speaker.clone();
        async move { speaker.close("restarting").await }
    });
    let mut buf = Vec::new();
    let notification = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(len) = frame(&buf, 4096).expect("frame") {
                let bytes: Vec<u8> = buf.drain(..len).collect();
                if let Message::Notification(n) = Message::decode(&bytes, &plain).expect("decode") {
                    return n;
                }
                continue;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed without a NOTIFICATION");
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("the Cease arrives");
    assert_eq!(
        notification.code,
        bgp::wire::ErrorCode::Cease(bgp::wire::CeaseSubcode::AdministrativeShutdown)
    );
    // The router reconnects at once.
    let again = connect().await;
    assert_eq!(
        again.as_ref().err().map(std::io::Error::kind),
        Some(std::io::ErrorKind::ConnectionRefused),
        "a reconnect during shutdown must be refused, got {again:?}"
    );
    closing.await.expect("close");
    drop(stream);
}

/// A raw BGP peer's view of one session that ends with our NOTIFICATION while it floods
/// us with UPDATEs.
#[derive(Debug)]
struct FloodOutcome {
    /// The NOTIFICATION, if it arrived (code, data).
    notification: Option<(bgp::wire::ErrorCode, Vec<u8>)>,
    /// How the read side ended after it: `Ok(())` for a FIN, the error (a RST) otherwise.
    after: Result<(), String>,
    /// UPDATEs written before the peer stopped, or the write error (a RST).
    written: Result<u64, String>,
}

/// Connects from `local` to `speaker`, establishes a session (AS 65002), then writes
/// UPDATEs of 500 /32s without pause until it has read our NOTIFICATION and the end of
/// our stream; then stops writing and closes its side.
async fn flood_until_notified(speaker: std::net::SocketAddr, local: IpAddr) -> FloodOutcome {
    use bgp::wire::{
        AsPath, AttributeValue, Context, Ipv4Prefix, Message, Nlri, Origin, PathAttribute, Update,
        frame,
    };
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::AsyncWriteExt;

    let stream = connect_from(local, speaker).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let plain = Context::default();
    let open = router_open(52);
    wr.write_all(&open.to_bytes(&plain).expect("encode"))
        .await
        .expect("write OPEN");
    // Reads whole messages; `None` at the end of the stream, `Err` on a RST.
    let mut buf = Vec::new();
    let mut next = async move || -> Result<Option<Message>, String> {
        loop {
            if let Some(len) = frame(&buf, 4096).map_err(|e| format!("{e:?}"))? {
                let bytes: Vec<u8> = buf.drain(..len).collect();
                return Message::decode(&bytes, &Context::default())
                    .map(Some)
                    .map_err(|e| format!("{e:?}"));
            }
            let mut chunk = [0u8; 4096];
            match rd.read(&mut chunk).await {
                Ok(0) if buf.is_empty() => return Ok(None),
                Ok(0) => return Err(format!("end of stream within a message: {buf:?}")),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    let mut opened = false;
    while !opened {
        match next().await {
            Ok(Some(Message::Open(_))) => {}
            Ok(Some(Message::Keepalive)) => opened = true,
            other => panic!("handshake: {other:?}"),
        }
    }
    wr.write_all(&Message::Keepalive.to_bytes(&plain).expect("encode"))
        .await
        .expect("write KEEPALIVE");
    let session = Context {
        four_octet_as: true,
        ..Context::default()
    };
    let update = Message::Update(Update {
        attributes: vec![
            PathAttribute::new(AttributeValue::Origin(Origin::Igp)),
            PathAttribute::new(AttributeValue::AsPath(AsPath::sequence(vec![65002]))),
            PathAttribute::new(AttributeValue::NextHop(Ipv4Addr::new(127, 0, 0, 52))),
        ],
        nlri: (0..500u32)
            .map(|i| Nlri::new(Ipv4Prefix::host(Ipv4Addr::from(0x6440_0000 + i))))
            .collect(),
        ..Update::default()
    })
    .to_bytes(&session)
    .expect("encode")
    .freeze();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_writing = stop.clone();
    let writer = tokio::spawn(async move {
        let mut written = 0u64;
        while !stop_writing.load(Ordering::Relaxed) {
            wr.write_all(&update).await.map_err(|e| e.to_string())?;
            written += 1;
        }
        wr.shutdown().await.map_err(|e| e.to_string())?;
        Ok::<u64, String>(written)
    });
    let mut outcome = FloodOutcome {
        notification: None,
        after: Ok(()),
        written: Ok(0),
    };
    loop {
        match next().await {
            Ok(Some(Message::Notification(n))) => {
                outcome.notification = Some((n.code, n.data));
                break;
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                outcome.after = Err("end of stream without a NOTIFICATION".into());
                break;
            }
            Err(e) => {
                outcome.after = Err(format!("before the NOTIFICATION: {e}"));
                break;
            }
        }
    }
    if outcome.notification.is_some() {
        outcome.after = match next().await {
            Ok(None) => Ok(()),
            Ok(Some(m)) => Err(format!("a message after the NOTIFICATION: {m:?}")),
            Err(e) => Err(e),
        };
    }
    stop.store(true, Ordering::Relaxed);
    outcome.written = writer.await.expect("writer");
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_sent_while_the_peer_floods_arrives_intact_and_ends_with_fin_not_rst() {
    use bgp::session::MaxPrefix;
    use bgp::wire::{CeaseSubcode, ErrorCode};

    const ROUNDS: usize = 50;
    let flooder: IpAddr = "127.0.0.52".parse().expect("ip");
    // Every UPDATE carries 500 prefixes: the first one trips the limit.
    let speaker = waiting_for_router("127.0.0.51", flooder, |p| {
        p.session.max_prefix = Some(MaxPrefix {
            limit: 100,
            restart_after: Some(Duration::from_millis(1)),
        });
    })
    .await;
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        until("ready to accept the peer again", || {
            speaker
                .peer(flooder)
                .is_some_and(|p| p.state == State::Active)
        })
        .await;
        let outcome = tokio::time::timeout(
            Duration::from_secs(20),
            flood_until_notified(speaker.local_addrs()[0], flooder),
        )
        .await
        .expect("the round ends");
        let notified = outcome.notification
            == Some((
                ErrorCode::Cease(CeaseSubcode::MaximumNumberOfPrefixesReached),
                vec![0, 1, 1, 0, 0, 0, 100],
            ));
        if !notified || outcome.after.is_err() || outcome.written.is_err() {
            failures.push(format!("round {round}: {outcome:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ROUNDS} rounds lost the NOTIFICATION or saw a RST:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
