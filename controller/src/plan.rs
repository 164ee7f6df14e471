//! The whole-state decision: every object in, every desired status and event out.
//!
//! The standalone mode runs this on each change of its directory; tests use it to check the
//! decision logic on complete scenarios. It starts from [`Engine::rebuild`] every time, so it
//! is restart-safe by construction.

use std::collections::BTreeMap;

use crate::decision::{EipDecision, Event, ServiceDecision};
use crate::engine::Engine;
use crate::ipam::ServiceRef;
use crate::view::{EipView, ServiceView};

/// Every object the decisions read.
#[derive(Clone, Debug, Default)]
pub struct ClusterState {
    /// Every Eip.
    pub eips: Vec<EipView>,
    /// Every Service (handled or not).
    pub services: Vec<ServiceView>,
}

/// Every decision for one state.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Per Service.
    pub services: BTreeMap<ServiceRef, ServiceDecision>,
    /// Per Eip name.
    pub eips: BTreeMap<String, EipDecision>,
    /// Events from the rebuild (refused claims, invalid pools).
    pub rebuild_events: Vec<Event>,
}

impl Plan {
    /// Every event of the plan, rebuild first.
    pub fn events(&self) -> impl Iterator<Item = &Event> + '_ {
        self.rebuild_events
            .iter()
            .chain(self.services.values().flat_map(|d| d.events.iter()))
            .chain(self.eips.values().flat_map(|d| d.events.iter()))
    }
}

/// Decides everything for one state: rebuild, then each Service in creation order (the
/// earlier Service wins a contested address), then each Eip's final status.
pub fn plan(state: &ClusterState) -> (Engine, Plan) {
    let (mut engine, rebuild_events) = Engine::rebuild(&state.eips, &state.services);
    let mut services: Vec<&ServiceView> = state.services.iter().collect();
    services.sort_by(|a, b| {
        (a.created.is_none(), a.created, &a.key).cmp(&(b.created.is_none(), b.created, &b.key))
    });
    let mut out = Plan {
        rebuild_events,
        ..Plan::default()
    };
    for eip in state.eips.iter().filter(|e| !e.deleting) {
        engine.reconcile_eip(eip);
    }
    for svc in services {
        let d = engine.reconcile_service(svc);
        out.services.insert(svc.key.clone(), d);
    }
    for eip in &state.eips {
        let d = engine.reconcile_eip(eip);
        out.eips.insert(eip.spec.name.clone(), d);
    }
    (engine, out)
}
