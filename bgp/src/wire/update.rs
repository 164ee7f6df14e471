//! The UPDATE message (RFC 4271 §4.3) and End-of-RIB markers (RFC 4724 §2).
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! +-----------------------------------------------------+
//! |   Withdrawn Routes (variable)                       |
//! +-----------------------------------------------------+
//! |   Total Path Attribute Length (2 octets)            |
//! +-----------------------------------------------------+
//! |   Path Attributes (variable)                        |
//! +-----------------------------------------------------+
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//! ```

use bytes::{BufMut, BytesMut};

use super::attribute::{AttributeValue, PathAttribute};
use super::attribute_decode::decode_attributes;
use super::context::Context;
use super::error::{DecodeError, UpdateError};
use super::iana::{Family, attribute_type as ty};
use super::mp::{MpReach, MpUnreach};
use super::prefix::{Ipv4Prefix, Nlri, decode_nlri, encode_nlri_list};

/// An UPDATE message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Update {
    /// Withdrawn IPv4 unicast routes.
    pub withdrawn: Vec<Nlri<Ipv4Prefix>>,
    /// Path attributes, in the order received (or to be sent).
    pub attributes: Vec<PathAttribute>,
    /// Reachable IPv4 unicast routes.
    pub nlri: Vec<Nlri<Ipv4Prefix>>,
    /// The RFC 7606 outcome met while decoding, if any. Always `None` for a message built
    /// locally; ignored by the encoder. With `TreatAsWithdraw`, every prefix in `nlri` and
    /// in MP_REACH_NLRI must be handled as withdrawn.
    pub error: Option<UpdateError>,
}

impl Update {
    /// The End-of-RIB marker for `family` (RFC 4724 §2): an empty UPDATE for IPv4 unicast,
    /// an UPDATE with only an empty MP_UNREACH_NLRI otherwise.
    pub fn end_of_rib(family: Family) -> Update {
        let attributes = if family == Family::IPV4_UNICAST {
            vec![]
        } else {
            let unreach = match family {
                Family::IPV6_UNICAST => MpUnreach::Ipv6Unicast(vec![]),
                _ => MpUnreach::Other {
                    family,
                    data: vec![],
                },
            };
            vec![PathAttribute::new(AttributeValue::MpUnreach(unreach))]
        };
        Update {
            attributes,
            ..Update::default()
        }
    }

    /// The family this UPDATE marks the End-of-RIB of, if it is such a marker.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        match self.attributes.as_slice() {
            [] => Some(Family::IPV4_UNICAST),
            [
                PathAttribute {
                    value: AttributeValue::MpUnreach(u),
                    ..
                },
            ] => match u {
                MpUnreach::Ipv4Unicast(n) if n.is_empty() => Some(Family::IPV4_UNICAST),
                MpUnreach::Ipv6Unicast(n) if n.is_empty() => Some(Family::IPV6_UNICAST),
                MpUnreach::Other { family, data } if data.is_empty() => Some(*family),
                _ => None,
            },
            _ => None,
        }
    }

    /// The first attribute with `type_code`.
    pub fn attribute(&self, type_code: u8) -> Option<&AttributeValue> {
        self.attributes
            .iter()
            .map(|a| &a.value)
            .find(|v| v.type_code() == type_code)
    }

    /// The MP_REACH_NLRI attribute, if present.
    pub fn mp_reach(&self) -> Option<&MpReach> {
        self.attributes.iter().find_map(|a| match &a.value {
            AttributeValue::MpReach(m) => Some(m),
            _ => None,
        })
    }

    /// The MP_UNREACH_NLRI attribute, if present.
    pub fn mp_unreach(&self) -> Option<&MpUnreach> {
        self.attributes.iter().find_map(|a| match &a.value {
            AttributeValue::MpUnreach(m) => Some(m),
            _ => None,
        })
    }

    /// Decodes an UPDATE body (after the header).
    ///
    /// `Err` is a session reset (RFC 7606 keeps those for errors that make the NLRI
    /// impossible to locate); milder malformations come back in [`Update::error`].
    pub(crate) fn decode_body(body: &[u8], ctx: &Context) -> Result<Update, DecodeError> {
        let (wlen, rest) = body
            .split_first_chunk::<2>()
            .ok_or(DecodeError::MalformedAttributeList)?;
        let wlen = usize::from(u16::from_be_bytes(*wlen));
        // RFC 4271 §6.3: lengths that overrun the message are a malformed attribute list.
        let withdrawn_bytes = rest
            .get(..wlen)
            .ok_or(DecodeError::MalformedAttributeList)?;
        let rest = &rest[wlen..];
        let (alen, rest) = rest
            .split_first_chunk::<2>()
            .ok_or(DecodeError::MalformedAttributeList)?;
        let alen = usize::from(u16::from_be_bytes(*alen));
        let attr_bytes = rest
            .get(..alen)
            .ok_or(DecodeError::MalformedAttributeList)?;
        let nlri_bytes = &rest[alen..];

        let add_path = ctx.add_path.ipv4_unicast;
        let withdrawn =
            decode_nlri(withdrawn_bytes, add_path).ok_or(DecodeError::InvalidNetworkField)?;
        let nlri = decode_nlri(nlri_bytes, add_path).ok_or(DecodeError::InvalidNetworkField)?;
        let decoded = decode_attributes(attr_bytes, ctx)?;
        let mut update = Update {
            withdrawn,
            attributes: decoded.attributes,
            nlri,
            error: decoded.error,
        };
        if !matches!(update.error, Some(UpdateError::TreatAsWithdraw(_)))
            && let Some(missing) = update.missing_well_known()
        {
            // RFC 7606 §3 d.
            update.error = Some(UpdateError::TreatAsWithdraw(
                DecodeError::MissingWellKnownAttribute { type_code: missing },
            ));
        }
        Ok(update)
    }

    /// The first mandatory well-known attribute missing for the routes this UPDATE
    /// announces (RFC 4271 §5: ORIGIN, AS_PATH, and NEXT_HOP when the NLRI field is used;
    /// RFC 4760 §3: not NEXT_HOP for MP_REACH_NLRI only).
    fn missing_well_known(&self) -> Option<u8> {
        let mp_routes = self.mp_reach().is_some_and(|m| m.prefix_count() > 0);
        if self.nlri.is_empty() && !mp_routes {
            return None;
        }
        let has = |t| self.attribute(t).is_some();
        [ty::ORIGIN, ty::AS_PATH]
            .into_iter()
            .chain((!self.nlri.is_empty()).then_some(ty::NEXT_HOP))
            .find(|&t| !has(t))
    }

    /// Appends the UPDATE body.
    pub(crate) fn encode_body(&self, ctx: &Context, buf: &mut BytesMut) {
        let add_path = ctx.add_path.ipv4_unicast;
        let wlen_at = buf.len();
        buf.put_u16(0);
        encode_nlri_list(&self.withdrawn, add_path, buf);
        let wlen = buf.len() - wlen_at - 2;
        patch_u16(buf, wlen_at, wlen);
        let alen_at = buf.len();
        buf.put_u16(0);
        for a in &self.attributes {
            a.encode(ctx, buf);
        }
        let alen = buf.len() - alen_at - 2;
        patch_u16(buf, alen_at, alen);
        encode_nlri_list(&self.nlri, add_path, buf);
    }
}

/// Writes a length into a two-octet placeholder; lengths beyond 65,535 are clamped and the
/// message-size check rejects the message.
pub(crate) fn patch_u16(buf: &mut BytesMut, at: usize, value: usize) {
    let v = u16::try_from(value).unwrap_or(u16::MAX);
    buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
