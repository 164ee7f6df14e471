//! The task of one peer: owns its `Session`, its Adj-RIB-Out and its connections, carries
//! out the session's actions, runs its timers on the tokio clock, and sends the
//! Adj-RIB-Out only as fast as the connection drains (the write queue is bounded; the RIB
//! coalesces what waits).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};

use crate::rib::export::Export;
use crate::rib::pack::{encode_batch, encode_end_of_rib, ipv4_of};
use crate::rib::{AdjRibOut, Prefix, RouteAttrs};
use crate::session::{
    Action, ConnId, Direction, DownReason, Event, Negotiated, Session, State, Timer,
};
use crate::wire::{
    Capability, Context, DecodeError, Family, MAX_EXTENDED_MESSAGE_LEN, Message, Open,
    PathAttribute, RouteRefresh, RouteRefreshSubtype, iana::message_type,
};

use super::config::{BfdGate, PeerConfig};
use super::conn::{ConnHandle, ConnInput, millis};
use super::failures::FailureLog;
use super::network::{Connection, Network};
use super::snapshot::{PeerSnapshot, StateChange};

/// Prefixes taken off the Adj-RIB-Out per write chunk: large enough that UPDATEs are
/// full (a chunk ends with at most one partial UPDATE per attribute set), small enough to
/// bound what is encoded ahead of the socket (~160 kB of /32s).
const PREFIXES_PER_CHUNK: usize = 32 * 1024;

/// The chunk while the peer has nothing from us yet: small, so the first UPDATEs leave
/// within about a millisecond of Established whatever the table size (1,024 /32s fill
/// one UPDATE and most of a second).
const FIRST_CHUNK: usize = 1024;

/// Send hold time when the negotiated hold time is 0 (RFC 9687 §4 suggests 8 minutes).
const DEFAULT_SEND_HOLD: Duration = Duration::from_secs(480);

/// Commands from the `Speaker` handle.
#[derive(Debug)]
pub enum PeerCommand {
    /// Announce (or re-announce with new attributes).
    Announce(Vec<(Prefix, Arc<RouteAttrs>)>),
    /// Withdraw.
    Withdraw(Vec<Prefix>),
    /// Replace the configuration; a new session when [`PeerConfig::needs_reset`].
    Reconfigure(Box<PeerConfig>),
    /// Close the session with a Hard Reset where negotiated and start a new one (also
    /// after a max-prefix stop without restart time).
    Reset,
    /// Mark every route with GRACEFUL_SHUTDOWN (RFC 8326) and send them again.
    GracefulShutdown,
    /// The routes kept from the peer (empty unless `keep_received`).
    Received(oneshot::Sender<Vec<ReceivedRoute>>),
    /// Close with Cease / Administrative Shutdown and end the task.
    Stop {
        /// RFC 9003 shutdown communication.
        message: String,
        /// Hard Reset (the peer forgets our routes) rather than a graceful restart.
        hard: bool,
        /// Told when the NOTIFICATION is written (or could not be).
        done: oneshot::Sender<()>,
    },
}

/// A route received from a peer, kept because the peer is configured to keep them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedRoute {
    /// The prefix.
    pub prefix: Prefix,
    /// The ADD-PATH identifier, if any.
    pub path_id: Option<u32>,
    /// The path attributes as received.
    pub attributes: Arc<Vec<PathAttribute>>,
}

/// What the handle keeps of a peer's observable state.
#[derive(Debug)]
pub struct PeerStatus {
    /// The snapshot, kept current by the task.
    pub snapshot: PeerSnapshot,
    /// When the session became Established.
    pub established_at: Option<Instant>,
}

/// Inputs of the peer task other than commands.
#[derive(Debug)]
pub enum PeerInput {
    /// From a connection's tasks.
    Conn(ConnInput),
    /// The outgoing attempt number `.0` finished.
    Dialed(u64, std::io::Result<Connection>),
    /// The listener accepted a connection from this peer.
    Accepted(Connection),
}

struct Up {
    conn: ConnId,
    export: Export,
    receive: Context,
    /// Families owed an EoRR once the refresh is sent (RFC 7313).
    eorr_owed: Vec<Family>,
}

/// The peer task's state.
pub struct PeerTask {
    config: PeerConfig,
    session: Session,
    rib: AdjRibOut,
    network: Arc<dyn Network>,
    conns: HashMap<ConnId, ConnHandle>,
    next_conn: u64,
    dial: Option<(u64, JoinHandle<()>)>,
    dial_gen: u64,
    timers: HashMap<Timer, Instant>,
    up: Option<Up>,
    graceful_shutdown: bool,
    status: Arc<Mutex<PeerStatus>>,
    changes: broadcast::Sender<StateChange>,
    inputs_tx: mpsc::Sender<PeerInput>,
    conn_tx: mpsc::Sender<ConnInput>,
    closing: Vec<JoinHandle<()>>,
    /// Flaps of the sessions this peer had before the current one (reset, reconfigured).
    earlier_flaps: u64,
    /// Stopped (or never started) because the BFD gate is closed.
    held_by_bfd: bool,
    /// Why attempts failed since the session was last up, for the log.
    failures: FailureLog,
    /// How the connection being closed ended, while the session hears of it.
    closed_because: Option<(ConnId, String)>,
}

/// Resolves when the BFD gate changes; never while there is none or its sender is gone
/// (the last value stands).
async fn gate_changed(gate: &mut Option<BfdGate>) {
    if let Some(BfdGate(rx)) = gate
        && rx.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

/// Locks a peer's status; a poisoned one is still valid (the panic was elsewhere).
pub fn lock(status: &Mutex<PeerStatus>) -> std::sync::MutexGuard<'_, PeerStatus> {
    status.lock().unwrap_or_else(|e| e.into_inner())
}

fn seed(addr: IpAddr) -> u64 {
    use std::hash::BuildHasher;
    // RandomState is randomly keyed per process: a different jitter sequence per run.
    std::collections::hash_map::RandomState::new().hash_one(addr)
}

impl PeerTask {
    /// Builds the task; `rib` holds the routes the peer should have.
    pub fn new(
        config: PeerConfig,
        rib: AdjRibOut,
        network: Arc<dyn Network>,
        status: Arc<Mutex<PeerStatus>>,
        changes: broadcast::Sender<StateChange>,
        inputs_tx: mpsc::Sender<PeerInput>,
        conn_tx: mpsc::Sender<ConnInput>,
    ) -> Self {
        let session = Session::new(config.session.clone(), seed(config.address()));
        let task = PeerTask {
            config,
            session,
            rib,
            network,
            conns: HashMap::new(),
            next_conn: 0,
            dial: None,
            dial_gen: 0,
            timers: HashMap::new(),
            up: None,
            graceful_shutdown: false,
            status,
            changes,
            inputs_tx,
            conn_tx,
            closing: Vec::new(),
            earlier_flaps: 0,
            held_by_bfd: false,
            failures: FailureLog::default(),
            closed_because: None,
        };
        task.publish_received();
        task
    }

    /// Runs until stopped (or the handle is dropped).
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<PeerCommand>,
        mut inputs: mpsc::Receiver<PeerInput>,
        mut conn_inputs: mpsc::Receiver<ConnInput>,
    ) {
        let mut gate = self.config.bfd_gate.clone();
        if gate.as_ref().is_none_or(BfdGate::is_open) {
            self.handle(Event::ManualStart);
        } else {
            info!("waiting for BFD before starting the session");
            self.held_by_bfd = true;
        }
        loop {
            if gate != self.config.bfd_gate {
                gate = self.config.bfd_gate.clone();
                self.follow_bfd();
            }
            let next_timer = self.timers.values().min().copied();
            let writer = self.sendable_writer();
            tokio::select! {
                biased;
                Some(input) = conn_inputs.recv() => self.on_conn(input),
                Some(input) = inputs.recv() => self.on_input(input),
                command = commands.recv() => match command {
                    Some(PeerCommand::Stop { message, hard, done }) => {
                        self.stop(message, hard).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => self.on_command(command),
                    None => {
                        self.stop("speaker stopped".into(), false).await;
                        return;
                    }
                },
                () = async { if let Some(t) = next_timer { sleep_until(t).await } else { std::future::pending().await } } => {
                    self.fire_timers();
                }
                () = gate_changed(&mut gate) => self.follow_bfd(),
                Ok(permit) = async { match writer { Some(w) => w.reserve_owned().await, None => std::future::pending().await } } => {
                    let chunk = self.next_chunk();
                    if !chunk.is_empty() {
                        permit.send(chunk);
                    }
                }
            }
            self.closing.retain(|h| !h.is_finished());
        }
    }

    /// Starts or stops the session as the BFD gate opens or closes.
    fn follow_bfd(&mut self) {
        let open = self.config.bfd_gate.as_ref().is_none_or(BfdGate::is_open);
        if open && self.held_by_bfd {
            info!("BFD up: starting the session");
            self.held_by_bfd = false;
            self.handle(Event::ManualStart);
        } else if !open && !self.held_by_bfd {
            // Hard: the peer must drop our routes now, not keep them as stale (RFC 8538).
            info!("BFD down: stopping the session");
            self.held_by_bfd = true;
            self.handle(Event::BfdDown);
        }
    }

    async fn stop(&mut self, message: String, hard: bool) {
        self.handle(Event::ManualStop { message, hard });
        for h in self.closing.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(1), h).await;
        }
    }

    /// The writer of the established connection, when it has something to send.
    fn sendable_writer(&self) -> Option<mpsc::Sender<Bytes>> {
        let up = self.up.as_ref()?;
        let pending = self.rib.has_pending() || !up.eorr_owed.is_empty() || self.rib_owes_eor();
        if !pending {
            return None;
        }
        self.conns.get(&up.conn).map(|c| c.writer.clone())
    }

    fn rib_owes_eor(&self) -> bool {
        self.rib.owes_end_of_rib()
    }

    /// Encodes the next chunk of the Adj-RIB-Out (and End-of-RIB / EoRR when done).
    fn next_chunk(&mut self) -> Bytes {
        let Some(up) = self.up.as_mut() else {
            return Bytes::new();
        };
        let mut buf = BytesMut::new();
        let mut messages = 0u64;
        if self.rib.has_pending() {
            let limit = if self.rib.advertised() == 0 {
                FIRST_CHUNK
            } else {
                PREFIXES_PER_CHUNK
            };
            let batch = self.rib.next_batch(limit);
            match encode_batch(&batch, &up.export, &mut buf) {
                Ok(packed) => {
                    messages += packed.messages as u64;
                    if !packed.skipped.is_empty() {
                        warn!(
                            skipped = packed.skipped.len(),
                            "routes without a usable next hop were not announced"
                        );
                        self.rib.mark_unsent(&packed.skipped);
                    }
                }
                Err(e) => warn!(error = %e, "could not encode UPDATE"),
            }
        }
        if !self.rib.has_pending() {
            for family in self.rib.take_end_of_rib() {
                if encode_end_of_rib(family, &up.export.context, &mut buf).is_ok() {
                    messages += 1;
                }
            }
            let mut refresh = 0;
            for family in std::mem::take(&mut up.eorr_owed) {
                let eorr = Message::RouteRefresh(RouteRefresh {
                    family,
                    subtype: RouteRefreshSubtype::EORR,
                });
                if eorr.encode(&up.export.context, &mut buf).is_ok() {
                    refresh += 1;
                }
            }
            lock(&self.status).snapshot.sent.route_refresh += refresh;
        }
        let advertised = self.rib.advertised();
        let mut status = lock(&self.status);
        status.snapshot.sent.update += messages;
        status.snapshot.prefixes_advertised = advertised;
        buf.freeze()
    }

    fn on_command(&mut self, command: PeerCommand) {
        match command {
            PeerCommand::Announce(routes) => {
                for (prefix, attrs) in routes {
                    self.rib.announce(prefix, attrs);
                }
            }
            PeerCommand::Withdraw(prefixes) => {
                for prefix in prefixes {
                    self.rib.withdraw(prefix);
                }
            }
            PeerCommand::GracefulShutdown => {
                self.graceful_shutdown = true;
                if let Some(up) = self.up.as_mut() {
                    up.export.graceful_shutdown = true;
                    self.rib.resend(None);
                }
            }
            PeerCommand::Reconfigure(new) => {
                let reset = self.config.needs_reset(&new);
                lock(&self.status).snapshot.description = new.description.clone();
                let repaced = !reset && self.config.session != new.session;
                self.config = *new;
                if reset {
                    info!("configuration changed: new session");
                    self.restart("configuration changed");
                } else if repaced {
                    info!("timers changed: the session keeps running");
                    self.handle(Event::Retime(Box::new(self.config.session.clone())));
                }
            }
            PeerCommand::Reset => {
                info!("reset requested");
                self.restart("session reset by operator");
            }
            PeerCommand::Received(reply) => {
                let routes = self
                    .session
                    .received()
                    .routes()
                    .map(|((prefix, path_id), attributes)| ReceivedRoute {
                        prefix: *prefix,
                        path_id: *path_id,
                        attributes: attributes.clone(),
                    })
                    .collect();
                let _ = reply.send(routes);
            }
            PeerCommand::Stop { .. } => {}
        }
    }

    /// Ends the current session and starts a new one with the current configuration.
    fn restart(&mut self, message: &str) {
        self.handle(Event::ManualStop {
            message: message.into(),
            hard: true,
        });
        // The history (flaps, last errors) belongs to the peer, not to one Session value.
        self.earlier_flaps += self.session.flaps();
        self.session = Session::new(self.config.session.clone(), seed(self.config.address()));
        self.publish_received();
        if !self.held_by_bfd {
            self.handle(Event::ManualStart);
        }
    }

    /// Copies what the session knows of received routes into the snapshot.
    fn publish_received(&self) {
        let received = self.session.received();
        let mut status = lock(&self.status);
        status.snapshot.prefixes_received = received.counts();
        status.snapshot.nlri_received = received.nlri().to_vec();
    }

    fn on_input(&mut self, input: PeerInput) {
        match input {
            PeerInput::Conn(c) => self.on_conn(c),
            PeerInput::Dialed(generation, result) => {
                if self.dial.as_ref().map(|(g, _)| *g) != Some(generation) {
                    return; // a cancelled attempt
                }
                self.dial = None;
                match result {
                    Ok(conn) => {
                        let id = self.add_conn(conn);
                        self.handle(Event::TcpConnected {
                            conn: id,
                            direction: Direction::Outgoing,
                        });
                    }
                    Err(e) => {
                        self.failures.record(&format!("connect failed: {e}"));
                        self.handle(Event::TcpConnectFailed);
                    }
                }
            }
            PeerInput::Accepted(conn) => {
                let id = self.add_conn(conn);
                self.handle(Event::TcpConnected {
                    conn: id,
                    direction: Direction::Incoming,
                });
            }
        }
    }

    fn add_conn(&mut self, conn: Connection) -> ConnId {
        self.next_conn += 1;
        let id = ConnId(self.next_conn);
        let handle =
            ConnHandle::spawn(id, conn, self.conn_tx.clone(), super::peer::LARGE_SEND_HOLD);
        self.conns.insert(id, handle);
        id
    }

    /// Raises the reader's frame limit of `id` to 65,535 when both OPENs carry the extended
    /// message capability (RFC 8654 §3). Done before the FSM answers the OPEN with the
    /// KEEPALIVE that lets the peer reach Established and send such messages.
    fn allow_extended_messages(&self, id: ConnId, open: &Open) {
        let theirs = open
            .capabilities()
            .any(|c| matches!(c, Capability::ExtendedMessage));
        if let (true, Some(handle)) = (
            theirs && self.config.session.extended_message,
            self.conns.get(&id),
        ) {
            handle
                .max_message_len
                .store(MAX_EXTENDED_MESSAGE_LEN, Ordering::Release);
        }
    }

    fn on_conn(&mut self, input: ConnInput) {
        match input {
            ConnInput::Frames(id, frames) => {
                for bytes in frames {
                    if !self.conns.contains_key(&id) {
                        break;
                    }
                    let ctx = match &self.up {
                        Some(up) if up.conn == id => up.receive,
                        _ => Context::default(),
                    };
                    lock(&self.status)
                        .snapshot
                        .received
                        .count_type(bytes[18], 1);
                    match Message::decode(&bytes, &ctx) {
                        Ok(message) => {
                            if let Message::Update(u) = &message
                                && let Some(e) = &u.error
                            {
                                debug!(error = %e.cause(), "RFC 7606 outcome");
                            }
                            if let Message::Open(open) = &message {
                                self.allow_extended_messages(id, open);
                            }
                            self.handle(Event::Message { conn: id, message });
                        }
                        Err(error) if bytes[18] == message_type::NOTIFICATION => {
                            self.malformed_notification(id, &error);
                            break;
                        }
                        Err(error) => {
                            self.handle(Event::DecodeError { conn: id, error });
                            break;
                        }
                    }
                }
                self.publish_received();
            }
            ConnInput::FrameError(id, e, Some(message_type::NOTIFICATION)) => {
                self.malformed_notification(id, &e);
            }
            ConnInput::FrameError(id, e, _) => {
                self.handle(Event::DecodeError {
                    conn: id,
                    error: DecodeError::from(e),
                });
            }
            ConnInput::Closed(id, cause) => {
                let why = match cause {
                    None => "the peer closed the connection".to_owned(),
                    Some(e) => format!("connection failed: {e}"),
                };
                self.closed_because = Some((id, why));
                self.handle(Event::TcpClosed { conn: id });
                self.closed_because = None;
            }
            ConnInput::SendHoldExpired(id) => {
                warn!("peer stopped reading: send hold timer expired");
                self.handle(Event::SendHoldTimerExpired { conn: id });
            }
        }
    }

    /// RFC 4271 §6.4: an error in a NOTIFICATION cannot be reported with a NOTIFICATION;
    /// the connection just closes.
    fn malformed_notification(&mut self, id: ConnId, error: &dyn std::fmt::Display) {
        warn!(%error, "malformed NOTIFICATION from the peer");
        self.closed_because = Some((id, format!("malformed NOTIFICATION from the peer: {error}")));
        self.handle(Event::TcpClosed { conn: id });
        self.closed_because = None;
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        let due: Vec<Timer> = self
            .timers
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| *k)
            .collect();
        for timer in due {
            self.timers.remove(&timer);
            if timer == Timer::ConnectRetry && self.dial.is_some() {
                // The attempt is abandoned for a new one: the peer never answered.
                self.failures.record(&format!(
                    "connect failed: no answer within the connect-retry time ({:?})",
                    self.config.session.connect_retry
                ));
            }
            self.handle(Event::TimerExpired(timer));
        }
    }

    /// Feeds the session and carries out its actions.
    fn handle(&mut self, event: Event) {
        let actions = self.session.handle(event);
        for action in actions {
            self.act(action);
        }
        let mut status = lock(&self.status);
        status.snapshot.flaps = self.earlier_flaps + self.session.flaps();
        if let Some(e) = self.session.last_sent_error() {
            status.snapshot.last_error_sent = Some(e.clone());
        }
        if let Some(e) = self.session.last_received_error() {
            status.snapshot.last_error_received = Some(e.clone());
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Connect => {
                self.dial_gen += 1;
                let generation = self.dial_gen;
                let connect = self
                    .network
                    .connect(&self.config.transport, self.config.session.connect_retry);
                let tx = self.inputs_tx.clone();
                let task = tokio::spawn(async move {
                    let result = connect.await;
                    let _ = tx.send(PeerInput::Dialed(generation, result)).await;
                });
                if let Some((_, old)) = self.dial.replace((generation, task)) {
                    old.abort();
                }
            }
            Action::CancelConnect => {
                if let Some((_, task)) = self.dial.take() {
                    task.abort();
                }
            }
            Action::Send { conn, message } => {
                let Some(handle) = self.conns.get(&conn) else {
                    return;
                };
                let ctx = match &self.up {
                    Some(up) if up.conn == conn => up.export.context,
                    _ => Context::default(),
                };
                match message.to_bytes(&ctx) {
                    Ok(bytes) => {
                        // A full queue means the peer is not reading: the send hold timer
                        // will end the session; this message is dropped meanwhile.
                        if handle.writer.try_send(bytes.freeze()).is_ok() {
                            lock(&self.status).snapshot.sent.count(&message);
                        }
                    }
                    Err(e) => warn!(error = %e, "could not encode message"),
                }
            }
            Action::Close { conn } => {
                if let Some(handle) = self.conns.remove(&conn) {
                    self.closing.push(handle.close());
                }
            }
            Action::StartTimer { timer, after } => {
                self.timers.insert(timer, Instant::now() + after);
            }
            Action::StopTimer(timer) => {
                self.timers.remove(&timer);
            }
            Action::StateChanged { from, to } => {
                // Up and down are news; the way there repeats at the connect-retry rate
                // while a peer is unreachable (why it failed is logged once, see failures).
                if from == State::Established || to == State::Established {
                    info!(?from, ?to, "session state");
                } else {
                    debug!(?from, ?to, "session state");
                }
                let at = Instant::now();
                {
                    let mut status = lock(&self.status);
                    status.snapshot.state = to;
                    if to == State::Established {
                        status.established_at = Some(at);
                    } else if from == State::Established {
                        status.established_at = None;
                    }
                }
                let _ = self.changes.send(StateChange {
                    address: self.config.address(),
                    from,
                    to,
                    at,
                });
            }
            Action::Established { conn, negotiated } => self.established(conn, *negotiated),
            Action::Failed {
                conn,
                state,
                reason,
            } => {
                let reason = self.describe(conn, &reason);
                self.failures.record(&format!("{reason} in {state:?}"));
            }
            Action::Down { reason } => {
                let conn = self.up.as_ref().map(|up| up.conn);
                let reason = match conn {
                    Some(conn) => self.describe(conn, &reason),
                    None => reason.to_string(),
                };
                info!(%reason, "session down");
                self.up = None;
                self.rib.reset();
                let mut status = lock(&self.status);
                status.snapshot.negotiated = None;
                status.snapshot.local_address = None;
                status.snapshot.prefixes_advertised = 0;
                drop(status);
                // The session cleared what it tracked; its NLRI counters stay.
                self.publish_received();
            }
            Action::RouteRefresh { family, enhanced } => {
                let Some(up) = self.up.as_mut() else { return };
                if enhanced {
                    let borr = Message::RouteRefresh(RouteRefresh {
                        family,
                        subtype: RouteRefreshSubtype::BORR,
                    });
                    if let (Some(h), Ok(b)) =
                        (self.conns.get(&up.conn), borr.to_bytes(&up.export.context))
                        && h.writer.try_send(b.freeze()).is_ok()
                    {
                        up.eorr_owed.push(family);
                        lock(&self.status).snapshot.sent.route_refresh += 1;
                    }
                }
                self.rib.resend(Some(family));
            }
        }
    }

    /// Why `conn` ended, in words: a close says whether it was the peer's FIN or an
    /// error (a reset), which the session does not know.
    fn describe(&self, conn: ConnId, reason: &DownReason) -> String {
        match (reason, &self.closed_because) {
            (DownReason::ConnectionClosed, Some((id, why))) if *id == conn => why.clone(),
            _ => reason.to_string(),
        }
    }

    fn established(&mut self, conn: ConnId, negotiated: Negotiated) {
        let Some(handle) = self.conns.get(&conn) else {
            return;
        };
        self.failures.clear();
        let local = handle.local.ip();
        let send_hold = self
            .config
            .send_hold_time
            .unwrap_or(if negotiated.hold_time == 0 {
                DEFAULT_SEND_HOLD
            } else {
                Duration::from_secs(u64::from(negotiated.hold_time))
            });
        handle
            .send_hold_ms
            .store(millis(send_hold), Ordering::Relaxed);
        let next_hop_v6 = match (self.config.next_hop_v6, local, handle.remote.ip()) {
            (Some(global), _, _) => Some((global, None)),
            (None, IpAddr::V6(l), IpAddr::V6(r)) if l.to_ipv4_mapped().is_none() => {
                super::link_local::ipv6_next_hop(l, r)
            }
            _ => None,
        };
        let export = Export {
            local_as: self.config.session.local_as,
            ibgp: negotiated.peer_as == self.config.session.local_as,
            next_hop_v4: self.config.next_hop_v4.or_else(|| ipv4_of(local)),
            next_hop_v6,
            graceful_shutdown: self.graceful_shutdown,
            context: negotiated.send_context(),
        };
        info!(
            peer_as = negotiated.peer_as,
            hold_time = negotiated.hold_time,
            "session established"
        );
        self.rib.start(&negotiated.families);
        self.up = Some(Up {
            conn,
            export,
            receive: negotiated.receive_context(),
            eorr_owed: Vec::new(),
        });
        let mut status = lock(&self.status);
        status.snapshot.local_address = Some(handle.local);
        status.snapshot.negotiated = Some(negotiated);
    }
}

/// Send hold time before the session is established (the OpenSent hold time).
pub const LARGE_SEND_HOLD: Duration = crate::session::timers::LARGE_HOLD_TIME;
