//! BGP capabilities advertised in OPEN (RFC 5492 §4).
//!
//! ```text
//! +------------------------------+
//! | Capability Code (1 octet)    |
//! +------------------------------+
//! | Capability Length (1 octet)  |
//! +------------------------------+
//! | Capability Value (variable)  |
//! +------------------------------+
//! ```
//!
//! A capability that is unknown, or whose value does not have the layout its RFC gives, is
//! kept as [`Capability::Unknown`] with its bytes: RFC 5492 never makes it a reason to
//! reset the session.

use std::fmt;

use bytes::{BufMut, BytesMut};
use nom::Parser;
use nom::bytes::complete::take;
use nom::combinator::all_consuming;
use nom::multi::many0;
use nom::number::complete::{be_u8, be_u16, be_u24};

use super::error::EncodeError;
use super::iana::{Family, capability_code as code};

type Res<'a, T> = nom::IResult<&'a [u8], T, ()>;

/// One capability.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// Multiprotocol extensions for one family (RFC 4760 §8).
    Multiprotocol(Family),
    /// Route refresh (RFC 2918 §3).
    RouteRefresh,
    /// Pre-standard route refresh, code 128.
    RouteRefreshCisco,
    /// Enhanced route refresh (RFC 7313 §3).
    EnhancedRouteRefresh,
    /// Support for 4-octet AS numbers, with the speaker's AS (RFC 6793 §3).
    FourOctetAs(u32),
    /// Graceful restart (RFC 4724 §3).
    GracefulRestart(GracefulRestart),
    /// ADD-PATH (RFC 7911 §4).
    AddPath(Vec<AddPathFamily>),
    /// Extended messages (RFC 8654 §3).
    ExtendedMessage,
    /// Extended next hop encoding (RFC 8950 §3).
    ExtendedNextHop(Vec<ExtendedNextHopEntry>),
    /// Host and domain name (draft-walton-bgp-hostname-capability).
    Fqdn {
        /// Host name.
        hostname: String,
        /// Domain name.
        domain: String,
    },
    /// Long-lived graceful restart (RFC 9494 §3).
    LongLivedGracefulRestart(Vec<LlgrFamily>),
    /// Anything else, kept as received.
    Unknown {
        /// Capability code.
        code: u8,
        /// Capability value.
        data: Vec<u8>,
    },
}

/// Graceful restart capability value (RFC 4724 §3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// The four restart flag bits (R = 0x8, N = 0x4 per RFC 8538), right-aligned.
    pub flags: u8,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    /// Families whose state is preserved.
    pub families: Vec<GracefulRestartFamily>,
}

impl GracefulRestart {
    /// Restart State (R) bit.
    pub const RESTART_STATE: u8 = 0x8;
    /// Graceful Notification (N) bit, RFC 8538.
    pub const NOTIFICATION: u8 = 0x4;
}

/// One family of the graceful restart capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GracefulRestartFamily {
    /// The family.
    pub family: Family,
    /// Flags for the family; 0x80 is Forwarding State (F).
    pub flags: u8,
}

/// ADD-PATH Send/Receive field (RFC 7911 §4).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddPathMode(pub u8);

impl AddPathMode {
    /// Willing to receive multiple paths.
    pub const RECEIVE: AddPathMode = AddPathMode(1);
    /// Willing to send multiple paths.
    pub const SEND: AddPathMode = AddPathMode(2);
    /// Both.
    pub const BOTH: AddPathMode = AddPathMode(3);

    /// Whether the speaker is willing to receive.
    pub fn receive(self) -> bool {
        self.0 & 1 != 0
    }

    /// Whether the speaker is willing to send.
    pub fn send(self) -> bool {
        self.0 & 2 != 0
    }
}

impl fmt::Debug for AddPathMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AddPathMode::RECEIVE => f.write_str("Receive"),
            AddPathMode::SEND => f.write_str("Send"),
            AddPathMode::BOTH => f.write_str("Both"),
            AddPathMode(other) => write!(f, "AddPathMode({other})"),
        }
    }
}

/// One family of the ADD-PATH capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddPathFamily {
    /// The family.
    pub family: Family,
    /// Send, receive or both.
    pub mode: AddPathMode,
}

/// One entry of the extended next hop capability (RFC 8950 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExtendedNextHopEntry {
    /// NLRI AFI.
    pub nlri_afi: u16,
    /// NLRI SAFI (two octets in this capability).
    pub nlri_safi: u16,
    /// AFI of the next hop.
    pub next_hop_afi: u16,
}

/// One family of the long-lived graceful restart capability (RFC 9494 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LlgrFamily {
    /// The family.
    pub family: Family,
    /// Flags; 0x80 is Forwarding State (F).
    pub flags: u8,
    /// Long-lived stale time in seconds (24 bits).
    pub stale_time: u32,
}

impl Capability {
    /// The capability code.
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol(_) => code::MULTIPROTOCOL,
            Capability::RouteRefresh => code::ROUTE_REFRESH,
            Capability::RouteRefreshCisco => code::ROUTE_REFRESH_CISCO,
            Capability::EnhancedRouteRefresh => code::ENHANCED_ROUTE_REFRESH,
            Capability::FourOctetAs(_) => code::FOUR_OCTET_AS,
            Capability::GracefulRestart(_) => code::GRACEFUL_RESTART,
            Capability::AddPath(_) => code::ADD_PATH,
            Capability::ExtendedMessage => code::EXTENDED_MESSAGE,
            Capability::ExtendedNextHop(_) => code::EXTENDED_NEXT_HOP,
            Capability::Fqdn { .. } => code::FQDN,
            Capability::LongLivedGracefulRestart(_) => code::LONG_LIVED_GRACEFUL_RESTART,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Decodes one capability value; anything that does not fit its RFC layout becomes
    /// `Unknown`.
    pub(crate) fn decode(cap_code: u8, value: &[u8]) -> Capability {
        Capability::decode_known(cap_code, value).unwrap_or_else(|| Capability::Unknown {
            code: cap_code,
            data: value.to_vec(),
        })
    }

    fn decode_known(cap_code: u8, v: &[u8]) -> Option<Capability> {
        let parsed = match cap_code {
            code::MULTIPROTOCOL => {
                let [a0, a1, 0, safi] = *v else { return None };
                Capability::Multiprotocol(Family::new(u16::from_be_bytes([a0, a1]), safi))
            }
            code::ROUTE_REFRESH if v.is_empty() => Capability::RouteRefresh,
            code::ROUTE_REFRESH_CISCO if v.is_empty() => Capability::RouteRefreshCisco,
            code::ENHANCED_ROUTE_REFRESH if v.is_empty() => Capability::EnhancedRouteRefresh,
            code::EXTENDED_MESSAGE if v.is_empty() => Capability::ExtendedMessage,
            code::FOUR_OCTET_AS => Capability::FourOctetAs(u32::from_be_bytes(v.try_into().ok()?)),
            code::GRACEFUL_RESTART => {
                let (rest, head) = be_u16::<_, ()>(v).ok()?;
                let r: Res<'_, _> =
                    all_consuming(many0((be_u16, be_u8, be_u8).map(|(afi, safi, flags)| {
                        GracefulRestartFamily {
                            family: Family::new(afi, safi),
                            flags,
                        }
                    })))
                    .parse(rest);
                let (_, families) = r.ok()?;
                Capability::GracefulRestart(GracefulRestart {
                    flags: (head >> 12) as u8,
                    restart_time: head & 0x0fff,
                    families,
                })
            }
            code::ADD_PATH => {
                let r: Res<'_, _> =
                    all_consuming(many0((be_u16, be_u8, be_u8).map(|(afi, safi, mode)| {
                        AddPathFamily {
                            family: Family::new(afi, safi),
                            mode: AddPathMode(mode),
                        }
                    })))
                    .parse(v);
                let (_, families) = r.ok()?;
                Capability::AddPath(families)
            }
            code::EXTENDED_NEXT_HOP => {
                let r: Res<'_, _> = all_consuming(many0((be_u16, be_u16, be_u16).map(
                    |(nlri_afi, nlri_safi, next_hop_afi)| ExtendedNextHopEntry {
                        nlri_afi,
                        nlri_safi,
                        next_hop_afi,
                    },
                )))
                .parse(v);
                Capability::ExtendedNextHop(r.ok()?.1)
            }
            code::LONG_LIVED_GRACEFUL_RESTART => {
                let r: Res<'_, _> = all_consuming(many0((be_u16, be_u8, be_u8, be_u24).map(
                    |(afi, safi, flags, stale_time)| LlgrFamily {
                        family: Family::new(afi, safi),
                        flags,
                        stale_time,
                    },
                )))
                .parse(v);
                Capability::LongLivedGracefulRestart(r.ok()?.1)
            }
            code::FQDN => {
                let r: Res<'_, _> =
                    all_consuming((be_u8.flat_map(take), be_u8.flat_map(take))).parse(v);
                let (host, domain) = r.ok()?.1;
                Capability::Fqdn {
                    hostname: String::from_utf8(host.to_vec()).ok()?,
                    domain: String::from_utf8(domain.to_vec()).ok()?,
                }
            }
            _ => return None,
        };
        Some(parsed)
    }

    /// Appends code, length and value.
    pub(crate) fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        buf.put_u8(self.code());
        let len_at = buf.len();
        buf.put_u8(0);
        match self {
            Capability::Multiprotocol(f) => {
                buf.put_u16(f.afi.0);
                buf.put_u8(0);
                buf.put_u8(f.safi.0);
            }
            Capability::RouteRefresh
            | Capability::RouteRefreshCisco
            | Capability::EnhancedRouteRefresh
            | Capability::ExtendedMessage => {}
            Capability::FourOctetAs(asn) => buf.put_u32(*asn),
            Capability::GracefulRestart(gr) => {
                buf.put_u16((u16::from(gr.flags & 0xf) << 12) | (gr.restart_time & 0x0fff));
                for f in &gr.families {
                    buf.put_u16(f.family.afi.0);
                    buf.put_u8(f.family.safi.0);
                    buf.put_u8(f.flags);
                }
            }
            Capability::AddPath(families) => {
                for f in families {
                    buf.put_u16(f.family.afi.0);
                    buf.put_u8(f.family.safi.0);
                    buf.put_u8(f.mode.0);
                }
            }
            Capability::ExtendedNextHop(entries) => {
                for e in entries {
                    buf.put_u16(e.nlri_afi);
                    buf.put_u16(e.nlri_safi);
                    buf.put_u16(e.next_hop_afi);
                }
            }
            Capability::Fqdn { hostname, domain } => {
                for s in [hostname, domain] {
                    let len = u8::try_from(s.len()).map_err(|_| EncodeError::FieldTooLong {
                        field: "FQDN capability name",
                    })?;
                    buf.put_u8(len);
                    buf.extend_from_slice(s.as_bytes());
                }
            }
            Capability::LongLivedGracefulRestart(families) => {
                for f in families {
                    buf.put_u16(f.family.afi.0);
                    buf.put_u8(f.family.safi.0);
                    buf.put_u8(f.flags);
                    let t = f.stale_time.to_be_bytes();
                    buf.extend_from_slice(&t[1..]);
                }
            }
            Capability::Unknown { data, .. } => buf.extend_from_slice(data),
        }
        let len = u8::try_from(buf.len() - len_at - 1).map_err(|_| EncodeError::FieldTooLong {
            field: "capability value",
        })?;
        buf[len_at] = len;
        Ok(())
    }
}

/// Decodes a Capabilities optional parameter value: a list of capabilities. `None` if a
/// capability overruns the parameter.
pub(crate) fn decode_capabilities(mut v: &[u8]) -> Option<Vec<Capability>> {
    let mut out = Vec::with_capacity(v.len() / 2);
    while !v.is_empty() {
        let r: Res<'_, (u8, &[u8])> = (be_u8, be_u8.flat_map(take)).parse(v);
        let (rest, (cap_code, value)) = r.ok()?;
        out.push(Capability::decode(cap_code, value));
        v = rest;
    }
    Some(out)
}
