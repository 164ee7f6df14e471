//! What the admin API and the metrics say about routes a router sends to the speaker, over
//! the in-memory network on paused time. Without `maxPrefix` the speaker keeps nothing per
//! received path, so it shows NLRI counters and no table size (`null`, no gauge), never a
//! made-up 0; with `maxPrefix` it counts exactly and shows the size.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp::driver::{MemoryNetwork, Speaker, Target};
use bgp::rib::{Prefix, RouteAttrs};
use bgp::session::State;
use common::*;
use speaker::admin::View;
use speaker::sync::{Applier, Network};
use speaker::{ClusterState, Object, desired};

/// A router announcing 300 routes to the node.
async fn router(net: &MemoryNetwork) -> Speaker {
    let router = memory_router(net, |p| p.session.connect_retry = Duration::from_secs(5));
    let routes: Vec<Prefix> = (0..300u32)
        .map(|i| Prefix::host(Ipv4Addr::from(0xc633_6400 + i).into()))
        .collect();
    router
        .announce(routes.clone(), RouteAttrs::default(), Target::All)
        .await
        .expect("announce");
    router
}

fn cluster(peer_extra: &str) -> Vec<Object> {
    vec![
        node("n1", &[], Some(true), "10.0.0.1"),
        conf(65001, "  listenAddresses: [10.0.0.1]\n"),
        peer(
            "tor",
            "10.0.0.254",
            65000,
            &format!(
                "  conf: {{peerAs: 65000, neighborAddress: 10.0.0.254}}\n  sourceAddress: 10.0.0.1\n  timers: {{config: {{connectRetry: 5}}}}\n{peer_extra}"
            ),
        ),
    ]
}

fn view(applier: &Applier) -> View {
    View {
        running: applier.running().clone(),
        speaker: applier.speaker().cloned(),
        ..View::default()
    }
}

#[tokio::test(start_paused = true)]
async fn the_table_size_is_shown_only_when_a_max_prefix_limit_makes_it_known() {
    let net = MemoryNetwork::new();
    let router = router(&net).await;
    let mut applier = Applier::new(Network::Memory(net.clone()), None);
    let ctx = ctx("n1");
    applier
        .apply(&desired(&ctx, &ClusterState::from_objects(cluster(""))))
        .await
        .expect("apply");
    until("300 NLRI received", || {
        view(&applier)
            .peers()
            .first()
            .is_some_and(|p| p.nlri_announced == 300)
    })
    .await;
    let routes: Vec<Prefix> = (0..100u32)
        .map(|i| Prefix::host(Ipv4Addr::from(0xc633_6400 + i).into()))
        .collect();
    router
        .withdraw(routes, Target::All)
        .await
        .expect("withdraw");
    until("100 withdrawn", || {
        view(&applier)
            .peers()
            .first()
            .is_some_and(|p| p.nlri_withdrawn == 100)
    })
    .await;
    let v = view(&applier);
    let json = serde_json::to_value(&v.peers()[0]).expect("json");
    assert!(json["prefixesReceived"].is_null(), "{json}");
    assert_eq!(
        (&json["nlriAnnounced"], &json["nlriWithdrawn"]),
        (&300.into(), &100.into())
    );
    let metrics = v.metrics();
    assert!(
        metrics.contains(
            "berth_speaker_nlri_announced_total{peer=\"10.0.0.254\",family=\"ipv4\"} 300"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "berth_speaker_nlri_withdrawn_total{peer=\"10.0.0.254\",family=\"ipv4\"} 100"
        ),
        "{metrics}"
    );
    assert!(
        !metrics.contains("berth_speaker_prefixes_received{"),
        "no gauge without a tracked size: {metrics}"
    );

    // A limit: a new session that counts the paths exactly.
    applier
        .apply(&desired(
            &ctx,
            &ClusterState::from_objects(cluster("  maxPrefix: 1000\n")),
        ))
        .await
        .expect("apply");
    until("200 routes counted exactly", || {
        view(&applier).peers().first().is_some_and(|p| {
            p.state == format!("{:?}", State::Established) && p.prefixes_received == Some(200)
        })
    })
    .await;
    let metrics = view(&applier).metrics();
    assert!(
        metrics
            .contains("berth_speaker_prefixes_received{peer=\"10.0.0.254\",family=\"ipv4\"} 200"),
        "{metrics}"
    );
    applier.shutdown("test over", Duration::ZERO).await;
}
