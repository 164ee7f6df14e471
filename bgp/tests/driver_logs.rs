//! What the driver logs when a session fails before Established, on paused tokio time over
//! the in-memory network with the log captured: each failure says why (connection
//! refused, OPEN refused, NOTIFICATION received, connection closed, hold timer) at info
//! level, and a reason that repeats at the connect-retry rate is said once at info, then
//! at debug.

mod common;

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bgp::driver::MemoryNetwork;
use bgp::driver::network::Connection;
use bgp::wire::{Capability, CeaseSubcode, ErrorCode, Family, Message, Notification, Open};
use common::fake_peer::FakePeer;
use common::speaker::{fake_listener, speaker_with_fake};
use tokio::sync::mpsc::Receiver;

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

/// The speaker's next connection to the fake, once its OPEN arrived.
async fn next_attempt(incoming: &mut Receiver<Connection>) -> FakePeer {
    let mut fake = FakePeer::new(incoming.recv().await.expect("a new attempt"));
    fake.expect_open().await;
    fake
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
    let _speaker = speaker_with_fake(&net, |_| {});

    // Nobody listens at the router's address: refused at every connect retry, said once.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (info, debug) = logs.count("nobody listens there");
    assert_eq!(info, 1, "refusal said once at info:\n{}", logs.text());
    assert!(debug >= 5, "repeats at debug ({debug}):\n{}", logs.text());

    let mut incoming = fake_listener(&net);
    // The router's OPEN carries the wrong AS: we refuse it (2/2).
    let mut fake = next_attempt(&mut incoming).await;
    fake.send(open(65098)).await;
    drop(fake);
    // The router refuses us with a NOTIFICATION.
    let mut fake = next_attempt(&mut incoming).await;
    let rejected = Notification::new(ErrorCode::Cease(CeaseSubcode::ConnectionRejected), vec![]);
    fake.send(Message::Notification(rejected)).await;
    drop(fake);
    // The router closes the connection without a word, twice.
    for _ in 0..2 {
        drop(next_attempt(&mut incoming).await);
    }
    // The router goes silent: our OpenSent hold timer (4 minutes) ends it.
    let mut fake = next_attempt(&mut incoming).await;
    let Some(Message::Notification(n)) = fake.recv().await else {
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
