//! MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760 §3, §4) for IPv4 and IPv6 unicast, with
//! IPv6 next hops of 16 or 32 octets (RFC 2545 §3) and IPv6 next hops for IPv4 NLRI
//! (RFC 8950). Other families are kept as bytes.
//!
//! ```text
//! +---------------------------------------------------------+
//! | Address Family Identifier (2 octets)                    |
//! +---------------------------------------------------------+
//! | Subsequent Address Family Identifier (1 octet)          |
//! +---------------------------------------------------------+
//! | Length of Next Hop Network Address (1 octet)            |   MP_REACH only
//! +---------------------------------------------------------+
//! | Network Address of Next Hop (variable)                  |   MP_REACH only
//! +---------------------------------------------------------+
//! | Reserved (1 octet)                                      |   MP_REACH only
//! +---------------------------------------------------------+
//! | Network Layer Reachability Information (variable)       |
//! +---------------------------------------------------------+
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};

use super::context::Context;
use super::iana::Family;
use super::prefix::{Ipv4Prefix, Ipv6Prefix, Nlri, WirePrefix, decode_nlri, encode_nlri_list};

/// The next hop carried in MP_REACH_NLRI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MpNextHop {
    /// A 4-octet IPv4 next hop.
    V4(Ipv4Addr),
    /// A 16-octet global IPv6 next hop, optionally followed by a link-local one (32 octets).
    V6 {
        /// Global address.
        global: Ipv6Addr,
        /// Link-local address, when 32 octets were sent.
        link_local: Option<Ipv6Addr>,
    },
}

impl MpNextHop {
    fn wire_len(&self) -> u8 {
        match self {
            MpNextHop::V4(_) => 4,
            MpNextHop::V6 {
                link_local: None, ..
            } => 16,
            MpNextHop::V6 {
                link_local: Some(_),
                ..
            } => 32,
        }
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(self.wire_len());
        match self {
            MpNextHop::V4(a) => buf.extend_from_slice(&a.octets()),
            MpNextHop::V6 { global, link_local } => {
                buf.extend_from_slice(&global.octets());
                if let Some(ll) = link_local {
                    buf.extend_from_slice(&ll.octets());
                }
            }
        }
    }

    fn decode(family: Family, bytes: &[u8]) -> Option<MpNextHop> {
        match (family, bytes.len()) {
            (Family::IPV4_UNICAST, 4) => Some(MpNextHop::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(bytes).ok()?,
            ))),
            (_, 16) => Some(MpNextHop::V6 {
                global: Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?),
                link_local: None,
            }),
            (_, 32) => Some(MpNextHop::V6 {
                global: Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[..16]).ok()?),
                link_local: Some(Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[16..]).ok()?)),
            }),
            _ => None,
        }
    }
}

/// MP_REACH_NLRI (RFC 4760 §3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MpReach {
    /// IPv4 unicast routes.
    Ipv4Unicast {
        /// Next hop (IPv4, or IPv6 per RFC 8950).
        next_hop: MpNextHop,
        /// Reachable prefixes.
        nlri: Vec<Nlri<Ipv4Prefix>>,
    },
    /// IPv6 unicast routes.
    Ipv6Unicast {
        /// Next hop.
        next_hop: MpNextHop,
        /// Reachable prefixes.
        nlri: Vec<Nlri<Ipv6Prefix>>,
    },
    /// Another family, kept as the bytes after AFI and SAFI.
    Other {
        /// The family.
        family: Family,
        /// Everything after AFI and SAFI.
        data: Vec<u8>,
    },
}

/// MP_UNREACH_NLRI (RFC 4760 §4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MpUnreach {
    /// Withdrawn IPv4 unicast routes.
    Ipv4Unicast(Vec<Nlri<Ipv4Prefix>>),
    /// Withdrawn IPv6 unicast routes.
    Ipv6Unicast(Vec<Nlri<Ipv6Prefix>>),
    /// Another family, kept as the bytes after AFI and SAFI.
    Other {
        /// The family.
        family: Family,
        /// Everything after AFI and SAFI.
        data: Vec<u8>,
    },
}

impl MpReach {
    /// The family.
    pub fn family(&self) -> Family {
        match self {
            MpReach::Ipv4Unicast { .. } => Family::IPV4_UNICAST,
            MpReach::Ipv6Unicast { .. } => Family::IPV6_UNICAST,
            MpReach::Other { family, .. } => *family,
        }
    }

    /// Number of prefixes carried (0 for other families).
    pub fn prefix_count(&self) -> usize {
        match self {
            MpReach::Ipv4Unicast { nlri, .. } => nlri.len(),
            MpReach::Ipv6Unicast { nlri, .. } => nlri.len(),
            MpReach::Other { .. } => 0,
        }
    }

    /// Decodes the attribute value; `None` if the next hop length does not fit the family
    /// or the NLRI cannot be parsed (RFC 7606 §7.11: session reset).
    pub(crate) fn decode(v: &[u8], ctx: &Context) -> Option<MpReach> {
        let (head, rest) = v.split_first_chunk::<3>()?;
        let family = Family::new(u16::from_be_bytes([head[0], head[1]]), head[2]);
        if family != Family::IPV4_UNICAST && family != Family::IPV6_UNICAST {
            return Some(MpReach::Other {
                family,
                data: rest.to_vec(),
            });
        }
        let (&nh_len, rest) = rest.split_first()?;
        let nh_bytes = rest.get(..usize::from(nh_len))?;
        let next_hop = MpNextHop::decode(family, nh_bytes)?;
        // One reserved octet (formerly the SNPA count), ignored on receipt (RFC 4760 §3).
        let nlri_bytes = rest.get(usize::from(nh_len) + 1..)?;
        let add_path = ctx.add_path_for(family);
        Some(if family == Family::IPV4_UNICAST {
            MpReach::Ipv4Unicast {
                next_hop,
                nlri: decode_nlri(nlri_bytes, add_path)?,
            }
        } else {
            MpReach::Ipv6Unicast {
                next_hop,
                nlri: decode_nlri(nlri_bytes, add_path)?,
            }
        })
    }

    pub(crate) fn encode_value(&self, ctx: &Context, buf: &mut BytesMut) {
        let family = self.family();
        buf.put_u16(family.afi.0);
        buf.put_u8(family.safi.0);
        let add_path = ctx.add_path_for(family);
        match self {
            MpReach::Ipv4Unicast { next_hop, nlri } => {
                encode_reach_tail(next_hop, nlri, add_path, buf)
            }
            MpReach::Ipv6Unicast { next_hop, nlri } => {
                encode_reach_tail(next_hop, nlri, add_path, buf)
            }
            MpReach::Other { data, .. } => buf.extend_from_slice(data),
        }
    }
}

fn encode_reach_tail<P: WirePrefix>(
    next_hop: &MpNextHop,
    nlri: &[Nlri<P>],
    add_path: bool,
    buf: &mut BytesMut,
) {
    next_hop.encode(buf);
    buf.put_u8(0);
    encode_nlri_list(nlri, add_path, buf);
}

impl MpUnreach {
    /// The family.
    pub fn family(&self) -> Family {
        match self {
            MpUnreach::Ipv4Unicast(_) => Family::IPV4_UNICAST,
            MpUnreach::Ipv6Unicast(_) => Family::IPV6_UNICAST,
            MpUnreach::Other { family, .. } => *family,
        }
    }

    /// Number of prefixes carried (0 for other families).
    pub fn prefix_count(&self) -> usize {
        match self {
            MpUnreach::Ipv4Unicast(n) => n.len(),
            MpUnreach::Ipv6Unicast(n) => n.len(),
            MpUnreach::Other { .. } => 0,
        }
    }

    /// Decodes the attribute value; `None` if the withdrawn routes cannot be parsed.
    pub(crate) fn decode(v: &[u8], ctx: &Context) -> Option<MpUnreach> {
        let (head, rest) = v.split_first_chunk::<3>()?;
        let family = Family::new(u16::from_be_bytes([head[0], head[1]]), head[2]);
        let add_path = ctx.add_path_for(family);
        Some(match family {
            Family::IPV4_UNICAST => MpUnreach::Ipv4Unicast(decode_nlri(rest, add_path)?),
            Family::IPV6_UNICAST => MpUnreach::Ipv6Unicast(decode_nlri(rest, add_path)?),
            _ => MpUnreach::Other {
                family,
                data: rest.to_vec(),
            },
        })
    }

    pub(crate) fn encode_value(&self, ctx: &Context, buf: &mut BytesMut) {
        let family = self.family();
        buf.put_u16(family.afi.0);
        buf.put_u8(family.safi.0);
        let add_path = ctx.add_path_for(family);
        match self {
            MpUnreach::Ipv4Unicast(n) => encode_nlri_list(n, add_path, buf),
            MpUnreach::Ipv6Unicast(n) => encode_nlri_list(n, add_path, buf),
            MpUnreach::Other { data, .. } => buf.extend_from_slice(data),
        }
    }
}
