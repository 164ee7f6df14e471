//! Packing many prefixes that share one attribute set into as few UPDATE messages as the
//! maximum message size allows. This is how routes are sent in bulk: the attributes are
//! encoded once, prefixes are appended straight into the output buffer, nothing is
//! allocated per prefix.
//!
//! IPv4 routes use the classic NLRI and Withdrawn Routes fields (RFC 4271 §4.3); IPv6
//! routes use MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760), written as the first attribute
//! as RFC 7606 §5.1 recommends.

use bytes::{BufMut, BytesMut};

use super::attribute::{FLAG_EXTENDED_LENGTH, FLAG_OPTIONAL, PathAttribute};
use super::context::Context;
use super::error::EncodeError;
use super::iana::{Family, attribute_type as ty, message_type as mt};
use super::message::{HEADER_LEN, MARKER, finish_message};
use super::mp::MpNextHop;
use super::prefix::{Ipv4Prefix, Ipv6Prefix, Nlri, WirePrefix, nlri_len, write_nlri};
use super::update::patch_u16;

/// Appends UPDATEs announcing `nlri` (IPv4 unicast) with `attributes`, as many prefixes per
/// message as fit. `attributes` must hold ORIGIN, AS_PATH and NEXT_HOP. Returns the number
/// of messages written (0 for no prefixes). On error nothing more is appended.
pub fn pack_ipv4_announcements<I>(
    attributes: &[PathAttribute],
    nlri: I,
    ctx: &Context,
    buf: &mut BytesMut,
) -> Result<usize, EncodeError>
where
    I: IntoIterator<Item = Nlri<Ipv4Prefix>>,
{
    let mut attrs = BytesMut::with_capacity(64);
    for a in attributes {
        a.encode(ctx, &mut attrs);
    }
    let add_path = ctx.add_path.ipv4_unicast;
    let max = ctx.max_message_len();
    let mut iter = nlri.into_iter();
    let mut pending = iter.next();
    let mut count = 0;
    while let Some(first) = pending {
        let start = begin_update(buf, max);
        buf.put_u16(0);
        buf.put_u16(u16::try_from(attrs.len()).unwrap_or(u16::MAX));
        buf.extend_from_slice(&attrs);
        pending = fill(first, &mut iter, buf, start + max, add_path)
            .inspect_err(|_| buf.truncate(start))?;
        end_update(buf, start, max)?;
        count += 1;
    }
    Ok(count)
}

/// Appends UPDATEs withdrawing `nlri` (IPv4 unicast). Returns the number of messages.
pub fn pack_ipv4_withdrawals<I>(
    nlri: I,
    ctx: &Context,
    buf: &mut BytesMut,
) -> Result<usize, EncodeError>
where
    I: IntoIterator<Item = Nlri<Ipv4Prefix>>,
{
    let add_path = ctx.add_path.ipv4_unicast;
    let max = ctx.max_message_len();
    let mut iter = nlri.into_iter();
    let mut pending = iter.next();
    let mut count = 0;
    while let Some(first) = pending {
        let start = begin_update(buf, max);
        let wlen_at = buf.len();
        buf.put_u16(0);
        // Leave room for the two-octet Total Path Attribute Length that follows.
        pending = fill(first, &mut iter, buf, start + max - 2, add_path)
            .inspect_err(|_| buf.truncate(start))?;
        patch_u16(buf, wlen_at, buf.len() - wlen_at - 2);
        buf.put_u16(0);
        end_update(buf, start, max)?;
        count += 1;
    }
    Ok(count)
}

/// Appends UPDATEs announcing `nlri` (IPv6 unicast) via `next_hop`, with `attributes`
/// (ORIGIN, AS_PATH and the rest; no NEXT_HOP, no MP_REACH_NLRI). Returns the number of
/// messages.
pub fn pack_ipv6_announcements<I>(
    attributes: &[PathAttribute],
    next_hop: MpNextHop,
    nlri: I,
    ctx: &Context,
    buf: &mut BytesMut,
) -> Result<usize, EncodeError>
where
    I: IntoIterator<Item = Nlri<Ipv6Prefix>>,
{
    let mut attrs = BytesMut::with_capacity(64);
    for a in attributes {
        a.encode(ctx, &mut attrs);
    }
    let add_path = ctx.add_path.ipv6_unicast;
    let max = ctx.max_message_len();
    let mut iter = nlri.into_iter();
    let mut pending = iter.next();
    let mut count = 0;
    while let Some(first) = pending {
        let start = begin_update(buf, max);
        buf.put_u16(0);
        let alen_at = buf.len();
        buf.put_u16(0);
        let mp_at = begin_mp(buf, ty::MP_REACH_NLRI);
        next_hop.encode(buf);
        buf.put_u8(0);
        let limit = (start + max).saturating_sub(attrs.len());
        pending =
            fill(first, &mut iter, buf, limit, add_path).inspect_err(|_| buf.truncate(start))?;
        patch_u16(buf, mp_at, buf.len() - mp_at - 2);
        buf.extend_from_slice(&attrs);
        patch_u16(buf, alen_at, buf.len() - alen_at - 2);
        end_update(buf, start, max)?;
        count += 1;
    }
    Ok(count)
}

/// Appends UPDATEs withdrawing `nlri` (IPv6 unicast) in MP_UNREACH_NLRI. Returns the
/// number of messages.
pub fn pack_ipv6_withdrawals<I>(
    nlri: I,
    ctx: &Context,
    buf: &mut BytesMut,
) -> Result<usize, EncodeError>
where
    I: IntoIterator<Item = Nlri<Ipv6Prefix>>,
{
    let add_path = ctx.add_path.ipv6_unicast;
    let max = ctx.max_message_len();
    let mut iter = nlri.into_iter();
    let mut pending = iter.next();
    let mut count = 0;
    while let Some(first) = pending {
        let start = begin_update(buf, max);
        buf.put_u16(0);
        let alen_at = buf.len();
        buf.put_u16(0);
        let mp_at = begin_mp(buf, ty::MP_UNREACH_NLRI);
        pending = fill(first, &mut iter, buf, start + max, add_path)
            .inspect_err(|_| buf.truncate(start))?;
        patch_u16(buf, mp_at, buf.len() - mp_at - 2);
        patch_u16(buf, alen_at, buf.len() - alen_at - 2);
        end_update(buf, start, max)?;
        count += 1;
    }
    Ok(count)
}

fn begin_update(buf: &mut BytesMut, max: usize) -> usize {
    buf.reserve(max);
    let start = buf.len();
    buf.extend_from_slice(&MARKER);
    buf.put_u16(0);
    buf.put_u8(mt::UPDATE);
    start
}

fn end_update(buf: &mut BytesMut, start: usize, max: usize) -> Result<(), EncodeError> {
    debug_assert!(buf.len() - start >= HEADER_LEN);
    finish_message(buf, start, max).inspect_err(|_| buf.truncate(start))
}

/// Writes an IPv6 unicast MP attribute header (always extended length) and AFI/SAFI; returns where the
/// two-octet attribute length goes.
fn begin_mp(buf: &mut BytesMut, type_code: u8) -> usize {
    let family = Family::IPV6_UNICAST;
    buf.put_u8(FLAG_OPTIONAL | FLAG_EXTENDED_LENGTH);
    buf.put_u8(type_code);
    let at = buf.len();
    buf.put_u16(0);
    buf.put_u16(family.afi.0);
    buf.put_u8(family.safi.0);
    at
}

/// Appends `first` and then prefixes from `iter` while the buffer stays within `limit`;
/// returns the first prefix that did not fit. Errors if not even `first` fits.
#[inline]
fn fill<P: WirePrefix, I: Iterator<Item = Nlri<P>>>(
    first: Nlri<P>,
    iter: &mut I,
    buf: &mut BytesMut,
    limit: usize,
    add_path: bool,
) -> Result<Option<Nlri<P>>, EncodeError> {
    let need = buf.len() + nlri_len(&first, add_path);
    if need > limit {
        return Err(EncodeError::MessageTooLong {
            length: need,
            max: limit,
        });
    }
    // Size the buffer to the limit (plus scratch for the fixed-size stores) once and write
    // entries in place; cut back at the end.
    let mut pos = buf.len();
    buf.resize(limit + P::MAX_WIRE, 0);
    pos += write_nlri(&first, add_path, &mut buf[pos..]);
    let mut pending = None;
    for n in iter {
        if pos + nlri_len(&n, add_path) > limit {
            pending = Some(n);
            break;
        }
        pos += write_nlri(&n, add_path, &mut buf[pos..]);
    }
    buf.truncate(pos);
    Ok(pending)
}
