//! Driver tests on paused tokio time over the in-memory network, and one over real UDP
//! sockets on loopback.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::net::IpAddr;
use std::time::Duration;

use bfd::driver::AddError;
use bfd::{
    Bfd, ControlPacket, Diag, Hop, MemoryNetwork, SessionConfig, SessionHandle, State, Timers,
};
use tokio::time::{Instant, sleep, timeout};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const MS: Duration = Duration::from_millis(1);

/// Two hosts `a` and `b` with one session each way.
struct Pair {
    net: MemoryNetwork,
    a: Bfd,
    b: Bfd,
    a_ip: IpAddr,
    b_ip: IpAddr,
    ha: SessionHandle,
    hb: SessionHandle,
}

fn pair(a_ip: &str, b_ip: &str, hop: Hop, timers: Timers) -> Pair {
    let (a_ip, b_ip) = (ip(a_ip), ip(b_ip));
    let net = MemoryNetwork::new();
    let a = Bfd::in_memory(&net, &[a_ip]);
    let b = Bfd::in_memory(&net, &[b_ip]);
    let config = |peer, local| SessionConfig {
        peer,
        local: Some(local),
        hop,
        timers,
    };
    let ha = a.add_session(config(b_ip, a_ip)).unwrap();
    let hb = b.add_session(config(a_ip, b_ip)).unwrap();
    Pair {
        net,
        a,
        b,
        a_ip,
        b_ip,
        ha,
        hb,
    }
}

/// The single-hop pair 10.0.0.1 ↔ 10.0.0.2 with `timers`, once both sessions are Up.
async fn up_pair(timers: Timers) -> Pair {
    let p = pair("10.0.0.1", "10.0.0.2", Hop::Single, timers);
    p.wait_both(State::Up).await;
    p
}

impl Pair {
    /// Waits until both sessions are in `state`.
    async fn wait_both(&self, state: State) {
        wait_state(&self.ha, state).await;
        wait_state(&self.hb, state).await;
    }
}

/// Waits (30 s at most) until `handle`'s session is in `state`.
async fn wait_state(handle: &SessionHandle, state: State) {
    let mut status = handle.status();
    timeout(
        Duration::from_secs(30),
        status.wait_for(|s| s.state == state),
    )
    .await
    .unwrap_or_else(|_| panic!("never reached {state}: {:?}", handle.status().borrow()))
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn sessions_come_up_and_negotiate_timers() {
    let p = up_pair(Timers::new(300 * MS, 3)).await;
    assert!(*p.ha.up().borrow());
    // Let the Poll sequences finish, then check what was negotiated.
    sleep(Duration::from_secs(2)).await;
    let status = p.ha.status().borrow().clone();
    assert_eq!(status.tx_interval, Some(300 * MS));
    assert_eq!(status.detection_time, 900 * MS);
    assert_eq!(status.remote_state, State::Up);
    assert_eq!(
        status.remote_discriminator,
        p.hb.status().borrow().local_discriminator
    );
    assert_eq!(status.up_count, 1);
    assert_eq!(p.a.statuses().len(), 1);
    assert_eq!(p.b.statuses()[0].state, State::Up);
    assert_eq!(p.a.drops().total(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_cut_link_is_detected_within_the_detection_time_and_heals() {
    let p = up_pair(Timers::new(300 * MS, 3)).await;
    sleep(Duration::from_secs(2)).await;
    let mut up = p.ha.up();
    up.mark_unchanged();
    p.net.cut(p.a_ip, p.b_ip);
    let cut_at = Instant::now();
    up.changed().await.unwrap();
    let detected = cut_at.elapsed();
    assert!(!*up.borrow());
    assert!(!*p.ha.gate().borrow(), "a detected failure closes the gate");
    // Virtual time: the last packet arrived at most one (jittered) interval before the cut.
    assert!(detected <= 900 * MS, "{detected:?}");
    assert!(detected >= 900 * MS - 300 * MS, "{detected:?}");
    assert_eq!(p.ha.status().borrow().diag, Diag::DetectionTimeExpired);
    wait_state(&p.hb, State::Down).await;
    p.net.restore(p.a_ip, p.b_ip);
    p.wait_both(State::Up).await;
    assert_eq!(p.ha.status().borrow().up_count, 2);
    assert_eq!(p.ha.status().borrow().down_count, 1);
}

#[tokio::test(start_paused = true)]
async fn removing_a_session_brings_the_remote_down_at_once() {
    let p = up_pair(Timers::new(1000 * MS, 3)).await;
    let start = Instant::now();
    assert!(p.a.remove_session(p.b_ip, Hop::Single).await);
    wait_state(&p.hb, State::Down).await;
    assert!(start.elapsed() < 100 * MS, "AdminDown, not detection");
    assert_eq!(
        p.hb.status().borrow().diag,
        Diag::NeighborSignaledDown,
        "told, not timed out"
    );
    assert!(!p.a.remove_session(p.b_ip, Hop::Single).await);
}

#[tokio::test(start_paused = true)]
async fn admin_down_holds_both_sides_down_until_released() {
    let p = up_pair(Timers::new(100 * MS, 3)).await;
    assert!(p.a.set_admin_down(p.b_ip, Hop::Single, true).await);
    wait_state(&p.ha, State::AdminDown).await;
    wait_state(&p.hb, State::Down).await;
    sleep(Duration::from_secs(5)).await;
    assert_eq!(p.hb.state(), State::Down);
    assert!(!*p.hb.up().borrow());
    assert!(
        *p.hb.gate().borrow(),
        "RFC 5882 §3.2: the remote's AdminDown is no failure for clients"
    );
    assert!(
        !*p.ha.gate().borrow(),
        "the side held down locally closes its gate"
    );
    assert!(p.a.set_admin_down(p.b_ip, Hop::Single, false).await);
    p.wait_both(State::Up).await;
}

#[tokio::test(start_paused = true)]
async fn ipv6_and_multihop_sessions_come_up() {
    let v6 = pair("fd00::1", "fd00::2", Hop::Single, Timers::default());
    wait_state(&v6.ha, State::Up).await;
    let multi = pair("10.0.0.1", "10.9.9.9", Hop::Multi, Timers::default());
    wait_state(&multi.ha, State::Up).await;
    // Multihop does not require TTL 255 (RFC 5883): a packet that crossed routers counts.
    let mut packet = ControlPacket::decode(&[
        0x20, 0x40, 3, 24, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0,
    ])
    .unwrap();
    packet.state = State::Up;
    packet.your_discriminator = multi.ha.status().borrow().local_discriminator;
    packet.my_discriminator = multi.hb.status().borrow().local_discriminator;
    packet.required_min_rx = 300_000;
    packet.desired_min_tx = 300_000;
    multi
        .net
        .inject(multi.b_ip, multi.a_ip, Hop::Multi, 250, &packet.encode());
    assert_eq!(multi.a.drops().total(), 0, "{:?}", multi.a.drops());
}

#[tokio::test(start_paused = true)]
async fn malformed_and_off_link_packets_are_counted_and_never_acted_on() {
    let p = up_pair(Timers::new(300 * MS, 3)).await;
    sleep(Duration::from_secs(2)).await;
    let mine = p.ha.status().borrow().local_discriminator;
    let theirs = p.hb.status().borrow().local_discriminator;
    // A valid Down from b that would bring the session down, then broken variants of it.
    let mut down = [
        0x23, 0x40, 3, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40, 0, 0x04, 0x93, 0xe0, 0, 0,
        0, 0,
    ];
    down[4..8].copy_from_slice(&theirs.to_be_bytes());
    down[8..12].copy_from_slice(&mine.to_be_bytes());
    assert_eq!(ControlPacket::decode(&down).unwrap().state, State::Down);
    let bad: Vec<Vec<u8>> = vec![
        {
            let mut b = down.to_vec();
            b[0] = 0x43; // version 2
            b
        },
        {
            let mut b = down.to_vec();
            b[3] = 30; // length beyond the datagram
            b
        },
        {
            let mut b = down.to_vec();
            b[2] = 0; // detect multiplier 0
            b
        },
        {
            let mut b = down.to_vec();
            b[1] |= 1; // multipoint
            b
        },
        {
            let mut b = down.to_vec();
            b[4..8].fill(0); // my discriminator 0
            b
        },
        {
            let mut b = down.to_vec();
            b[1] = 0xc0; // Up with your discriminator 0
            b[8..12].fill(0);
            b
        },
        {
            let mut b = down.to_vec();
            b[1] |= 0b100; // authentication present
            b[3] = 26;
            b.extend_from_slice(&[1, 2]);
            b
        },
        down[..20].to_vec(),
    ];
    for datagram in &bad {
        p.net.inject(p.b_ip, p.a_ip, Hop::Single, 255, datagram);
    }
    // Single-hop with TTL 254: may come from off-link.
    p.net.inject(p.b_ip, p.a_ip, Hop::Single, 254, &down);
    // A well-formed packet for a discriminator we never gave out.
    let mut stranger = down;
    stranger[8..12].copy_from_slice(&(mine ^ 1).to_be_bytes());
    p.net.inject(p.b_ip, p.a_ip, Hop::Single, 255, &stranger);
    // The right discriminator from the wrong sender.
    p.net
        .inject(ip("10.0.0.66"), p.a_ip, Hop::Single, 255, &down);
    sleep(Duration::from_secs(1)).await;
    let drops = p.a.drops();
    assert_eq!(drops.malformed(), bad.len() as u64, "{drops:?}");
    assert_eq!(drops.version, 1);
    assert_eq!(drops.length, 1);
    assert_eq!(drops.truncated, 1);
    assert_eq!(drops.authentication, 1);
    assert_eq!(drops.your_discriminator_zero, 1);
    assert_eq!(drops.ttl, 1);
    assert_eq!(drops.no_session, 2);
    assert_eq!(p.ha.state(), State::Up, "nothing acted on");
    assert_eq!(p.ha.status().borrow().down_count, 0);
    // The same packet, well-formed and on-link, is acted on.
    p.net.inject(p.b_ip, p.a_ip, Hop::Single, 255, &down);
    let mut status = p.ha.status();
    timeout(
        Duration::from_secs(5),
        status.wait_for(|s| s.down_count == 1),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(status.borrow().diag, Diag::NeighborSignaledDown);
}

#[tokio::test(start_paused = true)]
async fn a_second_session_to_the_same_peer_is_refused() {
    let p = pair("10.0.0.1", "10.0.0.2", Hop::Single, Timers::default());
    let again =
        p.a.add_session(SessionConfig::single_hop(p.b_ip, None, Timers::default()));
    assert!(matches!(again, Err(AddError::Exists(_, Hop::Single))));
    // The multihop one is a different session.
    assert!(
        p.a.add_session(SessionConfig::multihop(p.b_ip, p.a_ip, Timers::default()))
            .is_ok()
    );
}

/// Real sockets: two sessions of one `Bfd` on loopback talk to each other through the
/// 3784 listener (127.0.0.1 ↔ 127.0.0.2), TTL 255 read back from each datagram.
#[tokio::test]
async fn udp_sessions_on_loopback_come_up() {
    let bfd = Bfd::new();
    let (one, two) = (ip("127.0.0.1"), ip("127.0.0.2"));
    let timers = Timers::new(50 * MS, 3);
    let a = bfd
        .add_session(SessionConfig::single_hop(two, Some(one), timers))
        .unwrap_or_else(|e| panic!("BFD on loopback (needs root for port 3784): {e}"));
    let b = bfd
        .add_session(SessionConfig::single_hop(one, Some(two), timers))
        .unwrap();
    wait_state(&a, State::Up).await;
    wait_state(&b, State::Up).await;
    assert_eq!(bfd.drops().ttl, 0, "loopback keeps TTL 255");
    // The same Down packet that would end the session, but sent with TTL 64: it may have
    // come from off-link (RFC 5881 §5), so it is counted and dropped.
    let packet = ControlPacket {
        diag: Diag::None,
        state: State::Down,
        poll: false,
        final_: false,
        control_plane_independent: false,
        auth_present: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discriminator: b.status().borrow().local_discriminator,
        your_discriminator: a.status().borrow().local_discriminator,
        desired_min_tx: 1_000_000,
        required_min_rx: 1_000_000,
        required_min_echo_rx: 0,
    };
    let spoof = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    spoof.set_ttl(64).unwrap();
    spoof.send_to(&packet.encode(), "127.0.0.1:3784").unwrap();
    let start = Instant::now();
    while bfd.drops().ttl == 0 && start.elapsed() < Duration::from_secs(5) {
        sleep(10 * MS).await;
    }
    assert_eq!(bfd.drops().ttl, 1, "{:?}", bfd.drops());
    assert_eq!(a.state(), State::Up);
    assert_eq!(a.status().borrow().down_count, 0);
    bfd.shutdown().await;
    assert!(bfd.statuses().is_empty());
}
