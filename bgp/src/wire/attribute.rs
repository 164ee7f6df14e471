//! Path attributes (RFC 4271 §4.3, §5) and their encoding.
//!
//! ```text
//!  0                   1
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Attr. Flags  |Attr. Type Code|  then Attribute Length: 1 octet,
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  or 2 when Extended Length is set
//! ```
//!
//! Flags are kept as received so that a decoded attribute re-encodes to the same bytes;
//! the encoder only adds Extended Length when the value needs it. Decoding, with its
//! RFC 7606 outcomes, lives in `attribute_decode`.

use std::fmt;
use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use super::context::Context;
use super::iana::attribute_type as ty;
use super::mp::{MpReach, MpUnreach};
use super::open::AS_TRANS;

/// Attribute flag: optional (set) or well-known (clear).
pub const FLAG_OPTIONAL: u8 = 0x80;
/// Attribute flag: transitive.
pub const FLAG_TRANSITIVE: u8 = 0x40;
/// Attribute flag: partial — an optional transitive attribute passed on by a speaker that
/// did not recognize it.
pub const FLAG_PARTIAL: u8 = 0x20;
/// Attribute flag: the length field is two octets.
pub const FLAG_EXTENDED_LENGTH: u8 = 0x10;

/// One path attribute: its flags as received (or canonical ones) and its value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PathAttribute {
    /// Attribute flags (high four bits meaningful; low four kept as received).
    pub flags: u8,
    /// The decoded value, which also fixes the type code.
    pub value: AttributeValue,
}

/// The value of a path attribute.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AttributeValue {
    /// ORIGIN (RFC 4271 §5.1.1).
    Origin(Origin),
    /// AS_PATH (RFC 4271 §5.1.2), 2- or 4-octet AS numbers per the context.
    AsPath(AsPath),
    /// NEXT_HOP (RFC 4271 §5.1.3).
    NextHop(Ipv4Addr),
    /// MULTI_EXIT_DISC (RFC 4271 §5.1.4).
    MultiExitDisc(u32),
    /// LOCAL_PREF (RFC 4271 §5.1.5).
    LocalPref(u32),
    /// ATOMIC_AGGREGATE (RFC 4271 §5.1.6).
    AtomicAggregate,
    /// AGGREGATOR (RFC 4271 §5.1.7), 2- or 4-octet AS per the context.
    Aggregator(Aggregator),
    /// COMMUNITIES (RFC 1997).
    Communities(Vec<Community>),
    /// ORIGINATOR_ID (RFC 4456 §8): the router ID of the route's originator inside the AS,
    /// set by a route reflector.
    OriginatorId(Ipv4Addr),
    /// CLUSTER_LIST (RFC 4456 §8): the cluster IDs of the reflectors the route passed.
    ClusterList(Vec<Ipv4Addr>),
    /// MP_REACH_NLRI (RFC 4760 §3).
    MpReach(MpReach),
    /// MP_UNREACH_NLRI (RFC 4760 §4).
    MpUnreach(MpUnreach),
    /// EXTENDED COMMUNITIES (RFC 4360).
    ExtendedCommunities(Vec<ExtendedCommunity>),
    /// AS4_PATH (RFC 6793 §3), always 4-octet AS numbers.
    As4Path(AsPath),
    /// AS4_AGGREGATOR (RFC 6793 §3).
    As4Aggregator(Aggregator),
    /// LARGE_COMMUNITY (RFC 8092).
    LargeCommunities(Vec<LargeCommunity>),
    /// An optional transitive attribute this codec does not know, kept to pass on.
    Unknown {
        /// Type code.
        type_code: u8,
        /// Value as received.
        data: Vec<u8>,
    },
}

/// ORIGIN values (RFC 4271 §5.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// 0: learned by an interior protocol.
    Igp,
    /// 1: learned by EGP.
    Egp,
    /// 2: learned some other way.
    Incomplete,
}

/// AS_PATH segment types (RFC 4271 §4.3, RFC 5065 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentType {
    /// 1: AS_SET.
    Set,
    /// 2: AS_SEQUENCE.
    Sequence,
    /// 3: AS_CONFED_SEQUENCE.
    ConfedSequence,
    /// 4: AS_CONFED_SET.
    ConfedSet,
}

impl SegmentType {
    pub(crate) fn from_u8(v: u8) -> Option<SegmentType> {
        Some(match v {
            1 => SegmentType::Set,
            2 => SegmentType::Sequence,
            3 => SegmentType::ConfedSequence,
            4 => SegmentType::ConfedSet,
            _ => return None,
        })
    }

    fn to_u8(self) -> u8 {
        match self {
            SegmentType::Set => 1,
            SegmentType::Sequence => 2,
            SegmentType::ConfedSequence => 3,
            SegmentType::ConfedSet => 4,
        }
    }
}

/// One AS_PATH segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AsSegment {
    /// Segment type.
    pub kind: SegmentType,
    /// AS numbers; more than 255 are split over several segments when encoded.
    pub asns: Vec<u32>,
}

/// AS_PATH or AS4_PATH: a list of segments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    /// Segments, leftmost first.
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// A path of one AS_SEQUENCE (empty path if `asns` is empty).
    pub fn sequence(asns: Vec<u32>) -> AsPath {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns,
            }],
        }
    }

    /// Whether some AS number does not fit two octets (then an old speaker needs AS4_PATH).
    pub fn needs_four_octets(&self) -> bool {
        self.segments
            .iter()
            .flat_map(|s| &s.asns)
            .any(|&a| a > u32::from(u16::MAX))
    }

    fn encode(&self, four_octet: bool, buf: &mut BytesMut) {
        for seg in &self.segments {
            for chunk in seg.asns.chunks(255) {
                buf.put_u8(seg.kind.to_u8());
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "`chunks(255)` bounds the count to 255"
                )]
                buf.put_u8(chunk.len() as u8);
                for &asn in chunk {
                    if four_octet {
                        buf.put_u32(asn);
                    } else {
                        buf.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS));
                    }
                }
            }
        }
    }
}

/// AGGREGATOR / AS4_AGGREGATOR value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Aggregator {
    /// AS of the aggregating speaker.
    pub asn: u32,
    /// Its address.
    pub address: Ipv4Addr,
}

/// A standard community (RFC 1997), shown as `asn:value`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    /// NO_EXPORT.
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    /// NO_ADVERTISE.
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);

    /// `asn:value`.
    pub fn new(asn: u16, value: u16) -> Community {
        Community((u32::from(asn) << 16) | u32::from(value))
    }
}

impl fmt::Debug for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xffff)
    }
}

/// An extended community (RFC 4360): eight octets, shown in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtendedCommunity(pub [u8; 8]);

impl fmt::Debug for ExtendedCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExtendedCommunity(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// A large community (RFC 8092), shown as `global:local1:local2`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    /// Global administrator (an AS number).
    pub global: u32,
    /// First local data part.
    pub local1: u32,
    /// Second local data part.
    pub local2: u32,
}

impl fmt::Debug for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

impl AttributeValue {
    /// The attribute type code.
    pub fn type_code(&self) -> u8 {
        match self {
            AttributeValue::Origin(_) => ty::ORIGIN,
            AttributeValue::AsPath(_) => ty::AS_PATH,
            AttributeValue::NextHop(_) => ty::NEXT_HOP,
            AttributeValue::MultiExitDisc(_) => ty::MULTI_EXIT_DISC,
            AttributeValue::LocalPref(_) => ty::LOCAL_PREF,
            AttributeValue::AtomicAggregate => ty::ATOMIC_AGGREGATE,
            AttributeValue::Aggregator(_) => ty::AGGREGATOR,
            AttributeValue::Communities(_) => ty::COMMUNITIES,
            AttributeValue::OriginatorId(_) => ty::ORIGINATOR_ID,
            AttributeValue::ClusterList(_) => ty::CLUSTER_LIST,
            AttributeValue::MpReach(_) => ty::MP_REACH_NLRI,
            AttributeValue::MpUnreach(_) => ty::MP_UNREACH_NLRI,
            AttributeValue::ExtendedCommunities(_) => ty::EXTENDED_COMMUNITIES,
            AttributeValue::As4Path(_) => ty::AS4_PATH,
            AttributeValue::As4Aggregator(_) => ty::AS4_AGGREGATOR,
            AttributeValue::LargeCommunities(_) => ty::LARGE_COMMUNITY,
            AttributeValue::Unknown { type_code, .. } => *type_code,
        }
    }

    /// The flags RFC 4271 prescribes for this attribute (optional and transitive bits).
    pub fn canonical_flags(&self) -> u8 {
        canonical_flags(self.type_code()).unwrap_or(FLAG_OPTIONAL | FLAG_TRANSITIVE)
    }

    fn encode_value(&self, ctx: &Context, buf: &mut BytesMut) {
        match self {
            AttributeValue::Origin(o) => buf.put_u8(match o {
                Origin::Igp => 0,
                Origin::Egp => 1,
                Origin::Incomplete => 2,
            }),
            AttributeValue::AsPath(p) => p.encode(ctx.four_octet_as, buf),
            AttributeValue::NextHop(a) => buf.extend_from_slice(&a.octets()),
            AttributeValue::MultiExitDisc(v) | AttributeValue::LocalPref(v) => buf.put_u32(*v),
            AttributeValue::AtomicAggregate => {}
            AttributeValue::Aggregator(a) => {
                if ctx.four_octet_as {
                    buf.put_u32(a.asn);
                } else {
                    buf.put_u16(u16::try_from(a.asn).unwrap_or(AS_TRANS));
                }
                buf.extend_from_slice(&a.address.octets());
            }
            AttributeValue::Communities(c) => c.iter().for_each(|c| buf.put_u32(c.0)),
            AttributeValue::OriginatorId(a) => buf.extend_from_slice(&a.octets()),
            AttributeValue::ClusterList(ids) => ids
                .iter()
                .for_each(|id| buf.extend_from_slice(&id.octets())),
            AttributeValue::MpReach(m) => m.encode_value(ctx, buf),
            AttributeValue::MpUnreach(m) => m.encode_value(ctx, buf),
            AttributeValue::ExtendedCommunities(c) => {
                c.iter().for_each(|c| buf.extend_from_slice(&c.0))
            }
            AttributeValue::As4Path(p) => p.encode(true, buf),
            AttributeValue::As4Aggregator(a) => {
                buf.put_u32(a.asn);
                buf.extend_from_slice(&a.address.octets());
            }
            AttributeValue::LargeCommunities(c) => c.iter().for_each(|c| {
                buf.put_u32(c.global);
                buf.put_u32(c.local1);
                buf.put_u32(c.local2);
            }),
            AttributeValue::Unknown { data, .. } => buf.extend_from_slice(data),
        }
    }
}

/// Optional and transitive bits RFC 4271 / the attribute's RFC prescribe; `None` for
/// unknown type codes.
pub(crate) fn canonical_flags(type_code: u8) -> Option<u8> {
    Some(match type_code {
        ty::ORIGIN | ty::AS_PATH | ty::NEXT_HOP | ty::LOCAL_PREF | ty::ATOMIC_AGGREGATE => {
            FLAG_TRANSITIVE
        }
        ty::MULTI_EXIT_DISC
        | ty::ORIGINATOR_ID
        | ty::CLUSTER_LIST
        | ty::MP_REACH_NLRI
        | ty::MP_UNREACH_NLRI => FLAG_OPTIONAL,
        ty::AGGREGATOR
        | ty::COMMUNITIES
        | ty::EXTENDED_COMMUNITIES
        | ty::AS4_PATH
        | ty::AS4_AGGREGATOR
        | ty::LARGE_COMMUNITY => FLAG_OPTIONAL | FLAG_TRANSITIVE,
        _ => return None,
    })
}

impl fmt::Debug for PathAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PathAttribute")
            .field("flags", &format_args!("{:#04x}", self.flags))
            .field("value", &self.value)
            .finish()
    }
}

impl PathAttribute {
    /// An attribute with the flags RFC 4271 prescribes for its type.
    pub fn new(value: AttributeValue) -> PathAttribute {
        PathAttribute {
            flags: value.canonical_flags(),
            value,
        }
    }

    /// The attribute type code.
    pub fn type_code(&self) -> u8 {
        self.value.type_code()
    }

    /// The attribute as it must be passed on to another peer: unknown optional transitive
    /// attributes get the Partial bit (RFC 4271 §5).
    pub fn for_propagation(&self) -> PathAttribute {
        let mut out = self.clone();
        if matches!(out.value, AttributeValue::Unknown { .. }) {
            out.flags |= FLAG_PARTIAL;
        }
        out
    }

    /// Appends flags, type, length and value. Extended Length is kept if it was set and
    /// added when the value exceeds 255 octets.
    pub fn encode(&self, ctx: &Context, buf: &mut BytesMut) {
        let start = buf.len();
        buf.put_u8(self.flags | FLAG_EXTENDED_LENGTH);
        buf.put_u8(self.type_code());
        buf.put_u16(0);
        let value_at = buf.len();
        self.value.encode_value(ctx, buf);
        let len = buf.len() - value_at;
        if self.flags & FLAG_EXTENDED_LENGTH == 0
            && let Ok(short) = u8::try_from(len)
        {
            // Short form: drop the second length octet by moving the value left.
            buf[start] = self.flags;
            buf[start + 2] = short;
            buf.copy_within(value_at.., value_at - 1);
            buf.truncate(buf.len() - 1);
        } else {
            // Longer values cannot be represented: clamp, the message-size check rejects.
            let len = u16::try_from(len).unwrap_or(u16::MAX);
            buf[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
}
