//! What the speaker shows: the JSON views of the read-only admin API (`/api/v1/peers`,
//! `/api/v1/routes`, `/api/v1/vips`, `/api/v1/status`, `/api/v1/layer2`), which `berthctl` reads back, and
//! the Prometheus text exposition. Built from one `View` of the daemon's state.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bgp::driver::{PeerSnapshot, Speaker};
use serde::{Deserialize, Serialize};

use crate::desired::{Desired, Problem, SpeakerSettings, VipReport};
use crate::diff::Running;
use serving::Response;

/// The daemon's state as the HTTP surfaces see it.
#[derive(Default)]
pub struct View {
    /// This node.
    pub node: String,
    /// The last desired state computed.
    pub desired: Option<Desired>,
    /// What the driver was told.
    pub running: Running,
    /// The driver (for live session snapshots).
    pub speaker: Option<Speaker>,
    /// The BFD service, once a BgpPeer asked for BFD (live session states, drops).
    pub bfd: Option<Arc<bfd::Bfd>>,
    /// The first complete sync is done.
    pub ready: bool,
    /// Syncs done.
    pub syncs: u64,
    /// Duration of the last sync.
    pub last_sync: Duration,
    /// Sum of sync durations.
    pub sync_total: Duration,
    /// Routes announced plus withdrawn over all syncs.
    pub route_changes: u64,
    /// The last manifest error of the state source, if it is broken now.
    pub source_error: Option<String>,
    /// The layer-2 edge's live view (owners, standbys, members), once it runs.
    pub layer2: Option<tokio::sync::watch::Receiver<crate::layer2::edge::Layer2View>>,
}

/// One session, for `berthctl peers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerView {
    /// The BgpPeer.
    pub name: String,
    /// Neighbour address.
    pub address: IpAddr,
    /// Neighbour AS.
    pub peer_as: u32,
    /// Our AS.
    pub local_as: u32,
    /// FSM state.
    pub state: String,
    /// Seconds since Established.
    pub uptime_secs: Option<u64>,
    /// Times the session left Established.
    pub flaps: u64,
    /// Negotiated hold time.
    pub hold_time: Option<u16>,
    /// Prefixes the neighbour has from us.
    pub prefixes_advertised: usize,
    /// Paths the neighbour has at us now, known only when the BgpPeer has a `maxPrefix`
    /// limit (which needs an exact count); `null` otherwise: the speaker then keeps nothing
    /// per received path and does not know the current table size (see `nlri_announced`).
    pub prefixes_received: Option<u64>,
    /// NLRI the neighbour announced, all families; monotonic (a re-announcement counts
    /// again), in every mode.
    #[serde(default)]
    pub nlri_announced: u64,
    /// NLRI the neighbour withdrew, all families; monotonic.
    #[serde(default)]
    pub nlri_withdrawn: u64,
    /// Messages sent, by type.
    pub sent: MessageView,
    /// Messages received, by type.
    pub received: MessageView,
    /// The last NOTIFICATION sent or received.
    pub last_error: Option<String>,
    /// Description.
    pub description: String,
    /// State of the BFD session the BGP session follows (`Up`, `Down`, `Init`,
    /// `AdminDown`); `None` without BFD.
    #[serde(default)]
    pub bfd: Option<String>,
}

/// Message counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// OPEN.
    pub open: u64,
    /// UPDATE.
    pub update: u64,
    /// NOTIFICATION.
    pub notification: u64,
    /// KEEPALIVE.
    pub keepalive: u64,
    /// ROUTE-REFRESH.
    pub route_refresh: u64,
}

impl From<bgp::driver::MessageCounts> for MessageView {
    fn from(c: bgp::driver::MessageCounts) -> Self {
        Self {
            open: c.open,
            update: c.update,
            notification: c.notification,
            keepalive: c.keepalive,
            route_refresh: c.route_refresh,
        }
    }
}

/// One announced route, for `berthctl routes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteView {
    /// The session.
    pub peer: IpAddr,
    /// The prefix (`/32` or `/128`).
    pub prefix: String,
    /// MED.
    pub med: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// Communities, `a:b`.
    pub communities: Vec<String>,
    /// Large communities, `a:b:c`.
    pub large_communities: Vec<String>,
}

/// The speaker as a whole, for `berthctl status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    /// This node.
    pub node: String,
    /// First complete sync done.
    pub ready: bool,
    /// Syncs done.
    pub syncs: u64,
    /// Last sync duration, microseconds.
    pub last_sync_micros: u64,
    /// Speaker-wide settings in force.
    pub settings: Option<SpeakerSettings>,
    /// VIPs announced.
    pub vips_announced: usize,
    /// Objects skipped and why.
    pub problems: Vec<Problem>,
    /// The state source's current error (e.g. a manifest that does not parse).
    pub source_error: Option<String>,
}

fn state_name(s: bgp::session::State) -> String {
    format!("{s:?}")
}

/// The state name of each BFD session, by neighbour.
fn bfd_states(view: &View) -> std::collections::BTreeMap<IpAddr, String> {
    view.bfd
        .as_ref()
        .map(|b| {
            b.statuses()
                .into_iter()
                .map(|s| (s.peer, s.state.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn peer_view(
    view: &View,
    snap: &PeerSnapshot,
    bfd: &std::collections::BTreeMap<IpAddr, String>,
) -> PeerView {
    let desired = view.running.peers.get(&snap.address);
    let error = snap
        .last_error_received
        .as_ref()
        .map(|n| format!("received {:?}", n.code))
        .or_else(|| {
            snap.last_error_sent
                .as_ref()
                .map(|n| format!("sent {:?}", n.code))
        });
    let nlri = snap.nlri_received_total();
    PeerView {
        name: desired.map(|d| d.name.clone()).unwrap_or_default(),
        address: snap.address,
        peer_as: desired.map_or(0, |d| d.peer_as),
        local_as: desired.map_or(0, |d| d.local_as),
        state: state_name(snap.state),
        uptime_secs: snap.uptime.map(|u| u.as_secs()),
        flaps: snap.flaps,
        hold_time: snap.negotiated.as_ref().map(|n| n.hold_time),
        prefixes_advertised: snap.prefixes_advertised,
        prefixes_received: snap.prefixes_received_total(),
        nlri_announced: nlri.announced,
        nlri_withdrawn: nlri.withdrawn,
        sent: snap.sent.into(),
        received: snap.received.into(),
        last_error: error,
        description: desired.map(|d| d.description.clone()).unwrap_or_default(),
        bfd: bfd.get(&snap.address).cloned(),
    }
}

impl View {
    /// The sessions, live.
    pub fn peers(&self) -> Vec<PeerView> {
        let bfd = bfd_states(self);
        self.speaker
            .as_ref()
            .map(|s| s.peers().iter().map(|p| peer_view(self, p, &bfd)).collect())
            .unwrap_or_default()
    }

    /// The routes announced, per session.
    pub fn routes(&self) -> Vec<RouteView> {
        let mut out = Vec::new();
        for (peer, routes) in &self.running.routes {
            for (vip, attrs) in routes {
                let len = if vip.is_ipv4() { 32 } else { 128 };
                out.push(RouteView {
                    peer: *peer,
                    prefix: format!("{vip}/{len}"),
                    med: attrs.med,
                    local_pref: attrs.local_pref,
                    communities: attrs
                        .communities
                        .iter()
                        .map(|c| format!("{}:{}", c >> 16, c & 0xFFFF))
                        .collect(),
                    large_communities: attrs
                        .large_communities
                        .iter()
                        .map(|(a, b, c)| format!("{a}:{b}:{c}"))
                        .collect(),
                });
            }
        }
        out
    }

    /// Every load-balancer address and why it is or is not announced.
    pub fn vips(&self) -> Vec<VipReport> {
        self.desired
            .as_ref()
            .map(|d| d.vips.clone())
            .unwrap_or_default()
    }

    /// The summary.
    pub fn status(&self) -> StatusView {
        StatusView {
            node: self.node.clone(),
            ready: self.ready,
            syncs: self.syncs,
            last_sync_micros: u64::try_from(self.last_sync.as_micros()).unwrap_or(u64::MAX),
            settings: self.running.settings.clone(),
            vips_announced: self.desired.as_ref().map_or(0, |d| d.announce.len()),
            problems: self
                .desired
                .as_ref()
                .map(|d| d.problems.clone())
                .unwrap_or_default(),
            source_error: self.source_error.clone(),
        }
    }

    /// The layer-2 view (empty when layer 2 does not run).
    pub fn layer2(&self) -> crate::layer2::edge::Layer2View {
        self.layer2
            .as_ref()
            .map(|v| v.borrow().clone())
            .unwrap_or_default()
    }

    /// The Prometheus page (OpenMetrics text; see [`crate::metrics`]).
    pub fn metrics(&self) -> String {
        crate::metrics::render(self)
    }
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_string_pretty(value) {
        Ok(body) => Response::json(body + "\n"),
        Err(e) => Response::error(500, format!("{e}\n")),
    }
}

/// The admin API's routes (also serves health).
pub fn admin_route(view: &View, path: &str) -> Response {
    match path {
        "/api/v1/peers" => json(&view.peers()),
        "/api/v1/routes" => json(&view.routes()),
        "/api/v1/vips" => json(&view.vips()),
        "/api/v1/status" => json(&view.status()),
        "/api/v1/layer2" => json(&view.layer2()),
        _ => health_route(view, path),
    }
}

/// The metrics listener's routes: `/metrics`, `/healthz`, `/readyz`.
pub fn health_route(view: &View, path: &str) -> Response {
    match path {
        "/metrics" => Response::metrics(view.metrics()),
        "/healthz" => Response::text("ok\n"),
        // Skipped manifests do not make the node unready (the rest is served), but say so.
        "/readyz" if view.ready => match &view.source_error {
            Some(e) => Response::text(format!("ready\nskipped: {e}\n")),
            None => Response::text("ready\n"),
        },
        "/readyz" => Response::error(503, "not synced yet\n"),
        _ => Response::error(404, "not found\n"),
    }
}
