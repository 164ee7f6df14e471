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
//! Planned moves are make-before-break ([`super::handover`]): an address this node gives
//! away (a node joins, this node is drained or deselected, SIGTERM) is still answered here
//! until its new owner's heartbeat confirms it answers, or for at most
//! [`Timing::handover_bound`]. Stepping down (SIGTERM): heartbeats say "not eligible" at
//! once, the standbys take over and confirm, and the edge ends when nothing is held any
//! more. A speaker just started warms up for one detection time before it claims anything.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};
use socket2::{Domain, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{info, warn};

use super::candidates::{Interface, Layer2Plan};
use super::handover::{Handovers, Released};
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
    /// Make-before-break: the addresses handed over and not yet confirmed.
    handovers: Handovers,
    /// What this node answered for at the last decision (owned and held).
    answered: BTreeSet<IpAddr>,
    /// Nodes that were members lately, and until when they still get heartbeats (a node
    /// deselected from a pool hands its addresses over: it needs its peers' heartbeats to
    /// see the new owners confirm).
    former: BTreeMap<NodeName, (IpAddr, Instant)>,
    /// What the last heartbeat sent said: eligible, owned digest.
    said: Option<(bool, u64)>,
    /// The live set of the last decision.
    decided_live: BTreeSet<NodeName>,
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

    /// Takes a new input; members that left still get heartbeats for a handover bound.
    fn set_input(&mut self, input: Input, now: Instant) {
        let until = now + self.options.timing.handover_bound();
        for (name, member) in &self.input.plan.members {
            if !input.plan.members.contains_key(name)
                && let Some(addr) = member.address
            {
                self.former.insert(name.clone(), (addr, until));
            }
        }
        self.former
            .retain(|n, (_, t)| *t > now && !input.plan.members.contains_key(n));
        self.input = input;
    }

    /// Whether every interface this node's candidate addresses use exists and is up.
    ///
    /// In Kubernetes mode an interface that does not exist here (or no route names one)
    /// does not count: the node says so in its entry of the pool's status, and every node
    /// then leaves it out of that pool's candidates (`status::layer2::without_unresolved`),
    /// so one misconfigured pool does not stop the others. Standalone mode has no such
    /// entry: a missing interface takes the node out of every pool, as a down link does.
    fn links_ok(&self) -> bool {
        let me = &self.options.node;
        let standalone = self.options.standalone;
        self.input
            .plan
            .vips
            .iter()
            .filter(|(_, v)| v.candidates.contains(me))
            .all(|(ip, _)| match self.resolved.get(ip).copied().flatten() {
                None => !standalone,
                Some(i) => self.links.get(&i).is_some_and(|l| l.up && l.mac.is_some()),
            })
    }

    async fn resolve(&mut self, handle: &rtnetlink::Handle) {
        let mut resolved = BTreeMap::new();
        let mut problems = Vec::new();
        let me = &self.options.node;
        let member = self.input.plan.members.contains_key(me);
        for (ip, vip) in &self.input.plan.vips {
            // A node no longer a member still resolves what it is handing over.
            if !member && !self.answered.contains(ip) {
                continue;
            }
            let resolution = link::resolve_detailed(handle, &vip.interface, *ip, &self.links).await;
            let index = resolution.index();
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
            // Several candidate interfaces: which one and why (`berthctl layer2` shows it).
            if let link::Resolution::Several { name, all, .. } = &resolution {
                problems.push(format!(
                    "Eip {}: several interfaces qualify ({}): {ip} is answered on {name}, the first by name",
                    vip.pool,
                    all.join(", ")
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

    /// What a heartbeat says now: eligible, and the digest of what this node owns.
    fn saying(&self, now: Instant) -> (bool, u64) {
        let owned = owner::owned_by(&self.owners, &self.options.node);
        (
            self.liveness.says_eligible(now.into_std()),
            owner::digest(owned),
        )
    }

    async fn send_heartbeats(&mut self, socket: &UdpSocket) {
        let now = Instant::now();
        self.sequence += 1;
        let (eligible, owned) = self.saying(now);
        self.said = Some((eligible, owned));
        let beat = Heartbeat {
            node: self.options.node.clone(),
            sequence: self.sequence,
            interval_ms: u16::try_from(self.options.timing.interval.as_millis())
                .unwrap_or(u16::MAX),
            eligible,
            owned: Some(owned),
        }
        .encode();
        let former = self
            .former
            .iter()
            .filter(|(_, (_, until))| *until > now)
            .map(|(n, (a, _))| (n, Some(*a)));
        let current = self.input.plan.members.iter().map(|(n, m)| (n, m.address));
        for (name, address) in current.chain(former) {
            if *name == self.options.node {
                continue;
            }
            if let Some(addr) = address {
                // A member unreachable now is what the heartbeats are for: not an error.
                let _ = socket.send_to(&beat, mapped(addr, self.options.port)).await;
            }
        }
    }

    /// Decides the owners again and brings the responders to it.
    fn apply(&mut self, now: Instant) {
        let links_ok = self.links_ok();
        self.liveness.set_eligible(links_ok && !self.stepping_down);
        self.liveness
            .set_isolated_stops(self.options.standalone || !self.input.api_reachable);
        let live_at = now.into_std();
        let live = self.liveness.live(live_at);
        self.decided_live.clone_from(&live);
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
        let index_of = |ip: &IpAddr| self.resolved.get(ip).copied().flatten();
        let mine: BTreeSet<IpAddr> = owner::owned_by(&self.owners, me)
            .filter(|ip| index_of(ip).is_some())
            .copied()
            .collect();
        // Make before break: what was answered here and is owned elsewhere now stays
        // answered until its new owner confirms (never when isolated or the link is down).
        let may_hold = links_ok && !self.liveness.isolated(live_at);
        let (owners_now, liveness) = (&self.owners, &self.liveness);
        // What each node should say it owns, computed once (not once per held address).
        let expected = owner::digests(owners_now);
        let step = self.handovers.step(
            &self.answered,
            &mine,
            |ip| owners_now.get(ip).map(|o| o.owner.clone()),
            |node| {
                liveness.owned_digest(node).is_some()
                    && liveness.owned_digest(node) == expected.get(node).copied()
            },
            may_hold,
            live_at,
        );
        for (ip, to) in &step.started {
            info!(vip = %ip, to = %to, "layer-2 handover: answering until the new owner confirms");
        }
        for (ip, why) in &step.released {
            match why {
                Released::Confirmed(n) => info!(vip = %ip, to = %n, "layer-2 handover confirmed"),
                Released::TimedOut(n) => {
                    warn!(vip = %ip, to = ?n, "layer-2 handover: no confirmation within the bound, stopping")
                }
                Released::Regained | Released::Dropped => {}
            }
        }
        self.answered = step.answered;
        // Per interface: what this node answers there, and what it may come to own.
        let mut owned: BTreeMap<u32, BTreeSet<IpAddr>> = BTreeMap::new();
        let mut candidate: BTreeMap<u32, BTreeSet<IpAddr>> = BTreeMap::new();
        for (ip, vip) in &self.input.plan.vips {
            let Some(index) = index_of(ip) else {
                continue;
            };
            let answered = self.answered.contains(ip);
            if vip.candidates.contains(me) || answered {
                candidate.entry(index).or_default().insert(*ip);
            }
            if answered {
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
        handovers: Handovers::new(timing.handover_bound(), timing.interval),
        answered: BTreeSet::new(),
        former: BTreeMap::new(),
        said: None,
        decided_live: BTreeSet::new(),
    };
    // Hear the others for one detection time before claiming anything.
    state
        .liveness
        .warm_up_until(std::time::Instant::now() + timing.detection());
    let mut tick = tokio::time::interval(timing.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut buf = [0u8; 512];
    let mut stop_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let wake = state
            .liveness
            .next_expiry(now.into_std())
            .into_iter()
            .chain(state.handovers.next_deadline())
            .map(Instant::from_std)
            .chain(stop_at)
            .fold(now + timing.interval, Instant::min);
        // Whether to decide again: not for a tick, nor for a heartbeat that only keeps a
        // member alive (see `Liveness::would_change`).
        let mut decide = true;
        tokio::select! {
            changed = input.changed() => {
                if changed.is_err() {
                    break;
                }
                let new = input.borrow_and_update().clone();
                state.set_input(new, Instant::now());
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
                    let at = std::time::Instant::now();
                    decide = state.liveness.would_change(&beat, at);
                    state.liveness.heard(&beat, at);
                } else {
                    decide = false;
                }
            }
            _ = tick.tick() => {
                state.send_heartbeats(&socket).await;
                decide = false;
            }
            () = tokio::time::sleep_until(wake) => {
                if stop_at.is_some_and(|t| Instant::now() >= t) {
                    break;
                }
            }
            _ = &mut stop, if !state.stepping_down => {
                info!("layer 2: stepping down");
                state.stepping_down = true;
                stop_at = Some(Instant::now() + timing.handover_bound());
            }
        }
        let now = Instant::now();
        // A member's expiry or a handover's deadline that passed while another branch won
        // the select (the timer's deadline then lies in the past and is not armed again):
        // decide now, or a dead owner would keep its addresses until something else
        // changed (the benchmark saw SIGKILLed owners' addresses dark for seconds).
        decide = decide
            || state.liveness.live(now.into_std()) != state.decided_live
            || state
                .handovers
                .next_deadline()
                .is_some_and(|d| d <= now.into_std());
        if !decide {
            continue;
        }
        state.apply(now);
        if state.said != Some(state.saying(now)) {
            // A change of eligibility or of what this node owns: tell the others at once
            // rather than at the next tick (a handover waits for it).
            state.send_heartbeats(&socket).await;
        }
        if state.stepping_down && state.handovers.is_empty() {
            break;
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
