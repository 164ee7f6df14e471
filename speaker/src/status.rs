//! This node's entries in `BgpPeer.status.nodesPeerStatus` and
//! `BgpConf.status.nodesConfStatus`, in OpenELB's shapes, computed from the driver's
//! session snapshots. Pure; writing them is `kube_status`'s job.

use std::collections::BTreeMap;

use api::Number;
use api::bgpconf::NodeConfStatus;
use api::bgppeer::{MessageCounts, Messages, NodePeerStatus, PeerState, TimersState};
use bgp::driver::PeerSnapshot;
use bgp::session::State;

use crate::desired::{DesiredPeer, SpeakerSettings};

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
    }
}

/// This node's entry in `BgpConf.status.nodesConfStatus`.
pub fn node_conf_status(settings: &SpeakerSettings) -> NodeConfStatus {
    NodeConfStatus {
        router_id: settings.router_id.to_string(),
        as_number: settings.local_as,
    }
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
    use std::collections::BTreeSet;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    #[test]
    fn established_session_in_openelb_shape() {
        let peer = DesiredPeer {
            name: "tor".into(),
            description: String::new(),
            address: "10.0.0.254".parse().expect("ip"),
            port: None,
            peer_as: 65000,
            local_as: 65001,
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            hold_time: None,
            keepalive: None,
            connect_retry: None,
            passive: false,
            multihop_ttl: None,
            source_address: None,
            md5_password: None,
            families: BTreeSet::new(),
            max_prefix: None,
            graceful_restart: None,
            next_hop_v4: None,
            next_hop_v6: None,
            bfd: None,
        };
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
    }
}
