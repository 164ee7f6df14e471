//! What the speaker shows: the JSON views of the read-only admin API (`/api/v1/peers`,
//! `/api/v1/routes`, `/api/v1/vips`, `/api/v1/status`, `/api/v1/layer2`), which `berthctl` reads back, and
//! the Prometheus text exposition. Built from one `View` of the daemon's state.

use std::fmt::Write as _;
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

    /// The Prometheus text exposition.
    pub fn metrics(&self) -> String {
        let mut m = String::new();
        let peers = self.speaker.as_ref().map(|s| s.peers()).unwrap_or_default();
        let _ = writeln!(
            m,
            "# HELP berth_speaker_session_up Whether the BGP session is Established.\n# TYPE berth_speaker_session_up gauge"
        );
        for p in &peers {
            let up = u8::from(p.state == bgp::session::State::Established);
            let _ = writeln!(m, "berth_speaker_session_up{{peer=\"{}\"}} {up}", p.address);
        }
        for (dir, help) in [("sent", "sent to"), ("received", "received from")] {
            let _ = writeln!(
                m,
                "# HELP berth_speaker_messages_{dir}_total BGP messages {help} the peer, by type.\n# TYPE berth_speaker_messages_{dir}_total counter"
            );
            for p in &peers {
                let c = if dir == "sent" { p.sent } else { p.received };
                for (t, n) in [
                    ("open", c.open),
                    ("update", c.update),
                    ("notification", c.notification),
                    ("keepalive", c.keepalive),
                    ("route_refresh", c.route_refresh),
                ] {
                    let _ = writeln!(
                        m,
                        "berth_speaker_messages_{dir}_total{{peer=\"{}\",type=\"{t}\"}} {n}",
                        p.address
                    );
                }
            }
        }
        let _ = writeln!(
            m,
            "# HELP berth_speaker_updates_sent_total UPDATE messages sent to the peer.\n# TYPE berth_speaker_updates_sent_total counter"
        );
        for p in &peers {
            let _ = writeln!(
                m,
                "berth_speaker_updates_sent_total{{peer=\"{}\"}} {}",
                p.address, p.sent.update
            );
        }
        let _ = writeln!(
            m,
            "# HELP berth_speaker_prefixes_announced Prefixes announced to the peer, by family.\n# TYPE berth_speaker_prefixes_announced gauge"
        );
        for (peer, routes) in &self.running.routes {
            let v4 = routes.keys().filter(|v| v.is_ipv4()).count();
            let v6 = routes.len() - v4;
            let _ = writeln!(
                m,
                "berth_speaker_prefixes_announced{{peer=\"{peer}\",family=\"ipv4\"}} {v4}"
            );
            let _ = writeln!(
                m,
                "berth_speaker_prefixes_announced{{peer=\"{peer}\",family=\"ipv6\"}} {v6}"
            );
        }
        received_metrics(&mut m, &peers);
        self.bfd_metrics(&mut m);
        let vips = self.desired.as_ref().map_or(0, |d| d.announce.len());
        let problems = self.desired.as_ref().map_or(0, |d| d.problems.len());
        let _ = writeln!(
            m,
            "# HELP berth_speaker_vips_announced VIPs this node announces.\n# TYPE berth_speaker_vips_announced gauge\nberth_speaker_vips_announced {vips}"
        );
        let _ = writeln!(
            m,
            "# HELP berth_speaker_problems Objects skipped because they are invalid.\n# TYPE berth_speaker_problems gauge\nberth_speaker_problems {problems}"
        );
        let _ = writeln!(
            m,
            "# HELP berth_speaker_syncs_total Syncs of the desired state onto BGP.\n# TYPE berth_speaker_syncs_total counter\nberth_speaker_syncs_total {}",
            self.syncs
        );
        let _ = writeln!(
            m,
            "# HELP berth_speaker_sync_duration_seconds Duration of the last sync.\n# TYPE berth_speaker_sync_duration_seconds gauge\nberth_speaker_sync_duration_seconds {}",
            self.last_sync.as_secs_f64()
        );
        let _ = writeln!(
            m,
            "# HELP berth_speaker_sync_duration_seconds_total Time spent syncing.\n# TYPE berth_speaker_sync_duration_seconds_total counter\nberth_speaker_sync_duration_seconds_total {}",
            self.sync_total.as_secs_f64()
        );
        let _ = writeln!(
            m,
            "# HELP berth_speaker_route_changes_total Routes announced or withdrawn by syncs.\n# TYPE berth_speaker_route_changes_total counter\nberth_speaker_route_changes_total {}",
            self.route_changes
        );
        let _ = writeln!(
            m,
            "# HELP berth_speaker_ready First complete sync done.\n# TYPE berth_speaker_ready gauge\nberth_speaker_ready {}",
            u8::from(self.ready)
        );
        if self.layer2.is_some() {
            let l2 = self.layer2();
            let _ = writeln!(
                m,
                "# HELP berth_speaker_layer2_owner Whether this node answers ARP/NDP for the address.\n# TYPE berth_speaker_layer2_owner gauge"
            );
            for a in &l2.addresses {
                if let Some(ip) = a.address {
                    let _ = writeln!(
                        m,
                        "berth_speaker_layer2_owner{{address=\"{ip}\"}} {}",
                        u8::from(a.here)
                    );
                }
            }
            let _ = writeln!(
                m,
                "# HELP berth_speaker_layer2_live_members Layer-2 members alive as this node hears them.\n# TYPE berth_speaker_layer2_live_members gauge\nberth_speaker_layer2_live_members {}",
                l2.live.len()
            );
        }
        m
    }
}

/// The label of a family received from a peer (only IPv4 and IPv6 unicast are).
fn family_label(f: bgp::wire::Family) -> String {
    match f {
        bgp::wire::Family::IPV4_UNICAST => "ipv4".into(),
        bgp::wire::Family::IPV6_UNICAST => "ipv6".into(),
        other => format!("{}/{}", other.afi.0, other.safi.0),
    }
}

/// Received routes: NLRI counters for every peer, the current table size only for peers
/// that track it (a max-prefix limit); absent, not 0, for the others.
fn received_metrics(m: &mut String, peers: &[PeerSnapshot]) {
    for kind in ["announced", "withdrawn"] {
        let _ = writeln!(
            m,
            "# HELP berth_speaker_nlri_{kind}_total Prefixes the peer {kind} in UPDATEs, by family.\n# TYPE berth_speaker_nlri_{kind}_total counter"
        );
        for p in peers {
            for (family, c) in &p.nlri_received {
                let n = if kind == "announced" {
                    c.announced
                } else {
                    c.withdrawn
                };
                let _ = writeln!(
                    m,
                    "berth_speaker_nlri_{kind}_total{{peer=\"{}\",family=\"{}\"}} {n}",
                    p.address,
                    family_label(*family)
                );
            }
        }
    }
    let _ = writeln!(
        m,
        "# HELP berth_speaker_prefixes_received Prefixes the peer has at this speaker, by family; only for peers with a max-prefix limit (others are not tracked).\n# TYPE berth_speaker_prefixes_received gauge"
    );
    for p in peers {
        for (family, n) in p.prefixes_received.iter().flatten() {
            let _ = writeln!(
                m,
                "berth_speaker_prefixes_received{{peer=\"{}\",family=\"{}\"}} {n}",
                p.address,
                family_label(*family)
            );
        }
    }
}

impl View {
    /// BFD: session Up per neighbour, datagrams dropped by reason.
    fn bfd_metrics(&self, m: &mut String) {
        let Some(bfd) = &self.bfd else {
            return;
        };
        let _ = writeln!(
            m,
            "# HELP berth_speaker_bfd_session_up Whether the BFD session to the peer is Up.\n# TYPE berth_speaker_bfd_session_up gauge"
        );
        for s in bfd.statuses() {
            let up = u8::from(s.state == bfd::State::Up);
            let _ = writeln!(
                m,
                "berth_speaker_bfd_session_up{{peer=\"{}\"}} {up}",
                s.peer
            );
        }
        let d = bfd.drops();
        let _ = writeln!(
            m,
            "# HELP berth_speaker_bfd_packets_dropped_total BFD packets dropped before reaching a session, by reason.\n# TYPE berth_speaker_bfd_packets_dropped_total counter"
        );
        for (reason, n) in [
            ("truncated", d.truncated),
            ("version", d.version),
            ("length", d.length),
            ("detect_mult_zero", d.detect_mult_zero),
            ("multipoint", d.multipoint),
            ("my_discriminator_zero", d.my_discriminator_zero),
            ("your_discriminator_zero", d.your_discriminator_zero),
            ("authentication", d.authentication),
            ("ttl", d.ttl),
            ("no_session", d.no_session),
            ("backlog", d.backlog),
        ] {
            let _ = writeln!(
                m,
                "berth_speaker_bfd_packets_dropped_total{{reason=\"{reason}\"}} {n}"
            );
        }
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
        "/metrics" => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: view.metrics(),
        },
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
