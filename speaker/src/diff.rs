//! The minimal set of changes that takes what runs to what is desired: sessions to add,
//! remove, reset (a change the session cannot take live) or update in place (a change it
//! can), and per session the routes to announce and withdraw.
//!
//! Pure. Its promises, property-tested: a session whose configuration did not change is
//! never touched, and a route already announced with the same attributes is never sent
//! again. `Running::apply` replays a `Plan` on the model of what runs, so that applying
//! the plan of `(running, desired)` gives exactly `desired`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::desired::{Desired, DesiredPeer, SpeakerSettings, VipAttrs};

/// What the BGP driver has been told: the model the next plan is computed against.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    /// Speaker-wide settings in force.
    pub settings: Option<SpeakerSettings>,
    /// Sessions, by neighbour address.
    pub peers: BTreeMap<IpAddr, DesiredPeer>,
    /// Per session, the routes announced on it.
    pub routes: BTreeMap<IpAddr, BTreeMap<IpAddr, VipAttrs>>,
}

impl Running {
    /// What runs once `desired` is fully applied.
    pub fn target(desired: &Desired) -> Running {
        Running {
            settings: desired.settings.clone(),
            peers: desired.peers.clone(),
            routes: desired.routes(),
        }
    }

    /// Replays `plan` on the model.
    pub fn apply(&mut self, plan: &Plan) {
        if let Some(settings) = &plan.settings {
            self.settings = settings.clone();
        }
        for addr in &plan.remove {
            self.peers.remove(addr);
            self.routes.remove(addr);
        }
        for p in plan.add.iter().chain(&plan.reset).chain(&plan.update) {
            self.peers.insert(p.address, p.clone());
            self.routes.entry(p.address).or_default();
        }
        for (peer, vips) in &plan.withdraw {
            if let Some(routes) = self.routes.get_mut(peer) {
                for vip in vips {
                    routes.remove(vip);
                }
            }
        }
        for (peer, vips) in &plan.announce {
            let routes = self.routes.entry(*peer).or_default();
            for (vip, attrs) in vips {
                routes.insert(*vip, attrs.clone());
            }
        }
    }
}

/// The changes from one `Running` to one `Desired`, in the order they are applied:
/// settings, removals, resets, updates, additions, withdrawals, announcements.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// New speaker-wide settings (`Some(None)`: no usable BgpConf any more).
    pub settings: Option<Option<SpeakerSettings>>,
    /// Sessions to close.
    pub remove: Vec<IpAddr>,
    /// Sessions to start.
    pub add: Vec<DesiredPeer>,
    /// Sessions whose change needs a new session (AS, port, password, timers…).
    pub reset: Vec<DesiredPeer>,
    /// Sessions whose change applies without a reset (description, object name).
    pub update: Vec<DesiredPeer>,
    /// Per session, routes to withdraw.
    pub withdraw: BTreeMap<IpAddr, Vec<IpAddr>>,
    /// Per session, routes to announce (new, or with changed attributes).
    pub announce: BTreeMap<IpAddr, Vec<(IpAddr, VipAttrs)>>,
}

impl Plan {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.settings.is_none()
            && self.remove.is_empty()
            && self.add.is_empty()
            && self.reset.is_empty()
            && self.update.is_empty()
            && self.withdraw.is_empty()
            && self.announce.is_empty()
    }

    /// Routes announced plus withdrawn, over all sessions.
    pub fn route_changes(&self) -> usize {
        self.withdraw.values().map(Vec::len).sum::<usize>()
            + self.announce.values().map(Vec::len).sum::<usize>()
    }
}

/// The plan taking `running` to `desired`.
pub fn diff(running: &Running, desired: &Desired) -> Plan {
    let mut plan = Plan::default();
    if running.settings != desired.settings {
        plan.settings = Some(desired.settings.clone());
    }
    for addr in running.peers.keys() {
        if !desired.peers.contains_key(addr) {
            plan.remove.push(*addr);
        }
    }
    let empty = BTreeMap::new();
    for (addr, want) in &desired.peers {
        match running.peers.get(addr) {
            None => plan.add.push(want.clone()),
            Some(have) if have.needs_reset(want) => plan.reset.push(want.clone()),
            Some(have) if have != want => plan.update.push(want.clone()),
            Some(_) => {}
        }
        let have = running.routes.get(addr).unwrap_or(&empty);
        let want_routes = desired.routes_for(want);
        let withdraw: Vec<IpAddr> = have
            .keys()
            .filter(|vip| !want_routes.contains_key(vip))
            .copied()
            .collect();
        let announce: Vec<(IpAddr, VipAttrs)> = want_routes
            .into_iter()
            .filter(|(vip, attrs)| have.get(vip) != Some(attrs))
            .collect();
        if !withdraw.is_empty() {
            plan.withdraw.insert(*addr, withdraw);
        }
        if !announce.is_empty() {
            plan.announce.insert(*addr, announce);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Afi;
    use std::collections::BTreeSet;

    fn peer(addr: &str) -> DesiredPeer {
        DesiredPeer {
            name: "p".into(),
            address: addr.parse().expect("ip"),
            families: BTreeSet::from([Afi::Ipv4]),
            graceful_restart: Some(120),
            ..DesiredPeer::example()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn desired(peers: &[DesiredPeer], vips: &[(&str, VipAttrs)]) -> Desired {
        Desired {
            peers: peers.iter().map(|p| (p.address, p.clone())).collect(),
            announce: vips.iter().map(|(v, a)| (ip(v), a.clone())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn from_nothing_adds_and_announces() {
        let d = desired(&[peer("10.0.0.254")], &[("192.0.2.1", VipAttrs::default())]);
        let plan = diff(&Running::default(), &d);
        assert_eq!(plan.add.len(), 1);
        assert_eq!(plan.announce[&ip("10.0.0.254")].len(), 1);
        let mut r = Running::default();
        r.apply(&plan);
        assert_eq!(r, Running::target(&d));
        assert!(diff(&r, &d).is_empty());
    }

    #[test]
    fn description_changes_update_without_reset() {
        let d = desired(&[peer("10.0.0.254")], &[]);
        let r = Running::target(&d);
        let mut p = peer("10.0.0.254");
        p.description = "new".into();
        let plan = diff(&r, &desired(&[p], &[]));
        assert!(plan.reset.is_empty());
        assert_eq!(plan.update.len(), 1);
        assert!(plan.announce.is_empty() && plan.withdraw.is_empty());
    }

    #[test]
    fn as_and_password_changes_reset_only_that_peer() {
        let d = desired(&[peer("10.0.0.254"), peer("10.0.0.253")], &[]);
        let r = Running::target(&d);
        let mut p = peer("10.0.0.254");
        p.md5_password = Some("x".into());
        let plan = diff(&r, &desired(&[p, peer("10.0.0.253")], &[]));
        assert_eq!(
            plan.reset.iter().map(|p| p.address).collect::<Vec<_>>(),
            vec![ip("10.0.0.254")]
        );
        assert!(plan.add.is_empty() && plan.remove.is_empty() && plan.update.is_empty());
    }

    #[test]
    fn attribute_change_reannounces_only_that_route() {
        let a = VipAttrs::default();
        let b = VipAttrs {
            med: Some(10),
            ..Default::default()
        };
        let d = desired(
            &[peer("10.0.0.254")],
            &[("192.0.2.1", a.clone()), ("192.0.2.2", a.clone())],
        );
        let r = Running::target(&d);
        let d2 = desired(
            &[peer("10.0.0.254")],
            &[("192.0.2.1", a), ("192.0.2.2", b.clone())],
        );
        let plan = diff(&r, &d2);
        assert_eq!(plan.announce[&ip("10.0.0.254")], vec![(ip("192.0.2.2"), b)]);
        assert!(plan.withdraw.is_empty() && plan.add.is_empty() && plan.reset.is_empty());
    }

    #[test]
    fn removed_peer_needs_no_withdrawals() {
        let d = desired(&[peer("10.0.0.254")], &[("192.0.2.1", VipAttrs::default())]);
        let r = Running::target(&d);
        let plan = diff(&r, &desired(&[], &[]));
        assert_eq!(plan.remove, vec![ip("10.0.0.254")]);
        assert!(plan.withdraw.is_empty());
    }
}
