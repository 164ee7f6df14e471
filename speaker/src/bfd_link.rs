//! BFD sessions under the BGP sessions that ask for them (`BgpPeer.spec.bfd`): the pure
//! mapping from a desired peer to a `bfd::SessionConfig`, the decision of what a change
//! does to the running BFD session, and `BfdLinks`, which carries it out on one
//! `bfd::Bfd` and hands out the gate each BGP peer follows.
//!
//! A timer change goes through `set_timers` (a Poll sequence, no reset); only a change of
//! hop mode or source address replaces the session.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bfd::{Bfd, Hop, SessionConfig, SessionHandle, SessionStatus, Timers};
use bgp::driver::BfdGate;
use tracing::{info, warn};

use crate::desired::{DesiredBfd, DesiredPeer};

/// The BFD session a desired peer asks for, if any.
pub fn session_config(peer: &DesiredPeer) -> Option<SessionConfig> {
    let b: DesiredBfd = peer.bfd?;
    let timers = Timers {
        desired_min_tx: Duration::from_millis(u64::from(b.min_tx_ms)),
        required_min_rx: Duration::from_millis(u64::from(b.min_rx_ms)),
        detect_mult: b.multiplier.max(1),
    };
    Some(match (b.multihop, b.local) {
        (true, Some(local)) => SessionConfig::multihop(peer.address, local, timers),
        // `desired` never gives multihop without a source; single hop is the safe reading.
        _ => SessionConfig::single_hop(peer.address, b.local, timers),
    })
}

/// What to do to the BFD session of one neighbour to go from `have` to `want`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BfdChange {
    /// Nothing.
    Keep,
    /// Start a session.
    Add(SessionConfig),
    /// Stop the session.
    Remove,
    /// Only the timers differ: change them in place.
    SetTimers(Timers),
    /// Hop mode or source address differ: a new session.
    Replace(SessionConfig),
}

/// The change from `have` to `want` (pure).
pub fn change(have: Option<&SessionConfig>, want: Option<&SessionConfig>) -> BfdChange {
    match (have, want) {
        (None, None) => BfdChange::Keep,
        (None, Some(w)) => BfdChange::Add(w.clone()),
        (Some(_), None) => BfdChange::Remove,
        (Some(h), Some(w)) if h == w => BfdChange::Keep,
        (Some(h), Some(w)) if h.peer == w.peer && h.hop == w.hop && h.local == w.local => {
            BfdChange::SetTimers(w.timers)
        }
        (Some(_), Some(w)) => BfdChange::Replace(w.clone()),
    }
}

/// The BFD sessions that run, one per BGP neighbour at most.
#[derive(Default)]
pub struct BfdLinks {
    bfd: Option<Arc<Bfd>>,
    sessions: BTreeMap<IpAddr, (SessionConfig, SessionHandle)>,
}

impl BfdLinks {
    /// Links on `bfd` (tests: an in-memory one); without it, real UDP sockets are opened
    /// when the first session is added.
    pub fn new(bfd: Option<Arc<Bfd>>) -> Self {
        Self {
            bfd,
            sessions: BTreeMap::new(),
        }
    }

    /// The BFD service, once any session was wanted.
    pub fn bfd(&self) -> Option<&Arc<Bfd>> {
        self.bfd.as_ref()
    }

    /// The BFD session config of each neighbour with one.
    pub fn configs(&self) -> BTreeMap<IpAddr, SessionConfig> {
        self.sessions
            .iter()
            .map(|(a, (c, _))| (*a, c.clone()))
            .collect()
    }

    /// Status of the BFD session of `peer`.
    pub fn status(&self, peer: IpAddr) -> Option<SessionStatus> {
        self.sessions
            .get(&peer)
            .map(|(_, h)| h.status().borrow().clone())
    }

    /// Brings the BFD session of `peer` to what it asks for and returns the gate its BGP
    /// session should follow. On failure the BFD session is left out (logged), the BGP
    /// session runs ungated, and `false` is returned so that the caller retries later.
    pub async fn ensure(&mut self, peer: &DesiredPeer) -> (Option<BfdGate>, bool) {
        let want = session_config(peer);
        let have = self.sessions.get(&peer.address).map(|(c, _)| c);
        match change(have, want.as_ref()) {
            BfdChange::Keep => {}
            BfdChange::SetTimers(timers) => {
                let hop = want.as_ref().map_or(Hop::Single, |w| w.hop);
                if let Some(bfd) = &self.bfd
                    && bfd.set_timers(peer.address, hop, timers).await
                {
                    if let Some((c, _)) = self.sessions.get_mut(&peer.address) {
                        c.timers = timers;
                    }
                    info!(peer = %peer.address, ?timers, "BFD timers changed");
                } else {
                    warn!(peer = %peer.address, "changing BFD timers failed");
                    return (self.gate(peer.address), false);
                }
            }
            BfdChange::Remove => {
                // The caller drops the gate from the BGP peer before `prune` stops this.
                return (None, true);
            }
            BfdChange::Add(config) => return self.add(peer, config),
            BfdChange::Replace(config) => {
                self.remove(peer.address).await;
                return self.add(peer, config);
            }
        }
        (self.gate(peer.address), true)
    }

    fn add(&mut self, peer: &DesiredPeer, config: SessionConfig) -> (Option<BfdGate>, bool) {
        let bfd = self.bfd.get_or_insert_with(|| Arc::new(Bfd::new()));
        match bfd.add_session(config.clone()) {
            Ok(handle) => {
                info!(peer = %peer.address, hop = ?config.hop, "BFD session added");
                let gate = BfdGate(handle.gate());
                self.sessions.insert(peer.address, (config, handle));
                (Some(gate), true)
            }
            Err(e) => {
                warn!(peer = %peer.address, "adding BFD session: {e}");
                (None, false)
            }
        }
    }

    fn gate(&self, peer: IpAddr) -> Option<BfdGate> {
        self.sessions.get(&peer).map(|(_, h)| BfdGate(h.gate()))
    }

    /// Stops the BFD session of `peer`, if any.
    pub async fn remove(&mut self, peer: IpAddr) {
        if let Some((config, _)) = self.sessions.remove(&peer)
            && let Some(bfd) = &self.bfd
        {
            bfd.remove_session(peer, config.hop).await;
            info!(peer = %peer, "BFD session removed");
        }
    }

    /// Stops every BFD session whose neighbour is not in `keep` or no longer asks for BFD.
    pub async fn prune(&mut self, keep: &BTreeMap<IpAddr, DesiredPeer>) {
        let stale: Vec<IpAddr> = self
            .sessions
            .keys()
            .filter(|a| keep.get(a).is_none_or(|p| p.bfd.is_none()))
            .copied()
            .collect();
        for a in stale {
            self.remove(a).await;
        }
    }

    /// Stops every session (each sends AdminDown: the peer does not count it a failure).
    pub async fn shutdown(&mut self) {
        self.sessions.clear();
        if let Some(bfd) = &self.bfd {
            bfd.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(bfd: Option<DesiredBfd>) -> DesiredPeer {
        DesiredPeer {
            bfd,
            ..DesiredPeer::example()
        }
    }

    fn b(tx: u32, multihop: bool, local: Option<&str>) -> DesiredBfd {
        DesiredBfd {
            min_tx_ms: tx,
            min_rx_ms: 200,
            multiplier: 4,
            multihop,
            local: local.map(|l| l.parse().expect("ip")),
        }
    }

    #[test]
    fn single_hop_and_multihop_configs() {
        assert_eq!(session_config(&peer(None)), None);
        let c = session_config(&peer(Some(b(100, false, None)))).expect("bfd");
        assert_eq!(c.hop, Hop::Single);
        assert_eq!(c.local, None);
        assert_eq!(c.timers.desired_min_tx, Duration::from_millis(100));
        assert_eq!(c.timers.required_min_rx, Duration::from_millis(200));
        assert_eq!(c.timers.detect_mult, 4);
        let m = session_config(&peer(Some(b(100, true, Some("10.0.0.1"))))).expect("bfd");
        assert_eq!(m.hop, Hop::Multi);
        assert_eq!(m.local, Some("10.0.0.1".parse().expect("ip")));
    }

    #[test]
    fn timer_changes_are_in_place_and_mode_changes_replace() {
        let a = session_config(&peer(Some(b(300, false, None))));
        let faster = session_config(&peer(Some(b(100, false, None))));
        let multi = session_config(&peer(Some(b(300, true, Some("10.0.0.1")))));
        assert_eq!(change(a.as_ref(), a.as_ref()), BfdChange::Keep);
        assert_eq!(
            change(a.as_ref(), faster.as_ref()),
            BfdChange::SetTimers(faster.as_ref().expect("bfd").timers)
        );
        assert!(matches!(
            change(a.as_ref(), multi.as_ref()),
            BfdChange::Replace(_)
        ));
        assert!(matches!(change(None, a.as_ref()), BfdChange::Add(_)));
        assert_eq!(change(a.as_ref(), None), BfdChange::Remove);
        assert_eq!(change(None, None), BfdChange::Keep);
    }
}
