//! Decoding of the path attribute list, with the RFC 7606 outcome of every malformation.
//!
//! What RFC 7606 (§3, §4, §7) and RFC 6793 §6 / RFC 8092 §6 say per attribute:
//!
//! | attribute | malformed → |
//! |---|---|
//! | ORIGIN, AS_PATH, NEXT_HOP, MULTI_EXIT_DISC, LOCAL_PREF | treat-as-withdraw |
//! | COMMUNITIES, EXTENDED_COMMUNITIES, LARGE_COMMUNITY | treat-as-withdraw |
//! | ORIGINATOR_ID (length not 4), CLUSTER_LIST (length not a non-zero multiple of 4) | treat-as-withdraw (§7.9, §7.10) |
//! | ATOMIC_AGGREGATE, AGGREGATOR, AS4_PATH, AS4_AGGREGATOR | attribute discard |
//! | MP_REACH_NLRI, MP_UNREACH_NLRI (NLRI cannot be located or parsed) | session reset |
//! | attribute overruns the attribute list (§4) | treat-as-withdraw |
//! | duplicate attribute (§3 g) | discard all but the first; for MP_* session reset |
//! | unknown type with the optional bit clear (RFC 4271 §6.3) | session reset |
//! | unknown optional non-transitive (RFC 4271 §5) | dropped silently |
//! | LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST from an external peer (§7.5, §7.9, §7.10) | attribute discard (silent when well-formed) |

use std::net::Ipv4Addr;

use nom::Parser;
use nom::multi::many0;
use nom::number::complete::{be_u8, be_u32};

use super::attribute::{
    Aggregator, AsPath, AsSegment, AttributeValue, Community, ExtendedCommunity,
    FLAG_EXTENDED_LENGTH, FLAG_OPTIONAL, FLAG_TRANSITIVE, LargeCommunity, Origin, PathAttribute,
    SegmentType, canonical_flags,
};
use super::context::Context;
use super::error::{DecodeError, UpdateError};
use super::iana::attribute_type as ty;
use super::mp::{MpReach, MpUnreach};

type Res<'a, T> = nom::IResult<&'a [u8], T, ()>;

/// The attributes of one UPDATE and the worst non-reset RFC 7606 outcome met.
pub(crate) struct DecodedAttributes {
    pub attributes: Vec<PathAttribute>,
    pub error: Option<UpdateError>,
}

/// How RFC 7606 answers a malformed attribute of a given type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    TreatAsWithdraw,
    Discard,
    SessionReset,
}

fn outcome_for(type_code: u8) -> Outcome {
    match type_code {
        ty::ATOMIC_AGGREGATE | ty::AGGREGATOR | ty::AS4_PATH | ty::AS4_AGGREGATOR => {
            Outcome::Discard
        }
        ty::MP_REACH_NLRI | ty::MP_UNREACH_NLRI => Outcome::SessionReset,
        _ => Outcome::TreatAsWithdraw,
    }
}

fn record(slot: &mut Option<UpdateError>, new: UpdateError) {
    match (slot.as_ref(), &new) {
        (None, _) => *slot = Some(new),
        (Some(UpdateError::AttributeDiscard(_)), UpdateError::TreatAsWithdraw(_)) => {
            *slot = Some(new)
        }
        _ => {}
    }
}

/// Decodes the path attribute field of an UPDATE.
pub(crate) fn decode_attributes(
    mut bytes: &[u8],
    ctx: &Context,
) -> Result<DecodedAttributes, DecodeError> {
    // Every attribute takes at least three octets: bounded by the input.
    let mut attributes = Vec::with_capacity((bytes.len() / 3).min(16));
    let mut error = None;
    let mut seen = [false; 256];
    while !bytes.is_empty() {
        let Some((flags, type_code, value, raw, rest)) = split_attribute(bytes) else {
            // RFC 7606 §4: an attribute overrunning the list; the NLRI field is still
            // locatable from the Total Path Attribute Length, so treat-as-withdraw.
            record(
                &mut error,
                UpdateError::TreatAsWithdraw(DecodeError::MalformedAttributeList),
            );
            break;
        };
        bytes = rest;
        if std::mem::replace(&mut seen[usize::from(type_code)], true) {
            if type_code == ty::MP_REACH_NLRI || type_code == ty::MP_UNREACH_NLRI {
                return Err(DecodeError::MalformedAttributeList);
            }
            record(
                &mut error,
                UpdateError::AttributeDiscard(DecodeError::MalformedAttributeList),
            );
            continue;
        }
        let Some(expected) = canonical_flags(type_code) else {
            if flags & FLAG_OPTIONAL == 0 {
                return Err(DecodeError::UnrecognizedWellKnownAttribute {
                    attribute: raw.to_vec(),
                });
            }
            if flags & FLAG_TRANSITIVE != 0 {
                attributes.push(PathAttribute {
                    flags,
                    value: AttributeValue::Unknown {
                        type_code,
                        data: value.to_vec(),
                    },
                });
            }
            continue;
        };
        // RFC 7606 §7.5, §7.9, §7.10: from an external peer these are discarded whatever
        // they hold; only a malformed one is worth reporting.
        let ignored_from_external = ctx.external_peer
            && matches!(
                type_code,
                ty::LOCAL_PREF | ty::ORIGINATOR_ID | ty::CLUSTER_LIST
            );
        let outcome = if ignored_from_external {
            Outcome::Discard
        } else {
            outcome_for(type_code)
        };
        // RFC 7606 §3 c: only the optional and transitive bits are checked.
        let problem = if flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) != expected {
            Err(DecodeError::AttributeFlagsError {
                attribute: raw.to_vec(),
            })
        } else {
            decode_value(type_code, value, raw, ctx)
        };
        match problem {
            Ok(_) if ignored_from_external => {}
            Ok(value) => attributes.push(PathAttribute { flags, value }),
            Err(e) => match outcome {
                Outcome::SessionReset => return Err(e),
                Outcome::TreatAsWithdraw => record(&mut error, UpdateError::TreatAsWithdraw(e)),
                Outcome::Discard => record(&mut error, UpdateError::AttributeDiscard(e)),
            },
        }
    }
    Ok(DecodedAttributes { attributes, error })
}

/// One attribute split off the front of the list: (flags, type, value, whole attribute,
/// rest of the list).
type Split<'a> = (u8, u8, &'a [u8], &'a [u8], &'a [u8]);

/// Splits one attribute off the front of the list.
fn split_attribute(bytes: &[u8]) -> Option<Split<'_>> {
    let [flags, type_code, rest @ ..] = bytes else {
        return None;
    };
    let (len, header) = if flags & FLAG_EXTENDED_LENGTH != 0 {
        let (l, _) = rest.split_first_chunk::<2>()?;
        (usize::from(u16::from_be_bytes(*l)), 4)
    } else {
        (usize::from(*rest.first()?), 3)
    };
    let end = header + len;
    let raw = bytes.get(..end)?;
    Some((*flags, *type_code, &raw[header..], raw, &bytes[end..]))
}

fn length_error(raw: &[u8]) -> DecodeError {
    DecodeError::AttributeLengthError {
        attribute: raw.to_vec(),
    }
}

fn decode_value(
    type_code: u8,
    v: &[u8],
    raw: &[u8],
    ctx: &Context,
) -> Result<AttributeValue, DecodeError> {
    Ok(match type_code {
        ty::ORIGIN => {
            let [o] = *v else {
                return Err(length_error(raw));
            };
            AttributeValue::Origin(match o {
                0 => Origin::Igp,
                1 => Origin::Egp,
                2 => Origin::Incomplete,
                _ => {
                    return Err(DecodeError::InvalidOriginAttribute {
                        attribute: raw.to_vec(),
                    });
                }
            })
        }
        ty::AS_PATH => AttributeValue::AsPath(
            decode_as_path(v, ctx.four_octet_as).ok_or(DecodeError::MalformedAsPath)?,
        ),
        ty::NEXT_HOP => {
            let octets: [u8; 4] = v.try_into().map_err(|_| length_error(raw))?;
            let addr = Ipv4Addr::from(octets);
            // RFC 4271 §6.3: a NEXT_HOP that can never be a host address is syntactically
            // incorrect.
            if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() {
                return Err(DecodeError::InvalidNextHopAttribute {
                    attribute: raw.to_vec(),
                });
            }
            AttributeValue::NextHop(addr)
        }
        ty::MULTI_EXIT_DISC => AttributeValue::MultiExitDisc(u32_value(v, raw)?),
        ty::LOCAL_PREF => AttributeValue::LocalPref(u32_value(v, raw)?),
        ty::ATOMIC_AGGREGATE => {
            if !v.is_empty() {
                return Err(length_error(raw));
            }
            AttributeValue::AtomicAggregate
        }
        ty::AGGREGATOR => AttributeValue::Aggregator(
            decode_aggregator(v, ctx.four_octet_as).ok_or_else(|| length_error(raw))?,
        ),
        ty::AS4_AGGREGATOR => AttributeValue::As4Aggregator(
            decode_aggregator(v, true).ok_or_else(|| length_error(raw))?,
        ),
        ty::COMMUNITIES => {
            if v.is_empty() || !v.len().is_multiple_of(4) {
                return Err(length_error(raw));
            }
            AttributeValue::Communities(
                v.chunks_exact(4)
                    .map(|c| Community(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                    .collect(),
            )
        }
        ty::ORIGINATOR_ID => {
            let octets: [u8; 4] = v.try_into().map_err(|_| length_error(raw))?;
            AttributeValue::OriginatorId(Ipv4Addr::from(octets))
        }
        ty::CLUSTER_LIST => {
            // RFC 7606 §7.10: malformed when its length is not a non-zero multiple of 4.
            if v.is_empty() || !v.len().is_multiple_of(4) {
                return Err(length_error(raw));
            }
            AttributeValue::ClusterList(
                v.chunks_exact(4)
                    .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                    .collect(),
            )
        }
        ty::EXTENDED_COMMUNITIES => {
            if v.is_empty() || !v.len().is_multiple_of(8) {
                return Err(length_error(raw));
            }
            AttributeValue::ExtendedCommunities(
                v.chunks_exact(8)
                    .map(|c| {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(c);
                        ExtendedCommunity(b)
                    })
                    .collect(),
            )
        }
        ty::LARGE_COMMUNITY => {
            if v.is_empty() || !v.len().is_multiple_of(12) {
                return Err(length_error(raw));
            }
            let r: Res<'_, Vec<LargeCommunity>> = many0((be_u32, be_u32, be_u32).map(
                |(global, local1, local2)| LargeCommunity {
                    global,
                    local1,
                    local2,
                },
            ))
            .parse(v);
            AttributeValue::LargeCommunities(r.map_err(|_| length_error(raw))?.1)
        }
        ty::AS4_PATH => AttributeValue::As4Path(decode_as_path(v, true).ok_or_else(|| {
            DecodeError::OptionalAttributeError {
                attribute: raw.to_vec(),
            }
        })?),
        ty::MP_REACH_NLRI => AttributeValue::MpReach(MpReach::decode(v, ctx).ok_or_else(|| {
            DecodeError::OptionalAttributeError {
                attribute: raw.to_vec(),
            }
        })?),
        ty::MP_UNREACH_NLRI => {
            AttributeValue::MpUnreach(MpUnreach::decode(v, ctx).ok_or_else(|| {
                DecodeError::OptionalAttributeError {
                    attribute: raw.to_vec(),
                }
            })?)
        }
        other => AttributeValue::Unknown {
            type_code: other,
            data: v.to_vec(),
        },
    })
}

fn u32_value(v: &[u8], raw: &[u8]) -> Result<u32, DecodeError> {
    Ok(u32::from_be_bytes(
        v.try_into().map_err(|_| length_error(raw))?,
    ))
}

fn decode_aggregator(v: &[u8], four_octet: bool) -> Option<Aggregator> {
    let (asn, addr) = if four_octet {
        let (a, rest) = v.split_first_chunk::<4>()?;
        (u32::from_be_bytes(*a), rest)
    } else {
        let (a, rest) = v.split_first_chunk::<2>()?;
        (u32::from(u16::from_be_bytes(*a)), rest)
    };
    let addr: [u8; 4] = addr.try_into().ok()?;
    Some(Aggregator {
        asn,
        address: Ipv4Addr::from(addr),
    })
}

/// RFC 7606 §7.2: malformed if a segment overruns, has an unknown type, or is empty.
fn decode_as_path(mut v: &[u8], four_octet: bool) -> Option<AsPath> {
    let width = if four_octet { 4 } else { 2 };
    let mut segments = Vec::with_capacity(v.len() / (2 + width) + 1);
    while !v.is_empty() {
        let r: Res<'_, (u8, u8)> = (be_u8, be_u8).parse(v);
        let (rest, (kind, count)) = r.ok()?;
        let kind = SegmentType::from_u8(kind)?;
        if count == 0 {
            return None;
        }
        let body = rest.get(..usize::from(count) * width)?;
        let asns = if four_octet {
            body.chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            body.chunks_exact(2)
                .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
                .collect()
        };
        segments.push(AsSegment { kind, asns });
        v = &rest[body.len()..];
    }
    Some(AsPath { segments })
}
