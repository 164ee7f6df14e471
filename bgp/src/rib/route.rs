//! What a speaker announces: a prefix and the attributes it is announced with, in the
//! terms of the user (prepend count, next hop self) rather than of the wire. Turning them
//! into path attributes for one session is `export`'s job.

use std::fmt;
use std::net::IpAddr;

pub use crate::wire::attribute::{Community, ExtendedCommunity, LargeCommunity, Origin};
use crate::wire::iana::Family;
use crate::wire::prefix::{Ipv4Prefix, Ipv6Prefix};

/// An IPv4 or IPv6 prefix of any length.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    /// IPv4.
    V4(Ipv4Prefix),
    /// IPv6.
    V6(Ipv6Prefix),
}

impl Prefix {
    /// Builds a prefix from an address and a length (host bits are cleared); `None` when
    /// the length is too long for the family.
    pub fn new(addr: IpAddr, len: u8) -> Option<Prefix> {
        match addr {
            IpAddr::V4(a) => Ipv4Prefix::new(a, len).map(Prefix::V4),
            IpAddr::V6(a) => Ipv6Prefix::new(a, len).map(Prefix::V6),
        }
    }

    /// A host route: /32 for IPv4, /128 for IPv6 (how a VIP is announced).
    pub fn host(addr: IpAddr) -> Prefix {
        match addr {
            IpAddr::V4(a) => Prefix::V4(Ipv4Prefix::host(a)),
            IpAddr::V6(a) => Prefix::V6(Ipv6Prefix::host(a)),
        }
    }

    /// The address family (unicast).
    pub fn family(&self) -> Family {
        match self {
            Prefix::V4(_) => Family::IPV4_UNICAST,
            Prefix::V6(_) => Family::IPV6_UNICAST,
        }
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        match self {
            Prefix::V4(p) => IpAddr::V4(p.addr()),
            Prefix::V6(p) => IpAddr::V6(p.addr()),
        }
    }

    /// The prefix length.
    pub fn len(&self) -> u8 {
        match self {
            Prefix::V4(p) => p.len(),
            Prefix::V6(p) => p.len(),
        }
    }

    /// Whether this is a default route (length 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len())
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len())
    }
}

impl std::str::FromStr for Prefix {
    type Err = String;

    /// Parses `addr/len`, or a bare address as a host route.
    fn from_str(s: &str) -> Result<Prefix, String> {
        match s.split_once('/') {
            None => s
                .parse::<IpAddr>()
                .map(Prefix::host)
                .map_err(|e| format!("{s}: {e}")),
            Some((addr, len)) => {
                let addr: IpAddr = addr.parse().map_err(|e| format!("{s}: {e}"))?;
                let len: u8 = len.parse().map_err(|e| format!("{s}: {e}"))?;
                Prefix::new(addr, len).ok_or_else(|| format!("{s}: prefix length too long"))
            }
        }
    }
}

/// Where traffic for the route should go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NextHop {
    /// The session's own local address (IPv6: global, plus link-local when the peer is on
    /// the same link). What a Berth node announces: itself.
    #[default]
    Myself,
    /// An explicit address.
    Address(IpAddr),
}

/// The GRACEFUL_SHUTDOWN well-known community 65535:0 (RFC 8326).
pub const GRACEFUL_SHUTDOWN: Community = Community(0xFFFF_0000);

/// LOCAL_PREF an iBGP route is lowered to during graceful shutdown (RFC 8326 §4.1 suggests 0).
pub const GRACEFUL_SHUTDOWN_LOCAL_PREF: u32 = 0;

/// The attributes a prefix is announced with. Equal values are shared (see
/// `AttributeInterner`), so that the packer can group prefixes by pointer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteAttrs {
    /// ORIGIN.
    pub origin: Origin,
    /// How many extra times an AS is prepended on eBGP sessions (path shaping): the path
    /// sent is our AS, then this many copies of `prepend_as`. iBGP sessions never prepend.
    pub as_path_prepend: u8,
    /// The AS prepended; `None` is our own AS on the session.
    pub prepend_as: Option<u32>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF, sent on iBGP sessions only (default 100 there).
    pub local_pref: Option<u32>,
    /// COMMUNITIES (RFC 1997).
    pub communities: Vec<Community>,
    /// LARGE_COMMUNITY (RFC 8092).
    pub large_communities: Vec<LargeCommunity>,
    /// EXTENDED_COMMUNITIES (RFC 4360).
    pub extended_communities: Vec<ExtendedCommunity>,
    /// The next hop.
    pub next_hop: NextHop,
}

impl Default for RouteAttrs {
    /// ORIGIN IGP, next hop self, nothing else.
    fn default() -> Self {
        Self {
            origin: Origin::Igp,
            as_path_prepend: 0,
            prepend_as: None,
            med: None,
            local_pref: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
            extended_communities: Vec::new(),
            next_hop: NextHop::Myself,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_and_prefixes() {
        let p: Prefix = "10.0.0.1".parse().expect("host");
        assert_eq!((p.len(), p.family()), (32, Family::IPV4_UNICAST));
        let p: Prefix = "2001:db8::1".parse().expect("host6");
        assert_eq!((p.len(), p.family()), (128, Family::IPV6_UNICAST));
        let p: Prefix = "10.1.2.3/16".parse().expect("net");
        assert_eq!(p.to_string(), "10.1.0.0/16");
        assert!("10.0.0.0/33".parse::<Prefix>().is_err());
        assert!("nonsense".parse::<Prefix>().is_err());
    }
}
