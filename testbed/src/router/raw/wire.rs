//! The byte-level half of the raw peer: messages built from bytes a test spells out (valid
//! or deliberately not), and what the speaker sends back parsed by hand, only as far as
//! assertions need. Pure functions, unit-tested here; no sockets.
//!
//! It shares no code with Berth's codec on purpose: checking the speaker's answers with the
//! speaker's own decoder would prove nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;

/// Length of the message header (RFC 4271 §4.1).
pub const HEADER_LEN: usize = 19;
/// The header marker: all ones (RFC 4271 §4.1).
pub const MARKER: [u8; 16] = [0xff; 16];

/// Message type codes (RFC 4271 §4.1, RFC 2918 §3;
/// <https://www.iana.org/assignments/bgp-parameters/bgp-parameters.xhtml#bgp-parameters-1>).
pub mod message_type {
    /// OPEN.
    pub const OPEN: u8 = 1;
    /// UPDATE.
    pub const UPDATE: u8 = 2;
    /// NOTIFICATION.
    pub const NOTIFICATION: u8 = 3;
    /// KEEPALIVE.
    pub const KEEPALIVE: u8 = 4;
    /// ROUTE-REFRESH.
    pub const ROUTE_REFRESH: u8 = 5;
}

/// A NOTIFICATION as received: code, subcode and data (RFC 4271 §4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawNotification {
    /// Error code.
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// Data, as sent.
    pub data: Vec<u8>,
}

/// A message read back, parsed only as far as assertions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawMessage {
    /// OPEN: the fixed fields (RFC 4271 §4.2).
    Open {
        /// Version.
        version: u8,
        /// My Autonomous System (AS_TRANS when the real AS needs four octets).
        asn: u16,
        /// Hold time.
        hold_time: u16,
        /// BGP Identifier.
        router_id: Ipv4Addr,
    },
    /// UPDATE: the body after the header (see [`announced`]).
    Update {
        /// Everything after the header.
        body: Vec<u8>,
    },
    /// NOTIFICATION.
    Notification(RawNotification),
    /// KEEPALIVE.
    Keepalive,
    /// ROUTE-REFRESH (RFC 2918 §3): AFI, subtype (RFC 7313) and SAFI.
    RouteRefresh {
        /// Address family.
        afi: u16,
        /// Subtype (0 is a plain request).
        subtype: u8,
        /// Subsequent address family.
        safi: u8,
    },
    /// A message whose type or body this parser does not understand.
    Other {
        /// The type field.
        message_type: u8,
        /// Everything after the header.
        body: Vec<u8>,
    },
}

/// The byte stream cannot be split into BGP messages (RFC 4271 §6.1 conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The marker is not all ones.
    #[error("marker is not all ones")]
    BadMarker,
    /// The length field is below the header length.
    #[error("length field {0} is below 19")]
    BadLength(u16),
}

/// Tells whether `buf` starts with a whole message: `Ok(Some(len))` for a message of `len`
/// bytes, `Ok(None)` when more bytes are needed.
pub fn frame(buf: &[u8]) -> std::result::Result<Option<usize>, FramingError> {
    let seen = buf.len().min(MARKER.len());
    if buf[..seen].iter().any(|&b| b != 0xff) {
        return Err(FramingError::BadMarker);
    }
    let Some(&[hi, lo]) = buf.get(16..18) else {
        return Ok(None);
    };
    let length = u16::from_be_bytes([hi, lo]);
    if usize::from(length) < HEADER_LEN {
        return Err(FramingError::BadLength(length));
    }
    Ok((buf.len() >= usize::from(length)).then_some(usize::from(length)))
}

/// A whole message: marker, length (computed from `body`), type and body.
///
/// Panics if the body makes the message longer than 65,535 bytes (a test's own mistake).
pub fn message(message_type: u8, body: &[u8]) -> Vec<u8> {
    let length = u16::try_from(HEADER_LEN + body.len()).expect("message longer than 65,535");
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&length.to_be_bytes());
    out.push(message_type);
    out.extend_from_slice(body);
    out
}

/// A KEEPALIVE (RFC 4271 §4.4).
pub fn keepalive() -> Vec<u8> {
    message(message_type::KEEPALIVE, &[])
}

/// A NOTIFICATION (RFC 4271 §4.5).
pub fn notification(code: u8, subcode: u8, data: &[u8]) -> Vec<u8> {
    let mut body = vec![code, subcode];
    body.extend_from_slice(data);
    message(message_type::NOTIFICATION, &body)
}

/// A plain ROUTE-REFRESH request for a family (RFC 2918 §3).
pub fn route_refresh(afi: u16, safi: u8) -> Vec<u8> {
    let [a, b] = afi.to_be_bytes();
    message(message_type::ROUTE_REFRESH, &[a, b, 0, safi])
}

/// An UPDATE from its three variable fields, with both length fields computed
/// (RFC 4271 §4.3). For malformed length fields, write the body by hand and use [`message`].
pub fn update(withdrawn: &[u8], attributes: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + withdrawn.len() + attributes.len() + nlri.len());
    body.extend_from_slice(&length16(withdrawn).to_be_bytes());
    body.extend_from_slice(withdrawn);
    body.extend_from_slice(&length16(attributes).to_be_bytes());
    body.extend_from_slice(attributes);
    body.extend_from_slice(nlri);
    message(message_type::UPDATE, &body)
}

fn length16(field: &[u8]) -> u16 {
    u16::try_from(field.len()).expect("field longer than 65,535")
}

/// One prefix in NLRI encoding: length in bits, then the significant octets (RFC 4271 §4.3).
pub fn prefix(network: IpNetwork) -> Vec<u8> {
    let octets = match network.network() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let bits = network.prefix();
    let mut out = vec![bits];
    out.extend_from_slice(&octets[..usize::from(bits).div_ceil(8)]);
    out
}

/// Parses one whole message (as delimited by [`frame`]). Bodies it cannot read become
/// [`RawMessage::Other`]: the caller asserts on them, this parser never fails.
pub fn parse(bytes: &[u8]) -> RawMessage {
    let message_type = bytes.get(18).copied().unwrap_or(0);
    let body = bytes.get(HEADER_LEN..).unwrap_or_default();
    let other = || RawMessage::Other {
        message_type,
        body: body.to_vec(),
    };
    match message_type {
        message_type::OPEN => match body {
            [version, a1, a2, h1, h2, i1, i2, i3, i4, ..] => RawMessage::Open {
                version: *version,
                asn: u16::from_be_bytes([*a1, *a2]),
                hold_time: u16::from_be_bytes([*h1, *h2]),
                router_id: Ipv4Addr::new(*i1, *i2, *i3, *i4),
            },
            _ => other(),
        },
        message_type::UPDATE => RawMessage::Update {
            body: body.to_vec(),
        },
        message_type::NOTIFICATION => match body {
            [code, subcode, data @ ..] => RawMessage::Notification(RawNotification {
                code: *code,
                subcode: *subcode,
                data: data.to_vec(),
            }),
            _ => other(),
        },
        message_type::KEEPALIVE if body.is_empty() => RawMessage::Keepalive,
        message_type::ROUTE_REFRESH => match body {
            [a1, a2, subtype, safi] => RawMessage::RouteRefresh {
                afi: u16::from_be_bytes([*a1, *a2]),
                subtype: *subtype,
                safi: *safi,
            },
            _ => other(),
        },
        _ => other(),
    }
}

/// The IPv4 and IPv6 unicast prefixes an UPDATE body announces: its NLRI field and the
/// NLRI of an MP_REACH_NLRI attribute (RFC 4760 §3). Anything unreadable ends the list
/// early; no ADD-PATH (the raw peer never offers it).
pub fn announced(update_body: &[u8]) -> Vec<IpNetwork> {
    let mut out = Vec::new();
    let Some((withdrawn_len, rest)) = take_u16(update_body) else {
        return out;
    };
    let Some(rest) = rest.get(usize::from(withdrawn_len)..) else {
        return out;
    };
    let Some((attributes_len, rest)) = take_u16(rest) else {
        return out;
    };
    let Some(mut attributes) = rest.get(..usize::from(attributes_len)) else {
        return out;
    };
    let nlri = &rest[usize::from(attributes_len)..];
    while let [flags, type_code, rest @ ..] = attributes {
        let (len, rest) = if flags & 0x10 != 0 {
            match take_u16(rest) {
                Some((l, r)) => (usize::from(l), r),
                None => break,
            }
        } else {
            match rest.split_first() {
                Some((l, r)) => (usize::from(*l), r),
                None => break,
            }
        };
        let Some(value) = rest.get(..len) else { break };
        attributes = &rest[len..];
        // MP_REACH_NLRI: AFI, SAFI, next hop length and next hop, reserved, NLRI.
        if *type_code == 14
            && let [a1, a2, 1, nh_len, rest @ ..] = value
            && let Some(mp_nlri) = rest.get(usize::from(*nh_len) + 1..)
        {
            match u16::from_be_bytes([*a1, *a2]) {
                1 => out.extend(prefixes(mp_nlri, false)),
                2 => out.extend(prefixes(mp_nlri, true)),
                _ => {}
            }
        }
    }
    out.extend(prefixes(nlri, false));
    out
}

fn take_u16(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let (l, rest) = bytes.split_first_chunk::<2>()?;
    Some((u16::from_be_bytes(*l), rest))
}

/// Decodes a run of NLRI prefixes, stopping at the first unreadable one.
fn prefixes(mut bytes: &[u8], v6: bool) -> Vec<IpNetwork> {
    let mut out = Vec::new();
    while let [bits, rest @ ..] = bytes {
        let len = usize::from(*bits).div_ceil(8);
        let Some(significant) = rest.get(..len) else {
            break;
        };
        let network = if v6 {
            let mut octets = [0u8; 16];
            let Some(dst) = octets.get_mut(..len) else {
                break;
            };
            dst.copy_from_slice(significant);
            IpNetwork::new(IpAddr::V6(Ipv6Addr::from(octets)), *bits)
        } else {
            let mut octets = [0u8; 4];
            let Some(dst) = octets.get_mut(..len) else {
                break;
            };
            dst.copy_from_slice(significant);
            IpNetwork::new(IpAddr::V4(Ipv4Addr::from(octets)), *bits)
        };
        let Ok(network) = network else { break };
        out.push(network);
        bytes = &rest[len..];
    }
    out
}

/// Capabilities in the form the OPEN carries them: code, length, value (RFC 5492 §4).
pub mod capability {
    /// Multiprotocol extensions for one family (RFC 4760 §8).
    pub fn multiprotocol(afi: u16, safi: u8) -> Vec<u8> {
        let [a, b] = afi.to_be_bytes();
        vec![1, 4, a, b, 0, safi]
    }

    /// Route refresh (RFC 2918 §3).
    pub fn route_refresh() -> Vec<u8> {
        vec![2, 0]
    }

    /// Support for 4-octet AS numbers, with the speaker's AS (RFC 6793 §3).
    pub fn four_octet_as(asn: u32) -> Vec<u8> {
        let mut out = vec![65, 4];
        out.extend_from_slice(&asn.to_be_bytes());
        out
    }
}

/// What the raw peer says in its OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawOpen {
    /// Our AS (AS_TRANS goes in the 2-octet field when it does not fit).
    pub asn: u32,
    /// Hold time we offer.
    pub hold_time: u16,
    /// BGP Identifier.
    pub router_id: Ipv4Addr,
    /// Capabilities, each encoded as by [`capability`].
    pub capabilities: Vec<Vec<u8>>,
}

impl RawOpen {
    /// An OPEN offering 4-octet AS, multiprotocol IPv4 and IPv6 unicast, and route refresh,
    /// with a hold time of 90 s.
    pub fn new(asn: u32, router_id: Ipv4Addr) -> RawOpen {
        RawOpen {
            asn,
            hold_time: 90,
            router_id,
            capabilities: vec![
                capability::multiprotocol(1, 1),
                capability::multiprotocol(2, 1),
                capability::route_refresh(),
                capability::four_octet_as(asn),
            ],
        }
    }

    /// The whole OPEN message (RFC 4271 §4.2; capabilities in one optional parameter of
    /// type 2 each, RFC 5492 §4).
    pub fn to_bytes(&self) -> Vec<u8> {
        const AS_TRANS: u16 = 23456;
        let asn = u16::try_from(self.asn).unwrap_or(AS_TRANS);
        let mut params = Vec::new();
        for c in &self.capabilities {
            params.push(2);
            params.push(u8::try_from(c.len()).expect("capability longer than 255"));
            params.extend_from_slice(c);
        }
        let mut body = vec![4];
        body.extend_from_slice(&asn.to_be_bytes());
        body.extend_from_slice(&self.hold_time.to_be_bytes());
        body.extend_from_slice(&self.router_id.octets());
        body.push(u8::try_from(params.len()).expect("optional parameters longer than 255"));
        body.extend_from_slice(&params);
        message(message_type::OPEN, &body)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    #[test]
    fn a_keepalive_is_a_bare_header_of_19_bytes() {
        let k = keepalive();
        assert_eq!(k.len(), 19);
        assert_eq!(&k[..16], &[0xff; 16]);
        assert_eq!(&k[16..], &[0, 19, 4]);
        assert_eq!(parse(&k), RawMessage::Keepalive);
    }

    #[test]
    fn frame_needs_the_whole_message_and_reports_where_it_ends() {
        let k = keepalive();
        assert_eq!(frame(&[]), Ok(None));
        assert_eq!(frame(&k[..10]), Ok(None));
        assert_eq!(frame(&k[..18]), Ok(None));
        assert_eq!(frame(&k), Ok(Some(19)));
        // Two in one buffer: the first one's length.
        let n = notification(6, 2, &[1, 2]);
        let both = [n.clone(), k.clone()].concat();
        assert_eq!(frame(&both), Ok(Some(n.len())));
        assert_eq!(frame(&both[n.len()..]), Ok(Some(19)));
    }

    #[test]
    fn frame_rejects_a_bad_marker_and_a_length_below_the_header() {
        let mut bad = keepalive();
        bad[3] = 0;
        assert_eq!(frame(&bad), Err(FramingError::BadMarker));
        assert_eq!(frame(&bad[..5]), Err(FramingError::BadMarker));
        let mut short = keepalive();
        short[17] = 18;
        assert_eq!(frame(&short), Err(FramingError::BadLength(18)));
    }

    #[test]
    fn notifications_parse_to_code_subcode_and_data() {
        let n = notification(1, 2, &[0x10, 0x01]);
        assert_eq!(&n[16..19], &[0, 23, 3]);
        assert_eq!(
            parse(&n),
            RawMessage::Notification(RawNotification {
                code: 1,
                subcode: 2,
                data: vec![0x10, 0x01],
            })
        );
    }

    #[test]
    fn route_refresh_carries_afi_reserved_and_safi() {
        let rr = route_refresh(2, 1);
        assert_eq!(&rr[16..], &[0, 23, 5, 0, 2, 0, 1]);
        assert_eq!(
            parse(&rr),
            RawMessage::RouteRefresh {
                afi: 2,
                subtype: 0,
                safi: 1
            }
        );
    }

    #[test]
    fn open_carries_as_trans_for_four_octet_asns_and_each_capability() {
        let open = RawOpen::new(4_200_000_000, Ipv4Addr::new(10, 0, 0, 1));
        let bytes = open.to_bytes();
        assert_eq!(
            parse(&bytes),
            RawMessage::Open {
                version: 4,
                asn: 23456,
                hold_time: 90,
                router_id: Ipv4Addr::new(10, 0, 0, 1),
            }
        );
        // 4 parameters of 2 + (6, 6, 2, 6) bytes.
        assert_eq!(bytes[HEADER_LEN + 9], 28);
        assert_eq!(bytes.len(), HEADER_LEN + 10 + 28);
        let tail = &bytes[bytes.len() - 8..];
        assert_eq!(tail, &[2, 6, 65, 4, 0xfa, 0x56, 0xea, 0x00]);
    }

    #[test]
    fn update_computes_both_length_fields() {
        let u = update(&[0x18, 10, 0, 0], &[0x40, 1, 1, 0], &[0x20, 10, 0, 0, 1]);
        assert_eq!(u.len(), 19 + 2 + 4 + 2 + 4 + 5);
        let body = &u[HEADER_LEN..];
        assert_eq!(&body[..2], &[0, 4]);
        assert_eq!(&body[6..8], &[0, 4]);
        assert_eq!(frame(&u), Ok(Some(u.len())));
    }

    #[test]
    fn prefix_keeps_only_the_significant_octets() {
        assert_eq!(prefix(net("10.0.0.100/32")), vec![32, 10, 0, 0, 100]);
        assert_eq!(prefix(net("10.1.0.0/17")), vec![17, 10, 1, 0]);
        assert_eq!(prefix(net("0.0.0.0/0")), vec![0]);
        assert_eq!(
            prefix(net("2001:db8::/32")),
            vec![32, 0x20, 0x01, 0x0d, 0xb8]
        );
    }

    #[test]
    fn announced_reads_the_nlri_field_and_mp_reach() {
        let v4 = update(
            &[],
            &[0x40, 1, 1, 0],
            &[prefix(net("10.0.0.100/32")), prefix(net("10.2.0.0/16"))].concat(),
        );
        assert_eq!(
            announced(&v4[HEADER_LEN..]),
            vec![net("10.0.0.100/32"), net("10.2.0.0/16")]
        );
        // MP_REACH_NLRI (extended length), IPv6 unicast, 16-octet next hop.
        let mut mp = vec![0x90, 14, 0, 0, 0, 2, 1, 16];
        mp.extend_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        mp.push(0);
        mp.extend(prefix(net("2001:db8::100/128")));
        let value_len = u16::try_from(mp.len() - 4).unwrap().to_be_bytes();
        mp[2..4].copy_from_slice(&value_len);
        let v6 = update(&[], &[[0x40, 1, 1, 0].as_slice(), &mp].concat(), &[]);
        assert_eq!(announced(&v6[HEADER_LEN..]), vec![net("2001:db8::100/128")]);
    }

    #[test]
    fn announced_stops_at_garbage_instead_of_failing() {
        assert_eq!(announced(&[]), vec![]);
        assert_eq!(announced(&[0, 9]), vec![]);
        // A /33 in the NLRI field: nothing after it is read.
        let bad = update(&[], &[], &[32, 10, 0, 0, 1, 33, 1, 2, 3, 4, 5]);
        assert_eq!(announced(&bad[HEADER_LEN..]), vec![net("10.0.0.1/32")]);
    }

    #[test]
    fn parse_keeps_what_it_does_not_understand() {
        let odd = message(42, &[1, 2]);
        assert_eq!(
            parse(&odd),
            RawMessage::Other {
                message_type: 42,
                body: vec![1, 2]
            }
        );
        let long_keepalive = message(message_type::KEEPALIVE, &[0]);
        assert!(matches!(parse(&long_keepalive), RawMessage::Other { .. }));
    }
}
