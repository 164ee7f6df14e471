//! `Session::handle`: the RFC 4271 §8 state machine for one configured peer.
//!
//! A peer can briefly have two TCP connections (the one we opened and the one it opened);
//! each connection carries its own OpenSent / OpenConfirm / Established progress and its
//! own hold and keepalive timers, and §6.8 collision detection closes one of them. The
//! session's state is that of its most advanced connection, or Idle / Connect / Active
//! when it has none.
//!
//! Departures from the letter of §8, each on purpose:
//! - A failed outgoing connection goes to Active and the still-running ConnectRetry timer
//!   tries again (instead of Idle), as every deployed implementation does.
//! - Leaving Established (or any failure that leaves no connection) goes to Idle and
//!   restarts automatically after an idle hold time that doubles with each consecutive
//!   failure (§8.1.1 DampPeerOscillations), reset once a session is established.
//! - NOTIFICATIONs for FSM errors carry the RFC 6608 subcodes.

use std::sync::Arc;
use std::time::Duration;

use crate::rib::adj_in::{AdjRibIn, Tracking};
use crate::rib::route::Prefix;
use crate::wire::attribute::PathAttribute;
use crate::wire::error::UpdateError;
use crate::wire::iana::Family;
use crate::wire::message::Message;
use crate::wire::mp::{MpReach, MpUnreach};
use crate::wire::notification::{CeaseSubcode, ErrorCode, FsmSubcode, Notification};
use crate::wire::open::Open;
use crate::wire::route_refresh::RouteRefreshSubtype;
use crate::wire::update::Update;

use super::config::{ConnectMode, SessionConfig};
use super::event::{Action, Actions, Direction, DownReason, Event, State};
use super::negotiated::{Negotiated, local_capabilities};
use super::open_check::check_open;
use super::timers::{ConnId, Jitter, LARGE_HOLD_TIME, Timer, idle_hold_time, keepalive_interval};

#[derive(Debug)]
enum Progress {
    OpenSent,
    OpenConfirm(Box<Negotiated>),
    Established(Box<Negotiated>),
}

#[derive(Debug)]
struct Connection {
    id: ConnId,
    direction: Direction,
    progress: Progress,
}

impl Connection {
    fn state(&self) -> State {
        match self.progress {
            Progress::OpenSent => State::OpenSent,
            Progress::OpenConfirm(_) => State::OpenConfirm,
            Progress::Established(_) => State::Established,
        }
    }
}

/// What the session does without a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Base {
    Idle,
    Connect,
    Active,
}

/// The state machine of one configured peer. No sockets, no clock: see the module doc.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    base: Base,
    /// Started (manually, not stopped since): automatic restarts apply.
    started: bool,
    conns: Vec<Connection>,
    jitter: Jitter,
    /// Consecutive failures since the last Established, for the idle hold back-off.
    failures: u32,
    /// Idle hold to use for the next failure instead of the back-off (max-prefix).
    idle_override: Option<Option<Duration>>,
    /// The current Idle is a hold-down (max-prefix): refuse the peer until it ends.
    hold_down: bool,
    /// Times the session left Established.
    flaps: u64,
    last_sent_error: Option<Notification>,
    last_received_error: Option<Notification>,
    received: AdjRibIn<Arc<Vec<PathAttribute>>>,
    state: State,
    actions: Actions,
}

impl Session {
    /// A session in Idle; `seed` feeds the jitter generator.
    pub fn new(config: SessionConfig, seed: u64) -> Session {
        let tracking = Tracking::for_session(config.max_prefix.is_some(), config.keep_received);
        Session {
            config,
            base: Base::Idle,
            started: false,
            conns: Vec::new(),
            jitter: Jitter::new(seed),
            failures: 0,
            idle_override: None,
            hold_down: false,
            flaps: 0,
            last_sent_error: None,
            last_received_error: None,
            received: AdjRibIn::new(tracking),
            state: State::Idle,
            actions: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// What was negotiated, when Established.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.conns.iter().find_map(|c| match &c.progress {
            Progress::Established(n) => Some(&**n),
            _ => None,
        })
    }

    /// The established connection, if any.
    pub fn established_conn(&self) -> Option<ConnId> {
        self.conns
            .iter()
            .find(|c| c.state() == State::Established)
            .map(|c| c.id)
    }

    /// Times the session left Established.
    pub fn flaps(&self) -> u64 {
        self.flaps
    }

    /// The last NOTIFICATION we sent.
    pub fn last_sent_error(&self) -> Option<&Notification> {
        self.last_sent_error.as_ref()
    }

    /// The last NOTIFICATION we received.
    pub fn last_received_error(&self) -> Option<&Notification> {
        self.last_received_error.as_ref()
    }

    /// What was received from the peer: NLRI counters always; exact per-path counts when
    /// a max-prefix limit is set; routes when `keep_received` (see [`Tracking`]).
    pub fn received(&self) -> &AdjRibIn<Arc<Vec<PathAttribute>>> {
        &self.received
    }

    /// Feeds one event; returns what the driver must do, in order.
    pub fn handle(&mut self, event: Event) -> Actions {
        match event {
            Event::ManualStart => self.start(),
            Event::ManualStop { message, hard } => {
                let cease = Notification::cease_with_communication(
                    CeaseSubcode::AdministrativeShutdown,
                    &message,
                );
                self.stop(cease, hard)
            }
            Event::BfdDown => self.stop(
                Notification::new(ErrorCode::Cease(CeaseSubcode::BfdDown), Vec::new()),
                true,
            ),
            Event::Retime(config) => self.retime(*config),
            Event::TimerExpired(timer) => self.timer(timer),
            Event::TcpConnected { conn, direction } => self.connected(conn, direction),
            Event::TcpConnectFailed => {
                if self.base == Base::Connect {
                    // ConnectRetry keeps running and will try again.
                    self.base = Base::Active;
                }
            }
            Event::TcpClosed { conn } => {
                if self.conn(conn).is_some() {
                    self.drop_conn(conn, DownReason::ConnectionClosed);
                }
            }
            Event::Message { conn, message } => {
                if self.conn(conn).is_some() {
                    self.message(conn, message);
                }
            }
            Event::DecodeError { conn, error } => {
                if self.conn(conn).is_some() {
                    self.fail(conn, error.notification());
                }
            }
            Event::SendHoldTimerExpired { conn } => {
                if self.conn(conn).is_some() {
                    // RFC 9687 §3: error code 8, no subcode.
                    self.fail(
                        conn,
                        Notification::new(
                            ErrorCode::Unknown {
                                code: 8,
                                subcode: 0,
                            },
                            vec![],
                        ),
                    );
                }
            }
        }
        self.update_state();
        std::mem::take(&mut self.actions)
    }

    fn push(&mut self, action: Action) {
        self.actions.push(action);
    }

    fn conn(&self, id: ConnId) -> Option<&Connection> {
        self.conns.iter().find(|c| c.id == id)
    }

    fn update_state(&mut self) {
        let new = self
            .conns
            .iter()
            .map(Connection::state)
            .max()
            .unwrap_or(match self.base {
                Base::Idle => State::Idle,
                Base::Connect => State::Connect,
                Base::Active => State::Active,
            });
        if new != self.state {
            let from = std::mem::replace(&mut self.state, new);
            self.push(Action::StateChanged { from, to: new });
        }
    }

    fn start(&mut self) {
        if self.started && self.base != Base::Idle {
            return;
        }
        self.started = true;
        self.push(Action::StopTimer(Timer::IdleHold));
        self.begin_connecting();
    }

    /// Leaves Idle: connect now, or wait for the peer.
    fn begin_connecting(&mut self) {
        if self.config.mode == ConnectMode::Passive {
            self.base = Base::Active;
        } else {
            self.dial();
        }
    }

    fn dial(&mut self) {
        self.base = Base::Connect;
        self.push(Action::Connect);
        let after = self.jitter.apply(self.config.connect_retry);
        self.push(Action::StartTimer {
            timer: Timer::ConnectRetry,
            after,
        });
    }

    fn stop(&mut self, mut cease: Notification, hard: bool) {
        self.started = false;
        self.push(Action::StopTimer(Timer::IdleHold));
        let n_bit_both = self.negotiated().is_some_and(|n| {
            self.config.graceful_restart.is_some_and(|g| g.notification)
                && n.peer_graceful_restart
                    .as_ref()
                    .is_some_and(|p| p.notification)
        });
        // RFC 4724 §4: a receiving speaker keeps our routes across a restart only when
        // the session ends without a NOTIFICATION, unless both sides set the N-bit
        // (RFC 8538, which makes a Cease other than Hard Reset keep them too). A restart
        // close to a graceful-restart peer without the N-bit (BIRD 2.0) therefore just
        // closes the connection: a Cease would make it drop our routes at once.
        let gr_both = self.negotiated().is_some_and(|n| {
            self.config.graceful_restart.is_some() && n.peer_graceful_restart.is_some()
        });
        if !hard && gr_both && !n_bit_both {
            let established = self.established_conn();
            for id in self.conns.iter().map(|c| c.id).collect::<Vec<_>>() {
                if Some(id) != established {
                    self.send_notification(id, cease.clone());
                }
                self.remove_conn(id, Some(DownReason::ConnectionClosed));
            }
            self.go_idle(false);
            return;
        }
        if hard && n_bit_both {
            // RFC 8538 §3.1: the data of a Hard Reset is the encapsulated NOTIFICATION's
            // code, subcode and data.
            let (code, subcode) = cease.code.to_wire();
            let mut data = vec![code, subcode];
            data.extend_from_slice(&cease.data);
            cease = Notification::new(ErrorCode::Cease(CeaseSubcode::HardReset), data);
        }
        for id in self.conns.iter().map(|c| c.id).collect::<Vec<_>>() {
            self.send_notification(id, cease.clone());
            self.remove_conn(id, Some(DownReason::Sent(cease.clone())));
        }
        self.go_idle(false);
    }

    /// No connection left: go Idle, and restart later if still started.
    fn go_idle(&mut self, failure: bool) {
        if self.base == Base::Connect {
            self.push(Action::CancelConnect);
        }
        self.base = Base::Idle;
        self.push(Action::StopTimer(Timer::ConnectRetry));
        if !failure || !self.started {
            return;
        }
        self.failures += 1;
        self.hold_down = self.idle_override.is_some();
        let idle = match self.idle_override.take() {
            Some(over) => over,
            None => Some(idle_hold_time(
                self.config.idle_hold,
                self.config.max_idle_hold,
                self.failures,
            )),
        };
        match idle {
            Some(after) => self.push(Action::StartTimer {
                timer: Timer::IdleHold,
                after,
            }),
            // Max-prefix without a restart time: stay down until started again.
            None => self.started = false,
        }
    }

    fn timer(&mut self, timer: Timer) {
        match timer {
            Timer::IdleHold => {
                if self.started && self.base == Base::Idle && self.conns.is_empty() {
                    self.begin_connecting();
                }
            }
            Timer::ConnectRetry => {
                if !self.started || self.config.mode == ConnectMode::Passive {
                    return;
                }
                if self.conns.is_empty() {
                    if self.base == Base::Connect {
                        self.push(Action::CancelConnect);
                    }
                    self.dial();
                }
            }
            Timer::Hold(id) => {
                if self.conn(id).is_some() {
                    self.fail(id, Notification::new(ErrorCode::HoldTimerExpired, vec![]));
                }
            }
            Timer::Keepalive(id) => {
                let Some(c) = self.conn(id) else { return };
                let hold = match &c.progress {
                    Progress::OpenConfirm(n) | Progress::Established(n) => n.hold_time,
                    Progress::OpenSent => return,
                };
                self.push(Action::Send {
                    conn: id,
                    message: Message::Keepalive,
                });
                self.start_keepalive(id, hold);
            }
        }
    }

    /// Takes new pacing (see [`Event::Retime`]); a configuration that needs a new session
    /// is refused here, with nothing changed, since only the driver can start one.
    fn retime(&mut self, config: SessionConfig) {
        if self.config.needs_new_session(&config) {
            return;
        }
        let keepalive_changed = self.config.keepalive != config.keepalive;
        self.config = config;
        if !keepalive_changed {
            return;
        }
        let paced: Vec<(ConnId, u16)> = self
            .conns
            .iter()
            .filter_map(|c| match &c.progress {
                Progress::OpenConfirm(n) | Progress::Established(n) => Some((c.id, n.hold_time)),
                Progress::OpenSent => None,
            })
            .collect();
        for (id, hold) in paced {
            self.start_keepalive(id, hold);
        }
    }

    fn start_keepalive(&mut self, id: ConnId, hold_time: u16) {
        if let Some(interval) = keepalive_interval(hold_time, self.config.keepalive) {
            let after = self.jitter.apply(interval);
            self.push(Action::StartTimer {
                timer: Timer::Keepalive(id),
                after,
            });
        }
    }

    fn restart_hold(&mut self, id: ConnId, hold_time: u16) {
        if hold_time == 0 {
            self.push(Action::StopTimer(Timer::Hold(id)));
        } else {
            let after = Duration::from_secs(u64::from(hold_time));
            self.push(Action::StartTimer {
                timer: Timer::Hold(id),
                after,
            });
        }
    }

    fn connected(&mut self, id: ConnId, direction: Direction) {
        // In Idle waiting for the automatic restart, the peer connecting is the restart
        // (RFC 4271 event 5, AutomaticStart with passive TCP establishment): two speakers
        // that both failed would otherwise keep refusing each other's retries. Not so
        // after max-prefix, whose idle time must be waited out (RFC 4486).
        let refuse = !self.started
            || (self.base == Base::Idle && (self.hold_down || direction == Direction::Outgoing))
            || (direction == Direction::Incoming && self.config.mode == ConnectMode::Active)
            || self.conns.iter().any(|c| c.state() == State::Established)
            || self.conns.len() >= 2;
        if direction == Direction::Outgoing && self.base == Base::Connect {
            self.base = Base::Active;
        }
        if refuse {
            // §6.8: a connection colliding with an Established one is closed; in Idle,
            // connections are refused.
            self.push(Action::Close { conn: id });
            return;
        }
        self.push(Action::StopTimer(Timer::ConnectRetry));
        if self.base == Base::Idle {
            self.push(Action::StopTimer(Timer::IdleHold));
            self.base = Base::Active;
        }
        if self.base == Base::Connect {
            // The peer got through first; our own attempt may still complete and will
            // then go through collision detection.
            self.base = Base::Active;
        }
        let open = Open::new(
            self.config.local_as,
            self.config.hold_time,
            self.config.router_id,
            local_capabilities(&self.config),
        );
        self.push(Action::Send {
            conn: id,
            message: Message::Open(open),
        });
        self.push(Action::StartTimer {
            timer: Timer::Hold(id),
            after: LARGE_HOLD_TIME,
        });
        self.conns.push(Connection {
            id,
            direction,
            progress: Progress::OpenSent,
        });
    }

    fn send_notification(&mut self, id: ConnId, n: Notification) {
        self.last_sent_error = Some(n.clone());
        self.push(Action::Send {
            conn: id,
            message: Message::Notification(n),
        });
    }

    /// Sends `n` on `id`, closes it, and goes Idle if it was the last connection.
    fn fail(&mut self, id: ConnId, n: Notification) {
        self.send_notification(id, n.clone());
        self.drop_conn(id, DownReason::Sent(n));
    }

    /// Closes `id`; when no connection is left, the session failed.
    fn drop_conn(&mut self, id: ConnId, reason: DownReason) {
        if let Some(state) = self.conn(id).map(Connection::state)
            && state != State::Established
        {
            self.push(Action::Failed {
                conn: id,
                state,
                reason: reason.clone(),
            });
        }
        self.remove_conn(id, Some(reason));
        if self.conns.is_empty() {
            self.go_idle(true);
        }
    }

    fn remove_conn(&mut self, id: ConnId, reason: Option<DownReason>) {
        let Some(pos) = self.conns.iter().position(|c| c.id == id) else {
            return;
        };
        let c = self.conns.remove(pos);
        self.push(Action::StopTimer(Timer::Hold(id)));
        self.push(Action::StopTimer(Timer::Keepalive(id)));
        self.push(Action::Close { conn: id });
        if c.state() == State::Established {
            self.flaps += 1;
            self.received.clear();
            self.push(Action::Down {
                reason: reason.unwrap_or(DownReason::ConnectionClosed),
            });
        }
    }

    fn message(&mut self, id: ConnId, message: Message) {
        let state = self.conn(id).map(Connection::state);
        match (state, message) {
            (_, Message::Notification(n)) => {
                self.last_received_error = Some(n.clone());
                self.drop_conn(id, DownReason::Received(n));
            }
            (Some(State::OpenSent), Message::Open(open)) => self.open_received(id, open),
            (Some(State::OpenConfirm), Message::Keepalive) => self.establish(id),
            (Some(State::Established), Message::Keepalive) => {
                let hold = self.negotiated().map_or(0, |n| n.hold_time);
                self.restart_hold(id, hold);
            }
            (Some(State::Established), Message::Update(update)) => {
                let hold = self.negotiated().map_or(0, |n| n.hold_time);
                self.restart_hold(id, hold);
                self.update_received(id, update);
            }
            (Some(State::Established), Message::RouteRefresh(rr)) => {
                let hold = self.negotiated().map_or(0, |n| n.hold_time);
                self.restart_hold(id, hold);
                if rr.subtype == RouteRefreshSubtype::NORMAL {
                    let enhanced = self.negotiated().is_some_and(|n| n.enhanced_route_refresh);
                    self.push(Action::RouteRefresh {
                        family: rr.family,
                        enhanced,
                    });
                }
                // BoRR / EoRR from the peer: we keep no stale routes to sweep.
            }
            (Some(s), _) => {
                let sub = match s {
                    State::OpenSent => FsmSubcode::UnexpectedMessageInOpenSent,
                    State::OpenConfirm => FsmSubcode::UnexpectedMessageInOpenConfirm,
                    _ => FsmSubcode::UnexpectedMessageInEstablished,
                };
                self.fail(id, Notification::new(ErrorCode::Fsm(sub), vec![]));
            }
            (None, _) => {}
        }
    }

    fn open_received(&mut self, id: ConnId, open: Open) {
        let hold_time = match check_open(&self.config, &open) {
            Ok(h) => h,
            Err(n) => return self.fail(id, n),
        };
        // §6.8 collision detection against a connection whose peer identifier we know.
        let other = self
            .conns
            .iter()
            .find(|c| c.id != id && c.state() >= State::OpenConfirm);
        if let Some(other) = other {
            let this_direction = self.conn(id).map(|c| c.direction);
            let loser = if other.state() == State::Established {
                id
            } else if u32::from(self.config.router_id) < u32::from(open.bgp_id) {
                // The peer's identifier is higher: keep the connection it opened.
                if this_direction == Some(Direction::Outgoing) {
                    id
                } else {
                    other.id
                }
            } else if this_direction == Some(Direction::Incoming) {
                id
            } else {
                other.id
            };
            let cease = Notification::new(
                ErrorCode::Cease(CeaseSubcode::ConnectionCollisionResolution),
                vec![],
            );
            self.send_notification(loser, cease.clone());
            self.remove_conn(loser, Some(DownReason::Sent(cease)));
            if loser == id {
                return;
            }
        }
        let negotiated = Negotiated::new(&self.config, &open, hold_time);
        if let Some(c) = self.conns.iter_mut().find(|c| c.id == id) {
            c.progress = Progress::OpenConfirm(Box::new(negotiated));
        }
        self.push(Action::Send {
            conn: id,
            message: Message::Keepalive,
        });
        self.restart_hold(id, hold_time);
        self.start_keepalive(id, hold_time);
    }

    fn establish(&mut self, id: ConnId) {
        let Some(c) = self.conns.iter_mut().find(|c| c.id == id) else {
            return;
        };
        let Progress::OpenConfirm(n) = std::mem::replace(&mut c.progress, Progress::OpenSent)
        else {
            return;
        };
        c.progress = Progress::Established(n.clone());
        let hold = n.hold_time;
        self.failures = 0;
        self.restart_hold(id, hold);
        // Any other connection loses now (§6.8: collision with an Established one).
        for other in self
            .conns
            .iter()
            .map(|c| c.id)
            .filter(|o| *o != id)
            .collect::<Vec<_>>()
        {
            let cease = Notification::new(
                ErrorCode::Cease(CeaseSubcode::ConnectionCollisionResolution),
                vec![],
            );
            self.send_notification(other, cease.clone());
            self.remove_conn(other, Some(DownReason::Sent(cease)));
        }
        self.received.clear();
        self.push(Action::Established {
            conn: id,
            negotiated: n,
        });
    }

    fn update_received(&mut self, id: ConnId, update: Update) {
        let withdraw_all = matches!(update.error, Some(UpdateError::TreatAsWithdraw(_)));
        for n in &update.withdrawn {
            self.received.withdraw((Prefix::V4(n.prefix), n.path_id));
        }
        if let Some(unreach) = update.mp_unreach() {
            match unreach {
                MpUnreach::Ipv4Unicast(v) => v
                    .iter()
                    .for_each(|n| self.received.withdraw((Prefix::V4(n.prefix), n.path_id))),
                MpUnreach::Ipv6Unicast(v) => v
                    .iter()
                    .for_each(|n| self.received.withdraw((Prefix::V6(n.prefix), n.path_id))),
                MpUnreach::Other { .. } => {}
            }
        }
        let mut announced: Vec<(Prefix, Option<u32>)> = update
            .nlri
            .iter()
            .map(|n| (Prefix::V4(n.prefix), n.path_id))
            .collect();
        match update.mp_reach() {
            Some(MpReach::Ipv4Unicast { nlri, .. }) => {
                announced.extend(nlri.iter().map(|n| (Prefix::V4(n.prefix), n.path_id)))
            }
            Some(MpReach::Ipv6Unicast { nlri, .. }) => {
                announced.extend(nlri.iter().map(|n| (Prefix::V6(n.prefix), n.path_id)))
            }
            _ => {}
        }
        if withdraw_all {
            announced
                .into_iter()
                .for_each(|k| self.received.withdraw(k));
            return;
        }
        if announced.is_empty() {
            return;
        }
        let attrs = Arc::new(update.attributes);
        for key in announced {
            self.received.announce(key, || attrs.clone());
        }
        // A limit makes the table track paths (`Tracking::for_session`), so the total is
        // exact here.
        if let (Some(max), Some(total)) = (self.config.max_prefix, self.received.total())
            && total > max.limit
        {
            // RFC 4486 §4: AFI, SAFI and the limit as data.
            let family = self
                .received
                .counts()
                .unwrap_or_default()
                .into_iter()
                .max_by_key(|(_, n)| *n)
                .map_or(Family::IPV4_UNICAST, |(f, _)| f);
            let mut data = family.afi.0.to_be_bytes().to_vec();
            data.push(family.safi.0);
            data.extend_from_slice(&u32::try_from(max.limit).unwrap_or(u32::MAX).to_be_bytes());
            let n = Notification::new(
                ErrorCode::Cease(CeaseSubcode::MaximumNumberOfPrefixesReached),
                data,
            );
            self.idle_override = Some(max.restart_after);
            self.fail(id, n);
        }
    }
}
