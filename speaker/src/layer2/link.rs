//! The host's interfaces as layer 2 needs them, through rtnetlink: name, index, MAC and
//! carrier (administratively up and `IFF_LOWER_UP`), kept current from the kernel's link
//! notifications (`RTNLGRP_LINK`) so an owner whose link goes down hears it at once, not at
//! the next poll; and which interface `Eip.spec.interface` names on this node.
//!
//! Must not know about owners or frames.

use std::collections::BTreeMap;
use std::net::IpAddr;

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
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

fn oif(m: &RouteMessage) -> Option<u32> {
    m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

/// The index of the interface `spec` names for an address of `vip`'s family on this
/// node: a name as is, `can_reach:<ip>` by the route to `<ip>`, unset by the default
/// route of the family. `None` when the host has no such interface or route.
pub async fn resolve(
    handle: &Handle,
    spec: &Interface,
    vip: IpAddr,
    links: &BTreeMap<u32, LinkFacts>,
) -> Option<u32> {
    match spec {
        Interface::Named(name) => links.values().find(|l| l.name == *name).map(|l| l.index),
        Interface::CanReach(ip) => {
            let mut m = RouteMessage::default();
            m.header.address_family = family(*ip);
            m.header.destination_prefix_length = if ip.is_ipv4() { 32 } else { 128 };
            m.attributes
                .push(RouteAttribute::Destination(RouteAddress::from(*ip)));
            let mut stream = handle.route().get(m).execute();
            stream
                .try_next()
                .await
                .ok()
                .flatten()
                .as_ref()
                .and_then(oif)
        }
        Interface::DefaultRoute => {
            let mut m = RouteMessage::default();
            m.header.address_family = family(vip);
            let routes: Vec<RouteMessage> =
                handle.route().get(m).execute().try_collect().await.ok()?;
            routes
                .iter()
                .filter(|r| {
                    r.header.destination_prefix_length == 0
                        && r.header.table == RouteHeader::RT_TABLE_MAIN
                })
                .find_map(oif)
        }
    }
}

fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}
