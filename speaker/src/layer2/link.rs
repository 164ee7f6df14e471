//! The host's interfaces as layer 2 needs them, through rtnetlink: name, index, MAC and
//! carrier (administratively up and `IFF_LOWER_UP`), kept current from the kernel's link
//! notifications (`RTNLGRP_LINK`) so an owner whose link goes down hears it at once, not at
//! the next poll; and which interface `Eip.spec.interface` names on this node — one chosen
//! deterministically when several qualify (an ECMP default route), and why none when none
//! does ([`choose`], pure).
//!
//! Must not know about owners or frames.

use std::collections::BTreeMap;
use std::net::IpAddr;

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::{Handle, MulticastGroup};
use tokio::sync::watch;
use tracing::warn;

use super::candidates::Interface;
use super::frame::Mac;

/// One interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkFacts {
    /// Interface index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Ethernet address (`None` for links without one, such as loopback or a tunnel).
    pub mac: Option<Mac>,
    /// Administratively up and carrier (`IFF_UP` and `IFF_LOWER_UP`).
    pub up: bool,
}

/// Reads the facts off a link message.
pub fn link_of(m: &LinkMessage) -> LinkFacts {
    let mut name = String::new();
    let mut mac = None;
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => name.clone_from(n),
            LinkAttribute::Address(bytes) if bytes.len() == 6 => {
                let mut m = [0; 6];
                m.copy_from_slice(bytes);
                mac = Some(m);
            }
            _ => {}
        }
    }
    let flags = m.header.flags;
    LinkFacts {
        index: m.header.index,
        name,
        mac,
        up: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp),
    }
}

/// The interfaces by index, kept current.
pub type Links = watch::Receiver<BTreeMap<u32, LinkFacts>>;

/// Starts watching the host's interfaces: a dump now, then every change as the kernel
/// announces it. The task ends when every receiver is gone.
pub async fn watch_links() -> std::io::Result<Links> {
    let (conn, handle, mut messages) =
        rtnetlink::new_multicast_connection(&[MulticastGroup::Link])?;
    tokio::spawn(conn);
    let mut links = BTreeMap::new();
    let mut dump = handle.link().get().execute();
    loop {
        match dump.try_next().await {
            Ok(Some(m)) => {
                let l = link_of(&m);
                links.insert(l.index, l);
            }
            Ok(None) => break,
            Err(e) => return Err(std::io::Error::other(format!("link dump: {e}"))),
        }
    }
    let (tx, rx) = watch::channel(links);
    tokio::spawn(async move {
        // The handle keeps the connection task alive for later dumps; none are made.
        let _handle = handle;
        while let Some((message, _)) = messages.next().await {
            let NetlinkPayload::InnerMessage(inner) = message.payload else {
                continue;
            };
            let changed = match inner {
                RouteNetlinkMessage::NewLink(m) => {
                    let l = link_of(&m);
                    tx.send_if_modified(|all| all.insert(l.index, l.clone()) != Some(l))
                }
                RouteNetlinkMessage::DelLink(m) => {
                    tx.send_if_modified(|all| all.remove(&m.header.index).is_some())
                }
                _ => false,
            };
            if tx.is_closed() {
                return;
            }
            let _ = changed;
        }
        warn!("link notifications ended: carrier changes are no longer seen");
    });
    Ok(rx)
}

/// One unicast route of the main table, as the choice of an interface needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteFacts {
    /// The destination (`None`: the default route of `v4`'s family).
    pub destination: Option<IpAddr>,
    /// Its prefix length (0: a default route).
    pub prefix_len: u8,
    /// IPv4 (else IPv6).
    pub v4: bool,
    /// The metric (`RTA_PRIORITY`); lower wins.
    pub metric: u32,
    /// The interfaces it leaves by: one, or each next hop's of a multipath (ECMP) route.
    pub interfaces: Vec<u32>,
}

/// Reads a route off a route message: `None` unless it is a unicast route of the main table.
pub fn route_of(m: &RouteMessage) -> Option<RouteFacts> {
    let table = m
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table));
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) || m.header.kind != RouteType::Unicast {
        return None;
    }
    let mut route = RouteFacts {
        destination: None,
        prefix_len: m.header.destination_prefix_length,
        v4: m.header.address_family == AddressFamily::Inet,
        metric: 0,
        interfaces: Vec::new(),
    };
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
                route.destination = Some(IpAddr::V4(*ip));
            }
            RouteAttribute::Destination(RouteAddress::Inet6(ip)) => {
                route.destination = Some(IpAddr::V6(*ip));
            }
            RouteAttribute::Priority(p) => route.metric = *p,
            RouteAttribute::Oif(i) => route.interfaces.push(*i),
            RouteAttribute::MultiPath(hops) => {
                route
                    .interfaces
                    .extend(hops.iter().map(|h| h.interface_index));
            }
            _ => {}
        }
    }
    Some(route)
}

/// Where a pool's addresses are answered on this node, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Exactly one interface.
    One {
        /// Its index.
        index: u32,
        /// Its name.
        name: String,
    },
    /// Several interfaces qualify equally (an ECMP default route, equal routes to the
    /// `can_reach` target): the first by name is chosen — the same on every restart and
    /// whatever order the kernel lists routes in or numbers interfaces.
    Several {
        /// The chosen one's index.
        index: u32,
        /// The chosen one's name.
        name: String,
        /// Every candidate, by name (the chosen one first).
        all: Vec<String>,
        /// Which routes offered them.
        source: String,
    },
    /// None: the named interface does not exist on this node.
    NoInterface(String),
    /// None: no route to the `can_reach` target, or no default route, of the family.
    NoRoute(String),
}

impl Resolution {
    /// The chosen interface's index, if any.
    pub fn index(&self) -> Option<u32> {
        match self {
            Resolution::One { index, .. } | Resolution::Several { index, .. } => Some(*index),
            Resolution::NoInterface(_) | Resolution::NoRoute(_) => None,
        }
    }

    /// The chosen interface's name, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Resolution::One { name, .. } | Resolution::Several { name, .. } => Some(name),
            Resolution::NoInterface(_) | Resolution::NoRoute(_) => None,
        }
    }
}

fn contains(route: &RouteFacts, ip: IpAddr) -> bool {
    if route.v4 != ip.is_ipv4() {
        return false;
    }
    if route.prefix_len == 0 {
        return true;
    }
    let Some(dst) = route.destination else {
        return false;
    };
    let len = u32::from(route.prefix_len);
    match (dst, ip) {
        (IpAddr::V4(d), IpAddr::V4(a)) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            u32::from(d) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(d), IpAddr::V6(a)) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            u128::from(d) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Picks the interface `spec` names among `routes` (this node's main table) and `links`
/// (pure): a name as is; `can_reach:<ip>` by the longest-prefix routes to `<ip>` of the
/// lowest metric; unset by the default routes of `vip`'s family of the lowest metric. When
/// those routes leave by several interfaces, the first by name is chosen and the others
/// named (see [`Resolution::Several`]). Policy routing is not consulted.
pub fn choose(
    spec: &Interface,
    vip: IpAddr,
    routes: &[RouteFacts],
    links: &BTreeMap<u32, LinkFacts>,
) -> Resolution {
    let (target, what) = match spec {
        Interface::Named(name) => {
            return match links.values().find(|l| l.name == *name) {
                Some(l) => Resolution::One {
                    index: l.index,
                    name: l.name.clone(),
                },
                None => Resolution::NoInterface(format!("no interface named {name}")),
            };
        }
        Interface::CanReach(ip) => (*ip, format!("route to {ip}")),
        Interface::DefaultRoute => (
            if vip.is_ipv4() {
                IpAddr::from([0, 0, 0, 0])
            } else {
                IpAddr::from([0u16; 8])
            },
            format!(
                "default route ({})",
                if vip.is_ipv4() { "IPv4" } else { "IPv6" }
            ),
        ),
    };
    let default_only = matches!(spec, Interface::DefaultRoute);
    let matching: Vec<&RouteFacts> = routes
        .iter()
        .filter(|r| {
            contains(r, target) && (!default_only || r.prefix_len == 0) && !r.interfaces.is_empty()
        })
        .collect();
    let Some(best) = matching
        .iter()
        .map(|r| (r.prefix_len, u32::MAX - r.metric))
        .max()
    else {
        return Resolution::NoRoute(format!("no {what}"));
    };
    let best_routes: Vec<&&RouteFacts> = matching
        .iter()
        .filter(|r| (r.prefix_len, u32::MAX - r.metric) == best)
        .collect();
    let mut names: Vec<(String, u32)> = best_routes
        .iter()
        .flat_map(|r| r.interfaces.iter())
        .filter_map(|i| links.get(i).map(|l| (l.name.clone(), l.index)))
        .collect();
    names.sort();
    names.dedup();
    match names.as_slice() {
        [] => Resolution::NoRoute(format!("no {what} over a known interface")),
        [(name, index)] => Resolution::One {
            index: *index,
            name: name.clone(),
        },
        [(name, index), ..] => Resolution::Several {
            index: *index,
            name: name.clone(),
            all: names.iter().map(|(n, _)| n.clone()).collect(),
            source: format!(
                "{} {what}{} of metric {}",
                if best_routes.len() == 1 {
                    "an equal-cost multipath"
                } else {
                    "equal"
                },
                if best_routes.len() == 1 { "" } else { "s" },
                u32::MAX - best.1
            ),
        },
    }
}

/// Where `spec` points on this node for an address of `vip`'s family, from the host's
/// main routing table (see [`choose`]).
pub async fn resolve_detailed(
    handle: &Handle,
    spec: &Interface,
    vip: IpAddr,
    links: &BTreeMap<u32, LinkFacts>,
) -> Resolution {
    let family_ip = match spec {
        Interface::Named(_) => return choose(spec, vip, &[], links),
        Interface::CanReach(ip) => *ip,
        Interface::DefaultRoute => vip,
    };
    let mut m = RouteMessage::default();
    m.header.address_family = family(family_ip);
    let dump: Result<Vec<RouteMessage>, _> = handle.route().get(m).execute().try_collect().await;
    let routes: Vec<RouteFacts> = match dump {
        Ok(all) => all.iter().filter_map(route_of).collect::<Vec<_>>(),
        Err(e) => {
            return Resolution::NoRoute(format!("the routing table could not be read: {e}"));
        }
    };
    choose(spec, vip, &routes, links)
}

/// The index of the interface `spec` names for an address of `vip`'s family on this
/// node: a name as is, `can_reach:<ip>` by the route to `<ip>`, unset by the default
/// route of the family (see [`choose`]). `None` when the host has no such interface or route.
pub async fn resolve(
    handle: &Handle,
    spec: &Interface,
    vip: IpAddr,
    links: &BTreeMap<u32, LinkFacts>,
) -> Option<u32> {
    resolve_detailed(handle, spec, vip, links).await.index()
}

fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(names: &[(u32, &str)]) -> BTreeMap<u32, LinkFacts> {
        names
            .iter()
            .map(|(i, n)| {
                (
                    *i,
                    LinkFacts {
                        index: *i,
                        name: (*n).to_string(),
                        mac: Some([2, 0, 0, 0, 0, u8::try_from(*i).unwrap_or(0)]),
                        up: true,
                    },
                )
            })
            .collect()
    }

    fn route(dst: Option<&str>, len: u8, metric: u32, via: &[u32]) -> RouteFacts {
        let destination = dst.and_then(|d| d.parse::<IpAddr>().ok());
        RouteFacts {
            v4: destination.is_none_or(|d| d.is_ipv4()),
            destination,
            prefix_len: len,
            metric,
            interfaces: via.to_vec(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn a_named_interface_is_found_or_said_missing() {
        let l = links(&[(2, "eth0"), (3, "eth1")]);
        let vip = ip("192.0.2.10");
        let named = |n: &str| Interface::Named(n.into());
        assert_eq!(
            choose(&named("eth1"), vip, &[], &l),
            Resolution::One {
                index: 3,
                name: "eth1".into()
            }
        );
        assert_eq!(
            choose(&named("eth9"), vip, &[], &l),
            Resolution::NoInterface("no interface named eth9".into())
        );
    }

    /// Regression: an ECMP default route (one route, `RTA_MULTIPATH`, no `RTA_OIF`) was read
    /// as no default route at all, so the node answered for nothing; now one of its
    /// interfaces is chosen, the first by name, and the others named.
    #[test]
    fn an_ecmp_default_route_chooses_the_first_interface_by_name() {
        // Indices in the other order than the names: the name decides, not the index.
        let l = links(&[(2, "eth1"), (3, "eth0"), (4, "eth2")]);
        let routes = [
            route(None, 0, 0, &[2, 3]),
            route(Some("10.0.0.0"), 24, 0, &[4]),
        ];
        let r = choose(&Interface::DefaultRoute, ip("192.0.2.10"), &routes, &l);
        assert_eq!(r.index(), Some(3));
        let Resolution::Several {
            name, all, source, ..
        } = r
        else {
            panic!("several: {r:?}");
        };
        assert_eq!(name, "eth0");
        assert_eq!(all, vec!["eth0".to_string(), "eth1".to_string()]);
        assert!(source.contains("multipath"), "{source}");
        // The same routes listed the other way round: the same choice.
        let mut reversed = routes.to_vec();
        reversed[0].interfaces.reverse();
        reversed.reverse();
        assert_eq!(
            choose(&Interface::DefaultRoute, ip("192.0.2.10"), &reversed, &l).index(),
            Some(3)
        );
    }

    #[test]
    fn the_lowest_metric_default_route_wins_and_families_are_apart() {
        let l = links(&[(2, "eth0"), (3, "eth1")]);
        let routes = [route(None, 0, 100, &[2]), route(None, 0, 50, &[3])];
        assert_eq!(
            choose(&Interface::DefaultRoute, ip("192.0.2.10"), &routes, &l),
            Resolution::One {
                index: 3,
                name: "eth1".into()
            }
        );
        // No IPv6 default route: an IPv6 address has none.
        assert!(matches!(
            choose(&Interface::DefaultRoute, ip("2001:db8::10"), &routes, &l),
            Resolution::NoRoute(m) if m.contains("IPv6")
        ));
    }

    #[test]
    fn can_reach_takes_the_longest_prefix_and_says_when_there_is_none() {
        let l = links(&[(2, "eth0"), (3, "eth1"), (4, "eth2")]);
        let routes = [
            route(None, 0, 0, &[2]),
            route(Some("10.1.0.0"), 16, 0, &[3]),
            route(Some("10.1.2.0"), 24, 0, &[4]),
            route(Some("fd00::"), 64, 256, &[3]),
        ];
        let reach = |t: &str| Interface::CanReach(ip(t));
        let vip = ip("192.0.2.10");
        assert_eq!(
            choose(&reach("10.1.2.7"), vip, &routes, &l).index(),
            Some(4)
        );
        assert_eq!(
            choose(&reach("10.1.9.7"), vip, &routes, &l).index(),
            Some(3)
        );
        assert_eq!(choose(&reach("8.8.8.8"), vip, &routes, &l).index(), Some(2));
        assert_eq!(choose(&reach("fd00::1"), vip, &routes, &l).index(), Some(3));
        assert!(matches!(
            choose(&reach("fd01::1"), vip, &routes, &l),
            Resolution::NoRoute(m) if m == "no route to fd01::1"
        ));
        // Two equal routes to the target: the first by name, and both named.
        let equal = [
            route(Some("10.1.2.0"), 24, 0, &[4]),
            route(Some("10.1.2.0"), 24, 0, &[3]),
        ];
        let r = choose(&reach("10.1.2.7"), vip, &equal, &l);
        assert!(
            matches!(&r, Resolution::Several { name, all, .. } if name == "eth1" && all.len() == 2),
            "{r:?}"
        );
    }
}
