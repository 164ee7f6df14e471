//! Carries a `Desired` out on the BGP driver (`bgp::driver::Speaker`): converts desired
//! sessions and VIPs to the driver's types, and applies only the `diff::Plan` against what
//! it has told the driver so far. A failed step is logged and left out of the model, so
//! the next sync retries it.
//!
//! The driver's listening sockets are fixed at start, so the speaker is started when the
//! first usable `BgpConf` appears and restarted only when its listen port or addresses
//! change (rare; every other change touches single sessions).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bgp::driver::{
    MemoryNetwork, PeerConfig, Speaker, SpeakerConfig, SpeakerError, StateChange, Target,
};
use bgp::rib::route::{Community, LargeCommunity};
use bgp::rib::{Prefix, RouteAttrs};
use bgp::session::{ConnectMode, GracefulRestart, MaxPrefix, State};
use bgp::wire::Family;
use tracing::{info, warn};

use crate::bfd_link::BfdLinks;
use crate::desired::{Afi, Desired, DesiredPeer, SpeakerSettings, VipAttrs};
use crate::diff::{Plan, Running, diff};

/// How long a session stays down after the max-prefix limit closed it.
pub const MAX_PREFIX_RESTART: Duration = Duration::from_secs(60);

/// The driver's configuration of one desired session.
pub fn peer_config(p: &DesiredPeer) -> PeerConfig {
    let mut c = PeerConfig::new(p.address, p.local_as, p.peer_as, p.router_id);
    c.description = if p.description.is_empty() {
        p.name.clone()
    } else {
        format!("{}: {}", p.name, p.description)
    };
    if let Some(port) = p.port {
        c.transport.remote_port = port;
    }
    c.transport.local = p.source_address;
    c.transport.md5_password = p.md5_password.clone();
    if let Some(ttl) = p.multihop_ttl {
        c.transport.ttl = Some(ttl);
    }
    if let Some(h) = p.hold_time {
        c.session.hold_time = h;
    }
    c.session.keepalive = p.keepalive;
    if let Some(r) = p.connect_retry {
        c.session.connect_retry = Duration::from_secs(u64::from(r.max(1)));
    }
    c.session.mode = if p.passive {
        ConnectMode::Passive
    } else {
        ConnectMode::Both
    };
    c.session.families = p
        .families
        .iter()
        .map(|f| match f {
            Afi::Ipv4 => Family::IPV4_UNICAST,
            Afi::Ipv6 => Family::IPV6_UNICAST,
        })
        .collect();
    c.session.graceful_restart = p.graceful_restart.map(|t| GracefulRestart {
        restart_time: t,
        ..GracefulRestart::default()
    });
    c.session.max_prefix = p.max_prefix.map(|limit| MaxPrefix {
        limit: u64::from(limit),
        restart_after: Some(MAX_PREFIX_RESTART),
    });
    c.next_hop_v4 = p.next_hop_v4;
    c.next_hop_v6 = p.next_hop_v6;
    c
}

/// The driver's attributes of a VIP: next hop self, plus the pool's attributes.
pub fn route_attrs(a: &VipAttrs) -> RouteAttrs {
    RouteAttrs {
        med: a.med,
        local_pref: a.local_pref,
        as_path_prepend: a.as_path_prepend,
        prepend_as: a.prepend_as,
        communities: a.communities.iter().map(|c| Community(*c)).collect(),
        large_communities: a
            .large_communities
            .iter()
            .map(|&(global, local1, local2)| LargeCommunity {
                global,
                local1,
                local2,
            })
            .collect(),
        ..RouteAttrs::default()
    }
}

/// The prefix a route is announced as: the covering prefix of an aggregated VIP
/// (`VipAttrs::prefix_len`), else the host route.
pub fn prefix(key: IpAddr, a: &VipAttrs) -> Prefix {
    a.prefix_len
        .and_then(|len| Prefix::new(key, len))
        .unwrap_or_else(|| Prefix::host(key))
}

/// The driver's speaker-wide configuration; `listen_port` overrides `BgpConf`'s.
pub fn speaker_config(s: &SpeakerSettings, listen_port: Option<u16>) -> SpeakerConfig {
    let mut c = SpeakerConfig::new(s.local_as, s.router_id);
    match listen_port.or(s.listen_port) {
        Some(port) => c.listen_port = port,
        None => c.listen_addresses.clear(),
    }
    if !s.listen_addresses.is_empty() && listen_port.or(s.listen_port).is_some() {
        c.listen_addresses = s.listen_addresses.clone();
    }
    c
}

/// The driver's configuration of `p` with the gate of its BFD session (started, changed
/// or dropped as `p.bfd` says), and the peer as it is then running: without BFD when the
/// BFD step failed, so that the next sync sees a difference and retries it.
async fn gated(bfd: &mut BfdLinks, p: &DesiredPeer) -> (PeerConfig, DesiredPeer) {
    let (gate, ok) = bfd.ensure(p).await;
    let mut config = peer_config(p);
    config.bfd_gate = gate;
    let mut told = p.clone();
    if !ok {
        told.bfd = None;
    }
    (config, told)
}

/// Logs every session going up or down, until the speaker is dropped.
async fn log_state_changes(mut changes: tokio::sync::broadcast::Receiver<StateChange>) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match changes.recv().await {
            Ok(c) if c.to == State::Established => {
                info!(peer = %c.address, "session up");
            }
            Ok(c) if c.from == State::Established => {
                warn!(peer = %c.address, to = ?c.to, "session down");
            }
            Ok(_) => {}
            Err(RecvError::Lagged(n)) => warn!("{n} session state changes not logged"),
            Err(RecvError::Closed) => return,
        }
    }
}

/// Which network the driver runs on.
#[derive(Clone)]
pub enum Network {
    /// Real TCP sockets.
    Tcp,
    /// An in-memory network (tests).
    Memory(MemoryNetwork),
}

/// Applies desired states to one driver `Speaker`, which it starts and owns.
pub struct Applier {
    network: Network,
    listen_port: Option<u16>,
    speaker: Option<(Speaker, SpeakerConfig)>,
    running: Running,
    bfd: BfdLinks,
    /// The next sessions added are the ones this speaker had before it restarted.
    restarting: bool,
    /// Sessions that send the graceful-restart R bit (added while `restarting`).
    restarted: BTreeSet<IpAddr>,
}

impl Applier {
    /// An applier that has started nothing yet; `listen_port` overrides `BgpConf`'s.
    pub fn new(network: Network, listen_port: Option<u16>) -> Self {
        Self {
            network,
            listen_port,
            speaker: None,
            running: Running::default(),
            bfd: BfdLinks::default(),
            restarting: false,
            restarted: BTreeSet::new(),
        }
    }

    /// This speaker comes back from a restart: the sessions of the first apply that adds
    /// any send the graceful-restart Restart State (R) bit in their OPENs (RFC 4724 §3),
    /// so routers holding our routes as stale know the restart happened. Sessions added
    /// later are new ones, not restarted.
    pub fn restarting(mut self) -> Self {
        self.restarting = true;
        self
    }

    /// Runs BFD sessions on `bfd` (tests: an in-memory one) instead of real UDP sockets.
    pub fn with_bfd(mut self, bfd: Arc<bfd::Bfd>) -> Self {
        self.bfd = BfdLinks::new(Some(bfd));
        self
    }

    /// The BFD sessions under the BGP sessions.
    pub fn bfd(&self) -> &BfdLinks {
        &self.bfd
    }

    /// The driver, once started.
    pub fn speaker(&self) -> Option<&Speaker> {
        self.speaker.as_ref().map(|(s, _)| s)
    }

    /// What the driver has been told.
    pub fn running(&self) -> &Running {
        &self.running
    }

    async fn start(&mut self, config: SpeakerConfig) -> Result<(), SpeakerError> {
        let speaker = match &self.network {
            Network::Tcp => Speaker::start(config.clone()).await?,
            Network::Memory(net) => Speaker::start_in_memory(config.clone(), net),
        };
        info!(
            local_as = config.local_as,
            router_id = %config.router_id,
            port = config.listen_port,
            "BGP speaker started"
        );
        tokio::spawn(log_state_changes(speaker.subscribe()));
        self.speaker = Some((speaker, config));
        self.running = Running::default();
        Ok(())
    }

    async fn stop(&mut self, message: &str) {
        if let Some((speaker, _)) = self.speaker.take() {
            speaker.close(message).await;
        }
        self.running = Running::default();
        self.restarted.clear();
    }

    /// Brings the driver to `desired`, changing only what differs; returns the plan that
    /// was carried out (steps that failed are logged and retried next time).
    pub async fn apply(&mut self, desired: &Desired) -> Result<Plan, SpeakerError> {
        let Some(settings) = &desired.settings else {
            if self.speaker.is_some() {
                self.stop("no BGP configuration").await;
            }
            self.bfd.prune(&BTreeMap::new()).await;
            return Ok(Plan::default());
        };
        let config = speaker_config(settings, self.listen_port);
        let listen_changed = self.speaker.as_ref().is_some_and(|(_, c)| {
            c.listen_port != config.listen_port || c.listen_addresses != config.listen_addresses
        });
        if listen_changed {
            info!("listen port or addresses changed: restarting the BGP speaker");
            self.stop("BGP listen settings changed").await;
        }
        if self.speaker.is_none() {
            self.start(config).await?;
        }
        let plan = diff(&self.running, desired);
        let Some((speaker, _)) = &self.speaker else {
            return Ok(plan);
        };
        let running = &mut self.running;
        let bfd = &mut self.bfd;
        let restarted = &mut self.restarted;
        running.settings = desired.settings.clone();
        for addr in &plan.remove {
            match speaker.remove_peer(*addr).await {
                Ok(()) | Err(SpeakerError::NoSuchPeer(_)) => {
                    running.peers.remove(addr);
                    running.routes.remove(addr);
                    restarted.remove(addr);
                    info!(peer = %addr, "session removed");
                }
                Err(e) => warn!(peer = %addr, "removing session: {e}"),
            }
        }
        let changed = plan.reset.iter().map(|p| (p, true));
        for (p, reset) in changed.chain(plan.update.iter().map(|p| (p, false))) {
            let (mut config, told) = gated(bfd, p).await;
            // A change without a new session keeps the R bit the session was added with
            // (a different one would reset it); a new session is not the restart any more.
            if reset {
                restarted.remove(&p.address);
            }
            config.session.restarting = restarted.contains(&p.address);
            match speaker.update_peer(config).await {
                Ok(()) => {
                    running.peers.insert(p.address, told);
                    info!(peer = %p.address, name = %p.name, "session reconfigured");
                }
                Err(e) => warn!(peer = %p.address, "reconfiguring session: {e}"),
            }
        }
        for p in &plan.add {
            let (mut config, told) = gated(bfd, p).await;
            config.session.restarting = self.restarting;
            // Its routes go in with it: announced after, they would race the session, which
            // could send End-of-RIB without them (and a router keeping our routes across a
            // restart of this speaker would drop and re-add them: ECMP rehashes).
            let own: Vec<(Prefix, RouteAttrs)> = plan
                .announce
                .get(&p.address)
                .into_iter()
                .flatten()
                .map(|(vip, attrs)| (prefix(*vip, attrs), route_attrs(attrs)))
                .collect();
            match speaker.add_peer_with_routes(config, own) {
                Ok(()) => {
                    running.peers.insert(p.address, told);
                    running.routes.entry(p.address).or_default();
                    if self.restarting {
                        restarted.insert(p.address);
                    }
                    info!(peer = %p.address, name = %p.name, peer_as = p.peer_as, "session added");
                }
                Err(e) => warn!(peer = %p.address, name = %p.name, "adding session: {e}"),
            }
        }
        if !plan.add.is_empty() {
            self.restarting = false;
        }
        for (peer, vips) in &plan.withdraw {
            if !running.peers.contains_key(peer) {
                continue;
            }
            let told = running.routes.get(peer);
            let prefixes: Vec<Prefix> = vips
                .iter()
                .map(|v| match told.and_then(|r| r.get(v)) {
                    Some(attrs) => prefix(*v, attrs),
                    None => Prefix::host(*v),
                })
                .collect();
            match speaker.withdraw(prefixes, Target::Peer(*peer)).await {
                Ok(()) => {
                    if let Some(routes) = running.routes.get_mut(peer) {
                        for v in vips {
                            routes.remove(v);
                        }
                    }
                }
                Err(e) => warn!(peer = %peer, "withdrawing: {e}"),
            }
        }
        for (peer, vips) in &plan.announce {
            if !running.peers.contains_key(peer) {
                continue;
            }
            // A route whose prefix length changes under the same key (aggregation turned on
            // or off) is a different prefix: the old one is withdrawn first.
            let told = running.routes.get(peer);
            let stale: Vec<Prefix> = vips
                .iter()
                .filter_map(|(v, attrs)| {
                    let old = told?.get(v)?;
                    (old.prefix_len != attrs.prefix_len).then(|| prefix(*v, old))
                })
                .collect();
            if !stale.is_empty()
                && let Err(e) = speaker.withdraw(stale, Target::Peer(*peer)).await
            {
                warn!(peer = %peer, "withdrawing: {e}");
            }
            // One call per attribute set, so the driver packs equal routes together.
            let mut by_attrs: BTreeMap<Vec<u8>, (&VipAttrs, Vec<IpAddr>)> = BTreeMap::new();
            for (vip, attrs) in vips {
                let key = serde_json::to_vec(attrs).unwrap_or_default();
                by_attrs
                    .entry(key)
                    .or_insert((attrs, Vec::new()))
                    .1
                    .push(*vip);
            }
            for (attrs, group) in by_attrs.into_values() {
                let prefixes: Vec<Prefix> = group.iter().map(|v| prefix(*v, attrs)).collect();
                match speaker
                    .announce(prefixes, route_attrs(attrs), Target::Peer(*peer))
                    .await
                {
                    Ok(()) => {
                        let routes = running.routes.entry(*peer).or_default();
                        for v in group {
                            routes.insert(v, attrs.clone());
                        }
                    }
                    Err(e) => warn!(peer = %peer, "announcing: {e}"),
                }
            }
        }
        // After the BGP peers dropped their gates: BFD sessions nobody follows any more.
        bfd.prune(&desired.peers).await;
        Ok(plan)
    }

    /// Closes every session without withdrawing (Cease), for a restart: routers that
    /// negotiated graceful restart keep the routes for the restart time.
    pub async fn close(&mut self, message: &str) {
        self.stop(message).await;
        self.bfd.shutdown().await;
    }

    /// Graceful shutdown: routes re-announced with GRACEFUL_SHUTDOWN, `drain` waited, then
    /// every session closed with Cease carrying `message`.
    pub async fn shutdown(&mut self, message: &str, drain: Duration) {
        if let Some((speaker, _)) = self.speaker.take() {
            speaker.shutdown(message, drain).await;
        }
        self.running = Running::default();
        self.bfd.shutdown().await;
    }
}
