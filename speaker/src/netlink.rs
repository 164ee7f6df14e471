//! The host, through rtnetlink: the address to use as router ID when the cluster gives
//! none, and (optionally) the VIPs put on a dummy device so a standalone host answers on
//! them, taken off again when withdrawn.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::{Handle, LinkDummy, LinkUnspec};
use tracing::{info, warn};

/// An rtnetlink error, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct NetlinkError {
    what: String,
    message: String,
}

fn err(what: impl Into<String>, e: impl std::fmt::Display) -> NetlinkError {
    NetlinkError {
        what: what.into(),
        message: e.to_string(),
    }
}

fn connect() -> Result<Handle, NetlinkError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| err("netlink socket", e))?;
    tokio::spawn(conn);
    Ok(handle)
}

/// The address of an address message: IFA_LOCAL when present (IPv4; it differs from
/// IFA_ADDRESS on point-to-point links), else IFA_ADDRESS (IPv6 carries only that).
fn address_of(m: &AddressMessage) -> Option<IpAddr> {
    let local = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

/// Whether an IPv4 address can serve as a router ID (not loopback, link-local,
/// unspecified or multicast).
pub fn usable_router_id(a: Ipv4Addr) -> bool {
    !(a.is_loopback() || a.is_link_local() || a.is_unspecified() || a.is_multicast())
}

/// The host's first usable IPv4 address (lowest interface index, then lowest address):
/// the router ID when neither `BgpConf` nor the Node gives one.
pub async fn host_router_id() -> Result<Option<Ipv4Addr>, NetlinkError> {
    let handle = connect()?;
    let mut found: Vec<(u32, Ipv4Addr)> = Vec::new();
    let mut stream = handle.address().get().execute();
    while let Some(m) = stream
        .try_next()
        .await
        .map_err(|e| err("listing addresses", e))?
    {
        if let Some(IpAddr::V4(a)) = address_of(&m)
            && usable_router_id(a)
        {
            found.push((m.header.index, a));
        }
    }
    found.sort();
    Ok(found.first().map(|(_, a)| *a))
}

/// Whether a host route found on the device at start may be a VIP of an earlier run
/// (never the loopback or link-local addresses a device like `lo` carries anyway).
fn adoptable(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => usable_router_id(v4),
        IpAddr::V6(v6) => !(v6.is_loopback() || v6.is_unicast_link_local() || v6.is_unspecified()),
    }
}

/// A device holding this node's announced VIPs: a dummy device Berth creates, or any
/// existing device (such as `lo`).
pub struct VipDevice {
    handle: Handle,
    name: String,
    index: u32,
    held: BTreeSet<IpAddr>,
}

impl VipDevice {
    /// Uses the device `name`, creating it as a dummy device when missing (the kernel
    /// needs the `dummy` driver for that), brings it up, and adopts the host routes (/32,
    /// /128) already on it (left by an earlier run).
    pub async fn open(name: &str) -> Result<VipDevice, NetlinkError> {
        let handle = connect()?;
        let index = match Self::find(&handle, name).await? {
            Some(i) => i,
            None => {
                handle
                    .link()
                    .add(LinkDummy::new(name).build())
                    .execute()
                    .await
                    .map_err(|e| err(format!("creating dummy device {name}"), e))?;
                Self::find(&handle, name)
                    .await?
                    .ok_or_else(|| err(format!("dummy device {name}"), "vanished after creation"))?
            }
        };
        handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| err(format!("bringing {name} up"), e))?;
        let mut held = BTreeSet::new();
        let mut stream = handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(m) = stream
            .try_next()
            .await
            .map_err(|e| err("listing VIPs", e))?
        {
            let host = if m.header.family == netlink_packet_route::AddressFamily::Inet {
                32
            } else {
                128
            };
            if m.header.prefix_len == host
                && let Some(a) = address_of(&m)
                && adoptable(a)
            {
                held.insert(a);
            }
        }
        info!(device = name, vips = held.len(), "VIP device ready");
        Ok(VipDevice {
            handle,
            name: name.to_string(),
            index,
            held,
        })
    }

    async fn find(handle: &Handle, name: &str) -> Result<Option<u32>, NetlinkError> {
        let mut stream = handle.link().get().match_name(name.to_string()).execute();
        match stream.try_next().await {
            Ok(Some(link)) => Ok(Some(link.header.index)),
            Ok(None) => Ok(None),
            // ENODEV: no such device.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -19 => Ok(None),
            Err(e) => Err(err(format!("looking up {name}"), e)),
        }
    }

    /// The VIPs on the device.
    pub fn held(&self) -> &BTreeSet<IpAddr> {
        &self.held
    }

    /// Puts exactly `want` on the device: adds what is missing, removes what is no
    /// longer wanted. Failures are logged and retried next time.
    pub async fn sync(&mut self, want: &BTreeSet<IpAddr>) {
        let remove: Vec<IpAddr> = self.held.difference(want).copied().collect();
        let add: Vec<IpAddr> = want.difference(&self.held).copied().collect();
        for ip in remove {
            match self.delete(ip).await {
                Ok(()) => {
                    self.held.remove(&ip);
                }
                Err(e) => warn!(device = %self.name, "{e}"),
            }
        }
        for ip in add {
            let len = if ip.is_ipv4() { 32 } else { 128 };
            match self
                .handle
                .address()
                .add(self.index, ip, len)
                .execute()
                .await
            {
                Ok(()) => {
                    self.held.insert(ip);
                }
                // EEXIST: someone put it there already; it is ours now.
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -17 => {
                    self.held.insert(ip);
                }
                Err(e) => warn!(device = %self.name, vip = %ip, "adding VIP: {e}"),
            }
        }
    }

    async fn delete(&self, ip: IpAddr) -> Result<(), NetlinkError> {
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(self.index)
            .set_address_filter(ip)
            .execute();
        while let Some(m) = stream
            .try_next()
            .await
            .map_err(|e| err("listing VIPs", e))?
        {
            self.handle
                .address()
                .del(m)
                .execute()
                .await
                .map_err(|e| err(format!("removing VIP {ip}"), e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_id_candidates() {
        assert!(usable_router_id(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(!usable_router_id(Ipv4Addr::LOCALHOST));
        assert!(!usable_router_id(Ipv4Addr::new(169, 254, 1, 1)));
        assert!(!usable_router_id(Ipv4Addr::UNSPECIFIED));
    }
}
