//! This node's entries in `BgpPeer.status.nodesPeerStatus` and
//! `BgpConf.status.nodesConfStatus`, in OpenELB's shapes, computed from the driver's
//! session snapshots; and, in [`layer2`], what layer 2 reports (owner changes, the pool's
//! condition, this node's interface). Pure; writing them is `kube_status`'s job.

pub mod layer2;

use std::collections::BTreeMap;

use api::Number;
use api::bgpconf::NodeConfStatus;
use api::bgppeer::{MessageCounts, Messages, NodePeerStatus, PeerState, TimersState};
use api::condition::{Condition, VALID};
use bgp::driver::PeerSnapshot;
use bgp::session::State;

use crate::desired::{DesiredPeer, Problem, SpeakerSettings};

/// GoBGP's (OpenELB's) spelling of a session state.
pub fn session_state_name(s: State) -> &'static str {
    match s {
        State::Idle => "IDLE",
        State::Connect => "CONNECT",
        State::Active => "ACTIVE",
        State::OpenSent => "OPENSENT",
        State::OpenConfirm => "OPENCONFIRM",
        State::Established => "ESTABLISHED",
    }
}

fn counts(c: &bgp::driver::MessageCounts) -> MessageCounts {
    MessageCounts {
        open: Some(Number(c.open)),
        update: Some(Number(c.update)),
        notification: Some(Number(c.notification)),
        keepalive: Some(Number(c.keepalive)),
        refresh: Some(Number(c.route_refresh)),
        total: Some(Number(c.total())),
    }
}

/// This node's status of one session, with the state of the BFD session it follows, if
/// any. Uptime is in whole minutes so that the status changes (and is written) at most
/// once a minute while nothing else happens.
pub fn node_peer_status(
    peer: &DesiredPeer,
    snap: &PeerSnapshot,
    bfd: Option<bfd::State>,
) -> NodePeerStatus {
    NodePeerStatus {
        peer_state: PeerState {
            session_state: session_state_name(snap.state).into(),
            neighbor_address: peer.address.to_string(),
            peer_as: peer.peer_as,
            local_as: peer.local_as,
            router_id: snap
                .negotiated
                .as_ref()
                .map(|n| n.peer_id.to_string())
                .unwrap_or_default(),
            messages: Messages {
                received: counts(&snap.received),
                sent: counts(&snap.sent),
            },
        },
        timers_state: TimersState {
            negotiated_hold_time: snap
                .negotiated
                .as_ref()
                .map(|n| Number(u64::from(n.hold_time))),
            uptime: snap.uptime.map(|u| format!("{}m", u.as_secs() / 60)),
            downtime: None,
        },
        bfd_state: bfd.map(|s| s.to_string()),
        conditions: None,
    }
}

/// This node's entry in `BgpConf.status.nodesConfStatus`.
pub fn node_conf_status(settings: &SpeakerSettings) -> NodeConfStatus {
    NodeConfStatus {
        router_id: settings.router_id.to_string(),
        as_number: settings.local_as,
        conditions: None,
    }
}

/// The `Valid` condition of an object on this node: `False` with `skipped` as message when
/// the node skips the object as invalid, `True` otherwise. The transition time stays
/// `previous`'s while the status does not change, so that an unchanged condition is not
/// written again; `now` is the RFC 3339 time used on a transition.
pub fn valid_condition(
    skipped: Option<&str>,
    previous: Option<&Condition>,
    now: &str,
) -> Condition {
    let (status, reason, message) = match skipped {
        Some(m) => ("False", "Invalid", m.to_string()),
        None => ("True", "Valid", String::new()),
    };
    let last_transition_time = previous
        .filter(|p| p.type_ == VALID && p.status == status && !p.last_transition_time.is_empty())
        .map_or_else(|| now.to_string(), |p| p.last_transition_time.clone());
    Condition {
        type_: VALID.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time,
    }
}

/// Why this node skips each object of `kind`, by name: the messages of its problems, joined.
pub fn skipped(problems: &[Problem], kind: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for p in problems.iter().filter(|p| p.kind == kind) {
        out.entry(p.name.clone())
            .and_modify(|m| {
                m.push_str("; ");
                m.push_str(&p.message);
            })
            .or_insert_with(|| p.message.clone());
    }
    out
}

/// This node's status per BgpPeer name, for the sessions that run; `bfd` is the state of
/// each BFD session by neighbour.
pub fn peer_statuses(
    peers: &BTreeMap<std::net::IpAddr, DesiredPeer>,
    snapshots: &[PeerSnapshot],
    bfd: &BTreeMap<std::net::IpAddr, bfd::State>,
) -> BTreeMap<String, NodePeerStatus> {
    snapshots
        .iter()
        .filter_map(|s| {
            let p = peers.get(&s.address)?;
            let b = bfd.get(&s.address).copied();
            Some((p.name.clone(), node_peer_status(p, s, b)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn established_session_in_openelb_shape() {
        let peer = DesiredPeer::example();
        let mut snap = PeerSnapshot::new(peer.address, String::new());
        snap.state = State::Established;
        snap.uptime = Some(Duration::from_secs(185));
        snap.sent.update = 3;
        snap.sent.open = 1;
        let s = node_peer_status(&peer, &snap, None);
        assert_eq!(s.bfd_state, None);
        let json = serde_json::to_value(&s).expect("json");
        assert!(json.get("bfdState").is_none(), "absent without BFD");
        assert_eq!(s.peer_state.session_state, "ESTABLISHED");
        assert_eq!(
            (s.peer_state.peer_as, s.peer_state.local_as),
            (65000, 65001)
        );
        assert_eq!(s.peer_state.messages.sent.update, Some(Number(3)));
        assert_eq!(s.peer_state.messages.sent.total, Some(Number(4)));
        assert_eq!(s.timers_state.uptime.as_deref(), Some("3m"));
        let by_name = peer_statuses(
            &BTreeMap::from([(peer.address, peer.clone())]),
            &[snap],
            &BTreeMap::from([(peer.address, bfd::State::Up)]),
        );
        assert_eq!(by_name["tor"].bfd_state.as_deref(), Some("Up"));
        let json = serde_json::to_value(&by_name["tor"]).expect("json");
        assert_eq!(json["bfdState"], "Up");
        assert!(json.get("conditions").is_none(), "filled by the writer");
    }

    #[test]
    fn skipped_object_gets_valid_false_with_the_message() {
        let problems = vec![
            Problem {
                kind: "BgpPeer".into(),
                name: "bad".into(),
                message: "spec.conf.peerAs: must not be 0".into(),
            },
            Problem {
                kind: "Eip".into(),
                name: "bad".into(),
                message: "other kind".into(),
            },
        ];
        let why = skipped(&problems, "BgpPeer");
        assert_eq!(why.len(), 1);
        let c = valid_condition(
            why.get("bad").map(String::as_str),
            None,
            "2026-01-01T00:00:00Z",
        );
        assert_eq!((c.type_.as_str(), c.status.as_str()), ("Valid", "False"));
        assert_eq!(c.reason, "Invalid");
        assert_eq!(c.message, "spec.conf.peerAs: must not be 0");
        assert_eq!(c.last_transition_time, "2026-01-01T00:00:00Z");
        let json = serde_json::to_value(&c).expect("json");
        assert_eq!(json["type"], "Valid");
        assert_eq!(json["lastTransitionTime"], "2026-01-01T00:00:00Z");

        // Same status later: the transition time is kept, so nothing changes to write.
        let again = valid_condition(
            Some("spec.conf.peerAs: must not be 0"),
            Some(&c),
            "2026-01-01T00:05:00Z",
        );
        assert_eq!(again, c);
        // Fixed: True, with a new transition time and no message.
        let fixed = valid_condition(None, Some(&c), "2026-01-01T00:09:00Z");
        assert_eq!(fixed.status, "True");
        assert_eq!(fixed.reason, "Valid");
        assert!(fixed.message.is_empty());
        assert_eq!(fixed.last_transition_time, "2026-01-01T00:09:00Z");
    }

    #[test]
    fn messages_of_one_object_are_joined() {
        let p = |m: &str| Problem {
            kind: "BgpConf".into(),
            name: "default".into(),
            message: m.into(),
        };
        let why = skipped(&[p("a"), p("b")], "BgpConf");
        assert_eq!(why["default"], "a; b");
    }

    #[test]
    fn old_status_without_conditions_parses() {
        let s: NodePeerStatus = serde_json::from_value(serde_json::json!({
            "peerState": { "sessionState": "ESTABLISHED" },
            "timersState": {}
        }))
        .expect("old shape");
        assert_eq!(s.conditions, None);
        let c: NodeConfStatus =
            serde_json::from_value(serde_json::json!({ "routerId": "10.0.0.1", "as": 65001 }))
                .expect("old shape");
        assert_eq!(c.conditions, None);
    }
}
