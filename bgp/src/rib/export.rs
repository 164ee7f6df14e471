//! How a route looks to one session: `RouteAttrs` (what the user asked for) turned into the
//! path attributes of RFC 4271 §5.1 for this peer. eBGP sends our AS plus the prepending
//! asked for (our AS or a chosen one) and leaves LOCAL_PREF out; iBGP sends LOCAL_PREF and an
//! empty AS_PATH, never prepended. Next hop
//! self is the session's local address. During graceful shutdown (RFC 8326) every route
//! carries GRACEFUL_SHUTDOWN, and on iBGP a LOCAL_PREF of 0.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::attribute::{AsPath, AttributeValue, PathAttribute};
use crate::wire::context::Context;
use crate::wire::mp::MpNextHop;
use crate::wire::open::AS_TRANS;

use super::route::{GRACEFUL_SHUTDOWN, GRACEFUL_SHUTDOWN_LOCAL_PREF, NextHop, RouteAttrs};

/// LOCAL_PREF sent on iBGP when the route does not set one.
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// Everything about one established session that shapes the attributes it is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// Our AS.
    pub local_as: u32,
    /// Internal BGP (same AS both ends).
    pub ibgp: bool,
    /// Next hop self for IPv4 routes: the session's local IPv4 address (or a configured one).
    pub next_hop_v4: Option<Ipv4Addr>,
    /// Next hop self for IPv6 routes: global address, plus the link-local one when the peer
    /// is on the same link.
    pub next_hop_v6: Option<(Ipv6Addr, Option<Ipv6Addr>)>,
    /// Graceful shutdown in progress (RFC 8326).
    pub graceful_shutdown: bool,
    /// The codec context of the direction we send in.
    pub context: Context,
}

impl Export {
    /// The next hop for an IPv4 route with these attributes; `None` when there is none to
    /// give (the route is then not sent).
    pub fn ipv4_next_hop(&self, attrs: &RouteAttrs) -> Option<Ipv4Addr> {
        match attrs.next_hop {
            NextHop::Myself => self.next_hop_v4,
            NextHop::Address(IpAddr::V4(a)) => Some(a),
            NextHop::Address(IpAddr::V6(_)) => None,
        }
    }

    /// The MP_REACH_NLRI next hop for an IPv6 route with these attributes.
    pub fn ipv6_next_hop(&self, attrs: &RouteAttrs) -> Option<MpNextHop> {
        match attrs.next_hop {
            NextHop::Myself => self
                .next_hop_v6
                .map(|(global, link_local)| MpNextHop::V6 { global, link_local }),
            NextHop::Address(IpAddr::V6(global)) => Some(MpNextHop::V6 {
                global,
                link_local: None,
            }),
            NextHop::Address(IpAddr::V4(_)) => None,
        }
    }

    /// The AS_PATH (one AS_SEQUENCE) sent for `attrs`: empty on iBGP (RFC 4271 §5.1.2: an
    /// internal peer adds nothing, and prepending would put the receiver's own AS in the
    /// path, which it drops as a loop); on eBGP our AS, then `as_path_prepend` copies of
    /// `prepend_as` (default our AS).
    pub fn as_path(&self, attrs: &RouteAttrs) -> Vec<u32> {
        if self.ibgp {
            return Vec::new();
        }
        let mut path = Vec::with_capacity(1 + usize::from(attrs.as_path_prepend));
        path.push(self.local_as);
        path.extend(std::iter::repeat_n(
            attrs.prepend_as.unwrap_or(self.local_as),
            usize::from(attrs.as_path_prepend),
        ));
        path
    }

    /// The path attributes for `attrs`, in type-code order; NEXT_HOP is included when
    /// `next_hop` is given (IPv4), MP_REACH_NLRI never (the packer writes it).
    pub fn attributes(&self, attrs: &RouteAttrs, next_hop: Option<Ipv4Addr>) -> Vec<PathAttribute> {
        let mut out = Vec::with_capacity(8);
        out.push(PathAttribute::new(AttributeValue::Origin(attrs.origin)));
        let path = self.as_path(attrs);
        let needs_as4 =
            !self.context.four_octet_as && path.iter().any(|a| *a > u32::from(u16::MAX));
        if needs_as4 {
            // RFC 6793 §4.2.2: AS_TRANS in AS_PATH, the real path in AS4_PATH.
            let trans = path
                .iter()
                .map(|a| {
                    if *a > u32::from(u16::MAX) {
                        u32::from(AS_TRANS)
                    } else {
                        *a
                    }
                })
                .collect();
            out.push(PathAttribute::new(AttributeValue::AsPath(
                AsPath::sequence(trans),
            )));
        } else {
            out.push(PathAttribute::new(AttributeValue::AsPath(
                AsPath::sequence(path.clone()),
            )));
        }
        if let Some(nh) = next_hop {
            out.push(PathAttribute::new(AttributeValue::NextHop(nh)));
        }
        if let Some(med) = attrs.med {
            out.push(PathAttribute::new(AttributeValue::MultiExitDisc(med)));
        }
        if self.ibgp {
            let pref = if self.graceful_shutdown {
                GRACEFUL_SHUTDOWN_LOCAL_PREF
            } else {
                attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF)
            };
            out.push(PathAttribute::new(AttributeValue::LocalPref(pref)));
        }
        let mut communities = attrs.communities.clone();
        if self.graceful_shutdown && !communities.contains(&GRACEFUL_SHUTDOWN) {
            communities.push(GRACEFUL_SHUTDOWN);
        }
        if !communities.is_empty() {
            out.push(PathAttribute::new(AttributeValue::Communities(communities)));
        }
        if !attrs.extended_communities.is_empty() {
            out.push(PathAttribute::new(AttributeValue::ExtendedCommunities(
                attrs.extended_communities.clone(),
            )));
        }
        if needs_as4 {
            out.push(PathAttribute::new(AttributeValue::As4Path(
                AsPath::sequence(path),
            )));
        }
        if !attrs.large_communities.is_empty() {
            out.push(PathAttribute::new(AttributeValue::LargeCommunities(
                attrs.large_communities.clone(),
            )));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rib::route::Community;

    fn export(ibgp: bool) -> Export {
        Export {
            local_as: 65001,
            ibgp,
            next_hop_v4: Some(Ipv4Addr::new(10, 0, 0, 1)),
            next_hop_v6: Some(("2001:db8::1".parse().expect("ip"), None)),
            graceful_shutdown: false,
            context: Context {
                four_octet_as: true,
                ..Context::default()
            },
        }
    }

    fn find(
        attrs: &[PathAttribute],
        f: impl Fn(&AttributeValue) -> bool,
    ) -> Option<&AttributeValue> {
        attrs.iter().map(|a| &a.value).find(|v| f(v))
    }

    #[test]
    fn ebgp_prepends_and_has_no_local_pref() {
        let e = export(false);
        let ra = RouteAttrs {
            as_path_prepend: 2,
            local_pref: Some(200),
            ..RouteAttrs::default()
        };
        let attrs = e.attributes(&ra, e.ipv4_next_hop(&ra));
        assert_eq!(
            find(&attrs, |v| matches!(v, AttributeValue::AsPath(_))),
            Some(&AttributeValue::AsPath(AsPath::sequence(vec![65001; 3])))
        );
        assert!(find(&attrs, |v| matches!(v, AttributeValue::LocalPref(_))).is_none());
        assert_eq!(
            find(&attrs, |v| matches!(v, AttributeValue::NextHop(_))),
            Some(&AttributeValue::NextHop(Ipv4Addr::new(10, 0, 0, 1)))
        );
    }

    #[test]
    fn prepends_a_chosen_as_on_ebgp_and_nothing_on_ibgp() {
        let ra = RouteAttrs {
            as_path_prepend: 3,
            prepend_as: Some(64999),
            ..RouteAttrs::default()
        };
        let e = export(false);
        assert_eq!(e.as_path(&ra), vec![65001, 64999, 64999, 64999]);
        let attrs = e.attributes(&ra, None);
        assert_eq!(
            find(&attrs, |v| matches!(v, AttributeValue::AsPath(_))),
            Some(&AttributeValue::AsPath(AsPath::sequence(vec![
                65001, 64999, 64999, 64999
            ])))
        );
        assert_eq!(export(true).as_path(&ra), Vec::<u32>::new());
        let mut two_octet = export(false);
        two_octet.context.four_octet_as = false;
        let big = RouteAttrs {
            as_path_prepend: 1,
            prepend_as: Some(4_200_000_000),
            ..RouteAttrs::default()
        };
        let attrs = two_octet.attributes(&big, None);
        assert_eq!(
            find(&attrs, |v| matches!(v, AttributeValue::As4Path(_))),
            Some(&AttributeValue::As4Path(AsPath::sequence(vec![
                65001,
                4_200_000_000
            ])))
        );
        assert_eq!(
            find(&attrs, |v| matches!(v, AttributeValue::AsPath(_))),
            Some(&AttributeValue::AsPath(AsPath::sequence(vec![
                65001,
                u32::from(AS_TRANS)
            ])))
        );
    }

    #[test]
    fn ibgp_sends_local_pref_and_graceful_shutdown_lowers_it() {
        let mut e = export(true);
        let ra = RouteAttrs {
            communities: vec![Community::new(65001, 7)],
            ..RouteAttrs::default()
        };
        let attrs = e.attributes(&ra, None);
        assert_eq!(
            find(&attrs, |v| matches!(v, AttributeValue::LocalPref(_))),
            Some(&AttributeValue::LocalPref(100))
        );
        assert_eq!(
            find(&attrs, |v| matches!(v, AttributeValue::AsPath(_))),
            Some(&AttributeValue::AsPath(AsPath::sequence(vec![])))
        );
        e.graceful_shutdown = true;
        let attrs = e.attributes(&ra, None);
        assert_eq!(
            find(&attrs, |v| matches!(v, AttributeValue::LocalPref(_))),
            Some(&AttributeValue::LocalPref(0))
        );
        assert_eq!(
            find(&attrs, |v| matches!(v, AttributeValue::Communities(_))),
            Some(&AttributeValue::Communities(vec![
                Community::new(65001, 7),
                GRACEFUL_SHUTDOWN
            ]))
        );
    }

    #[test]
    fn four_octet_as_to_a_two_octet_peer_uses_as_trans_and_as4_path() {
        let mut e = export(false);
        e.local_as = 4_200_000_001;
        e.context.four_octet_as = false;
        let attrs = e.attributes(&RouteAttrs::default(), None);
        assert_eq!(
            find(&attrs, |v| matches!(v, AttributeValue::AsPath(_))),
            Some(&AttributeValue::AsPath(AsPath::sequence(vec![u32::from(
                AS_TRANS
            )])))
        );
        assert_eq!(
            find(&attrs, |v| matches!(v, AttributeValue::As4Path(_))),
            Some(&AttributeValue::As4Path(AsPath::sequence(vec![
                4_200_000_001
            ])))
        );
    }

    #[test]
    fn explicit_and_self_next_hops() {
        let e = export(false);
        let ra = RouteAttrs {
            next_hop: NextHop::Address("10.9.9.9".parse().expect("ip")),
            ..RouteAttrs::default()
        };
        assert_eq!(e.ipv4_next_hop(&ra), Some(Ipv4Addr::new(10, 9, 9, 9)));
        assert_eq!(e.ipv6_next_hop(&ra), None);
        assert_eq!(
            e.ipv6_next_hop(&RouteAttrs::default()),
            Some(MpNextHop::V6 {
                global: "2001:db8::1".parse().expect("ip"),
                link_local: None
            })
        );
    }
}
