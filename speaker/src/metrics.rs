//! The speaker's Prometheus page: every figure is read from a [`View`] at scrape time (the
//! sessions' counters, what was announced, the BFD and layer-2 state) and encoded by
//! `prometheus-client` as OpenMetrics text. It reads; it must not decide or change anything.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::admin::View;

/// A sample's labels, in order.
type Labels = Vec<(&'static str, String)>;

/// One scrape's page: families are added with their samples, then encoded.
#[derive(Default)]
struct Page {
    registry: Registry,
}

impl Page {
    fn gauge(&mut self, name: &str, help: &str, samples: impl IntoIterator<Item = (Labels, i64)>) {
        let family = Family::<Labels, Gauge>::default();
        for (labels, value) in samples {
            family.get_or_create(&labels).set(value);
        }
        self.registry.register(name, help, family);
    }

    fn gauge_seconds(&mut self, name: &str, help: &str, value: f64) {
        let gauge = Gauge::<f64, AtomicU64>::default();
        gauge.set(value);
        self.registry.register(name, help, gauge);
    }

    /// A counter family; `name` without the `_total` the encoding adds.
    fn counter(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels, u64)>,
    ) {
        let family = Family::<Labels, Counter>::default();
        for (labels, value) in samples {
            family.get_or_create(&labels).inc_by(value);
        }
        self.registry.register(name, help, family);
    }

    fn counter_seconds(&mut self, name: &str, help: &str, value: f64) {
        let counter = Counter::<f64, AtomicU64>::default();
        counter.inc_by(value);
        self.registry.register(name, help, counter);
    }

    fn text(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The label of a family received from a peer (only IPv4 and IPv6 unicast are).
fn family_label(f: bgp::wire::Family) -> String {
    match f {
        bgp::wire::Family::IPV4_UNICAST => "ipv4".into(),
        bgp::wire::Family::IPV6_UNICAST => "ipv6".into(),
        other => format!("{}/{}", other.afi.0, other.safi.0),
    }
}

/// The page for `view`.
pub fn render(view: &View) -> String {
    let mut page = Page::default();
    let peers = view.speaker.as_ref().map(|s| s.peers()).unwrap_or_default();
    let peer = |p: &bgp::driver::PeerSnapshot| vec![("peer", p.address.to_string())];
    page.gauge(
        "berth_speaker_session_up",
        "Whether the BGP session is Established",
        peers.iter().map(|p| {
            (
                peer(p),
                i64::from(p.state == bgp::session::State::Established),
            )
        }),
    );
    for (dir, help) in [
        ("sent", "BGP messages sent to the peer, by type"),
        ("received", "BGP messages received from the peer, by type"),
    ] {
        let samples = peers.iter().flat_map(|p| {
            let c = if dir == "sent" { p.sent } else { p.received };
            [
                ("open", c.open),
                ("update", c.update),
                ("notification", c.notification),
                ("keepalive", c.keepalive),
                ("route_refresh", c.route_refresh),
            ]
            .map(|(t, n)| {
                let mut labels = peer(p);
                labels.push(("type", t.to_string()));
                (labels, n)
            })
        });
        page.counter(&format!("berth_speaker_messages_{dir}"), help, samples);
    }
    page.counter(
        "berth_speaker_updates_sent",
        "UPDATE messages sent to the peer",
        peers.iter().map(|p| (peer(p), p.sent.update)),
    );
    page.gauge(
        "berth_speaker_prefixes_announced",
        "Prefixes announced to the peer, by family",
        view.running.routes.iter().flat_map(|(address, routes)| {
            let v4 = routes.keys().filter(|v| v.is_ipv4()).count();
            let v6 = routes.len() - v4;
            [("ipv4", v4), ("ipv6", v6)].map(|(family, n)| {
                (
                    vec![
                        ("peer", address.to_string()),
                        ("family", family.to_string()),
                    ],
                    count(n),
                )
            })
        }),
    );
    for kind in ["announced", "withdrawn"] {
        page.counter(
            &format!("berth_speaker_nlri_{kind}"),
            &format!("Prefixes the peer {kind} in UPDATEs, by family"),
            peers.iter().flat_map(|p| {
                p.nlri_received.iter().map(move |(family, c)| {
                    let n = if kind == "announced" {
                        c.announced
                    } else {
                        c.withdrawn
                    };
                    (
                        vec![
                            ("peer", p.address.to_string()),
                            ("family", family_label(*family)),
                        ],
                        n,
                    )
                })
            }),
        );
    }
    page.gauge(
        "berth_speaker_prefixes_received",
        "Prefixes the peer has at this speaker, by family; only for peers with a max-prefix limit (others are not tracked)",
        peers.iter().flat_map(|p| {
            p.prefixes_received.iter().flatten().map(move |(family, n)| {
                (
                    vec![
                        ("peer", p.address.to_string()),
                        ("family", family_label(*family)),
                    ],
                    i64::try_from(*n).unwrap_or(i64::MAX),
                )
            })
        }),
    );
    if let Some(bfd) = &view.bfd {
        page.gauge(
            "berth_speaker_bfd_session_up",
            "Whether the BFD session to the peer is Up",
            bfd.statuses().into_iter().map(|s| {
                (
                    vec![("peer", s.peer.to_string())],
                    i64::from(s.state == bfd::State::Up),
                )
            }),
        );
        let d = bfd.drops();
        page.counter(
            "berth_speaker_bfd_packets_dropped",
            "BFD packets dropped before reaching a session, by reason",
            [
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
            ]
            .map(|(reason, n)| (vec![("reason", reason.to_string())], n)),
        );
    }
    let scalar = |n: i64| [(Labels::new(), n)];
    page.gauge(
        "berth_speaker_vips_announced",
        "VIPs this node announces",
        scalar(count(view.desired.as_ref().map_or(0, |d| d.announce.len()))),
    );
    page.gauge(
        "berth_speaker_problems",
        "Objects skipped because they are invalid",
        scalar(count(view.desired.as_ref().map_or(0, |d| d.problems.len()))),
    );
    page.counter(
        "berth_speaker_syncs",
        "Syncs of the desired state onto BGP",
        [(Labels::new(), view.syncs)],
    );
    page.gauge_seconds(
        "berth_speaker_last_sync_duration_seconds",
        "Duration of the last sync",
        view.last_sync.as_secs_f64(),
    );
    page.counter_seconds(
        "berth_speaker_sync_duration_seconds",
        "Time spent syncing",
        view.sync_total.as_secs_f64(),
    );
    page.counter(
        "berth_speaker_route_changes",
        "Routes announced or withdrawn by syncs",
        [(Labels::new(), view.route_changes)],
    );
    page.gauge(
        "berth_speaker_ready",
        "First complete sync done",
        scalar(i64::from(view.ready)),
    );
    if view.layer2.is_some() {
        let l2 = view.layer2();
        page.gauge(
            "berth_speaker_layer2_owner",
            "Whether this node answers ARP/NDP for the address",
            l2.addresses.iter().filter_map(|a| {
                a.address
                    .map(|ip| (vec![("address", ip.to_string())], i64::from(a.here)))
            }),
        );
        page.gauge(
            "berth_speaker_layer2_live_members",
            "Layer-2 members alive as this node hears them",
            scalar(count(l2.live.len())),
        );
        page.gauge(
            "berth_speaker_layer2_problems",
            "Layer-2 problems on this node (an interface missing or one of several, a socket): berthctl layer2 lists them",
            scalar(count(l2.problems.len())),
        );
    }
    page.text()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OpenMetrics page names each family once (a gauge `x` beside a counter `x_total`
    /// is two families named `x`, which scrapers refuse) and ends with `# EOF`.
    #[test]
    fn a_page_names_each_family_once_and_ends() {
        let view = View {
            syncs: 3,
            ready: true,
            ..View::default()
        };
        let page = render(&view);
        let mut names: Vec<&str> = page
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let total = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), total, "{page}");
        assert!(page.ends_with("# EOF\n"), "{page}");
        assert!(page.contains("berth_speaker_syncs_total 3\n"), "{page}");
        assert!(page.contains("berth_speaker_ready 1\n"), "{page}");
        assert!(
            page.contains("# TYPE berth_speaker_sync_duration_seconds counter\n"),
            "{page}"
        );
    }
}
