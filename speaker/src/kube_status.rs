//! Kubernetes mode only: writes this node's entries of `BgpPeer.status.nodesPeerStatus`
//! and `BgpConf.status.nodesConfStatus` by server-side apply (one field manager per node,
//! so each speaker owns only its own map key), on change and at most once per interval,
//! each with a `Valid` condition that is `False` with the validation message when this node
//! skips the object as invalid; and records events when a session goes up or down and when
//! an object is skipped as invalid. Layer 2's status (owner changes, layer2 Eips) is
//! [`layer2`]'s, started from here.

pub mod layer2;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use api::bgpconf::NodeConfStatus;
use api::bgppeer::NodePeerStatus;
use api::{BgpConf, BgpPeer, Condition};
use bgp::session::State;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client};
use serde_json::json;
use tracing::{debug, warn};

use crate::daemon::Shared;
use crate::desired::Problem;
use crate::status::{node_conf_status, peer_statuses, skipped, valid_condition};

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

/// Kubernetes' spelling of the current time, for a condition's transition time.
fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The `Valid` condition of `status` as last computed, if any.
fn valid_of(conditions: Option<&Vec<Condition>>) -> Option<&Condition> {
    conditions?
        .iter()
        .find(|c| c.type_ == api::condition::VALID)
}

/// This node's entry per BgpPeer name: the running sessions' statuses marked `Valid=True`,
/// and an entry marked `Valid=False` with the message for each BgpPeer skipped as invalid.
/// `previous` is what was computed last time (for the transition times).
pub fn peer_entries(
    running: BTreeMap<String, NodePeerStatus>,
    invalid: &BTreeMap<String, String>,
    previous: &BTreeMap<String, NodePeerStatus>,
    now: &str,
) -> BTreeMap<String, NodePeerStatus> {
    let mut out = running;
    for (name, st) in &mut out {
        let prev = valid_of(previous.get(name).and_then(|p| p.conditions.as_ref()));
        st.conditions = Some(vec![valid_condition(None, prev, now)]);
    }
    for (name, message) in invalid {
        if out.contains_key(name) {
            continue;
        }
        let prev = valid_of(previous.get(name).and_then(|p| p.conditions.as_ref()));
        out.insert(
            name.clone(),
            NodePeerStatus {
                conditions: Some(vec![valid_condition(Some(message), prev, now)]),
                ..Default::default()
            },
        );
    }
    out
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
        client.clone(),
        Reporter {
            controller: "berth-speaker".into(),
            instance: Some(node.clone()),
        },
    );
    tokio::spawn(layer2::run(
        client.clone(),
        node.clone(),
        shared.clone(),
        recorder.clone(),
    ));
    let params = PatchParams::apply(&format!("berth-speaker-{node}")).force();
    let mut written: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut written_conf: Option<serde_json::Value> = None;
    let mut last_peers: BTreeMap<String, NodePeerStatus> = BTreeMap::new();
    let mut last_conf: Option<NodeConfStatus> = None;
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

        let time = now_rfc3339();
        let entries = peer_entries(
            peer_statuses(&peers, &snaps, &bfd),
            &skipped(&problems, "BgpPeer"),
            &last_peers,
            &time,
        );
        last_peers = entries.clone();
        let now: BTreeMap<String, serde_json::Value> = entries
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

        let prev_conf = valid_of(last_conf.as_ref().and_then(|c| c.conditions.as_ref()));
        let conf_invalid = skipped(&problems, "BgpConf");
        let conf_status = match &settings {
            Some(s) => Some(NodeConfStatus {
                conditions: Some(vec![valid_condition(None, prev_conf, &time)]),
                ..node_conf_status(s)
            }),
            None => conf_invalid
                .get(api::keys::BGP_CONF_NAME)
                .map(|m| NodeConfStatus {
                    conditions: Some(vec![valid_condition(Some(m), prev_conf, &time)]),
                    ..Default::default()
                }),
        };
        last_conf = conf_status.clone();
        let conf = conf_status.and_then(|c| serde_json::to_value(c).ok());
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
                // No BgpConf `default` (itself a reported problem): nothing to write into.
                Err(kube::Error::Api(e)) if e.code == 404 => written_conf = conf,
                Err(e) => warn!("writing BgpConf status: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_peers_are_valid_and_skipped_ones_carry_the_message() {
        let running = BTreeMap::from([("tor".to_string(), NodePeerStatus::default())]);
        let invalid = BTreeMap::from([
            (
                "bad".to_string(),
                "spec.conf.neighborAddress: not an IP".to_string(),
            ),
            ("tor".to_string(), "ignored: the session runs".to_string()),
        ]);
        let t0 = "2026-01-01T00:00:00Z";
        let e = peer_entries(running.clone(), &invalid, &BTreeMap::new(), t0);
        let tor = valid_of(e["tor"].conditions.as_ref()).expect("tor");
        assert_eq!(tor.status, "True");
        let bad = valid_of(e["bad"].conditions.as_ref()).expect("bad");
        assert_eq!(bad.status, "False");
        assert_eq!(bad.message, "spec.conf.neighborAddress: not an IP");
        let json = serde_json::to_value(&e["bad"]).expect("json");
        assert_eq!(json["conditions"][0]["type"], "Valid");
        assert_eq!(json["conditions"][0]["status"], "False");

        // Nothing changed: the same entries (same transition times), so nothing is written.
        let again = peer_entries(running, &invalid, &e, "2026-01-01T00:01:00Z");
        assert_eq!(again, e);
    }
}
