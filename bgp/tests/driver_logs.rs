//! What the driver logs when a session fails before Established, on paused tokio time over
//! the in-memory network with the log captured: each failure says why (connection
//! refused, OPEN refused, NOTIFICATION received, connection closed, hold timer) at info
//! level, and a reason that repeats at the connect-retry rate is said once at info, then
//! at debug.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bgp::driver::network::Connection;
use bgp::driver::{MemoryNetwork, PeerConfig, Speaker, SpeakerConfig};
use bgp::session::ConnectMode;
use bgp::wire::{
    Capability, CeaseSubcode, Context, ErrorCode, Family, Message, Notification, Open, frame,
};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Log lines, as the fmt subscriber writes them (no time, no colour).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// How many lines mention `needle` at info level and at debug level.
    fn count(&self, needle: &str) -> (usize, usize) {
        let text = self.text();
        let with: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::trim_start)
            .collect();
        (
            with.iter().filter(|l| l.starts_with("INFO")).count(),
            with.iter().filter(|l| l.starts_with("DEBUG")).count(),
        )
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

/// Reads whole messages from a raw connection; `None` once it is closed.
async fn recv(conn: &mut Connection, buf: &mut BytesMut) -> Option<Message> {
    loop {
        if let Some(len) = frame(buf, 4096).expect("frame") {
            let bytes = buf.split_to(len);
            return Some(Message::decode(&bytes, &Context::default()).expect("decode"));
        }
        if conn.stream.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}

async fn send(conn: &mut Connection, m: Message) {
    let bytes = m.to_bytes(&Context::default()).expect("encode");
    conn.stream.write_all(&bytes).await.expect("write");
}

/// The next connection from the speaker, once its OPEN arrived.
async fn next_attempt(
    incoming: &mut tokio::sync::mpsc::Receiver<Connection>,
) -> (Connection, BytesMut) {
    let mut conn = incoming.recv().await.expect("a new attempt");
    let mut buf = BytesMut::new();
    let Some(Message::Open(_)) = recv(&mut conn, &mut buf).await else {
        panic!("expected the speaker's OPEN")
    };
    (conn, buf)
}

fn open(asn: u16) -> Message {
    Message::Open(Open::new(
        u32::from(asn),
        90,
        Ipv4Addr::new(10, 0, 0, 99),
        vec![Capability::Multiprotocol(Family::IPV4_UNICAST)],
    ))
}

#[tokio::test(start_paused = true)]
async fn why_a_session_fails_before_established_is_logged_once_at_info() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let net = MemoryNetwork::new();
    let config = SpeakerConfig {
        local_as: 65001,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        listen_addresses: vec![ip(1)],
        listen_port: 179,
    };
    let speaker = Speaker::start_in_memory(config, &net);
    let mut p = PeerConfig::new(ip(99), 65001, 65099, Ipv4Addr::new(10, 0, 0, 1));
    p.transport.local = Some(ip(1));
    p.session.mode = ConnectMode::Active;
    p.session.connect_retry = Duration::from_secs(5);
    speaker.add_peer(p).expect("add peer");

    // Nobody listens at the router's address: refused at every connect retry, said once.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (info, debug) = logs.count("nobody listens there");
    assert_eq!(info, 1, "refusal said once at info:\n{}", logs.text());
    assert!(debug >= 5, "repeats at debug ({debug}):\n{}", logs.text());

    let mut incoming = net.listen(SocketAddr::new(ip(99), 179));
    // The router's OPEN carries the wrong AS: we refuse it (2/2).
    let (mut conn, _) = next_attempt(&mut incoming).await;
    send(&mut conn, open(65098)).await;
    drop(conn);
    // The router refuses us with a NOTIFICATION.
    let (mut conn, _) = next_attempt(&mut incoming).await;
    let rejected = Notification::new(ErrorCode::Cease(CeaseSubcode::ConnectionRejected), vec![]);
    send(&mut conn, Message::Notification(rejected)).await;
    drop(conn);
    // The router closes the connection without a word, twice.
    for _ in 0..2 {
        let (conn, _) = next_attempt(&mut incoming).await;
        drop(conn);
    }
    // The router goes silent: our OpenSent hold timer (4 minutes) ends it.
    let (mut conn, mut buf) = next_attempt(&mut incoming).await;
    let Some(Message::Notification(n)) = recv(&mut conn, &mut buf).await else {
        panic!("expected the hold timer's NOTIFICATION")
    };
    assert_eq!(n.code, ErrorCode::HoldTimerExpired);
    // Let the speaker log it before looking.
    let _ = incoming.recv().await;

    for (needle, what) in [
        ("BadPeerAs", "the OPEN we refused"),
        ("ConnectionRejected", "the NOTIFICATION received"),
        ("HoldTimerExpired", "the hold timer"),
    ] {
        let (info, _) = logs.count(needle);
        assert_eq!(info, 1, "{what} said once at info:\n{}", logs.text());
    }
    let (info, debug) = logs.count("closed the connection");
    assert_eq!(
        (info, debug),
        (1, 1),
        "a close said at info, its repeat at debug:\n{}",
        logs.text()
    );
    assert!(
        logs.text()
            .lines()
            .any(|l| l.contains("BadPeerAs") && l.contains("OpenSent")),
        "the state the attempt reached is said:\n{}",
        logs.text()
    );
}
