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

/// Decides everything for one state: rebuild, then each Service in claim order (the earlier
/// claim wins a contested address), then each Eip's final status.
///
/// The claim time is [`ServiceView::created`]: a cluster's `creationTimestamp`; in standalone
/// mode the time the Service's addresses were allocated (`berth.io/allocated-at`, written
/// with its status), since a file has no creation time to trust and name order would hand a
/// held address to whichever Service sorts first. Name order only breaks exact ties and
/// orders Services no time is known for, after every timed one.
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::view::ClassConfig;

    fn pool() -> EipView {
        let eip: api::Eip = serde_json::from_value(serde_json::json!({
            "apiVersion": "network.kubesphere.io/v1alpha2", "kind": "Eip",
            "metadata": {"name": "one"},
            "spec": {"address": "192.0.2.7"}
        }))
        .expect("eip");
        EipView::from_eip(&eip)
    }

    fn holding(name: &str, claimed: Option<i64>) -> ServiceView {
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "berth.io/lb", "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}]}}
        }))
        .expect("service");
        let mut v = ServiceView::from_service(&svc, &ClassConfig::default(), &BTreeMap::new());
        v.has_finalizer = true;
        v.created = claimed;
        v
    }

    /// Issue 14 item 8: two Services claim one address; the earlier claim keeps it whatever
    /// the names, and a Service with a known claim time beats one without.
    #[test]
    fn the_earlier_claim_keeps_a_contested_address_whatever_the_names() {
        for (a, z, winner) in [
            (Some(2), Some(1), "z"),
            (Some(1), Some(2), "a"),
            (None, Some(5), "z"),
        ] {
            let state = ClusterState {
                eips: vec![pool()],
                services: vec![holding("a", a), holding("z", z)],
            };
            let (_, decided) = plan(&state);
            let kept: Vec<&str> = decided
                .services
                .iter()
                .filter(|(_, d)| d.ingress.as_ref().is_some_and(|i| !i.is_empty()))
                .map(|(k, _)| k.name.as_str())
                .collect();
            assert_eq!(kept, [winner], "claims a={a:?} z={z:?}");
        }
    }
}
