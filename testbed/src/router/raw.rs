//! A raw BGP peer: our byte-level sender for what no router daemon will emit.
//!
//! Router daemons only put well-formed messages on the wire, and ExaBGP 4.2 can add odd
//! attributes but cannot write arbitrary bytes (a bad marker, a length field that lies, an
//! NLRI with a /33). Proving how a speaker answers those (RFC 4271 §6, RFC 7606) needs a
//! peer that writes exactly the bytes a test spells out. This is that peer.
//!
//! It runs over blocking std TCP. [`RawListener::bind`] creates the listening socket on a
//! thread entered into a lab namespace, so the socket (and every connection it accepts)
//! belongs to that namespace; the speaker under test connects to it on port 179. A
//! [`RawConnection`] completes OPEN/KEEPALIVE with the capabilities of a [`RawOpen`]
//! (4-octet AS, multiprotocol IPv4 and IPv6 unicast, route refresh by default), keeps the
//! session alive with KEEPALIVEs from a background thread, sends whatever bytes it is given,
//! and reads messages back.
//!
//! What it reads back is parsed by hand, and only as far as assertions need: the header,
//! NOTIFICATION code, subcode and data, the OPEN's fixed fields, and the prefixes an
//! UPDATE announces. It shares no code with Berth's codec on purpose: a test that checks
//! the speaker's answers with the speaker's own decoder would prove nothing.
//!
//! The framing helpers ([`frame`], [`message`], [`parse`], [`announced`], …) are pure and
//! live in `raw/wire.rs` with their unit tests; this file holds the sockets.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lab::Netns;
use crate::{Error, Result};

mod wire;

pub use wire::{
    FramingError, HEADER_LEN, MARKER, RawMessage, RawNotification, RawOpen, announced, capability,
    frame, keepalive, message, message_type, notification, parse, prefix, route_refresh, update,
};

/// The BGP port (RFC 4271 §8.2.1).
pub const BGP_PORT: u16 = 179;

/// A listening socket on port 179 in a lab namespace.
#[derive(Debug)]
pub struct RawListener {
    listener: TcpListener,
    address: SocketAddr,
}

impl RawListener {
    /// Listens on `address`, port 179, inside `netns`.
    pub fn bind(netns: &Netns, address: IpAddr) -> Result<RawListener> {
        let at = SocketAddr::new(address, BGP_PORT);
        let listener = netns
            .run(move || TcpListener::bind(at))?
            .map_err(|e| Error::io(format!("listen on {at} in {}", netns.node()), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("set listener non-blocking", e))?;
        Ok(RawListener {
            listener,
            address: at,
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Accepts the next connection.
    pub fn accept(&self, timeout: Duration) -> Result<RawConnection> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => return RawConnection::new(stream, peer),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(Error::io(format!("accept on {}", self.address), e)),
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("a connection on {}", self.address),
                    seconds: timeout.as_secs_f64(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Accepts the next connection on which the peer completes OPEN/KEEPALIVE with `open`.
    /// Connections that close before that (left over from an earlier session) are skipped.
    pub fn accept_session(&self, open: &RawOpen, timeout: Duration) -> Result<RawConnection> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut connection = self.accept(left)?;
            let left = deadline.saturating_duration_since(Instant::now());
            match connection.establish(open, left) {
                Ok(_) => return Ok(connection),
                Err(e) if connection.closed && !left.is_zero() => {
                    tracing::debug!(%e, "raw peer: connection closed before Established");
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Sends KEEPALIVEs until told to stop.
#[derive(Debug)]
struct Keepalives {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Keepalives {
    fn start(writer: Arc<Mutex<TcpStream>>, every: Duration) -> Keepalives {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut last = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                if last.elapsed() < every {
                    continue;
                }
                last = Instant::now();
                let mut stream = writer.lock().unwrap_or_else(|e| e.into_inner());
                if stream.write_all(&keepalive()).is_err() {
                    return;
                }
            }
        });
        Keepalives {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Keepalives {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One TCP connection with the speaker under test.
#[derive(Debug)]
pub struct RawConnection {
    reader: TcpStream,
    writer: Arc<Mutex<TcpStream>>,
    peer: SocketAddr,
    buffer: Vec<u8>,
    keepalives: Option<Keepalives>,
    /// The speaker closed the connection (a read saw its end).
    closed: bool,
}

impl RawConnection {
    fn new(stream: TcpStream, peer: SocketAddr) -> Result<RawConnection> {
        stream
            .set_nonblocking(false)
            .map_err(|e| Error::io("set connection blocking", e))?;
        let _ = stream.set_nodelay(true);
        let writer = stream
            .try_clone()
            .map_err(|e| Error::io("clone connection", e))?;
        Ok(RawConnection {
            reader: stream,
            writer: Arc::new(Mutex::new(writer)),
            peer,
            buffer: Vec::new(),
            keepalives: None,
            closed: false,
        })
    }

    /// The speaker's end of the connection.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Writes `bytes` as they are.
    pub fn send(&self, bytes: &[u8]) -> Result<()> {
        let mut stream = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        stream
            .write_all(bytes)
            .map_err(|e| Error::io(format!("send {} bytes to {}", bytes.len(), self.peer), e))
    }

    /// Reads the next message: `Ok(None)` once the speaker closed the connection.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<RawMessage>> {
        let deadline = Instant::now() + timeout;
        loop {
            match frame(&self.buffer) {
                Ok(Some(len)) => {
                    let message = parse(&self.buffer[..len]);
                    self.buffer.drain(..len);
                    return Ok(Some(message));
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(Error::Daemon(format!(
                        "{} sent bytes that are not BGP: {e}",
                        self.peer
                    )));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    what: format!("a message from {}", self.peer),
                    seconds: timeout.as_secs_f64(),
                });
            }
            self.reader
                .set_read_timeout(Some(left))
                .map_err(|e| Error::io("set read timeout", e))?;
            let mut chunk = [0u8; 4096];
            match self.reader.read(&mut chunk) {
                Ok(0) => {
                    self.closed = true;
                    return Ok(None);
                }
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    self.closed = true;
                    return Ok(None);
                }
                Err(e) => return Err(Error::io(format!("read from {}", self.peer), e)),
            }
        }
    }

    /// Reads messages until `wanted` picks one; fails if the connection closes first.
    /// Every message read is kept in the error message, so a failure shows what came.
    pub fn recv_until<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut wanted: impl FnMut(&RawMessage) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = match self.recv(left) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    return Err(Error::Daemon(format!(
                        "connection closed by {} while waiting for {what}; received {seen:?}",
                        self.peer
                    )));
                }
                Err(Error::Timeout { .. }) => {
                    return Err(Error::Timeout {
                        what: format!("{what} from {}; received {seen:?}", self.peer),
                        seconds: timeout.as_secs_f64(),
                    });
                }
                Err(e) => return Err(e),
            };
            if let Some(found) = wanted(&message) {
                return Ok(found);
            }
            seen.push(message);
        }
    }

    /// Reads until the speaker closes the connection, returning what it sent before.
    pub fn recv_until_closed(&mut self, timeout: Duration) -> Result<Vec<RawMessage>> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Ok(Some(m)) => seen.push(m),
                Ok(None) => return Ok(seen),
                Err(Error::Timeout { .. }) => {
                    return Err(Error::Timeout {
                        what: format!("{} to close the connection; received {seen:?}", self.peer),
                        seconds: timeout.as_secs_f64(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Completes the session on a fresh connection: reads the speaker's OPEN, sends `open`
    /// and a KEEPALIVE, waits for the speaker's KEEPALIVE, then keeps the session alive with
    /// KEEPALIVEs every third of the negotiated hold time. Returns the speaker's OPEN.
    pub fn establish(&mut self, open: &RawOpen, timeout: Duration) -> Result<RawMessage> {
        let deadline = Instant::now() + timeout;
        let theirs = self.recv_until("OPEN", timeout, |m| {
            matches!(m, RawMessage::Open { .. }).then(|| m.clone())
        })?;
        let RawMessage::Open {
            hold_time: their_hold,
            ..
        } = theirs
        else {
            unreachable!("recv_until returned an OPEN");
        };
        self.send(&open.to_bytes())?;
        self.send(&keepalive())?;
        let left = deadline.saturating_duration_since(Instant::now());
        self.recv_until("KEEPALIVE after OPEN", left, |m| match m {
            RawMessage::Keepalive => Some(Ok(())),
            RawMessage::Notification(n) => Some(Err(n.clone())),
            _ => None,
        })?
        .map_err(|n| Error::Daemon(format!("{} refused our OPEN: {n:?}", self.peer)))?;
        let hold = their_hold.min(open.hold_time);
        if hold > 0 {
            let every = Duration::from_secs(u64::from(hold)) / 3;
            self.keepalives = Some(Keepalives::start(self.writer.clone(), every));
        }
        Ok(theirs)
    }

    /// Stops sending KEEPALIVEs (the session then ends by hold timer unless the test does).
    pub fn stop_keepalives(&mut self) {
        self.keepalives = None;
    }

    /// Ends the session with a Cease NOTIFICATION (RFC 4486 subcode 4, Administrative
    /// Reset) and closes the connection.
    pub fn close(mut self) {
        self.keepalives = None;
        let _ = self.send(&notification(6, 4, &[]));
        let _ = self.reader.shutdown(Shutdown::Both);
    }
}

impl Drop for RawConnection {
    fn drop(&mut self) {
        self.keepalives = None;
        let _ = self.reader.shutdown(Shutdown::Both);
    }
}
