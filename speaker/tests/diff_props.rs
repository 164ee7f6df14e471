//! Properties of `speaker::diff`: applying the plan reaches the target exactly, a second
//! plan is empty, no unchanged session is reset or updated, no unchanged route is re-sent.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use speaker::desired::{Afi, Desired, DesiredPeer, VipAttrs};
use speaker::diff::{Running, diff};

fn peer_strategy() -> impl Strategy<Value = DesiredPeer> {
    (
        0u8..5,
        0u8..3,
        0u8..3,
        any::<bool>(),
        prop::option::of(0u8..2),
    )
        .prop_map(|(addr, asn, descr, v6, password)| DesiredPeer {
            name: format!("p{addr}"),
            description: format!("d{descr}"),
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, addr)),
            port: None,
            peer_as: 65000 + u32::from(asn),
            local_as: 65100,
            router_id: Ipv4Addr::new(1, 1, 1, 1),
            hold_time: None,
            keepalive: None,
            connect_retry: None,
            passive: false,
            multihop_ttl: None,
            source_address: None,
            md5_password: password.map(|p| format!("pw{p}")),
            families: if v6 {
                BTreeSet::from([Afi::Ipv4, Afi::Ipv6])
            } else {
                BTreeSet::from([Afi::Ipv4])
            },
            max_prefix: None,
            graceful_restart: Some(120),
            next_hop_v4: None,
            next_hop_v6: None,
            bfd: None,
        })
}

fn desired_strategy() -> impl Strategy<Value = Desired> {
    (
        prop::collection::vec(peer_strategy(), 0..5),
        prop::collection::btree_map(
            (0u8..8, any::<bool>()).prop_map(|(i, v6)| -> IpAddr {
                if v6 {
                    format!("fd00::{}", i + 1).parse().expect("ip")
                } else {
                    format!("192.0.2.{}", i + 1).parse().expect("ip")
                }
            }),
            prop::option::of(0u32..3).prop_map(|med| VipAttrs {
                med,
                ..Default::default()
            }),
            0..8,
        ),
    )
        .prop_map(|(peers, announce)| Desired {
            peers: peers.into_iter().map(|p| (p.address, p)).collect(),
            announce,
            ..Default::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn applying_the_plan_reaches_the_target(a in desired_strategy(), b in desired_strategy()) {
        let mut running = Running::target(&a);
        let plan = diff(&running, &b);
        running.apply(&plan);
        prop_assert_eq!(&running, &Running::target(&b));
        prop_assert!(diff(&running, &b).is_empty());
    }

    #[test]
    fn nothing_unchanged_is_touched(a in desired_strategy(), b in desired_strategy()) {
        let running = Running::target(&a);
        let plan = diff(&running, &b);
        for p in plan.reset.iter().chain(&plan.update) {
            let old = &running.peers[&p.address];
            prop_assert_ne!(old, p, "an unchanged session was touched");
        }
        for p in &plan.reset {
            prop_assert!(running.peers[&p.address].needs_reset(p));
        }
        for p in &plan.update {
            prop_assert!(!running.peers[&p.address].needs_reset(p), "update that needed a reset");
        }
        let empty = BTreeMap::new();
        for (peer, routes) in &plan.announce {
            let have = running.routes.get(peer).unwrap_or(&empty);
            for (vip, attrs) in routes {
                prop_assert_ne!(have.get(vip), Some(attrs), "unchanged route re-sent");
            }
        }
        for (peer, vips) in &plan.withdraw {
            for vip in vips {
                prop_assert!(running.routes[peer].contains_key(vip));
            }
        }
    }

    #[test]
    fn same_desired_is_an_empty_plan(a in desired_strategy()) {
        prop_assert!(diff(&Running::target(&a), &a).is_empty());
    }
}
