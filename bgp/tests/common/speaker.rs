//! Speakers under test: their addresses and configurations on the in-memory network
//! (10.0.0.x, AS 650xx), a speaker dialling a scripted peer, and waiting for a condition.
//! It must not know any one test's scenario; what a test changes, it changes on the
//! configuration it gets back.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bgp::driver::network::Connection;
use bgp::driver::{MemoryNetwork, PeerConfig, Speaker, SpeakerConfig};
use bgp::rib::Prefix;
use bgp::session::{ConnectMode, State};
use tokio::sync::mpsc::Receiver;
use tokio::time::{Instant, sleep};

/// The address of host `last` on the in-memory network: 10.0.0.`last`.
pub(crate) fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

/// The AS of host `last`: 65000 + `last`.
pub(crate) fn asn(last: u8) -> u32 {
    65000 + u32::from(last)
}

/// A speaker at [`ip`]`(last)`, AS [`asn`]`(last)`, identifier 10.0.0.`last`, listening on
/// port 179.
pub(crate) fn speaker_config(last: u8) -> SpeakerConfig {
    SpeakerConfig {
        local_as: asn(last),
        router_id: Ipv4Addr::new(10, 0, 0, last),
        listen_addresses: vec![ip(last)],
        listen_port: 179,
    }
}

/// A speaker started with [`speaker_config`]`(last)` on `net`, with no peers yet.
pub(crate) fn speaker(net: &MemoryNetwork, last: u8) -> Speaker {
    Speaker::start_in_memory(speaker_config(last), net)
}

/// Host `them` as host `me`'s peer: from our address, connect retry 5 s, hold time 30 s.
pub(crate) fn peer(me: u8, them: u8) -> PeerConfig {
    let mut p = PeerConfig::new(ip(them), asn(me), asn(them), Ipv4Addr::new(10, 0, 0, me));
    p.transport.local = Some(ip(me));
    p.session.connect_retry = Duration::from_secs(5);
    p.session.hold_time = 30;
    p
}

/// Speakers A (host 1) and B (host 2) on `net`, each the other's peer ([`peer`]), A's
/// configuration of B changed by `tweak_a` and B's of A by `tweak_b` first.
pub(crate) fn speaker_pair(
    net: &MemoryNetwork,
    tweak_a: impl FnOnce(&mut PeerConfig),
    tweak_b: impl FnOnce(&mut PeerConfig),
) -> (Speaker, Speaker) {
    let (a, b) = (speaker(net, 1), speaker(net, 2));
    let (mut pa, mut pb) = (peer(1, 2), peer(2, 1));
    tweak_a(&mut pa);
    tweak_b(&mut pb);
    a.add_peer(pa).expect("add");
    b.add_peer(pb).expect("add");
    (a, b)
}

/// `n` IPv4 host routes from 100.64.0.0 on.
pub(crate) fn hosts(n: u32) -> Vec<Prefix> {
    (0..n)
        .map(|i| Prefix::host(Ipv4Addr::from(0x6440_0000 + i).into()))
        .collect()
}

/// The state of `s`'s session with `addr`; Idle when there is no such peer.
pub(crate) fn state(s: &Speaker, addr: IpAddr) -> State {
    s.peer(addr).map_or(State::Idle, |p| p.state)
}

/// Waits until `f` holds, checking every 10 ms, and fails the test with `what` after
/// `limit` (of paused time in the in-memory tests, of real time over sockets).
pub(crate) async fn until_within(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

/// [`until_within`] 1,000 s: on paused time, long enough for any back-off in these tests.
pub(crate) async fn until(what: &str, f: impl FnMut() -> bool) {
    until_within(Duration::from_secs(1000), what, f).await;
}

/// The host of the scripted peer: 10.0.0.99, AS 65099.
pub(crate) const FAKE: u8 = 99;

/// The connections the speaker opens to the scripted peer at 10.0.0.99, port 179.
pub(crate) fn fake_listener(net: &MemoryNetwork) -> Receiver<Connection> {
    net.listen(SocketAddr::new(ip(FAKE), 179))
}

/// A speaker at 10.0.0.1 (AS 65001) with one peer that it dials (active mode): the
/// scripted peer at 10.0.0.99 (AS 65099), its configuration changed by `tweak` first.
pub(crate) fn speaker_with_fake(
    net: &MemoryNetwork,
    tweak: impl FnOnce(&mut PeerConfig),
) -> Speaker {
    let a = speaker(net, 1);
    a.add_peer(fake_peer_config(tweak)).expect("add peer");
    a
}

/// The speaker's configuration of the scripted peer (see [`speaker_with_fake`]).
pub(crate) fn fake_peer_config(tweak: impl FnOnce(&mut PeerConfig)) -> PeerConfig {
    let mut p = peer(1, FAKE);
    p.session.mode = ConnectMode::Active;
    tweak(&mut p);
    p
}
