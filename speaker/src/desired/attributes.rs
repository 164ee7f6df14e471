//! The attributes one VIP is announced with: its pool's `advertisement`, with the overrides
//! of the Services that hold the address (`api::bgp_overrides`) merged in.
//!
//! The rules (documented on the annotation keys in `api::keys`):
//! - communities and large communities of the Services are **added** to the pool's (a
//!   value already there is not repeated; order: the pool's, then each Service's in turn);
//! - LOCAL_PREF, MED and the AS_PATH prepending set by a Service **replace** the pool's;
//! - Services sharing an address: their communities are all added; a scalar set by more than
//!   one of them with different values is a conflict, and the pool's value is used for it
//!   (reported, per scalar, so the operator knows why).
//!
//! Pure; knows nothing of where the overrides come from.

use api::bgp_overrides::{BgpOverrides, Prepend};

use super::VipAttrs;

/// The pool's attributes for an `advertisement` (an invalid item was already refused by
/// validation; it is skipped here).
pub fn of_pool(adv: &api::Advertisement) -> VipAttrs {
    let prepend = adv.as_path_prepend.as_ref();
    VipAttrs {
        communities: adv
            .communities
            .iter()
            .filter_map(|c| api::validate::parse_community(c))
            .collect(),
        large_communities: adv
            .large_communities
            .iter()
            .filter_map(|c| api::validate::parse_large_community(c))
            .collect(),
        local_pref: adv.local_pref,
        med: adv.med,
        as_path_prepend: prepend.map_or(0, |p| p.count),
        prepend_as: prepend.and_then(|p| p.asn),
        prefix_len: None,
    }
}

/// One scalar over every Service: the value they agree on, `None` when none sets it, or the
/// conflict.
fn agreed<T: Copy + PartialEq>(values: impl Iterator<Item = Option<T>>) -> Result<Option<T>, ()> {
    let mut out: Option<T> = None;
    for v in values.flatten() {
        match out {
            Some(seen) if seen != v => return Err(()),
            _ => out = Some(v),
        }
    }
    Ok(out)
}

/// `pool`'s attributes with every Service's overrides merged in, and one message per scalar
/// on which the Services conflict (the pool's value is kept for it).
pub fn merge(pool: &VipAttrs, services: &[&BgpOverrides]) -> (VipAttrs, Vec<String>) {
    let mut out = pool.clone();
    let mut conflicts = Vec::new();
    for o in services {
        for c in &o.communities {
            if !out.communities.contains(c) {
                out.communities.push(*c);
            }
        }
        for c in &o.large_communities {
            if !out.large_communities.contains(c) {
                out.large_communities.push(*c);
            }
        }
    }
    match agreed(services.iter().map(|o| o.local_pref)) {
        Ok(Some(v)) => out.local_pref = Some(v),
        Ok(None) => {}
        Err(()) => conflicts.push(format!(
            "Services sharing the address set different {}: the pool's LOCAL_PREF is used",
            api::keys::BGP_LOCAL_PREF
        )),
    }
    match agreed(services.iter().map(|o| o.med)) {
        Ok(Some(v)) => out.med = Some(v),
        Ok(None) => {}
        Err(()) => conflicts.push(format!(
            "Services sharing the address set different {}: the pool's MED is used",
            api::keys::BGP_MED
        )),
    }
    match agreed::<Prepend>(services.iter().map(|o| o.as_path_prepend)) {
        Ok(Some(p)) => {
            out.as_path_prepend = p.count;
            out.prepend_as = if p.count == 0 { None } else { p.asn };
        }
        Ok(None) => {}
        Err(()) => conflicts.push(format!(
            "Services sharing the address set different {} / {}: the pool's prepending is used",
            api::keys::BGP_AS_PATH_PREPEND,
            api::keys::BGP_AS_PATH_PREPEND_ASN
        )),
    }
    (out, conflicts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> VipAttrs {
        VipAttrs {
            communities: vec![1, 2],
            large_communities: vec![(1, 2, 3)],
            local_pref: Some(100),
            med: Some(10),
            as_path_prepend: 2,
            prepend_as: None,
            prefix_len: None,
        }
    }

    #[test]
    fn no_override_is_the_pool() {
        assert_eq!(merge(&pool(), &[]), (pool(), Vec::new()));
        assert_eq!(
            merge(&pool(), &[&BgpOverrides::default()]),
            (pool(), Vec::new())
        );
    }

    #[test]
    fn lists_add_and_scalars_replace() {
        let o = BgpOverrides {
            communities: vec![2, 3],
            large_communities: vec![(4, 5, 6)],
            local_pref: Some(300),
            med: None,
            as_path_prepend: Some(Prepend {
                count: 0,
                asn: Some(7),
            }),
        };
        let (attrs, conflicts) = merge(&pool(), &[&o]);
        assert!(conflicts.is_empty());
        assert_eq!(attrs.communities, vec![1, 2, 3]);
        assert_eq!(attrs.large_communities, vec![(1, 2, 3), (4, 5, 6)]);
        assert_eq!((attrs.local_pref, attrs.med), (Some(300), Some(10)));
        assert_eq!((attrs.as_path_prepend, attrs.prepend_as), (0, None));
    }

    #[test]
    fn sharing_services_add_lists_and_conflicting_scalars_keep_the_pool() {
        let a = BgpOverrides {
            communities: vec![5],
            med: Some(1),
            local_pref: Some(7),
            ..BgpOverrides::default()
        };
        let b = BgpOverrides {
            communities: vec![6],
            med: Some(2),
            local_pref: Some(7),
            ..BgpOverrides::default()
        };
        let (attrs, conflicts) = merge(&pool(), &[&a, &b]);
        assert_eq!(attrs.communities, vec![1, 2, 5, 6]);
        assert_eq!(attrs.med, Some(10), "conflict: the pool's");
        assert_eq!(attrs.local_pref, Some(7), "agreed");
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        assert!(conflicts[0].contains(api::keys::BGP_MED));
    }
}
