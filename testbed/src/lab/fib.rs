//! The kernel FIB of a namespace, read through rtnetlink: prefix → set of next hops, with
//! multipath routes (RTA_MULTIPATH) and IPv6 routes split over several messages merged.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use ipnetwork::IpNetwork;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType,
};
use rtnetlink::{Handle, RouteMessageBuilder};

use crate::{Error, Result};

/// The main routing table of one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fib {
    /// Unicast routes by destination prefix.
    pub routes: BTreeMap<IpNetwork, FibRoute>,
}

/// One destination of the FIB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FibRoute {
    /// Who installed it, as the kernel names protocols (`bird`, `bgp`, `kernel`, `boot`, …).
    pub protocol: String,
    /// Every next hop (one for a plain route, several for ECMP).
    pub next_hops: BTreeSet<FibNextHop>,
}

/// One next hop of a [`FibRoute`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FibNextHop {
    /// The gateway, or `None` for a directly connected route.
    pub gateway: Option<IpAddr>,
    /// The output interface index.
    pub interface: u32,
}

impl Fib {
    /// The route for exactly `prefix`, if any.
    pub fn route(&self, prefix: IpNetwork) -> Option<&FibRoute> {
        self.routes.get(&prefix)
    }

    /// The gateways of the route for exactly `prefix` (empty when there is no such route).
    pub fn gateways(&self, prefix: IpNetwork) -> BTreeSet<IpAddr> {
        self.route(prefix)
            .map(|route| {
                route
                    .next_hops
                    .iter()
                    .filter_map(|hop| hop.gateway)
                    .collect()
            })
            .unwrap_or_default()
    }
}

const MAIN_TABLE: u32 = 254;

fn address(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn protocol_name(protocol: RouteProtocol) -> String {
    match protocol {
        RouteProtocol::Kernel => "kernel".into(),
        RouteProtocol::Boot => "boot".into(),
        RouteProtocol::Static => "static".into(),
        RouteProtocol::Bird => "bird".into(),
        RouteProtocol::Bgp => "bgp".into(),
        RouteProtocol::Zebra => "zebra".into(),
        other => format!("{}", u8::from(other)),
    }
}

/// Folds one route message into `fib`; messages of other tables or types are ignored.
pub(crate) fn absorb(fib: &mut Fib, message: &RouteMessage) {
    let header = &message.header;
    if header.kind != RouteType::Unicast {
        return;
    }
    let mut table = u32::from(header.table);
    let mut destination = None;
    let mut gateway = None;
    let mut interface = 0;
    let mut multipath = Vec::new();
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(addr) => destination = address(addr),
            RouteAttribute::Gateway(addr) => gateway = address(addr),
            RouteAttribute::Oif(index) => interface = *index,
            RouteAttribute::MultiPath(hops) => {
                for hop in hops {
                    let gateway = hop.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Gateway(addr) => address(addr),
                        _ => None,
                    });
                    multipath.push(FibNextHop {
                        gateway,
                        interface: hop.interface_index,
                    });
                }
            }
            _ => {}
        }
    }
    if table != MAIN_TABLE {
        return;
    }
    let len = header.destination_prefix_length;
    let destination = destination.unwrap_or(match header.address_family {
        netlink_packet_route::AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    });
    let Ok(prefix) = IpNetwork::new(destination, len) else {
        return;
    };
    let route = fib.routes.entry(prefix).or_insert_with(|| FibRoute {
        protocol: protocol_name(header.protocol),
        next_hops: BTreeSet::new(),
    });
    if multipath.is_empty() {
        route.next_hops.insert(FibNextHop { gateway, interface });
    } else {
        route.next_hops.extend(multipath);
    }
}

/// Reads the main table (IPv4 and IPv6) through `handle`.
pub(crate) async fn read(handle: &Handle) -> Result<Fib> {
    let mut fib = Fib::default();
    let v4 = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let v6 = RouteMessageBuilder::<Ipv6Addr>::new().build();
    for request in [v4, v6] {
        let mut routes = handle.route().get(request).execute();
        while let Some(message) = routes
            .try_next()
            .await
            .map_err(|e| Error::netlink("dump routes", e))?
        {
            absorb(&mut fib, &message);
        }
    }
    Ok(fib)
}
