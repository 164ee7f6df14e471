//! The driver on paused tokio time over the in-memory network: two Berth speakers peer
//! and exchange routes; hold timer expiry; reconnect with back-off; graceful shutdown;
//! max-prefix; the send hold timer; configuration changes that touch only one peer; a
//! header whose length is wrong for its type answered at once, not at the hold timer.
//! A scripted "fake peer" (`common::fake_peer`) speaks raw BGP through the codec where the
//! test needs to see exactly what went over the wire.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp::driver::network::Connection;
use bgp::driver::{MemoryNetwork, Speaker, Target};
use bgp::rib::RouteAttrs;
use bgp::session::{MaxPrefix, State};
use bgp::wire::{
    AttributeValue, Capability, CeaseSubcode, Community, Context, ErrorCode, Family, Message,
    Notification,
};
use common::fake_peer::{FakePeer, basic_capabilities, dialled_fake, established_with_fake};
use common::speaker::{
    FAKE, fake_listener, fake_peer_config, hosts, ip, peer, speaker, speaker_pair,
    speaker_with_fake, state, until,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::Receiver;
use tokio::time::Instant;

/// How many prefixes the fake got announced before the first End-of-RIB.
async fn initial_table(fake: &mut FakePeer) -> usize {
    let mut announced = 0;
    loop {
        match fake.recv().await.expect("connection closed") {
            Message::Update(u) if u.end_of_rib_family().is_some() => return announced,
            Message::Update(u) => announced += u.nlri.len(),
            _ => {}
        }
    }
}

/// A speaker announcing `n` host routes to every peer, and the fake past the handshake (hold
/// time 0: no KEEPALIVEs needed while a test watches) and past the initial table, which
/// held the `n` routes.
async fn fake_past_the_initial_table(n: u32) -> (Speaker, FakePeer, Receiver<Connection>) {
    let (a, mut fake, incoming) = dialled_fake(|_| {}).await;
    a.announce(hosts(n), RouteAttrs::default(), Target::All)
        .await
        .expect("announce");
    fake.handshake(0).await;
    let held = initial_table(&mut fake).await;
    assert_eq!(u32::try_from(held).ok(), Some(n), "the initial table");
    (a, fake, incoming)
}

#[tokio::test(start_paused = true)]
async fn two_speakers_peer_and_exchange_routes() {
    let net = MemoryNetwork::new();
    // The sessions run from the first await on: the subscription sees their way up.
    let (a, b) = speaker_pair(&net, |_| {}, |pb| pb.session.keep_received = true);
    let mut changes = a.subscribe();
    a.announce(hosts(1000), RouteAttrs::default(), Target::All)
        .await
        .expect("announce");
    b.announce(hosts(10), RouteAttrs::default(), Target::Peer(ip(1)))
        .await
        .expect("announce");
    until("both established", || {
        state(&a, ip(2)) == State::Established && state(&b, ip(1)) == State::Established
    })
    .await;
    until("routes received", || {
        b.peer(ip(1))
            .is_some_and(|p| p.prefixes_received_total() == Some(1000))
            && a.peer(ip(2))
                .is_some_and(|p| p.nlri_received_total().announced == 10)
    })
    .await;
    // A keeps nothing per path: it counts NLRI and does not claim a table size.
    assert_eq!(a.peer(ip(2)).expect("peer").prefixes_received, None);
    let pa = a.peer(ip(2)).expect("peer");
    assert_eq!(pa.prefixes_advertised, 1000);
    assert!(
        pa.sent.update <= 3,
        "1000 /32s fit in 2 UPDATEs plus End-of-RIB, sent {}",
        pa.sent.update
    );
    let n = pa.negotiated.expect("negotiated");
    assert_eq!((n.peer_as, n.hold_time), (65002, 30));
    assert!(n.four_octet_as && n.route_refresh && n.enhanced_route_refresh && n.extended_message);
    assert_eq!(pa.local_address.map(|a| a.ip()), Some(ip(1)));
    // B kept what it received: next hop self (A's address), A's AS in the path.
    let kept = b.received(ip(1)).await.expect("received");
    assert_eq!(kept.len(), 1000);
    let attrs = &kept[0].attributes;
    assert!(
        attrs
            .iter()
            .any(|a| a.value == AttributeValue::NextHop(Ipv4Addr::new(10, 0, 0, 1)))
    );
    assert!(
        attrs
            .iter()
            .any(|a| a.value == AttributeValue::AsPath(bgp::wire::AsPath::sequence(vec![65001])))
    );
    assert!(
        a.received(ip(2)).await.expect("received").is_empty(),
        "not kept by default"
    );
    // Withdrawals travel too.
    a.withdraw(hosts(1000).into_iter().take(400), Target::All)
        .await
        .expect("withdraw");
    until("withdrawn", || {
        b.peer(ip(1))
            .is_some_and(|p| p.prefixes_received_total() == Some(600))
    })
    .await;
    // The state change stream saw the way up.
    let mut seen = Vec::new();
    while let Ok(c) = changes.try_recv() {
        seen.push(c.to);
    }
    assert_eq!(seen.last(), Some(&State::Established));
    assert!(seen.contains(&State::OpenSent));
}

#[tokio::test(start_paused = true)]
async fn hold_timer_expiry_ends_the_session() {
    let (a, mut fake, _incoming) = established_with_fake(9).await;
    let established = Instant::now();
    // The fake goes silent; it keeps reading, so only the hold timer can end this.
    let n = fake
        .recv_until(|m| matches!(m, Message::Notification(_)))
        .await;
    assert_eq!(
        n,
        Message::Notification(Notification::new(ErrorCode::HoldTimerExpired, vec![]))
    );
    assert!(established.elapsed() >= Duration::from_secs(9));
    until("down", || state(&a, ip(FAKE)) != State::Established).await;
    let p = a.peer(ip(FAKE)).expect("peer");
    assert_eq!(p.flaps, 1);
    assert_eq!(
        p.last_error_sent.map(|n| n.code),
        Some(ErrorCode::HoldTimerExpired)
    );
}

#[tokio::test(start_paused = true)]
async fn a_header_with_a_length_wrong_for_its_type_is_answered_at_once() {
    // Hold time 0: no hold timer and no KEEPALIVEs, so only the framing check can answer.
    let (a, mut fake, _incoming) = established_with_fake(0).await;
    // A KEEPALIVE header claiming 25 octets, and not one octet more, ever.
    let mut header = vec![0xff; 16];
    header.extend_from_slice(&[0, 25, 4]);
    fake.wr.write_all(&header).await.expect("write");
    let answer = tokio::time::timeout(
        Duration::from_secs(3600),
        fake.recv_until(|m| matches!(m, Message::Notification(_))),
    )
    .await
    .expect("answered without waiting for the 6 octets that never come");
    assert_eq!(
        answer,
        Message::Notification(Notification::new(
            ErrorCode::MessageHeader(bgp::wire::MessageHeaderSubcode::BadMessageLength),
            vec![0, 25],
        ))
    );
    until("down", || state(&a, ip(FAKE)) != State::Established).await;
}

#[tokio::test(start_paused = true)]
async fn failed_sessions_reconnect_with_growing_back_off() {
    let net = MemoryNetwork::new();
    let mut incoming = fake_listener(&net);
    let _a = speaker_with_fake(&net, |p| p.session.connect_retry = Duration::from_secs(120));
    let mut arrivals = Vec::new();
    for _ in 0..5 {
        let conn = incoming.recv().await.expect("connection");
        arrivals.push(Instant::now());
        // Refuse the session right away.
        let mut fake = FakePeer::new(conn);
        fake.recv().await;
        let refuse = Notification::new(ErrorCode::Cease(CeaseSubcode::ConnectionRejected), vec![]);
        fake.send(Message::Notification(refuse)).await;
    }
    let gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
    // Idle hold 1 s doubling per consecutive failure: 1, 2, 4, 8 s.
    for pair in gaps.windows(2) {
        assert!(
            pair[1] >= pair[0] * 2 - Duration::from_millis(100),
            "back-off must grow: {gaps:?}"
        );
    }
    assert!(gaps[0] >= Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_marks_routes_waits_and_ceases_with_a_message() {
    let (a, mut fake, _incoming) = fake_past_the_initial_table(5).await;
    let started = Instant::now();
    let shutdown = tokio::spawn({
        let a = a.clone();
        async move {
            a.shutdown("node drained for maintenance", Duration::from_secs(60))
                .await
        }
    });
    let m = fake
        .recv_until(|m| matches!(m, Message::Update(u) if !u.nlri.is_empty()))
        .await;
    let Message::Update(u) = m else {
        unreachable!()
    };
    assert_eq!(u.nlri.len(), 5);
    assert!(
        matches!(u.attribute(8), Some(AttributeValue::Communities(c)) if c.contains(&Community(0xFFFF_0000))),
        "re-announced with GRACEFUL_SHUTDOWN: {u:?}"
    );
    let n = fake
        .recv_until(|m| matches!(m, Message::Notification(_)))
        .await;
    assert!(
        started.elapsed() >= Duration::from_secs(60),
        "the drain time is waited: {n:?}"
    );
    let Message::Notification(n) = n else {
        unreachable!()
    };
    assert_eq!(
        n.code,
        ErrorCode::Cease(CeaseSubcode::AdministrativeShutdown)
    );
    assert_eq!(
        n.shutdown_communication(),
        Some("node drained for maintenance")
    );
    shutdown.await.expect("shutdown");
    assert!(a.peers().is_empty());
}

#[tokio::test(start_paused = true)]
async fn max_prefix_ceases_and_retries_after_the_idle_time() {
    let net = MemoryNetwork::new();
    let (a, b) = speaker_pair(
        &net,
        |_| {},
        |pb| {
            pb.session.max_prefix = Some(MaxPrefix {
                limit: 50,
                restart_after: Some(Duration::from_secs(300)),
            });
        },
    );
    let mut changes = b.subscribe();
    a.announce(hosts(100), RouteAttrs::default(), Target::All)
        .await
        .expect("announce");
    until("max-prefix cease", || {
        b.peer(ip(1)).is_some_and(|p| {
            p.last_error_sent.is_some_and(|n| {
                n.code == ErrorCode::Cease(CeaseSubcode::MaximumNumberOfPrefixesReached)
            })
        })
    })
    .await;
    let tripped = Instant::now();
    let a_side = a.peer(ip(2)).expect("peer");
    assert_eq!(
        a_side.last_error_received.map(|n| n.code),
        Some(ErrorCode::Cease(
            CeaseSubcode::MaximumNumberOfPrefixesReached
        ))
    );
    // B stays down for the configured idle time, then tries again (and trips again).
    loop {
        let c = changes.recv().await.expect("changes");
        if c.from == State::Idle && c.at > tripped {
            assert!(
                c.at - tripped >= Duration::from_secs(299),
                "retried after {:?}",
                c.at - tripped
            );
            break;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_reading_is_torn_down_by_the_send_hold_timer() {
    let (a, fake, _incoming) = established_with_fake(30).await;
    // More than the in-memory pipe holds, and the fake never reads again; it keeps
    // sending KEEPALIVEs so that our hold timer is happy.
    a.announce(hosts(200_000), RouteAttrs::default(), Target::All)
        .await
        .expect("announce");
    let FakePeer { wr, .. } = fake;
    let mut wr = wr;
    let keepalive = Message::Keepalive
        .to_bytes(&Context::default())
        .expect("encode");
    let a2 = a.clone();
    let writer = tokio::spawn(async move {
        while state(&a2, ip(FAKE)) == State::Established {
            if wr.write_all(&keepalive).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    until("torn down", || state(&a, ip(FAKE)) != State::Established).await;
    let p = a.peer(ip(FAKE)).expect("peer");
    assert_eq!(
        p.last_error_sent.map(|n| n.code.to_wire()),
        Some((8, 0)),
        "RFC 9687 Send Hold Timer Expired"
    );
    writer.abort();
}

#[tokio::test(start_paused = true)]
async fn changing_one_peer_leaves_the_others_alone() {
    let net = MemoryNetwork::new();
    let (a, b) = speaker_pair(&net, |_| {}, |_| {});
    let c = speaker(&net, 3);
    a.add_peer(peer(1, 3)).expect("add");
    c.add_peer(peer(3, 1)).expect("add");
    until("both up", || {
        state(&a, ip(2)) == State::Established && state(&a, ip(3)) == State::Established
    })
    .await;
    let mut changes = a.subscribe();
    // A new description resets nothing.
    let mut pc = a.peer_config(ip(3)).expect("config");
    pc.description = "spine 2".into();
    a.update_peer(pc.clone()).await.expect("update");
    // A new hold time resets only that session.
    pc.session.hold_time = 20;
    a.update_peer(pc).await.expect("update");
    until("C back up", || {
        a.peer(ip(3)).is_some_and(|p| {
            p.state == State::Established && p.negotiated.is_some_and(|n| n.hold_time == 20)
        })
    })
    .await;
    // Adding and removing a peer touches no other session.
    a.add_peer(peer(1, 4)).expect("add");
    a.remove_peer(ip(4)).await.expect("remove");
    a.announce(hosts(3), RouteAttrs::default(), Target::Peer(ip(3)))
        .await
        .expect("announce");
    until("routes to C only", || {
        c.peer(ip(1))
            .is_some_and(|p| p.nlri_received_total().announced == 3)
    })
    .await;
    while let Ok(change) = changes.try_recv() {
        assert_ne!(change.address, ip(2), "B's session was touched: {change:?}");
    }
    let pb = a.peer(ip(2)).expect("peer");
    assert_eq!((pb.state, pb.flaps), (State::Established, 0));
    assert_eq!(
        b.peer(ip(1)).expect("peer").nlri_received_total(),
        Default::default()
    );
    assert_eq!(a.peer(ip(3)).expect("peer").description, "spine 2");
}

#[tokio::test(start_paused = true)]
async fn connections_from_unconfigured_addresses_are_closed_unread() {
    let net = MemoryNetwork::new();
    let _a = speaker_with_fake(&net, |_| {});
    let mut stranger = bgp::driver::transport::Transport::new(ip(1));
    stranger.local = Some(ip(200));
    use bgp::driver::Network;
    let conn = net
        .connect(&stranger, Duration::from_secs(1))
        .await
        .expect("connect");
    let mut fake = FakePeer::new(conn);
    // Nothing is ever sent to a stranger; the connection just closes.
    assert!(fake.recv().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn enhanced_route_refresh_resends_the_table_between_borr_and_eorr() {
    let (a, mut fake, _incoming) = fake_past_the_initial_table(3).await;
    fake.send(Message::RouteRefresh(bgp::wire::RouteRefresh::request(
        Family::IPV4_UNICAST,
    )))
    .await;
    let mut seen = Vec::new();
    loop {
        let m = fake.recv().await.expect("message");
        let end = matches!(&m, Message::RouteRefresh(r) if r.subtype == bgp::wire::RouteRefreshSubtype::EORR);
        seen.push(m);
        if end {
            break;
        }
    }
    assert!(
        matches!(&seen[0], Message::RouteRefresh(r) if r.subtype == bgp::wire::RouteRefreshSubtype::BORR),
        "{seen:?}"
    );
    let prefixes: usize = seen
        .iter()
        .map(|m| {
            if let Message::Update(u) = m {
                u.nlri.len()
            } else {
                0
            }
        })
        .sum();
    assert_eq!(prefixes, 3);
    let p = a.peer(ip(FAKE)).expect("peer");
    assert_eq!((p.received.route_refresh, p.sent.route_refresh), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn garbage_from_a_peer_gets_a_notification_not_a_panic() {
    let (a, mut fake, _incoming) = dialled_fake(|_| {}).await;
    fake.expect_open().await;
    fake.wr.write_all(&[0x42; 40]).await.expect("write");
    let n = fake
        .recv_until(|m| matches!(m, Message::Notification(_)))
        .await;
    let Message::Notification(n) = n else {
        unreachable!()
    };
    assert_eq!(
        n.code.to_wire(),
        (1, 1),
        "Message Header Error / Connection Not Synchronized"
    );
    assert!(fake.recv().await.is_none(), "then the connection is closed");
    until("idle", || state(&a, ip(FAKE)) != State::OpenSent).await;
    assert_eq!(
        a.peer(ip(FAKE))
            .and_then(|p| p.last_error_sent)
            .map(|n| n.code.to_wire()),
        Some((1, 1))
    );
}

#[tokio::test(start_paused = true)]
async fn a_peer_added_with_its_routes_has_them_before_end_of_rib() {
    // Announcing a per-peer route after add_peer races the session: here the session wins
    // (the handshake is done before the announcement) and End-of-RIB goes out empty. A
    // graceful-restart helper flushes the routes it kept for us at that End-of-RIB.
    let (_a, mut fake, _incoming) = dialled_fake(|_| {}).await;
    fake.handshake(0).await;
    assert_eq!(initial_table(&mut fake).await, 0);

    // Added with its routes, the peer's first End-of-RIB follows them, however fast the
    // session comes up.
    let net = MemoryNetwork::new();
    let mut incoming = fake_listener(&net);
    let b = speaker(&net, 1);
    let own = hosts(3)
        .into_iter()
        .map(|h| (h, RouteAttrs::default()))
        .collect();
    b.add_peer_with_routes(fake_peer_config(|_| {}), own)
        .expect("add peer");
    let mut fake = FakePeer::new(incoming.recv().await.expect("connection"));
    fake.handshake(0).await;
    assert_eq!(initial_table(&mut fake).await, 3);
}

#[tokio::test(start_paused = true)]
async fn a_length_above_4096_without_extended_messages_is_refused_from_the_header_alone() {
    let (_a, mut fake, _incoming) = dialled_fake(|_| {}).await;
    fake.handshake_offering(30, basic_capabilities()).await;
    // Only a header claiming 4,097 octets (RFC 4271 §6.1: Bad Message Length, data the
    // length field). The speaker once framed every connection with the 65,535 limit of
    // RFC 8654 and waited for the rest until its hold timer expired (4/0).
    let mut header = vec![0xff; 16];
    header.extend_from_slice(&4097u16.to_be_bytes());
    header.push(2);
    fake.wr.write_all(&header).await.expect("write");
    let Message::Notification(n) = fake
        .recv_until(|m| matches!(m, Message::Notification(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(n.code.to_wire(), (1, 2), "{n:?}");
    assert_eq!(n.data, vec![0x10, 0x01]);
    assert!(fake.recv().await.is_none(), "then the connection is closed");
}

#[tokio::test(start_paused = true)]
async fn an_update_above_4096_is_accepted_once_extended_messages_are_negotiated() {
    let (a, mut fake, _incoming) = dialled_fake(|_| {}).await;
    let mut caps = basic_capabilities();
    caps.push(Capability::ExtendedMessage);
    fake.handshake_offering(30, caps).await;
    // Right after the speaker's KEEPALIVE: 1,000 /32s in one UPDATE of 5,043 octets.
    let attributes: &[u8] = &[
        0x40, 0x01, 0x01, 0x00, // ORIGIN IGP
        0x40, 0x02, 0x06, 0x02, 0x01, 0x00, 0x00, 0xfe, 0x2b, // AS_PATH 65099
        0x40, 0x03, 0x04, 10, 0, 0, 99, // NEXT_HOP
    ];
    let mut body = vec![0x00, 0x00, 0x00, 20];
    body.extend_from_slice(attributes);
    for i in 0..1000u32 {
        body.push(32);
        body.extend_from_slice(&(0x6440_0000 + i).to_be_bytes());
    }
    let mut update = vec![0xff; 16];
    update.extend_from_slice(
        &u16::try_from(19 + body.len())
            .expect("length")
            .to_be_bytes(),
    );
    update.push(2);
    update.extend_from_slice(&body);
    assert!(update.len() > 4096);
    fake.wr.write_all(&update).await.expect("write");
    until("1000 routes received", || {
        a.peer(ip(FAKE))
            .is_some_and(|p| p.nlri_received_total().announced == 1000)
    })
    .await;
    let p = a.peer(ip(FAKE)).expect("peer");
    assert_eq!(p.state, State::Established);
    assert!(p.last_error_sent.is_none(), "{:?}", p.last_error_sent);
}

#[tokio::test(start_paused = true)]
async fn a_malformed_notification_closes_the_connection_without_a_notification_back() {
    let (a, mut fake, _incoming) = dialled_fake(|_| {}).await;
    fake.handshake_offering(30, basic_capabilities()).await;
    // A NOTIFICATION of length 20: the code but no subcode. RFC 4271 §6.4: the receiver
    // cannot report an error in a NOTIFICATION with one (the speaker once answered 1/2).
    let mut short = vec![0xff; 16];
    short.extend_from_slice(&[0x00, 20, 3, 6]);
    fake.wr.write_all(&short).await.expect("write");
    while let Some(m) = fake.recv().await {
        assert!(
            !matches!(m, Message::Notification(_)),
            "answered a NOTIFICATION with {m:?}"
        );
    }
    until("idle", || state(&a, ip(FAKE)) != State::Established).await;
    assert!(a.peer(ip(FAKE)).expect("peer").last_error_sent.is_none());
}
