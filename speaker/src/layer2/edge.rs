//! The layer-2 edge of the speaker: one task that carries `Desired.layer2` out. It sends
//! and hears the heartbeats ([`super::liveness`]), follows the interfaces' carrier
//! ([`super::link`]), decides the owners ([`super::owner`]) again on every change, and
//! tells each interface's [`Responder`] what to answer for.
//!
//! Nothing here waits on the API server: the cluster state only says who the candidates
//! are; who is alive comes from the heartbeats, so a failover is one detection time plus
//! the takeover burst. The daemon tells it whether the API server is reachable only so
//! that an isolated node may keep answering while the API server vouches that it is alone.
//!
//! Stepping down (SIGTERM, drain): heartbeats say "not eligible" at once, so the standby
//! takes over while this node still answers for one detection time — make before break.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};
use socket2::{Domain, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{info, warn};

use super::candidates::{Interface, Layer2Plan};
use super::link::{self, LinkFacts, Links};
use super::liveness::{Heartbeat, Liveness, Timing};
use super::owner::{self, NodeName, Ownership};
use super::responder::{Owned, Responder};

/// The default heartbeat port (UDP).
pub const DEFAULT_PORT: u16 = 7474;

/// How the edge runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// This node.
    pub node: NodeName,
    /// Heartbeat timing.
    pub timing: Timing,
    /// Heartbeat UDP port (the same on every node).
    pub port: u16,
    /// Standalone mode: no API server to vouch for an isolated node, which then stops.
    pub standalone: bool,
}

/// What the daemon hands the edge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Input {
    /// The layer-2 addresses and candidates, from `desired`.
    pub plan: Layer2Plan,
    /// The API server answered lately (Kubernetes mode).
    pub api_reachable: bool,
}

/// One address as this node sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressView {
    /// The address.
    pub address: Option<IpAddr>,
    /// Its Eip.
    pub pool: String,
    /// The interface it is answered on, on this node (`None`: none found here).
    pub interface: Option<String>,
    /// The candidates.
    pub candidates: Vec<NodeName>,
    /// Who answers for it (`None`: nobody live).
    pub owner: Option<NodeName>,
    /// Who would take over.
    pub standby: Option<NodeName>,
    /// This node answers for it.
    pub here: bool,
}

/// The edge's state for the admin API and `berthctl`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer2View {
    /// Heartbeat members.
    pub members: Vec<NodeName>,
    /// Members alive and eligible, as this node sees them.
    pub live: Vec<NodeName>,
    /// This node may answer (its layer-2 links are up and it is not stepping down).
    pub eligible: bool,
    /// This node hears none of the other members.
    pub isolated: bool,
    /// Detection time, milliseconds.
    pub detection_ms: u64,
    /// Every layer-2 address.
    pub addresses: Vec<AddressView>,
    /// Problems (an interface missing, a socket that would not open).
    pub problems: Vec<String>,
}

/// The running edge.
pub struct Layer2Edge {
    input: watch::Sender<Input>,
    view: watch::Receiver<Layer2View>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Layer2Edge {
    /// Starts the edge with nothing to answer for.
    pub fn start(options: Options) -> Layer2Edge {
        let (input, input_rx) = watch::channel(Input::default());
        let (view_tx, view) = watch::channel(Layer2View::default());
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run(options, input_rx, view_tx, stop_rx));
        Layer2Edge {
            input,
            view,
            stop: Some(stop),
            task,
        }
    }

    /// Hands the edge a new plan (only a change wakes it).
    pub fn set(&self, input: Input) {
        self.input.send_if_modified(|old| {
            let changed = *old != input;
            *old = input;
            changed
        });
    }

    /// The current view.
    pub fn view(&self) -> Layer2View {
        self.view.borrow().clone()
    }

    /// A receiver of the view, always current.
    pub fn watch(&self) -> watch::Receiver<Layer2View> {
        self.view.clone()
    }

    /// Steps down (heartbeats say "not eligible", the standbys take over) and stops
    /// answering one detection time later.
    pub async fn step_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

fn heartbeat_socket(port: u16) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, None)?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    UdpSocket::from_std(socket.into())
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn mapped(addr: IpAddr, port: u16) -> SocketAddr {
    match addr {
        IpAddr::V4(v4) => SocketAddr::from((v4.to_ipv6_mapped(), port)),
        IpAddr::V6(v6) => SocketAddr::from((v6, port)),
    }
}

struct State {
    options: Options,
    input: Input,
    liveness: Liveness,
    links: BTreeMap<u32, LinkFacts>,
    /// Address → interface index here.
    resolved: BTreeMap<IpAddr, Option<u32>>,
    responders: BTreeMap<u32, Responder>,
    owners: BTreeMap<IpAddr, Ownership>,
    problems: Vec<String>,
    stepping_down: bool,
    sequence: u64,
}

impl State {
    fn members_by_address(&self) -> BTreeMap<IpAddr, NodeName> {
        self.input
            .plan
            .members
            .iter()
            .filter_map(|(n, m)| Some((m.address?, n.clone())))
            .collect()
    }

    /// Whether this node may answer: every interface its candidate addresses use exists
    /// and is up, and it is not stepping down.
    fn eligible(&self) -> bool {
        if self.stepping_down {
            return false;
        }
        let me = &self.options.node;
        self.input
            .plan
            .vips
            .iter()
            .filter(|(_, v)| v.candidates.contains(me))
            .all(|(ip, _)| {
                self.resolved
                    .get(ip)
                    .copied()
                    .flatten()
                    .and_then(|i| self.links.get(&i))
                    .is_some_and(|l| l.up && l.mac.is_some())
            })
    }

    async fn resolve(&mut self, handle: &rtnetlink::Handle) {
        let mut resolved = BTreeMap::new();
        let mut problems = Vec::new();
        let me = &self.options.node;
        for (ip, vip) in &self.input.plan.vips {
            if !self.input.plan.members.contains_key(me) {
                break;
            }
            let index = link::resolve(handle, &vip.interface, *ip, &self.links).await;
            if index.is_none() {
                let what = match &vip.interface {
                    Interface::Named(n) => format!("interface {n}"),
                    Interface::CanReach(t) => format!("a route to {t}"),
                    Interface::DefaultRoute => "a default route".to_string(),
                };
                problems.push(format!(
                    "Eip {}: this node has no {what}: it does not answer for {ip}",
                    vip.pool
                ));
            }
            resolved.insert(*ip, index);
        }
        for p in problems.iter().filter(|p| !self.problems.contains(p)) {
            warn!("{p}");
        }
        self.problems = problems;
        self.resolved = resolved;
        let members: BTreeSet<NodeName> = self.input.plan.members.keys().cloned().collect();
        if *self.liveness.members() != members {
            self.liveness.set_members(members);
        }
    }

    async fn send_heartbeats(&mut self, socket: &UdpSocket) {
        self.sequence += 1;
        let beat = Heartbeat {
            node: self.options.node.clone(),
            sequence: self.sequence,
            interval_ms: u16::try_from(self.options.timing.interval.as_millis())
                .unwrap_or(u16::MAX),
            eligible: self.liveness.eligible(),
        }
        .encode();
        for (name, member) in &self.input.plan.members {
            if *name == self.options.node {
                continue;
            }
            if let Some(addr) = member.address {
                // A member unreachable now is what the heartbeats are for: not an error.
                let _ = socket.send_to(&beat, mapped(addr, self.options.port)).await;
            }
        }
    }

    /// Decides the owners again and brings the responders to it.
    fn apply(&mut self, now: Instant) {
        let eligible = self.eligible();
        self.liveness.set_eligible(eligible);
        self.liveness
            .set_isolated_stops(self.options.standalone || !self.input.api_reachable);
        let live = self.liveness.live(now.into_std());
        let owners = owner::ownership(&self.input.plan.candidates(), &live);
        for (ip, o) in &owners {
            let before = self.owners.get(ip).map(|o| &o.owner);
            if before != Some(&o.owner) {
                info!(vip = %ip, owner = %o.owner, previous = ?before, "layer-2 owner");
            }
        }
        for ip in self.owners.keys().filter(|ip| !owners.contains_key(*ip)) {
            info!(vip = %ip, "layer-2 address has no live candidate: nobody answers");
        }
        self.owners = owners;
        let me = &self.options.node;
        // Per interface: what this node owns there, and what it may come to own.
        let mut owned: BTreeMap<u32, BTreeSet<IpAddr>> = BTreeMap::new();
        let mut candidate: BTreeMap<u32, BTreeSet<IpAddr>> = BTreeMap::new();
        for (ip, vip) in &self.input.plan.vips {
            let Some(index) = self.resolved.get(ip).copied().flatten() else {
                continue;
            };
            if vip.candidates.contains(me) {
                candidate.entry(index).or_default().insert(*ip);
            }
            if self.owners.get(ip).is_some_and(|o| o.owner == *me) {
                owned.entry(index).or_default().insert(*ip);
            }
        }
        self.responders.retain(|i, _| candidate.contains_key(i));
        for (index, addresses) in &candidate {
            if !self.responders.contains_key(index) {
                let Some(mac) = self.links.get(index).and_then(|l| l.mac) else {
                    continue;
                };
                match Responder::start(*index, mac, Owned::default()) {
                    Ok(r) => {
                        self.responders.insert(*index, r);
                    }
                    Err(e) => {
                        let p = format!("interface index {index}: cannot answer ARP/NDP: {e}");
                        warn!("{p}");
                        self.problems.push(p);
                        continue;
                    }
                }
            }
            if let Some(r) = self.responders.get_mut(index) {
                r.set_groups(addresses);
                r.set_owned(owned.remove(index).unwrap_or_default());
            }
        }
    }

    fn view(&self, now: Instant) -> Layer2View {
        let me = &self.options.node;
        Layer2View {
            members: self.liveness.members().iter().cloned().collect(),
            live: self.liveness.live(now.into_std()).into_iter().collect(),
            eligible: self.liveness.eligible(),
            isolated: self.liveness.isolated(now.into_std()),
            detection_ms: u64::try_from(self.options.timing.detection().as_millis())
                .unwrap_or(u64::MAX),
            addresses: self
                .input
                .plan
                .vips
                .iter()
                .map(|(ip, v)| {
                    let o = self.owners.get(ip);
                    AddressView {
                        address: Some(*ip),
                        pool: v.pool.clone(),
                        interface: self
                            .resolved
                            .get(ip)
                            .copied()
                            .flatten()
                            .and_then(|i| self.links.get(&i))
                            .map(|l| l.name.clone()),
                        candidates: v.candidates.iter().cloned().collect(),
                        owner: o.map(|o| o.owner.clone()),
                        standby: o.and_then(|o| o.standby.clone()),
                        here: o.is_some_and(|o| o.owner == *me),
                    }
                })
                .collect(),
            problems: self.problems.clone(),
        }
    }
}

async fn run(
    options: Options,
    mut input: watch::Receiver<Input>,
    view: watch::Sender<Layer2View>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut links: Links = match link::watch_links().await {
        Ok(l) => l,
        Err(e) => {
            warn!("layer 2 disabled: cannot watch the interfaces: {e}");
            return;
        }
    };
    let handle = match rtnetlink::new_connection() {
        Ok((conn, handle, _)) => {
            tokio::spawn(conn);
            handle
        }
        Err(e) => {
            warn!("layer 2 disabled: no netlink socket: {e}");
            return;
        }
    };
    let socket = match heartbeat_socket(options.port) {
        Ok(s) => s,
        Err(e) => {
            warn!(
                port = options.port,
                "layer 2 disabled: cannot open the heartbeat socket: {e}"
            );
            return;
        }
    };
    let timing = options.timing;
    let mut state = State {
        liveness: Liveness::new(options.node.clone(), timing, true),
        options,
        input: Input::default(),
        links: links.borrow_and_update().clone(),
        resolved: BTreeMap::new(),
        responders: BTreeMap::new(),
        owners: BTreeMap::new(),
        problems: Vec::new(),
        stepping_down: false,
        sequence: 0,
    };
    let mut tick = tokio::time::interval(timing.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut buf = [0u8; 512];
    let mut stop_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let wake = state
            .liveness
            .next_expiry(now.into_std())
            .map_or(now + timing.interval, Instant::from_std)
            .min(stop_at.unwrap_or(now + timing.interval));
        let was_eligible = state.liveness.eligible();
        tokio::select! {
            changed = input.changed() => {
                if changed.is_err() {
                    break;
                }
                state.input = input.borrow_and_update().clone();
                state.resolve(&handle).await;
            }
            changed = links.changed() => {
                if changed.is_err() {
                    break;
                }
                state.links = links.borrow_and_update().clone();
                state.resolve(&handle).await;
            }
            received = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = received
                    && let Some(beat) = Heartbeat::decode(&buf[..n])
                    && state.members_by_address().get(&canonical(from.ip())) == Some(&beat.node)
                {
                    state.liveness.heard(&beat, std::time::Instant::now());
                }
            }
            _ = tick.tick() => state.send_heartbeats(&socket).await,
            () = tokio::time::sleep_until(wake) => {
                if stop_at.is_some_and(|t| Instant::now() >= t) {
                    break;
                }
            }
            _ = &mut stop, if !state.stepping_down => {
                info!("layer 2: stepping down");
                state.stepping_down = true;
                stop_at = Some(Instant::now() + timing.detection());
            }
        }
        let now = Instant::now();
        state.apply(now);
        if state.liveness.eligible() != was_eligible {
            // Tell the others at once rather than at the next tick.
            state.send_heartbeats(&socket).await;
        }
        let v = state.view(now);
        view.send_if_modified(|old| {
            let changed = *old != v;
            *old = v;
            changed
        });
    }
    // Stepping down ends with answering nothing (dropping the responders closes them).
    state.responders.clear();
}
