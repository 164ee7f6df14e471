//! The task that runs one session: feeds it packets, timer expiries and commands, carries
//! out its actions, and publishes its status on `watch` channels.

use std::net::IpAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use super::dispatch::Hop;
use super::memory::MemoryNetwork;
use crate::packet::{ControlPacket, Diag, State};
use crate::session::{Action, Event, Session, Timers};

/// A session's externally visible state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    /// The peer's address.
    pub peer: IpAddr,
    /// Single-hop or multihop.
    pub hop: Hop,
    /// Local state.
    pub state: State,
    /// The state the remote last reported.
    pub remote_state: State,
    /// The diagnostic we report (why we last left Up).
    pub diag: Diag,
    /// Our discriminator.
    pub local_discriminator: u32,
    /// The remote's (0 while unknown).
    pub remote_discriminator: u32,
    /// Configured timers.
    pub timers: Timers,
    /// Negotiated transmit interval before jitter (`None`: the remote wants no packets).
    pub tx_interval: Option<Duration>,
    /// Negotiated detection time (zero until the remote is heard).
    pub detection_time: Duration,
    /// How many times the session has gone Up.
    pub up_count: u64,
    /// How many times it has left Up.
    pub down_count: u64,
}

/// Commands to a running session.
#[derive(Debug)]
pub(crate) enum Command {
    AdminDown,
    AdminUp,
    SetTimers(Timers),
}

/// Where a session's packets go.
pub(crate) enum Sink {
    Udp {
        socket: UdpSocket,
        destination: std::net::SocketAddr,
    },
    Memory {
        network: MemoryNetwork,
        local: IpAddr,
    },
}

impl Sink {
    fn send(&self, peer: IpAddr, hop: Hop, packet: &ControlPacket) {
        let bytes = packet.encode();
        match self {
            Sink::Udp {
                socket,
                destination,
            } => {
                // UDP to a neighbour almost never blocks; a packet lost here is one the
                // remote's detection multiplier absorbs, like a loss on the wire.
                if let Err(error) = socket.try_send_to(&bytes, *destination) {
                    tracing::debug!(%peer, %error, "BFD send failed");
                }
            }
            Sink::Memory { network, local } => network.inject(*local, peer, hop, 255, &bytes),
        }
    }
}

pub(crate) struct Channels {
    pub inbox: mpsc::Receiver<ControlPacket>,
    pub commands: mpsc::Receiver<Command>,
    pub status: watch::Sender<SessionStatus>,
    pub up: watch::Sender<bool>,
    pub gate: watch::Sender<bool>,
}

/// RFC 5882 §3.2: a session the remote holds AdminDown is not a path failure; clients keep
/// going. Anything else but Up is.
pub(crate) fn gate_open(state: State, remote_state: State) -> bool {
    state == State::Up || (state == State::Down && remote_state == State::AdminDown)
}

fn set(flag: &watch::Sender<bool>, value: bool) {
    flag.send_if_modified(|current| {
        let changed = *current != value;
        *current = value;
        changed
    });
}

fn publish(session: &Session, status: &watch::Sender<SessionStatus>) {
    status.send_if_modified(|s| {
        let before = s.clone();
        s.state = session.state();
        s.remote_state = session.remote_state();
        s.diag = session.diag();
        s.remote_discriminator = session.remote_discriminator();
        s.timers = session.timers();
        s.tx_interval = session.tx_interval();
        s.detection_time = session.detection_time();
        *s != before
    });
}

/// Runs `session` until its command channel closes, then sends AdminDown once so the
/// remote goes Down at once instead of waiting out its detection time (RFC 5880 §6.8.16).
pub(crate) async fn run(
    mut session: Session,
    sink: Sink,
    hop: Hop,
    peer: IpAddr,
    mut channels: Channels,
) {
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let mut tx_at = far;
    let mut detect_at: Option<Instant> = None;
    let mut actions = session.start();
    loop {
        let now = Instant::now();
        for action in actions.drain(..) {
            match action {
                Action::Send(packet) => sink.send(peer, hop, &packet),
                Action::ArmTx(delay) => tx_at = now + delay,
                Action::ArmDetect(delay) => detect_at = Some(now + delay),
                Action::StopDetect => detect_at = None,
                Action::StateChanged { from, to, diag } => {
                    tracing::info!(%peer, ?hop, %from, %to, ?diag, "BFD session state");
                    channels.status.send_modify(|s| {
                        if to == State::Up {
                            s.up_count += 1;
                        } else if from == State::Up {
                            s.down_count += 1;
                        }
                    });
                    set(&channels.up, to == State::Up);
                }
            }
        }
        publish(&session, &channels.status);
        set(
            &channels.gate,
            gate_open(session.state(), session.remote_state()),
        );
        actions = tokio::select! {
            Some(packet) = channels.inbox.recv() => session.handle(Event::Received(packet)),
            command = channels.commands.recv() => match command {
                Some(Command::AdminDown) => session.handle(Event::AdminDown),
                Some(Command::AdminUp) => session.handle(Event::AdminUp),
                Some(Command::SetTimers(timers)) => session.handle(Event::SetTimers(timers)),
                None => break,
            },
            () = sleep_until(tx_at) => session.handle(Event::TxTimer),
            () = sleep_until(detect_at.unwrap_or(far)), if detect_at.is_some() => {
                detect_at = None;
                session.handle(Event::DetectTimer)
            }
        };
    }
    for action in session.handle(Event::AdminDown) {
        if let Action::Send(packet) = action {
            sink.send(peer, hop, &packet);
        }
    }
    channels.up.send_replace(false);
    channels.gate.send_replace(false);
    publish(&session, &channels.status);
}
