//! The vocabulary between the state machine and its driver: the session states, the
//! events the driver feeds in, and the actions it must carry out.

use std::time::Duration;

use crate::wire::{DecodeError, Family, Message, Notification};

use super::negotiated::Negotiated;
use super::timers::{ConnId, Timer};

/// The six states of RFC 4271 §8.2.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Refusing connections; waiting for a (manual or automatic) start.
    Idle,
    /// An outgoing connection attempt is in progress.
    Connect,
    /// Waiting for the peer to connect (or for the next attempt).
    Active,
    /// Our OPEN is sent; waiting for the peer's.
    OpenSent,
    /// OPENs exchanged; waiting for the peer's KEEPALIVE.
    OpenConfirm,
    /// Exchanging routes.
    Established,
}

/// Which side opened a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We connected to the peer.
    Outgoing,
    /// The peer connected to us.
    Incoming,
}

/// What happened, fed to [`Session::handle`] by the driver.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Event 1/5 (ManualStart, ManualStart_with_PassiveTcpEstablishment per the mode).
    ManualStart,
    /// Event 2 (ManualStop): close with Cease / Administrative Shutdown carrying `message`
    /// (RFC 9003), and stay Idle until started again.
    ///
    /// With `hard` and the RFC 8538 N bit negotiated both ways, the Cease is wrapped in a
    /// Hard Reset, so that the peer drops our routes instead of keeping them as a
    /// graceful-restart helper: what a permanent shutdown wants. Without `hard` the peer
    /// keeps forwarding for the restart time: what a speaker restart wants.
    ManualStop {
        /// Shutdown communication, may be empty.
        message: String,
        /// Ask the peer to forget our routes now (see above).
        hard: bool,
    },
    /// The BFD session this session follows went Down (RFC 5882 §4.3): like a hard
    /// `ManualStop`, but the Cease subcode is BFD Down (10, RFC 9384), so that the peer's
    /// logs say why.
    BfdDown,
    /// New pacing for the running session: a configuration that differs from the current
    /// one only where [`SessionConfig::needs_new_session`](super::SessionConfig::needs_new_session)
    /// says no new session is needed (the driver checks that first). A connection in
    /// OpenConfirm or Established re-arms its keepalive timer with the new interval at
    /// once; the connect-retry and idle hold-down times apply from their next start.
    Retime(Box<super::SessionConfig>),
    /// A timer the session asked for expired (events 9–13).
    TimerExpired(Timer),
    /// Events 16/17: a connection is up, ours (TcpCRAcked) or the peer's
    /// (TcpConnectionConfirmed).
    TcpConnected {
        /// The new connection.
        conn: ConnId,
        /// Who opened it.
        direction: Direction,
    },
    /// Event 18 for the outgoing attempt: it failed before it was up.
    TcpConnectFailed,
    /// Event 18 for an established connection: it closed or failed.
    TcpClosed {
        /// The connection.
        conn: ConnId,
    },
    /// A whole, well-formed message arrived (events 19, 25–28).
    Message {
        /// On which connection.
        conn: ConnId,
        /// The message.
        message: Message,
    },
    /// A message could not be decoded (events 21, 22, 28 with errors).
    DecodeError {
        /// On which connection.
        conn: ConnId,
        /// What was wrong.
        error: DecodeError,
    },
    /// RFC 9687: the peer has not read what we sent for longer than the hold time.
    SendHoldTimerExpired {
        /// On which connection.
        conn: ConnId,
    },
}

/// Why a session left Established or failed to get there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// We sent this NOTIFICATION.
    Sent(Notification),
    /// The peer sent this NOTIFICATION.
    Received(Notification),
    /// The TCP connection closed without a NOTIFICATION.
    ConnectionClosed,
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownReason::Sent(n) => write!(f, "sent NOTIFICATION {n}"),
            DownReason::Received(n) => write!(f, "received NOTIFICATION {n}"),
            DownReason::ConnectionClosed => f.write_str("connection closed"),
        }
    }
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Open an outgoing TCP connection (and report `TcpConnected` or `TcpConnectFailed`).
    Connect,
    /// Abandon the outgoing attempt in progress, if any.
    CancelConnect,
    /// Send a message on a connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// The message.
        message: Message,
    },
    /// Close a connection once what was queued for it is sent.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// (Re)start a timer.
    StartTimer {
        /// Which.
        timer: Timer,
        /// Expiry, from now.
        after: Duration,
    },
    /// Stop a timer (no-op if not running).
    StopTimer(Timer),
    /// The session state changed.
    StateChanged {
        /// Old state.
        from: State,
        /// New state.
        to: State,
    },
    /// The session is Established on `conn`: start sending the Adj-RIB-Out.
    Established {
        /// The connection.
        conn: ConnId,
        /// What was negotiated.
        negotiated: Box<Negotiated>,
    },
    /// The session left Established.
    Down {
        /// Why.
        reason: DownReason,
    },
    /// A connection failed before it reached Established (the session goes on: another
    /// connection, or the next attempt). Nothing to undo; it says why, for the log.
    Failed {
        /// The connection.
        conn: ConnId,
        /// How far it got: OpenSent or OpenConfirm.
        state: State,
        /// Why.
        reason: DownReason,
    },
    /// The peer asked for our routes of `family` again (RFC 2918); between BoRR and EoRR
    /// when `enhanced` (RFC 7313).
    RouteRefresh {
        /// The family.
        family: Family,
        /// Whether to bracket the re-sent routes with BoRR and EoRR.
        enhanced: bool,
    },
}

/// What the driver must do after an event.
pub type Actions = Vec<Action>;
