//! Kubernetes mode only: writes this node's entries of `BgpPeer.status.nodesPeerStatus`
//! and `BgpConf.status.nodesConfStatus` by server-side apply (one field manager per node,
//! so each speaker owns only its own map key), on change and at most once per interval;
//! and records events when a session goes up or down and when an object is skipped as
//! invalid.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use api::{BgpConf, BgpPeer};
use bgp::session::State;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client};
use serde_json::json;
use tracing::{debug, warn};

use crate::daemon::Shared;
use crate::desired::Problem;
use crate::status::{node_conf_status, peer_statuses};

/// How often statuses are compared and, when changed, written.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(2);

fn reference(kind: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(format!("{}/{}", api::keys::GROUP, api::keys::VERSION)),
        kind: Some(kind.into()),
        name: Some(name.into()),
        ..Default::default()
    }
}

fn apply_body(kind: &str, name: &str, status: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": format!("{}/{}", api::keys::GROUP, api::keys::VERSION),
        "kind": kind,
        "metadata": { "name": name },
        "status": status,
    })
}

/// Runs until the task is dropped.
pub async fn run_status_writer(client: Client, node: String, shared: Arc<Shared>) {
    // Untyped, so that what the server answers never has to parse as our types.
    let peers_api: Api<DynamicObject> =
        Api::all_with(client.clone(), &ApiResource::erase::<BgpPeer>(&()));
    let conf_api: Api<DynamicObject> =
        Api::all_with(client.clone(), &ApiResource::erase::<BgpConf>(&()));
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "berth-speaker".into(),
            instance: Some(node.clone()),
        },
    );
    let params = PatchParams::apply(&format!("berth-speaker-{node}")).force();
    let mut written: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut written_conf: Option<serde_json::Value> = None;
    let mut states: BTreeMap<IpAddr, State> = BTreeMap::new();
    let mut reported: BTreeSet<Problem> = BTreeSet::new();
    loop {
        tokio::time::sleep(STATUS_INTERVAL).await;
        let (peers, snaps, bfd, settings, problems) = {
            let v = shared.view();
            let bfd: BTreeMap<IpAddr, bfd::State> = v
                .bfd
                .as_ref()
                .map(|b| {
                    b.statuses()
                        .into_iter()
                        .map(|s| (s.peer, s.state))
                        .collect()
                })
                .unwrap_or_default();
            (
                v.running.peers.clone(),
                v.speaker.as_ref().map(|s| s.peers()).unwrap_or_default(),
                bfd,
                v.running.settings.clone(),
                v.desired
                    .as_ref()
                    .map(|d| d.problems.clone())
                    .unwrap_or_default(),
            )
        };

        for s in &snaps {
            let was = states.insert(s.address, s.state);
            let Some(p) = peers.get(&s.address) else {
                continue;
            };
            let up = s.state == State::Established;
            let was_up = was == Some(State::Established);
            if up == was_up || (was.is_none() && !up) {
                continue;
            }
            let event = Event {
                type_: if up {
                    EventType::Normal
                } else {
                    EventType::Warning
                },
                reason: if up {
                    "SessionEstablished"
                } else {
                    "SessionDown"
                }
                .into(),
                note: Some(format!(
                    "node {node}: BGP session with {} (AS {}) is {}",
                    p.address,
                    p.peer_as,
                    if up { "established" } else { "down" }
                )),
                action: "BgpSession".into(),
                secondary: None,
            };
            if let Err(e) = recorder
                .publish(&event, &reference("BgpPeer", &p.name))
                .await
            {
                debug!("event: {e}");
            }
        }

        for p in &problems {
            if reported.contains(p) || !matches!(p.kind.as_str(), "BgpPeer" | "BgpConf" | "Eip") {
                continue;
            }
            let event = Event {
                type_: EventType::Warning,
                reason: "Invalid".into(),
                note: Some(format!("node {node} skips it: {}", p.message)),
                action: "Validate".into(),
                secondary: None,
            };
            if recorder
                .publish(&event, &reference(&p.kind, &p.name))
                .await
                .is_ok()
            {
                reported.insert(p.clone());
            }
        }
        reported.retain(|p| problems.contains(p));

        let now: BTreeMap<String, serde_json::Value> = peer_statuses(&peers, &snaps, &bfd)
            .into_iter()
            .filter_map(|(name, st)| Some((name, serde_json::to_value(st).ok()?)))
            .collect();
        for (name, st) in &now {
            if written.get(name) == Some(st) {
                continue;
            }
            let body = apply_body("BgpPeer", name, json!({ "nodesPeerStatus": { &node: st } }));
            match peers_api
                .patch_status(name, &params, &Patch::Apply(&body))
                .await
            {
                Ok(_) => {
                    written.insert(name.clone(), st.clone());
                }
                Err(e) => warn!(bgppeer = %name, "writing status: {e}"),
            }
        }
        let gone: Vec<String> = written
            .keys()
            .filter(|n| !now.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            // Applying without our key gives it up: server-side apply removes it.
            let body = apply_body("BgpPeer", &name, json!({}));
            match peers_api
                .patch_status(&name, &params, &Patch::Apply(&body))
                .await
            {
                Ok(_) => {
                    written.remove(&name);
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    written.remove(&name);
                }
                Err(e) => warn!(bgppeer = %name, "clearing status: {e}"),
            }
        }

        let conf = settings
            .as_ref()
            .and_then(|s| serde_json::to_value(node_conf_status(s)).ok());
        if conf != written_conf {
            let status = match &conf {
                Some(c) => json!({ "nodesConfStatus": { &node: c } }),
                None => json!({}),
            };
            let body = apply_body("BgpConf", api::keys::BGP_CONF_NAME, status);
            match conf_api
                .patch_status(api::keys::BGP_CONF_NAME, &params, &Patch::Apply(&body))
                .await
            {
                Ok(_) => written_conf = conf,
                Err(e) => warn!("writing BgpConf status: {e}"),
            }
        }
    }
}
