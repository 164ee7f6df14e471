//! Properties of `speaker::desired` over random clusters: Local never announces without a
//! local ready endpoint, excluded or NotReady nodes announce nothing, Cluster announces
//! exactly when some endpoint is ready, and the result does not depend on object order.

mod common;

use std::net::IpAddr;

use common::*;
use proptest::prelude::*;
use speaker::{ClusterState, Object, desired};

const NODES: usize = 4;

#[derive(Clone, Debug)]
struct NodeSpec {
    ready: Option<bool>,
    excluded: bool,
    rack: u8,
}

#[derive(Clone, Debug)]
struct ServiceSpec {
    local: bool,
    /// (node index, ready) per endpoint.
    endpoints: Vec<(usize, Option<bool>)>,
}

#[derive(Clone, Debug)]
struct Cluster {
    nodes: Vec<NodeSpec>,
    /// Per peer: the rack it selects (`None` selects every node).
    peers: Vec<Option<u8>>,
    services: Vec<ServiceSpec>,
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        prop_oneof![Just(None), Just(Some(true)), Just(Some(false))],
        prop::bool::weighted(0.2),
        0u8..2,
    )
        .prop_map(|(ready, excluded, rack)| NodeSpec {
            ready,
            excluded,
            rack,
        })
}

fn service_spec() -> impl Strategy<Value = ServiceSpec> {
    (
        any::<bool>(),
        prop::collection::vec(
            (
                0..NODES,
                prop_oneof![Just(None), Just(Some(true)), Just(Some(false))],
            ),
            0..4,
        ),
    )
        .prop_map(|(local, endpoints)| ServiceSpec { local, endpoints })
}

fn cluster() -> impl Strategy<Value = Cluster> {
    (
        prop::collection::vec(node_spec(), NODES),
        prop::collection::vec(prop::option::of(0u8..2), 0..3),
        prop::collection::vec(service_spec(), 0..6),
    )
        .prop_map(|(nodes, peers, services)| Cluster {
            nodes,
            peers,
            services,
        })
}

fn vip(i: usize) -> IpAddr {
    format!("192.0.2.{}", i + 1).parse().expect("ip")
}

fn objects(c: &Cluster) -> Vec<Object> {
    let mut out = vec![conf(65001, ""), eip("pool", "192.0.2.0/24", "", "")];
    for (i, n) in c.nodes.iter().enumerate() {
        let rack = format!("r{}", n.rack);
        let mut labels = vec![("openelb.kubesphere.io/rack", rack.as_str())];
        if n.excluded {
            labels.push((
                "node.kubernetes.io/exclude-from-external-load-balancers",
                "true",
            ));
        }
        out.push(node(
            &format!("n{i}"),
            &labels,
            n.ready,
            &format!("10.0.0.{}", i + 1),
        ));
    }
    for (i, rack) in c.peers.iter().enumerate() {
        let extra = match rack {
            None => String::new(),
            Some(r) => {
                format!("  nodeSelector: {{matchLabels: {{openelb.kubesphere.io/rack: r{r}}}}}\n")
            }
        };
        out.push(peer(
            &format!("p{i}"),
            &format!("10.0.1.{}", i + 1),
            65000,
            &extra,
        ));
    }
    for (i, s) in c.services.iter().enumerate() {
        let name = format!("s{i}");
        out.push(service("ns", &name, &[&vip(i).to_string()], s.local));
        let eps: Vec<(String, Option<bool>)> = s
            .endpoints
            .iter()
            .map(|(n, r)| (format!("n{n}"), *r))
            .collect();
        let eps: Vec<(&str, Option<bool>)> = eps.iter().map(|(n, r)| (n.as_str(), *r)).collect();
        out.push(slice("ns", &name, &format!("{name}-1"), &eps));
    }
    out
}

fn ready(r: Option<bool>) -> bool {
    r != Some(false)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn announcements_follow_the_rules(c in cluster(), me in 0..NODES) {
        let d = desired(&ctx(&format!("n{me}")), &ClusterState::from_objects(objects(&c)));
        let n = &c.nodes[me];
        let selected = c.peers.iter().any(|p| p.is_none_or(|r| r == n.rack));
        prop_assert_eq!(d.peers.is_empty(), !selected);
        if !ready(n.ready) || n.excluded {
            prop_assert!(d.announce.is_empty(), "excluded/NotReady node announced {:?}", d.announce);
        }
        for (i, s) in c.services.iter().enumerate() {
            let here = s.endpoints.iter().any(|(node, r)| *node == me && ready(*r));
            let anywhere = s.endpoints.iter().any(|(_, r)| ready(*r));
            let announced = d.announce.contains_key(&vip(i));
            let eligible = ready(n.ready) && !n.excluded && selected;
            if s.local {
                prop_assert!(!announced || here, "Local announced without a local ready endpoint");
                prop_assert_eq!(announced, eligible && here);
            } else {
                prop_assert_eq!(announced, eligible && anywhere);
            }
            let reports: Vec<_> = d.vips.iter().filter(|v| v.address == vip(i)).collect();
            prop_assert_eq!(reports.len(), 1);
            prop_assert_eq!(reports[0].announced, announced);
        }
        // Every peer carries every announced (IPv4) VIP.
        for p in d.peers.values() {
            prop_assert_eq!(d.routes_for(p).len(), d.announce.len());
        }
    }

    #[test]
    fn independent_of_object_order(c in cluster(), me in 0..NODES, seed in any::<u64>()) {
        let objs = objects(&c);
        let mut shuffled = objs.clone();
        // A deterministic Fisher-Yates shuffle driven by the seed.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let j = usize::try_from(x % (i as u64 + 1)).expect("index");
            shuffled.swap(i, j);
        }
        let ctx = ctx(&format!("n{me}"));
        let a = desired(&ctx, &ClusterState::from_objects(objs));
        let b = desired(&ctx, &ClusterState::from_objects(shuffled));
        prop_assert_eq!(a, b);
    }
}
