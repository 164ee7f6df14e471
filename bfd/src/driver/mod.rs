//! The tokio driver: the [`Bfd`] handle owns the receive sockets (or an in-memory
//! network), one task per session, and the demultiplexer between them. Each session
//! publishes a [`SessionStatus`] and an "is Up" flag on `watch` channels, which is all a
//! BGP peer needs to gate itself on BFD.
//!
//! Must not know about BGP or Kubernetes.

mod dispatch;
mod memory;
mod sockopt;
mod task;
mod udp;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use dispatch::{DropCounters, Hop};
pub use memory::MemoryNetwork;
pub use task::SessionStatus;

use crate::packet::{Diag, State};
use crate::session::{Session, Timers};
use dispatch::Dispatcher;
use task::{Channels, Command, Sink};

/// What a session is for: the peer, our source address, single- or multihop, timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The peer's address.
    pub peer: IpAddr,
    /// Our source address (the kernel picks one when `None`; needed for multihop or
    /// several addresses on the link to be unambiguous).
    pub local: Option<IpAddr>,
    /// Single-hop (RFC 5881) or multihop (RFC 5883).
    pub hop: Hop,
    /// Desired Min TX, Required Min RX, Detect Mult.
    pub timers: Timers,
}

impl SessionConfig {
    /// A single-hop session to `peer` from `local` with `timers`.
    pub fn single_hop(peer: IpAddr, local: Option<IpAddr>, timers: Timers) -> SessionConfig {
        SessionConfig {
            peer,
            local,
            hop: Hop::Single,
            timers,
        }
    }

    /// A multihop session to `peer` from `local` with `timers`.
    pub fn multihop(peer: IpAddr, local: IpAddr, timers: Timers) -> SessionConfig {
        SessionConfig {
            peer,
            local: Some(local),
            hop: Hop::Multi,
            timers,
        }
    }
}

/// What a consumer of one session holds: cheap to clone, outlives nothing.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    status: watch::Receiver<SessionStatus>,
    up: watch::Receiver<bool>,
    gate: watch::Receiver<bool>,
}

impl SessionHandle {
    /// The full status; changes on state, discriminator or negotiated-timer changes.
    pub fn status(&self) -> watch::Receiver<SessionStatus> {
        self.status.clone()
    }

    /// `true` exactly while the session is Up.
    pub fn up(&self) -> watch::Receiver<bool> {
        self.up.clone()
    }

    /// The flag a client protocol (a BGP peer) follows: it must not come up while `false`
    /// and must end at once when it turns `false`. `true` while Up, and also while the
    /// remote holds the session AdminDown (RFC 5882 §3.2: an operator switching BFD off on
    /// the far side is not a path failure). `false` at start until the session is Up.
    pub fn gate(&self) -> watch::Receiver<bool> {
        self.gate.clone()
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.status.borrow().state
    }
}

/// Errors of [`Bfd::add_session`].
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// A session to this peer with this hop mode already runs.
    #[error("a BFD session to {0} ({1:?}) already exists")]
    Exists(IpAddr, Hop),
    /// A socket could not be opened.
    #[error("BFD socket: {0}")]
    Io(#[from] io::Error),
}

struct Running {
    commands: mpsc::Sender<Command>,
    handle: SessionHandle,
    task: JoinHandle<()>,
}

enum Network {
    Udp {
        listeners: Mutex<HashMap<(Hop, bool), JoinHandle<()>>>,
    },
    Memory {
        network: MemoryNetwork,
        addresses: Vec<IpAddr>,
    },
}

/// The BFD service of one host (one network namespace): add and remove sessions, read
/// their state and the drop counters. Create it inside a tokio runtime; sockets open in
/// the network namespace of the thread that adds the first session of each kind.
pub struct Bfd {
    network: Network,
    dispatcher: Arc<Dispatcher>,
    sessions: Mutex<HashMap<(IpAddr, Hop), Running>>,
}

impl Default for Bfd {
    fn default() -> Bfd {
        Bfd::new()
    }
}

impl Bfd {
    /// BFD over real UDP sockets (listeners bound on first use).
    pub fn new() -> Bfd {
        Bfd {
            network: Network::Udp {
                listeners: Mutex::new(HashMap::new()),
            },
            dispatcher: Arc::new(Dispatcher::default()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// BFD on `network`, answering at `addresses` (for tests with paused time).
    pub fn in_memory(network: &MemoryNetwork, addresses: &[IpAddr]) -> Bfd {
        let dispatcher = Arc::new(Dispatcher::default());
        for address in addresses {
            network.attach(*address, &dispatcher);
        }
        Bfd {
            network: Network::Memory {
                network: network.clone(),
                addresses: addresses.to_vec(),
            },
            dispatcher,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<(IpAddr, Hop), Running>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sink(&self, config: &SessionConfig) -> io::Result<Sink> {
        match &self.network {
            Network::Udp { listeners } => {
                let ipv6 = config.peer.is_ipv6();
                let mut listeners = listeners.lock().unwrap_or_else(|e| e.into_inner());
                if let Entry::Vacant(slot) = listeners.entry((config.hop, ipv6)) {
                    slot.insert(udp::listen(config.hop, ipv6, self.dispatcher.clone())?);
                }
                Ok(Sink::Udp {
                    socket: udp::sender(config.local, config.peer)?,
                    destination: SocketAddr::new(config.peer, config.hop.port()),
                })
            }
            Network::Memory { network, addresses } => {
                let local = config
                    .local
                    .or_else(|| {
                        addresses
                            .iter()
                            .copied()
                            .find(|a| a.is_ipv6() == config.peer.is_ipv6())
                    })
                    .ok_or_else(|| io::Error::other("no local address of the peer's family"))?;
                Ok(Sink::Memory {
                    network: network.clone(),
                    local,
                })
            }
        }
    }

    /// Starts a session (it begins Down and sends at once). Must be called within a tokio
    /// runtime.
    pub fn add_session(&self, config: SessionConfig) -> Result<SessionHandle, AddError> {
        let key = (config.peer, config.hop);
        let mut sessions = self.sessions();
        if sessions.contains_key(&key) {
            return Err(AddError::Exists(config.peer, config.hop));
        }
        let sink = self.sink(&config)?;
        let (inbox_tx, inbox) = mpsc::channel(64);
        let discriminator = self
            .dispatcher
            .register(config.peer, config.hop, inbox_tx)
            .ok_or(AddError::Exists(config.peer, config.hop))?;
        let session = Session::new(discriminator, config.timers, rand::random());
        let (status_tx, status) = watch::channel(SessionStatus {
            peer: config.peer,
            hop: config.hop,
            state: State::Down,
            remote_state: State::Down,
            diag: Diag::None,
            local_discriminator: discriminator,
            remote_discriminator: 0,
            timers: config.timers,
            tx_interval: session.tx_interval(),
            detection_time: session.detection_time(),
            up_count: 0,
            down_count: 0,
        });
        let (up_tx, up) = watch::channel(false);
        let (gate_tx, gate) = watch::channel(false);
        let (commands, commands_rx) = mpsc::channel(8);
        let channels = Channels {
            inbox,
            commands: commands_rx,
            status: status_tx,
            up: up_tx,
            gate: gate_tx,
        };
        let task = tokio::spawn(task::run(session, sink, config.hop, config.peer, channels));
        let handle = SessionHandle { status, up, gate };
        sessions.insert(
            key,
            Running {
                commands,
                handle: handle.clone(),
                task,
            },
        );
        Ok(handle)
    }

    /// The handle of the session to `peer` in `hop` mode.
    pub fn session(&self, peer: IpAddr, hop: Hop) -> Option<SessionHandle> {
        self.sessions().get(&(peer, hop)).map(|r| r.handle.clone())
    }

    /// Stops a session: it sends AdminDown once (the remote goes Down at once) and ends.
    /// Returns whether there was one.
    pub async fn remove_session(&self, peer: IpAddr, hop: Hop) -> bool {
        let running = self.sessions().remove(&(peer, hop));
        self.dispatcher.unregister(peer, hop);
        match running {
            Some(Running { commands, task, .. }) => {
                drop(commands);
                let _ = task.await;
                true
            }
            None => false,
        }
    }

    async fn command(&self, peer: IpAddr, hop: Hop, command: Command) -> bool {
        let sender = self
            .sessions()
            .get(&(peer, hop))
            .map(|r| r.commands.clone());
        match sender {
            Some(sender) => sender.send(command).await.is_ok(),
            None => false,
        }
    }

    /// Holds a session AdminDown (or releases it with `false`).
    pub async fn set_admin_down(&self, peer: IpAddr, hop: Hop, down: bool) -> bool {
        let command = if down {
            Command::AdminDown
        } else {
            Command::AdminUp
        };
        self.command(peer, hop, command).await
    }

    /// Changes a session's timers without resetting it (a Poll sequence when Up).
    pub async fn set_timers(&self, peer: IpAddr, hop: Hop, timers: Timers) -> bool {
        self.command(peer, hop, Command::SetTimers(timers)).await
    }

    /// Every session's current status, ordered by peer.
    pub fn statuses(&self) -> Vec<SessionStatus> {
        let mut all: Vec<SessionStatus> = self
            .sessions()
            .values()
            .map(|r| r.handle.status.borrow().clone())
            .collect();
        all.sort_by_key(|s| (s.peer, s.hop));
        all
    }

    /// Datagrams dropped before reaching a session, by reason.
    pub fn drops(&self) -> DropCounters {
        self.dispatcher.drops()
    }

    /// Stops every session (each sends AdminDown) and the receive sockets.
    pub async fn shutdown(&self) {
        let keys: Vec<(IpAddr, Hop)> = self.sessions().keys().copied().collect();
        for (peer, hop) in keys {
            self.remove_session(peer, hop).await;
        }
        if let Network::Udp { listeners } = &self.network {
            for (_, listener) in listeners.lock().unwrap_or_else(|e| e.into_inner()).drain() {
                listener.abort();
            }
        }
    }
}

impl Drop for Bfd {
    fn drop(&mut self) {
        for (_, running) in self.sessions().drain() {
            running.task.abort();
        }
        if let Network::Udp { listeners } = &self.network {
            for (_, listener) in listeners.lock().unwrap_or_else(|e| e.into_inner()).drain() {
                listener.abort();
            }
        }
    }
}
