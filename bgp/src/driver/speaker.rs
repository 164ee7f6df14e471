//! `Speaker`: the one handle through which the speaker binary, the testbed and the
//! benchmarks run BGP. It owns the listeners and one task per peer; adding, changing or
//! removing a peer or a route touches only that peer's task.
//!
//! ```no_run
//! # async fn demo() -> Result<(), bgp::driver::SpeakerError> {
//! use std::time::Duration;
//! use bgp::driver::{PeerConfig, Speaker, SpeakerConfig, Target};
//! use bgp::rib::{Prefix, RouteAttrs};
//!
//! let router_id = "10.0.0.2".parse().unwrap();
//! let mut config = SpeakerConfig::new(65001, router_id);
//! config.listen_port = 17900;
//! let speaker = Speaker::start(config).await?;
//! let mut peer = PeerConfig::new("10.0.0.1".parse().unwrap(), 65001, 65000, router_id);
//! peer.transport.md5_password = Some("secret".into());
//! speaker.add_peer(peer)?;
//! let vip: Prefix = "192.0.2.10".parse().unwrap(); // a /32
//! speaker.announce([vip], RouteAttrs::default(), Target::All).await?;
//! for p in speaker.peers() {
//!     println!("{} {:?} up {:?}", p.address, p.state, p.uptime);
//! }
//! speaker.shutdown("node drained", Duration::from_secs(30)).await;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info_span, warn};

use crate::rib::{AdjRibOut, Prefix, RouteAttrs};

use super::config::{PeerConfig, SpeakerConfig};
use super::network::{Connection, MemoryNetwork, Network, TcpNetwork};
use super::peer::{PeerCommand, PeerInput, PeerStatus, PeerTask, ReceivedRoute, lock};
use super::snapshot::{PeerSnapshot, StateChange};
use super::transport;

/// Commands queued per peer before the handle waits (bounded, like everything else).
const COMMAND_QUEUE: usize = 64;

/// Which peers a route is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Every peer, present and future.
    All,
    /// Only the peer at this address (overrides an `All` route for the same prefix).
    Peer(IpAddr),
}

/// Errors of the `Speaker` handle.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    /// A peer with this address exists already.
    #[error("peer {0} already exists")]
    PeerExists(IpAddr),
    /// No peer with this address.
    #[error("no peer {0}")]
    NoSuchPeer(IpAddr),
    /// The peer configuration is not valid.
    #[error("invalid peer configuration: {0}")]
    InvalidConfig(String),
    /// The speaker was shut down.
    #[error("speaker is shut down")]
    Closed,
    /// A socket could not be set up.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
}

struct PeerHandle {
    config: PeerConfig,
    commands: mpsc::Sender<PeerCommand>,
    inputs: mpsc::Sender<PeerInput>,
    status: Arc<Mutex<PeerStatus>>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Routes {
    all: HashMap<Prefix, Arc<RouteAttrs>>,
    per_peer: HashMap<IpAddr, HashMap<Prefix, Arc<RouteAttrs>>>,
    /// Equal attribute sets share one `Arc`, so packers group by pointer.
    interned: HashMap<RouteAttrs, Arc<RouteAttrs>>,
}

impl Routes {
    fn intern(&mut self, attrs: RouteAttrs) -> Arc<RouteAttrs> {
        if let Some(a) = self.interned.get(&attrs) {
            return a.clone();
        }
        // Forget attribute sets no route uses any more before growing.
        if self.interned.len() > 1024 {
            self.interned.retain(|_, a| Arc::strong_count(a) > 1);
        }
        let a = Arc::new(attrs.clone());
        self.interned.insert(attrs, a.clone());
        a
    }

    /// What `peer` should have.
    fn for_peer(&self, peer: IpAddr) -> AdjRibOut {
        let mut rib = AdjRibOut::new();
        for (p, a) in &self.all {
            rib.announce(*p, a.clone());
        }
        for (p, a) in self.per_peer.get(&peer).into_iter().flatten() {
            rib.announce(*p, a.clone());
        }
        rib
    }
}

struct Inner {
    config: SpeakerConfig,
    network: Arc<dyn Network>,
    peers: Mutex<HashMap<IpAddr, PeerHandle>>,
    routes: Mutex<Routes>,
    changes: broadcast::Sender<StateChange>,
    /// Emptied when the speaker stops: with the listener tasks gone, that closes them.
    tcp_listeners: Mutex<Vec<Arc<TcpListener>>>,
    /// Where the TCP listeners were bound.
    local_addrs: Vec<SocketAddr>,
    listener_tasks: Mutex<Vec<JoinHandle<()>>>,
    memory: Option<(MemoryNetwork, Vec<SocketAddr>)>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoning means a panic elsewhere; the data itself is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A BGP speaker: listeners, peers and the routes announced to them. Cheap to clone.
#[derive(Clone)]
pub struct Speaker {
    inner: Arc<Inner>,
}

/// The address a connection claims to come from, with IPv4-mapped IPv6 unmapped.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Speaker {
    /// Starts a speaker on real TCP, listening on `config.listen_addresses` and port.
    pub async fn start(config: SpeakerConfig) -> Result<Speaker, SpeakerError> {
        let mut listeners = Vec::new();
        for addr in config.listen_sockets() {
            match transport::listen(addr) {
                Ok(l) => listeners.push(Arc::new(l)),
                // The default "::" on a host without IPv6: listen on IPv4 only.
                Err(e) if addr.ip().is_unspecified() && addr.is_ipv6() => {
                    warn!(%addr, error = %e, "IPv6 unavailable: not listening on it");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let speaker = Speaker::build(config, Arc::new(TcpNetwork), listeners.clone(), None);
        for listener in listeners {
            let weak = Arc::downgrade(&speaker.inner);
            let task = tokio::spawn(async move {
                loop {
                    let (stream, from) = match listener.accept().await {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Out of file descriptors and the like: do not spin.
                            warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let Some(inner) = weak.upgrade() else { return };
                    let (Ok(local), remote) = (stream.local_addr(), from) else {
                        continue;
                    };
                    let transport = guard(&inner.peers)
                        .get(&canonical(remote.ip()))
                        .map(|p| p.config.transport.clone());
                    if let Some(t) = transport
                        && let Err(e) = t.configure_accepted(&stream)
                    {
                        warn!(error = %e, "could not configure accepted connection");
                    }
                    Speaker::dispatch(
                        &inner,
                        Connection {
                            stream: Box::new(stream),
                            local,
                            remote,
                        },
                    );
                }
            });
            guard(&speaker.inner.listener_tasks).push(task);
        }
        Ok(speaker)
    }

    /// Starts a speaker on an in-memory network (tests on paused time): it listens on
    /// `config.listen_addresses` and port there, and connects to other speakers on it.
    pub fn start_in_memory(config: SpeakerConfig, network: &MemoryNetwork) -> Speaker {
        let addrs = config.listen_sockets();
        let speaker = Speaker::build(
            config,
            Arc::new(network.clone()),
            Vec::new(),
            Some((network.clone(), addrs.clone())),
        );
        for addr in addrs {
            let mut incoming = network.listen(addr);
            let weak = Arc::downgrade(&speaker.inner);
            let task = tokio::spawn(async move {
                while let Some(conn) = incoming.recv().await {
                    let Some(inner) = weak.upgrade() else { return };
                    Speaker::dispatch(&inner, conn);
                }
            });
            guard(&speaker.inner.listener_tasks).push(task);
        }
        speaker
    }

    fn build(
        config: SpeakerConfig,
        network: Arc<dyn Network>,
        tcp_listeners: Vec<Arc<TcpListener>>,
        memory: Option<(MemoryNetwork, Vec<SocketAddr>)>,
    ) -> Speaker {
        let (changes, _) = broadcast::channel(1024);
        let local_addrs = tcp_listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        Speaker {
            inner: Arc::new(Inner {
                config,
                network,
                peers: Mutex::new(HashMap::new()),
                routes: Mutex::new(Routes::default()),
                changes,
                tcp_listeners: Mutex::new(tcp_listeners),
                local_addrs,
                listener_tasks: Mutex::new(Vec::new()),
                memory,
            }),
        }
    }

    /// Hands an accepted connection to its peer, or closes it without reading a byte
    /// when it comes from an address that is not a configured (accepting) peer.
    fn dispatch(inner: &Inner, conn: Connection) {
        let from = canonical(conn.remote.ip());
        let peers = guard(&inner.peers);
        match peers.get(&from) {
            Some(p) if p.config.accepts() => {
                if p.inputs.try_send(PeerInput::Accepted(conn)).is_err() {
                    debug!(%from, "peer busy: connection dropped");
                }
            }
            _ => debug!(%from, "connection from an unconfigured address closed"),
        }
    }

    /// The speaker-wide configuration.
    pub fn config(&self) -> &SpeakerConfig {
        &self.inner.config
    }

    /// The addresses the TCP listeners are bound to (useful with port 0); after a
    /// shutdown, the addresses they were bound to.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner.local_addrs.clone()
    }

    /// Adds a peer and starts its session; it gets every `Target::All` route.
    pub fn add_peer(&self, config: PeerConfig) -> Result<(), SpeakerError> {
        self.add_peer_with_routes(config, Vec::new())
    }

    /// Adds a peer with its own routes (as [`Target::Peer`] announcements) already in its
    /// Adj-RIB-Out, and starts its session. Announcing them after [`Speaker::add_peer`]
    /// races the session: one that comes up first sends End-of-RIB with only the
    /// `Target::All` routes, and a router in graceful-restart helper mode then drops the
    /// stale routes it kept for us, to re-add them a moment later.
    pub fn add_peer_with_routes(
        &self,
        config: PeerConfig,
        own: Vec<(Prefix, RouteAttrs)>,
    ) -> Result<(), SpeakerError> {
        config
            .session
            .validate()
            .map_err(SpeakerError::InvalidConfig)?;
        let address = config.address();
        // Lock order everywhere: routes, then peers. Holding the routes lock until the
        // peer is in the map means no concurrent announcement can miss it.
        let routes = guard(&self.inner.routes);
        let mut peers = guard(&self.inner.peers);
        if peers.contains_key(&address) {
            return Err(SpeakerError::PeerExists(address));
        }
        if config.transport.md5_password.is_some() {
            self.set_listener_md5(address, config.transport.md5_password.as_deref())?;
        }
        let mut routes = routes;
        for (prefix, attrs) in own {
            let attrs = routes.intern(attrs);
            routes
                .per_peer
                .entry(address)
                .or_default()
                .insert(prefix, attrs);
        }
        let rib = routes.for_peer(address);
        peers.insert(address, self.spawn_peer(config, rib));
        self.refresh_listener_min_ttl(&peers);
        Ok(())
    }

    /// GTSM on the listeners: when every peer of a family uses it, SYNs from farther away
    /// are dropped by the kernel before any connection exists; a peer without GTSM
    /// disables it for its family.
    fn refresh_listener_min_ttl(&self, peers: &HashMap<IpAddr, PeerHandle>) {
        for l in guard(&self.inner.tcp_listeners).iter() {
            let Ok(local) = l.local_addr() else { continue };
            let min = peers
                .values()
                .filter(|p| p.config.address().is_ipv6() == local.is_ipv6() && p.config.accepts())
                .map(|p| p.config.transport.min_ttl().unwrap_or(0))
                .min()
                .unwrap_or(0);
            if let Err(e) = transport::set_listener_min_ttl(l, min) {
                warn!(%local, error = %e, "could not set the listener's minimum TTL");
            }
        }
    }

    fn set_listener_md5(&self, address: IpAddr, password: Option<&str>) -> io::Result<()> {
        for l in guard(&self.inner.tcp_listeners).iter() {
            match transport::set_listener_md5(l, address, password) {
                // Removing a key that was never set.
                Err(e) if password.is_none() && e.kind() == io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
        Ok(())
    }

    fn spawn_peer(&self, config: PeerConfig, rib: AdjRibOut) -> PeerHandle {
        let address = config.address();
        let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let (inputs_tx, inputs) = mpsc::channel(16);
        let (conn_tx, conn_inputs) = mpsc::channel(64);
        let status = Arc::new(Mutex::new(PeerStatus {
            snapshot: PeerSnapshot::new(address, config.description.clone()),
            established_at: None,
        }));
        let task = PeerTask::new(
            config.clone(),
            rib,
            self.inner.network.clone(),
            status.clone(),
            self.inner.changes.clone(),
            inputs_tx.clone(),
            conn_tx,
        );
        let span = info_span!("peer", %address);
        let task = tokio::spawn(task.run(commands, inputs, conn_inputs).instrument(span));
        PeerHandle {
            config,
            commands: commands_tx,
            inputs: inputs_tx,
            status,
            task,
        }
    }

    /// Changes a peer's configuration. Only a change that needs a new session (see
    /// [`PeerConfig::needs_reset`]) resets it; a new description resets nothing.
    pub async fn update_peer(&self, config: PeerConfig) -> Result<(), SpeakerError> {
        config
            .session
            .validate()
            .map_err(SpeakerError::InvalidConfig)?;
        let address = config.address();
        let commands = {
            let mut peers = guard(&self.inner.peers);
            let peer = peers
                .get_mut(&address)
                .ok_or(SpeakerError::NoSuchPeer(address))?;
            if peer.config == config {
                return Ok(());
            }
            if peer.config.transport.md5_password != config.transport.md5_password {
                self.set_listener_md5(address, config.transport.md5_password.as_deref())?;
            }
            peer.config = config.clone();
            let commands = peer.commands.clone();
            self.refresh_listener_min_ttl(&peers);
            commands
        };
        commands
            .send(PeerCommand::Reconfigure(Box::new(config)))
            .await
            .map_err(|_| SpeakerError::Closed)
    }

    /// Resets one peer's session ("clear bgp"): it closes and starts again at once.
    pub async fn reset_peer(&self, address: IpAddr) -> Result<(), SpeakerError> {
        let commands = guard(&self.inner.peers)
            .get(&address)
            .map(|p| p.commands.clone())
            .ok_or(SpeakerError::NoSuchPeer(address))?;
        commands
            .send(PeerCommand::Reset)
            .await
            .map_err(|_| SpeakerError::Closed)
    }

    /// Removes a peer: Cease / Administrative Shutdown, then its task ends.
    pub async fn remove_peer(&self, address: IpAddr) -> Result<(), SpeakerError> {
        let peer = {
            let mut peers = guard(&self.inner.peers);
            let peer = peers
                .remove(&address)
                .ok_or(SpeakerError::NoSuchPeer(address))?;
            self.refresh_listener_min_ttl(&peers);
            peer
        };
        guard(&self.inner.routes).per_peer.remove(&address);
        if peer.config.transport.md5_password.is_some() {
            let _ = self.set_listener_md5(address, None);
        }
        let (done, wait) = oneshot::channel();
        let stop = PeerCommand::Stop {
            message: "peer deconfigured".into(),
            hard: true,
            done,
        };
        if peer.commands.send(stop).await.is_ok() {
            let _ = wait.await;
        }
        let _ = peer.task.await;
        Ok(())
    }

    /// The configured peers' addresses.
    pub fn peer_addresses(&self) -> Vec<IpAddr> {
        guard(&self.inner.peers).keys().copied().collect()
    }

    /// The configuration a peer runs with.
    pub fn peer_config(&self, address: IpAddr) -> Option<PeerConfig> {
        guard(&self.inner.peers)
            .get(&address)
            .map(|p| p.config.clone())
    }

    async fn send_to(&self, targets: Vec<(mpsc::Sender<PeerCommand>, PeerCommand)>) {
        for (tx, command) in targets {
            // A peer whose task ended (being removed) just misses the update.
            let _ = tx.send(command).await;
        }
    }

    /// Announces `prefixes` with `attrs` to `target` (replacing earlier attributes).
    pub async fn announce(
        &self,
        prefixes: impl IntoIterator<Item = Prefix>,
        attrs: RouteAttrs,
        target: Target,
    ) -> Result<(), SpeakerError> {
        let prefixes: Vec<Prefix> = prefixes.into_iter().collect();
        let commands = {
            let mut routes = guard(&self.inner.routes);
            let attrs = routes.intern(attrs);
            let peers = guard(&self.inner.peers);
            match target {
                Target::All => {
                    for p in &prefixes {
                        routes.all.insert(*p, attrs.clone());
                    }
                    peers
                        .iter()
                        .map(|(addr, peer)| {
                            let own = routes.per_peer.get(addr);
                            let list = prefixes
                                .iter()
                                .filter(|p| !own.is_some_and(|o| o.contains_key(p)))
                                .map(|p| (*p, attrs.clone()))
                                .collect();
                            (peer.commands.clone(), PeerCommand::Announce(list))
                        })
                        .collect()
                }
                Target::Peer(addr) => {
                    let peer = peers.get(&addr).ok_or(SpeakerError::NoSuchPeer(addr))?;
                    let own = routes.per_peer.entry(addr).or_default();
                    for p in &prefixes {
                        own.insert(*p, attrs.clone());
                    }
                    let list = prefixes.iter().map(|p| (*p, attrs.clone())).collect();
                    vec![(peer.commands.clone(), PeerCommand::Announce(list))]
                }
            }
        };
        self.send_to(commands).await;
        Ok(())
    }

    /// Withdraws `prefixes` from `target`. Withdrawing a per-peer route falls back to the
    /// `Target::All` route for the same prefix, if any.
    pub async fn withdraw(
        &self,
        prefixes: impl IntoIterator<Item = Prefix>,
        target: Target,
    ) -> Result<(), SpeakerError> {
        let prefixes: Vec<Prefix> = prefixes.into_iter().collect();
        let commands = {
            let mut routes = guard(&self.inner.routes);
            let peers = guard(&self.inner.peers);
            match target {
                Target::All => {
                    for p in &prefixes {
                        routes.all.remove(p);
                    }
                    peers
                        .iter()
                        .map(|(addr, peer)| {
                            let own = routes.per_peer.get(addr);
                            let list = prefixes
                                .iter()
                                .filter(|p| !own.is_some_and(|o| o.contains_key(p)))
                                .copied()
                                .collect();
                            (peer.commands.clone(), PeerCommand::Withdraw(list))
                        })
                        .collect()
                }
                Target::Peer(addr) => {
                    let peer = peers.get(&addr).ok_or(SpeakerError::NoSuchPeer(addr))?;
                    let mut fallback = Vec::new();
                    let mut gone = Vec::new();
                    for p in &prefixes {
                        if let Some(own) = routes.per_peer.get_mut(&addr) {
                            own.remove(p);
                        }
                        match routes.all.get(p) {
                            Some(a) => fallback.push((*p, a.clone())),
                            None => gone.push(*p),
                        }
                    }
                    vec![
                        (peer.commands.clone(), PeerCommand::Withdraw(gone)),
                        (peer.commands.clone(), PeerCommand::Announce(fallback)),
                    ]
                }
            }
        };
        self.send_to(commands).await;
        Ok(())
    }

    /// Every route announced, with its target.
    pub fn routes(&self) -> Vec<(Prefix, Target, RouteAttrs)> {
        let routes = guard(&self.inner.routes);
        let mut out: Vec<_> = routes
            .all
            .iter()
            .map(|(p, a)| (*p, Target::All, (**a).clone()))
            .collect();
        for (peer, own) in &routes.per_peer {
            out.extend(
                own.iter()
                    .map(|(p, a)| (*p, Target::Peer(*peer), (**a).clone())),
            );
        }
        out
    }

    /// The routes kept from a peer configured with `keep_received` (empty otherwise).
    pub async fn received(&self, address: IpAddr) -> Result<Vec<ReceivedRoute>, SpeakerError> {
        let commands = guard(&self.inner.peers)
            .get(&address)
            .map(|p| p.commands.clone())
            .ok_or(SpeakerError::NoSuchPeer(address))?;
        let (tx, rx) = oneshot::channel();
        commands
            .send(PeerCommand::Received(tx))
            .await
            .map_err(|_| SpeakerError::Closed)?;
        rx.await.map_err(|_| SpeakerError::Closed)
    }

    /// A snapshot of one peer.
    pub fn peer(&self, address: IpAddr) -> Option<PeerSnapshot> {
        let peers = guard(&self.inner.peers);
        peers.get(&address).map(|p| snapshot_of(&p.status))
    }

    /// Snapshots of every peer, by address.
    pub fn peers(&self) -> Vec<PeerSnapshot> {
        let peers = guard(&self.inner.peers);
        let mut out: Vec<_> = peers.values().map(|p| snapshot_of(&p.status)).collect();
        out.sort_by_key(|s| s.address);
        out
    }

    /// State changes of every peer, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StateChange> {
        self.inner.changes.subscribe()
    }

    /// Graceful shutdown (RFC 8326): re-announce every route with GRACEFUL_SHUTDOWN (and
    /// LOCAL_PREF 0 on iBGP) so routers move traffic away, wait `drain`, then stop
    /// listening and close every session with Cease / Administrative Shutdown carrying
    /// `message` (RFC 9003; wrapped in an RFC 8538 Hard Reset where the N bit was
    /// negotiated, so routers do not keep the routes as stale).
    pub async fn shutdown(&self, message: &str, drain: Duration) {
        let commands: Vec<_> = guard(&self.inner.peers)
            .values()
            .map(|p| p.commands.clone())
            .collect();
        for c in &commands {
            let _ = c.send(PeerCommand::GracefulShutdown).await;
        }
        tokio::time::sleep(drain).await;
        self.stop_all(message, true).await;
    }

    /// Stops listening, then closes every session without withdrawing first: Cease /
    /// Administrative Shutdown, which peers that negotiated graceful restart treat as a
    /// restart (they keep our routes for the restart time). What a speaker restart should
    /// use.
    pub async fn close(&self, message: &str) {
        self.stop_all(message, false).await;
    }

    /// Closes the listeners, then every session. In that order: a router that reconnects
    /// as soon as it reads our Cease must be refused by the kernel (RST to its SYN) rather
    /// than have its handshake completed in the listen backlog and reset when the process
    /// exits, which some routers take as a new session that failed, dropping our path.
    async fn stop_all(&self, message: &str, hard: bool) {
        self.close_listeners().await;
        let peers: Vec<PeerHandle> = guard(&self.inner.peers).drain().map(|(_, p)| p).collect();
        for peer in peers {
            let (done, wait) = oneshot::channel();
            let stop = PeerCommand::Stop {
                message: message.into(),
                hard,
                done,
            };
            if peer.commands.send(stop).await.is_ok() {
                let _ = wait.await;
            }
            let _ = peer.task.await;
        }
    }

    /// Stops accepting and closes the listening sockets: once this returns, a connection
    /// attempt to them is refused.
    async fn close_listeners(&self) {
        if let Some((net, addrs)) = &self.inner.memory {
            addrs.iter().for_each(|a| net.unlisten(*a));
        }
        let tasks: Vec<JoinHandle<()>> = guard(&self.inner.listener_tasks).drain(..).collect();
        for task in tasks {
            task.abort();
            // Awaited: the task (and its share of the socket) is dropped when this returns.
            let _ = task.await;
        }
        // The last shares: the sockets close here.
        guard(&self.inner.tcp_listeners).clear();
    }
}

fn snapshot_of(status: &Mutex<PeerStatus>) -> PeerSnapshot {
    let status = lock(status);
    let mut s = status.snapshot.clone();
    s.uptime = status.established_at.map(|t| t.elapsed());
    s
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in guard(&self.listener_tasks).drain(..) {
            task.abort();
        }
    }
}
