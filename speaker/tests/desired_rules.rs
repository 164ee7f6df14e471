//! One test per rule of `speaker::desired`: peers (selection, AS, router ID, timers,
//! transport, password) and VIPs (pool, node state, endpoints, policy, attributes).

mod common;

use std::net::Ipv4Addr;

use common::*;
use speaker::desired::{Afi, Reason};
use speaker::{ClusterState, Object, desired};

/// A small cluster: node n1 (rack r1) and n2, a default BgpConf, one peer for all nodes,
/// a bgp pool with one Cluster Service (endpoint on n2) and one Local Service (endpoint
/// on n1).
fn base() -> Vec<Object> {
    vec![
        node(
            "n1",
            &[("openelb.kubesphere.io/rack", "r1")],
            Some(true),
            "10.0.0.1",
        ),
        node("n2", &[], Some(true), "10.0.0.2"),
        conf(65001, ""),
        peer("tor", "10.0.0.254", 65000, ""),
        eip("pool", "192.0.2.0/24", "", ""),
        service("web", "a", &["192.0.2.10"], false),
        slice("web", "a", "a-1", &[("n2", Some(true))]),
        service("web", "b", &["192.0.2.11"], true),
        slice("web", "b", "b-1", &[("n1", Some(true))]),
    ]
}

fn run(node: &str, objects: Vec<Object>) -> speaker::Desired {
    desired(&ctx(node), &ClusterState::from_objects(objects))
}

fn reason(d: &speaker::Desired, vip: &str) -> Reason {
    d.vips
        .iter()
        .find(|v| v.address == ip(vip))
        .map(|v| v.reason.clone())
        .unwrap_or_else(|| panic!("no report for {vip}: {:?}", d.vips))
}

#[test]
fn cluster_and_local_policies() {
    let d1 = run("n1", base());
    assert_eq!(d1.problems, vec![]);
    assert_eq!(
        d1.announce.keys().copied().collect::<Vec<_>>(),
        vec![ip("192.0.2.10"), ip("192.0.2.11")]
    );
    assert_eq!(
        reason(&d1, "192.0.2.10"),
        Reason::ClusterEndpoints { count: 1 }
    );
    assert_eq!(
        reason(&d1, "192.0.2.11"),
        Reason::LocalEndpoints { count: 1 }
    );

    let d2 = run("n2", base());
    assert_eq!(
        d2.announce.keys().copied().collect::<Vec<_>>(),
        vec![ip("192.0.2.10")]
    );
    assert_eq!(reason(&d2, "192.0.2.11"), Reason::NoLocalEndpoint);
}

#[test]
fn peer_settings_resolve() {
    let d = run("n1", base());
    let settings = d.settings.clone().expect("settings");
    assert_eq!(settings.local_as, 65001);
    assert_eq!(settings.router_id, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(settings.listen_port, Some(179));
    let p = &d.peers[&ip("10.0.0.254")];
    assert_eq!(
        (p.peer_as, p.local_as, p.router_id),
        (65000, 65001, settings.router_id)
    );
    assert_eq!(
        p.families.iter().copied().collect::<Vec<_>>(),
        vec![Afi::Ipv4]
    );
    assert!(!p.passive);
    assert_eq!(p.graceful_restart, Some(120));
    assert_eq!(d.routes_for(p).len(), 2);
}

#[test]
fn as_per_rack_and_router_id_and_local_as_override() {
    let mut objs = base();
    objs[2] = conf(
        65001,
        "  routerId: 1.1.1.1\n  asPerRack: {r1: 65101}\n  listenPort: -1\n",
    );
    objs.push(peer(
        "spine",
        "10.0.1.1",
        65000,
        "  conf: {peerAs: 65000, neighborAddress: 10.0.1.1, localAs: 65500}\n",
    ));
    let d1 = run("n1", objs.clone());
    let s = d1.settings.clone().expect("settings");
    assert_eq!(
        (s.local_as, s.router_id, s.listen_port),
        (65101, Ipv4Addr::new(1, 1, 1, 1), None)
    );
    assert_eq!(d1.peers[&ip("10.0.0.254")].local_as, 65101);
    assert_eq!(d1.peers[&ip("10.0.1.1")].local_as, 65500);
    let d2 = run("n2", objs);
    assert_eq!(
        d2.settings.expect("settings").local_as,
        65001,
        "n2 has no rack"
    );
}

#[test]
fn router_id_falls_back_to_the_host() {
    let mut objs = base();
    objs[0] = node("n1", &[], Some(true), "fd00::1");
    let state = ClusterState::from_objects(objs);
    let d = desired(&ctx("n1"), &state);
    assert!(d.peers.is_empty(), "no IPv4 anywhere: no router id");
    assert!(
        d.problems.iter().any(|p| p.message.contains("router ID")),
        "{:?}",
        d.problems
    );
    let mut c = ctx("n1");
    c.fallback_router_id = Some(Ipv4Addr::new(172, 16, 0, 9));
    let d = desired(&c, &state);
    assert_eq!(
        d.settings.expect("settings").router_id,
        Ipv4Addr::new(172, 16, 0, 9)
    );
}

#[test]
fn node_selector_with_match_expressions() {
    let mut objs = base();
    objs[3] = peer(
        "tor",
        "10.0.0.254",
        65000,
        "  nodeSelector:\n    matchExpressions:\n    - {key: openelb.kubesphere.io/rack, operator: In, values: [r1]}\n",
    );
    assert_eq!(run("n1", objs.clone()).peers.len(), 1);
    let d2 = run("n2", objs);
    assert!(d2.peers.is_empty());
    assert!(d2.announce.is_empty(), "no peer, nothing announced");
    assert_eq!(
        reason(&d2, "192.0.2.10"),
        Reason::NoPeer { family: Afi::Ipv4 }
    );
}

#[test]
fn timers_transport_multihop_and_families() {
    let mut objs = base();
    objs[3] = peer(
        "tor",
        "10.0.0.254",
        65000,
        concat!(
            "  timers: {config: {holdTime: \"30\", keepaliveInterval: 10, connectRetry: \"5\"}}\n",
            "  transport: {passiveMode: true, remotePort: 17900, localAddress: 10.0.0.1}\n",
            "  ebgpMultihop: {enabled: true, multihopTtl: 3}\n",
            "  maxPrefix: 10\n",
            "  gracefulRestart: {enabled: true, restartTime: 300}\n",
            "  afiSafis:\n",
            "  - config: {family: {afi: AFI_IP, safi: SAFI_UNICAST}, enabled: true}\n",
            "  - config: {family: {afi: AFI_IP6, safi: SAFI_UNICAST}, enabled: true}\n",
        ),
    );
    objs[0] = node("n1", &[], Some(true), "10.0.0.1");
    let d = run("n1", objs);
    let p = &d.peers[&ip("10.0.0.254")];
    assert_eq!(
        (p.hold_time, p.keepalive, p.connect_retry),
        (Some(30), Some(10), Some(5))
    );
    assert!(p.passive);
    assert_eq!(p.port, Some(17900));
    assert_eq!(p.source_address, Some(ip("10.0.0.1")));
    assert_eq!(p.multihop_ttl, Some(3));
    assert_eq!(p.max_prefix, Some(10));
    assert_eq!(p.graceful_restart, Some(300));
    assert!(p.carries(Afi::Ipv4) && p.carries(Afi::Ipv6));
}

#[test]
fn gobgp_policy_is_reported_and_ignored() {
    let mut objs = base();
    objs[2] = conf(65001, "  policy: my-policy-configmap\n");
    let d = run("n1", objs);
    assert_eq!(d.peers.len(), 1, "sessions still run");
    assert_eq!(d.announce.len(), 2);
    assert!(
        d.problems
            .iter()
            .any(|p| p.kind == "BgpConf" && p.message.contains("not supported")),
        "{:?}",
        d.problems
    );
}

#[test]
fn graceful_restart_can_be_turned_off() {
    let mut objs = base();
    objs[2] = conf(65001, "  gracefulRestart: {enabled: false}\n");
    assert_eq!(
        run("n1", objs).peers[&ip("10.0.0.254")].graceful_restart,
        None
    );
}

#[test]
fn md5_from_secret_or_plain() {
    let mut objs = base();
    objs[3] = peer(
        "tor",
        "10.0.0.254",
        65000,
        "  authPasswordSecretRef: {name: tor-md5}\n",
    );
    let d = run("n1", objs.clone());
    assert!(d.peers.is_empty(), "missing secret skips the peer");
    assert!(
        d.problems
            .iter()
            .any(|p| p.kind == "BgpPeer" && p.message.contains("not found"))
    );
    objs.push(secret("berth-system", "tor-md5", "password", "s3cret"));
    let d = run("n1", objs);
    assert_eq!(
        d.peers[&ip("10.0.0.254")].md5_password.as_deref(),
        Some("s3cret")
    );
    let json = serde_json::to_string(&d.peers).expect("json");
    assert!(
        !json.contains("s3cret"),
        "the password never leaves the process: {json}"
    );

    let mut objs = base();
    objs[3] = peer(
        "tor",
        "10.0.0.254",
        65000,
        "  conf: {peerAs: 65000, neighborAddress: 10.0.0.254, authPassword: plain}\n",
    );
    assert_eq!(
        run("n1", objs).peers[&ip("10.0.0.254")]
            .md5_password
            .as_deref(),
        Some("plain")
    );
}

#[test]
fn invalid_peer_is_skipped_and_the_rest_runs() {
    let mut objs = base();
    objs.push(peer("broken", "not-an-ip", 65000, ""));
    objs.push(peer("dup", "10.0.0.254", 65009, ""));
    objs.push(peer(
        "down",
        "10.0.0.253",
        65000,
        "  conf: {peerAs: 65000, neighborAddress: 10.0.0.253, adminDown: true}\n",
    ));
    let d = run("n1", objs);
    assert_eq!(
        d.peers.keys().copied().collect::<Vec<_>>(),
        vec![ip("10.0.0.254")]
    );
    assert_eq!(
        d.peers[&ip("10.0.0.254")].peer_as,
        65009,
        "first by name (dup < tor) wins"
    );
    let names: Vec<_> = d.problems.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["broken", "tor"], "{:?}", d.problems);
    assert!(
        d.problems[1]
            .message
            .contains("already configured by BgpPeer dup"),
        "{:?}",
        d.problems
    );
}

#[test]
fn missing_or_invalid_bgp_conf_runs_no_peer() {
    let mut objs = base();
    objs.remove(2);
    let d = run("n1", objs);
    assert!(d.peers.is_empty() && d.settings.is_none());
    assert!(d.problems.iter().any(|p| p.kind == "BgpConf"));
    let mut objs = base();
    objs[2] = conf(0, "");
    let d = run("n1", objs);
    assert!(d.peers.is_empty());
    assert!(
        d.problems
            .iter()
            .any(|p| p.kind == "BgpConf" && p.message.contains("spec.as"))
    );
}

#[test]
fn node_state_rules() {
    let mut objs = base();
    objs[0] = node("n1", &[], Some(false), "10.0.0.1");
    let d = run("n1", objs);
    assert!(d.announce.is_empty());
    assert_eq!(reason(&d, "192.0.2.10"), Reason::NodeNotReady);

    let mut objs = base();
    objs[0] = node(
        "n1",
        &[(
            "node.kubernetes.io/exclude-from-external-load-balancers",
            "",
        )],
        Some(true),
        "10.0.0.1",
    );
    let d = run("n1", objs);
    assert!(d.announce.is_empty());
    assert_eq!(reason(&d, "192.0.2.11"), Reason::NodeExcluded);

    let d = run("n9", base());
    assert!(d.announce.is_empty() && d.peers.is_empty());
    assert_eq!(reason(&d, "192.0.2.10"), Reason::NodeMissing);
}

#[test]
fn endpoint_readiness() {
    let mut objs = base();
    objs[6] = slice("web", "a", "a-1", &[("n2", Some(false))]);
    objs[8] = slice(
        "web",
        "b",
        "b-1",
        &[("n1", Some(false)), ("n2", Some(true))],
    );
    let d = run("n1", objs);
    assert_eq!(reason(&d, "192.0.2.10"), Reason::NoReadyEndpoint);
    assert_eq!(reason(&d, "192.0.2.11"), Reason::NoLocalEndpoint);
    assert!(d.announce.is_empty());

    // Unknown readiness reads as ready; slices of another namespace do not count.
    let mut objs = base();
    objs[6] = slice("web", "a", "a-1", &[("n1", None)]);
    objs[8] = slice("other", "b", "b-1", &[("n1", Some(true))]);
    let d = run("n1", objs);
    assert_eq!(
        reason(&d, "192.0.2.10"),
        Reason::ClusterEndpoints { count: 1 }
    );
    assert_eq!(reason(&d, "192.0.2.11"), Reason::NoReadyEndpoint);
}

#[test]
fn pools_decide_what_is_ours_and_its_attributes() {
    let mut objs = base();
    objs[4] = eip(
        "pool",
        "192.0.2.0/24",
        "bgp",
        "  advertisement: {communities: [\"65000:100\", no-export], largeCommunities: [\"1:2:3\"], localPref: 200, med: 5}\n",
    );
    objs.push(eip(
        "l2",
        "198.51.100.0/24",
        "layer2",
        "  interface: eth0\n",
    ));
    objs.push(service("web", "c", &["198.51.100.5", "203.0.113.9"], false));
    objs.push(slice("web", "c", "c-1", &[("n1", Some(true))]));
    let d = run("n1", objs);
    let attrs = &d.announce[&ip("192.0.2.10")];
    assert_eq!(attrs.communities, vec![0xFDE8_0064, 0xFFFF_FF01]);
    assert_eq!(attrs.large_communities, vec![(1, 2, 3)]);
    assert_eq!((attrs.local_pref, attrs.med), (Some(200), Some(5)));
    assert_eq!(
        reason(&d, "198.51.100.5"),
        Reason::Layer2 { pool: "l2".into() }
    );
    assert!(d.layer2.vips.contains_key(&ip("198.51.100.5")));
    assert_eq!(reason(&d, "203.0.113.9"), Reason::NoPool);
    assert_eq!(d.announce.len(), 2);
}

#[test]
fn invalid_pool_announces_nothing_and_says_so() {
    let mut objs = base();
    objs[4] = eip(
        "pool",
        "192.0.2.0/24",
        "",
        "  advertisement: {communities: [bogus]}\n",
    );
    let d = run("n1", objs);
    assert!(d.announce.is_empty());
    assert!(matches!(
        reason(&d, "192.0.2.10"),
        Reason::PoolInvalid { .. }
    ));
    assert!(
        d.problems
            .iter()
            .any(|p| p.kind == "Eip" && p.name == "pool")
    );
}

#[test]
fn other_classes_and_non_lb_services_are_left_alone() {
    let mut objs = base();
    if let Object::Service(s) = &mut objs[5]
        && let Some(spec) = s.spec.as_mut()
    {
        spec.load_balancer_class = Some("example.com/other".into());
    }
    if let Object::Service(s) = &mut objs[7]
        && let Some(spec) = s.spec.as_mut()
    {
        spec.type_ = Some("ClusterIP".into());
    }
    let d = run("n1", objs);
    assert!(d.announce.is_empty());
    assert!(matches!(
        reason(&d, "192.0.2.10"),
        Reason::OtherClass { .. }
    ));
    assert!(d.vips.iter().all(|v| v.address != ip("192.0.2.11")));
}

/// The controller's rule, in the speaker too (issue 14 item 19): no class and no OpenELB
/// opt-in is not Berth's unless Berth is the default class; a changed class is followed.
#[test]
fn the_class_rule_is_the_controllers() {
    let mut objs = base();
    if let Object::Service(s) = &mut objs[5]
        && let Some(spec) = s.spec.as_mut()
    {
        spec.load_balancer_class = None;
    }
    let state = ClusterState::from_objects(objs.clone());
    let d = desired(&ctx("n1"), &state);
    assert_eq!(reason(&d, "192.0.2.10"), Reason::NotOptedIn);
    let default_class = speaker::NodeContext {
        class: api::class::ClassConfig {
            default_class: true,
            ..api::class::ClassConfig::default()
        },
        ..ctx("n1")
    };
    assert!(
        desired(&default_class, &state)
            .announce
            .contains_key(&ip("192.0.2.10"))
    );
    if let Object::Service(s) = &mut objs[5]
        && let Some(spec) = s.spec.as_mut()
    {
        spec.load_balancer_class = Some("example.com/lb".into());
    }
    let state = ClusterState::from_objects(objs);
    let own = speaker::NodeContext {
        class: api::class::ClassConfig {
            class: "example.com/lb".into(),
            default_class: false,
        },
        ..ctx("n1")
    };
    assert!(
        desired(&own, &state)
            .announce
            .contains_key(&ip("192.0.2.10"))
    );
    assert!(matches!(
        reason(&desired(&ctx("n1"), &state), "192.0.2.10"),
        Reason::OtherClass { .. }
    ));
}

#[test]
fn ipv6_vips_go_only_to_sessions_carrying_ipv6() {
    let mut objs = base();
    objs.push(eip("pool6", "fd00:beef::/64", "", ""));
    objs.push(service("web", "d", &["192.0.2.20", "fd00:beef::20"], false));
    objs.push(slice("web", "d", "d-1", &[("n1", Some(true))]));
    let d = run("n1", objs.clone());
    assert_eq!(
        reason(&d, "fd00:beef::20"),
        Reason::NoPeer { family: Afi::Ipv6 }
    );
    objs.push(peer("tor6", "fd00::fe", 65000, ""));
    let d = run("n1", objs);
    assert!(d.announce.contains_key(&ip("fd00:beef::20")));
    assert_eq!(
        d.routes_for(&d.peers[&ip("fd00::fe")])
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        vec![ip("fd00:beef::20")]
    );
    assert!(
        !d.routes_for(&d.peers[&ip("10.0.0.254")])
            .contains_key(&ip("fd00:beef::20"))
    );
}

#[test]
fn bfd_is_off_by_default_and_resolved_with_defaults_when_enabled() {
    let d = run("n1", base());
    assert_eq!(d.peers[&ip("10.0.0.254")].bfd, None, "off by default");

    let with = |bfd: &str| {
        let mut objects = base();
        objects.retain(|o| !matches!(o, Object::BgpPeer(_)));
        objects.push(peer("tor", "10.0.0.254", 65000, bfd));
        run("n1", objects)
    };
    let d = with("  bfd: {enabled: false, minTx: 100}\n");
    assert_eq!(d.peers[&ip("10.0.0.254")].bfd, None);

    let d = with("  bfd: {enabled: true}\n");
    assert_eq!(
        d.peers[&ip("10.0.0.254")].bfd,
        Some(speaker::desired::DesiredBfd {
            min_tx_ms: 300,
            min_rx_ms: 300,
            multiplier: 3,
            multihop: false,
            local: None,
        })
    );

    let d = with("  bfd: {enabled: true, minTx: 100, minRx: 200, multiplier: 5, multihop: true}\n");
    assert_eq!(
        d.peers[&ip("10.0.0.254")].bfd,
        Some(speaker::desired::DesiredBfd {
            min_tx_ms: 100,
            min_rx_ms: 200,
            multiplier: 5,
            multihop: true,
            local: Some(ip("10.0.0.1")),
        }),
        "multihop takes the node's InternalIP as source"
    );

    let d = with("  sourceAddress: 10.0.0.9\n  bfd: {enabled: true, multihop: true}\n");
    assert_eq!(
        d.peers[&ip("10.0.0.254")].bfd.and_then(|b| b.local),
        Some(ip("10.0.0.9")),
        "the session's source address wins"
    );
}
