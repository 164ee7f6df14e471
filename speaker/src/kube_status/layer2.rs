//! Kubernetes mode only: carries out what [`crate::status::layer2`] decides for layer 2,
//! sampling the edge's view every [`LAYER2_INTERVAL`] (never per heartbeat):
//!
//! - an Event `Layer2OwnerChanged` on each Service of an address this node took over
//!   (within an [`EventBudget`] per Service);
//! - on the first live member only, each layer2 Eip's `Layer2Answered` condition and
//!   `layer2Owners`, by server-side apply under one field manager shared by every speaker
//!   (`berth-speaker-layer2`: whichever node reports replaces what the last one wrote);
//! - this node's entry of each layer2 Eip it is a candidate of (`nodesLayer2Status`), under
//!   its own field manager, and an Event on the Eip plus a log line when its interface
//!   problem changes (missing interface, no route, several interfaces).
//!
//! Each is written only when it changes. Failing writes are retried at the next sample.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::eip::NodeLayer2Status;
use api::{Condition, Eip};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client};
use serde_json::json;
use tracing::{debug, info, warn};

use super::{apply_body, now_rfc3339, reference};
use crate::daemon::Shared;
use crate::layer2::candidates::{Interface, Layer2Plan};
use crate::layer2::edge::Layer2View;
use crate::layer2::link::{self, Resolution};
use crate::status::layer2::{
    EventBudget, Spend, interface_problem, is_reporter, node_entry, pool_reports, taken_over,
};

/// How often the edge's view is sampled: owner changes show in the API within this.
pub const LAYER2_INTERVAL: Duration = Duration::from_secs(1);
/// The field manager every speaker writes the pool-level layer-2 status with.
pub const REPORTER_MANAGER: &str = "berth-speaker-layer2";
/// Owner-change Events per Service: this many at once ...
const EVENT_BURST: u32 = 5;
/// ... then one per this.
const EVENT_EVERY: Duration = Duration::from_secs(60);
/// Routes are read again at least this often (links are followed as they change).
const RESOLVE_EVERY: Duration = Duration::from_secs(30);

fn service_reference(key: &str) -> Option<ObjectReference> {
    let (namespace, name) = key.split_once('/')?;
    Some(ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Service".into()),
        namespace: Some(namespace.into()),
        name: Some(name.into()),
        ..Default::default()
    })
}

/// The layer2 pools this node is a candidate of: pool → (interface, an address of it).
fn my_pools(plan: &Layer2Plan, node: &str) -> BTreeMap<String, (Interface, IpAddr)> {
    let mut out = BTreeMap::new();
    for (ip, v) in &plan.vips {
        if v.candidates.iter().any(|c| c == node) {
            out.entry(v.pool.clone())
                .or_insert_with(|| (v.interface.clone(), *ip));
        }
    }
    out
}

struct Writer {
    node: String,
    eips: Api<DynamicObject>,
    recorder: Recorder,
    own: PatchParams,
    shared_manager: PatchParams,
    budget: EventBudget,
    /// Pool-level status last written by this node as reporter.
    reported: BTreeMap<String, serde_json::Value>,
    last_condition: BTreeMap<String, Condition>,
    /// This node's entries last written, and the problems last said.
    entries: BTreeMap<String, NodeLayer2Status>,
    problems: BTreeMap<String, Option<(&'static str, String)>>,
}

impl Writer {
    async fn apply(&self, pool: &str, status: serde_json::Value, params: &PatchParams) -> bool {
        let body = apply_body("Eip", pool, status);
        match self
            .eips
            .patch_status(pool, params, &Patch::Apply(&body))
            .await
        {
            Ok(_) => true,
            // The Eip is gone: nothing to write into, nothing to retry.
            Err(kube::Error::Api(e)) if e.code == 404 => true,
            Err(e) => {
                warn!(eip = %pool, "writing layer-2 status: {e}");
                false
            }
        }
    }

    async fn owner_events(&mut self, before: &Layer2View, after: &Layer2View, plan: &Layer2Plan) {
        let now = Instant::now();
        for mut t in taken_over(before, after, &self.node) {
            t.services = plan
                .vips
                .get(&t.address)
                .map(|v| v.services.clone())
                .unwrap_or_default();
            info!(
                vip = %t.address,
                owner = %t.owner,
                previous = ?t.previous,
                why = t.why.kind(),
                "layer-2 owner changed: {}",
                t.note()
            );
            for svc in &t.services {
                let Some(regarding) = service_reference(svc) else {
                    continue;
                };
                let held_back = match self.budget.spend(svc, now) {
                    Spend::Send { held_back } => held_back,
                    Spend::HoldBack => {
                        debug!(service = %svc, "owner-change Event held back (rate limit)");
                        continue;
                    }
                };
                let mut note = t.note();
                if held_back > 0 {
                    note.push_str(&format!(
                        "; {held_back} earlier owner change(s) of this Service not reported (rate limit)"
                    ));
                }
                let event = Event {
                    type_: if t.warning() {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: "Layer2OwnerChanged".into(),
                    note: Some(note),
                    action: "Layer2Takeover".into(),
                    secondary: None,
                };
                if let Err(e) = self.recorder.publish(&event, &regarding).await {
                    debug!("event: {e}");
                }
            }
        }
        self.budget.forget_idle(now);
    }

    async fn pool_status(&mut self, view: &Layer2View) {
        if !is_reporter(view, &self.node) {
            // Another node reports; if this one reports again, it writes afresh.
            self.reported.clear();
            return;
        }
        let time = now_rfc3339();
        let reports = pool_reports(view);
        for (pool, report) in &reports {
            let condition = report.condition(self.last_condition.get(pool), &time);
            let mut status = json!({ "conditions": [condition] });
            // Omitted when empty: an emptied map applied as `{}` reads back as null, which
            // the schema refuses; omitted, the manager gives the field up and it goes.
            if !report.owners.is_empty() {
                status["layer2Owners"] = json!(report.owners);
            }
            if self.reported.get(pool) == Some(&status) {
                continue;
            }
            if self.apply(pool, status.clone(), &self.shared_manager).await {
                self.reported.insert(pool.clone(), status);
                self.last_condition.insert(pool.clone(), condition);
            }
        }
        let gone: Vec<String> = self
            .reported
            .keys()
            .filter(|p| !reports.contains_key(*p))
            .cloned()
            .collect();
        for pool in gone {
            // No address of it in use any more: give the fields up (server-side apply
            // removes what the manager no longer applies).
            if self.apply(&pool, json!({}), &self.shared_manager).await {
                self.reported.remove(&pool);
                self.last_condition.remove(&pool);
            }
        }
    }

    async fn node_entries(&mut self, resolved: &BTreeMap<String, Resolution>) {
        let time = now_rfc3339();
        for (pool, r) in resolved {
            let problem = interface_problem(&self.node, pool, r);
            if self.problems.get(pool) != Some(&problem) {
                if let Some((reason, message)) = &problem {
                    warn!(eip = %pool, reason = %reason, "{message}");
                    let event = Event {
                        type_: EventType::Warning,
                        reason: (*reason).into(),
                        note: Some(message.clone()),
                        action: "Layer2Interface".into(),
                        secondary: None,
                    };
                    if let Err(e) = self.recorder.publish(&event, &reference("Eip", pool)).await {
                        debug!("event: {e}");
                    }
                } else if self.problems.get(pool).is_some_and(Option::is_some) {
                    info!(eip = %pool, interface = ?r.name(), "layer-2 interface found");
                }
                self.problems.insert(pool.clone(), problem);
            }
            let entry = node_entry(&self.node, pool, r, self.entries.get(pool), &time);
            if self.entries.get(pool) == Some(&entry) {
                continue;
            }
            let status = json!({ "nodesLayer2Status": { &self.node: entry } });
            if self.apply(pool, status, &self.own).await {
                self.entries.insert(pool.clone(), entry);
            }
        }
        let gone: Vec<String> = self
            .entries
            .keys()
            .filter(|p| !resolved.contains_key(*p))
            .cloned()
            .collect();
        for pool in gone {
            if self.apply(&pool, json!({}), &self.own).await {
                self.entries.remove(&pool);
                self.problems.remove(&pool);
            }
        }
    }
}

/// Runs until the task is dropped; returns at once when the layer-2 edge does not run.
pub async fn run(client: Client, node: String, shared: Arc<Shared>, recorder: Recorder) {
    // The edge starts with the daemon; wait for it briefly.
    let mut view_rx = None;
    for _ in 0..50 {
        view_rx = shared.view().layer2.clone();
        if view_rx.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(view_rx) = view_rx else {
        return;
    };
    let handle = match rtnetlink::new_connection() {
        Ok((conn, handle, _)) => {
            tokio::spawn(conn);
            handle
        }
        Err(e) => {
            warn!("layer-2 status: no netlink socket: {e}");
            return;
        }
    };
    let mut links = match link::watch_links().await {
        Ok(l) => l,
        Err(e) => {
            warn!("layer-2 status: cannot watch the interfaces: {e}");
            return;
        }
    };
    let mut w = Writer {
        eips: Api::all_with(client, &ApiResource::erase::<Eip>(&())),
        recorder,
        own: PatchParams::apply(&format!("berth-speaker-{node}")).force(),
        shared_manager: PatchParams::apply(REPORTER_MANAGER).force(),
        node,
        budget: EventBudget::new(EVENT_BURST, EVENT_EVERY),
        reported: BTreeMap::new(),
        last_condition: BTreeMap::new(),
        entries: BTreeMap::new(),
        problems: BTreeMap::new(),
    };
    let mut before: Option<Layer2View> = None;
    let mut resolved: BTreeMap<String, Resolution> = BTreeMap::new();
    let mut resolved_for: Option<BTreeMap<String, (Interface, IpAddr)>> = None;
    let mut resolved_at = Instant::now();
    loop {
        tokio::time::sleep(LAYER2_INTERVAL).await;
        let view = view_rx.borrow().clone();
        let plan = shared
            .view()
            .desired
            .as_ref()
            .map(|d| d.layer2.clone())
            .unwrap_or_default();
        if let Some(b) = &before {
            w.owner_events(b, &view, &plan).await;
        }
        before = Some(view.clone());
        w.pool_status(&view).await;

        let pools = my_pools(&plan, &w.node);
        let links_changed = links.has_changed().unwrap_or(false);
        if links_changed
            || resolved_for.as_ref() != Some(&pools)
            || resolved_at.elapsed() >= RESOLVE_EVERY
        {
            let facts = links.borrow_and_update().clone();
            resolved.clear();
            for (pool, (spec, vip)) in &pools {
                let r = link::resolve_detailed(&handle, spec, *vip, &facts).await;
                resolved.insert(pool.clone(), r);
            }
            resolved_for = Some(pools);
            resolved_at = Instant::now();
        }
        w.node_entries(&resolved).await;
    }
}
