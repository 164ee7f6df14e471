//! A BGP peer scripted by the test, speaking raw BGP through the codec over an in-memory
//! connection, for tests that must see exactly what went over the wire (or send what no
//! real peer would). It must not decide anything for the test: it sends and receives what
//! it is told.

use std::net::Ipv4Addr;

use bgp::driver::network::{Connection, Stream};
use bgp::driver::{MemoryNetwork, PeerConfig, Speaker};
use bgp::session::State;
use bgp::wire::{Capability, Context, Family, Message, Open, frame};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc::Receiver;

use super::speaker::{FAKE, asn, fake_listener, ip, speaker_with_fake, state, until};

/// One connection's end held by the test.
pub(crate) struct FakePeer {
    /// What the speaker sends; read through [`FakePeer::recv`].
    pub(crate) rd: ReadHalf<Box<dyn Stream>>,
    /// Where the test writes, raw bytes or through [`FakePeer::send`].
    pub(crate) wr: WriteHalf<Box<dyn Stream>>,
    buf: BytesMut,
    /// How messages are encoded and decoded (four-octet AS numbers once the handshake
    /// negotiated them).
    pub(crate) ctx: Context,
}

/// IPv4 unicast and four-octet AS numbers: what every peer offers.
pub(crate) fn basic_capabilities() -> Vec<Capability> {
    vec![
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::FourOctetAs(asn(FAKE)),
    ]
}

impl FakePeer {
    /// The test's end of `conn`.
    pub(crate) fn new(conn: Connection) -> Self {
        let (rd, wr) = tokio::io::split(conn.stream);
        FakePeer {
            rd,
            wr,
            buf: BytesMut::new(),
            ctx: Context::default(),
        }
    }

    /// The next whole message from the speaker; `None` once the connection is closed.
    pub(crate) async fn recv(&mut self) -> Option<Message> {
        loop {
            if let Some(len) = frame(&self.buf, 65535).expect("frame") {
                let bytes = self.buf.split_to(len);
                return Some(Message::decode(&bytes, &self.ctx).expect("decode"));
            }
            if self.rd.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
        }
    }

    /// Sends `m`, encoded with [`FakePeer::ctx`].
    pub(crate) async fn send(&mut self, m: Message) {
        let bytes = m.to_bytes(&self.ctx).expect("encode");
        self.wr.write_all(&bytes).await.expect("write");
    }

    /// Receives the speaker's OPEN; fails the test on anything else.
    pub(crate) async fn expect_open(&mut self) -> Open {
        let Some(Message::Open(open)) = self.recv().await else {
            panic!("expected OPEN")
        };
        open
    }

    /// Answers the speaker's OPEN with one from AS 65099 (10.0.0.99) offering `caps` with
    /// hold time `hold`, sends a KEEPALIVE, and receives the speaker's KEEPALIVE: after
    /// it, the session is up on both ends and the fake may send UPDATEs.
    pub(crate) async fn handshake_offering(&mut self, hold: u16, caps: Vec<Capability>) {
        self.expect_open().await;
        self.send(Message::Open(Open::new(
            asn(FAKE),
            hold,
            Ipv4Addr::new(10, 0, 0, FAKE),
            caps,
        )))
        .await;
        self.send(Message::Keepalive).await;
        self.ctx.four_octet_as = true;
        let Some(Message::Keepalive) = self.recv().await else {
            panic!("expected KEEPALIVE")
        };
    }

    /// [`FakePeer::handshake_offering`] the basic capabilities, route refresh and enhanced
    /// route refresh.
    pub(crate) async fn handshake(&mut self, hold: u16) {
        let mut caps = basic_capabilities();
        caps.extend([Capability::RouteRefresh, Capability::EnhancedRouteRefresh]);
        self.handshake_offering(hold, caps).await;
    }

    /// Receives until a message matches `f`, returning it.
    pub(crate) async fn recv_until(&mut self, mut f: impl FnMut(&Message) -> bool) -> Message {
        loop {
            let m = self.recv().await.expect("connection closed");
            if f(&m) {
                return m;
            }
        }
    }
}

/// A speaker at 10.0.0.1 (AS 65001) dialling the fake (see [`speaker_with_fake`]), the
/// fake's end of its first connection (nothing read yet), and the listener that takes its
/// next connections: keep it bound (`_incoming`) for the speaker's redials to connect.
pub(crate) async fn dialled_fake(
    tweak: impl FnOnce(&mut PeerConfig),
) -> (Speaker, FakePeer, Receiver<Connection>) {
    let net = MemoryNetwork::new();
    let mut incoming = fake_listener(&net);
    let speaker = speaker_with_fake(&net, tweak);
    let fake = FakePeer::new(incoming.recv().await.expect("connection"));
    (speaker, fake, incoming)
}

/// [`dialled_fake`] with the fake's [`FakePeer::handshake`] done (hold time `hold`), once
/// the speaker says Established.
pub(crate) async fn established_with_fake(hold: u16) -> (Speaker, FakePeer, Receiver<Connection>) {
    let (speaker, mut fake, incoming) = dialled_fake(|_| {}).await;
    fake.handshake(hold).await;
    until("established", || {
        state(&speaker, ip(FAKE)) == State::Established
    })
    .await;
    (speaker, fake, incoming)
}
