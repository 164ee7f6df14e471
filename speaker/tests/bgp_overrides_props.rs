//! Properties of the per-Service BGP overrides (issue 18): `api::bgp_overrides::parse` reads
//! back every well-formed annotation and refuses, naming the key, anything else without
//! panicking; `speaker::desired::attributes::merge` keeps the pool's lists, adds the
//! Services' without repeating a value, and replaces a scalar only when the Services agree.

use std::collections::BTreeMap;

use api::bgp_overrides::{BgpOverrides, KEYS, Prepend, parse};
use proptest::prelude::*;
use speaker::desired::VipAttrs;
use speaker::desired::attributes::merge;

fn community() -> impl Strategy<Value = (u16, u16)> {
    (any::<u16>(), any::<u16>())
}

fn overrides() -> impl Strategy<Value = BgpOverrides> {
    (
        prop::collection::vec(any::<u32>(), 0..4),
        prop::collection::vec((any::<u32>(), any::<u32>(), any::<u32>()), 0..3),
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u32>()),
        prop::option::of((0u8..=10, prop::option::of(1u32..))),
    )
        .prop_map(
            |(communities, large_communities, local_pref, med, prepend)| BgpOverrides {
                communities,
                large_communities,
                local_pref,
                med,
                as_path_prepend: prepend.map(|(count, asn)| Prepend { count, asn }),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn well_formed_annotations_read_back(
        comms in prop::collection::vec(community(), 1..8),
        large in prop::collection::vec((any::<u32>(), any::<u32>(), any::<u32>()), 1..4),
        med in any::<u32>(),
        count in 0u8..=10,
        asn in 1u32..,
    ) {
        let mut ann = BTreeMap::new();
        ann.insert(api::keys::BGP_COMMUNITIES.to_string(),
            comms.iter().map(|(a, b)| format!("{a}:{b}")).collect::<Vec<_>>().join(", "));
        ann.insert(api::keys::BGP_LARGE_COMMUNITIES.to_string(),
            large.iter().map(|(a, b, c)| format!("{a}:{b}:{c}")).collect::<Vec<_>>().join(","));
        ann.insert(api::keys::BGP_MED.to_string(), med.to_string());
        ann.insert(api::keys::BGP_AS_PATH_PREPEND.to_string(), count.to_string());
        ann.insert(api::keys::BGP_AS_PATH_PREPEND_ASN.to_string(), asn.to_string());
        let o = parse(&ann).expect("well formed");
        let want: Vec<u32> = comms.iter().map(|(a, b)| (u32::from(*a) << 16) | u32::from(*b)).collect();
        prop_assert_eq!(o.communities, want);
        prop_assert_eq!(o.large_communities, large);
        prop_assert_eq!(o.med, Some(med));
        prop_assert_eq!(o.local_pref, None);
        prop_assert_eq!(o.as_path_prepend, Some(Prepend { count, asn: Some(asn) }));
    }

    #[test]
    fn anything_else_is_refused_by_key_never_a_panic(key in 0..KEYS.len(), value in ".{0,24}") {
        let mut ann = BTreeMap::new();
        ann.insert(KEYS[key].to_string(), value.clone());
        match parse(&ann) {
            Ok(_) => {}
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                prop_assert!(errors.iter().all(|e| KEYS.iter().any(|k| e.contains(k))), "{:?}", errors);
            }
        }
    }

    #[test]
    fn merge_keeps_the_pool_adds_the_services_and_replaces_only_agreed_scalars(
        pool_comms in prop::collection::vec(any::<u32>(), 0..4),
        pool_med in prop::option::of(any::<u32>()),
        services in prop::collection::vec(overrides(), 0..4),
    ) {
        let mut dedup = Vec::new();
        for c in pool_comms {
            if !dedup.contains(&c) {
                dedup.push(c);
            }
        }
        let pool = VipAttrs { communities: dedup, med: pool_med, ..VipAttrs::default() };
        let refs: Vec<&BgpOverrides> = services.iter().collect();
        let (out, conflicts) = merge(&pool, &refs);
        // The pool's first, in order; every Service's present; nothing twice.
        prop_assert_eq!(&out.communities[..pool.communities.len()], &pool.communities[..]);
        for s in &services {
            for c in &s.communities {
                prop_assert!(out.communities.contains(c));
            }
        }
        let mut sorted = out.communities.clone();
        sorted.sort_unstable();
        sorted.dedup();
        prop_assert_eq!(sorted.len(), out.communities.len());
        // MED: the agreed value, else (none set, or a conflict) the pool's.
        let set: Vec<u32> = services.iter().filter_map(|s| s.med).collect();
        let agreed = set.first().filter(|first| set.iter().all(|m| m == *first));
        match agreed {
            Some(m) => prop_assert_eq!(out.med, Some(*m)),
            None => prop_assert_eq!(out.med, pool.med),
        }
        let med_conflict = !set.is_empty() && agreed.is_none();
        prop_assert_eq!(med_conflict, conflicts.iter().any(|c| c.contains(api::keys::BGP_MED)));
    }
}
