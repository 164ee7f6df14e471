//! A batch of Adj-RIB-Out changes as UPDATE bytes for one session: each attribute group
//! is packed into as few messages as the negotiated size allows (the codec's packers),
//! and IPv4 withdrawals ride in the first announcement UPDATE when they fit beside it.

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use crate::wire::attribute::{FLAG_EXTENDED_LENGTH, FLAG_OPTIONAL};
use crate::wire::context::Context;
use crate::wire::error::EncodeError;
use crate::wire::iana::{Family, attribute_type, message_type};
use crate::wire::message::{HEADER_LEN, MARKER, Message, finish_message};
use crate::wire::mp::MpNextHop;
use crate::wire::pack::{
    pack_ipv4_announcements, pack_ipv4_withdrawals, pack_ipv6_announcements, pack_ipv6_withdrawals,
};
use crate::wire::prefix::{Ipv4Prefix, Ipv6Prefix, Nlri, encode_nlri, nlri_len};
use crate::wire::update::{Update, patch_u16};

use super::adj_out::Batch;
use super::export::Export;
use super::route::Prefix;

/// What `encode_batch` wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Packed {
    /// UPDATE messages written.
    pub messages: usize,
    /// Prefixes that could not be announced because no next hop could be given for them
    /// (e.g. an IPv6 route on an IPv4 session without a configured IPv6 next hop). They
    /// are withdrawn instead, in case the peer had them from before.
    pub skipped: Vec<Prefix>,
}

fn split(prefixes: &[Prefix]) -> (Vec<Nlri<Ipv4Prefix>>, Vec<Nlri<Ipv6Prefix>>) {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for p in prefixes {
        match p {
            Prefix::V4(p) => v4.push(Nlri::new(*p)),
            Prefix::V6(p) => v6.push(Nlri::new(*p)),
        }
    }
    (v4, v6)
}

/// Appends the UPDATEs for `batch` to `buf`.
pub fn encode_batch(
    batch: &Batch,
    export: &Export,
    buf: &mut BytesMut,
) -> Result<Packed, EncodeError> {
    let ctx = &export.context;
    let mut packed = Packed::default();
    let (mut withdrawn_v4, mut withdrawn_v6) = split(&batch.withdrawn);
    for (attrs, prefixes) in &batch.announced {
        let (v4, v6) = split(prefixes);
        if !v4.is_empty() {
            match export.ipv4_next_hop(attrs) {
                Some(nh) => {
                    let path = export.attributes(attrs, Some(nh));
                    let mut v4 = v4.into_iter().peekable();
                    if !withdrawn_v4.is_empty() {
                        let mut encoded = BytesMut::new();
                        path.iter().for_each(|a| a.encode(ctx, &mut encoded));
                        if let Some(n) =
                            pack_ipv4_mixed(&withdrawn_v4, &encoded, &mut v4, ctx, buf)?
                        {
                            withdrawn_v4.clear();
                            packed.messages += n;
                        }
                    }
                    packed.messages += pack_ipv4_announcements(&path, v4, ctx, buf)?;
                }
                None => {
                    packed
                        .skipped
                        .extend(v4.iter().map(|n| Prefix::V4(n.prefix)));
                    withdrawn_v4.extend(v4);
                }
            }
        }
        if !v6.is_empty() {
            match export.ipv6_next_hop(attrs) {
                Some(nh) => {
                    let path = export.attributes(attrs, None);
                    let mut v6 = v6.into_iter().peekable();
                    if !withdrawn_v6.is_empty() {
                        let mut encoded = BytesMut::new();
                        path.iter().for_each(|a| a.encode(ctx, &mut encoded));
                        if let Some(n) =
                            pack_ipv6_mixed(&withdrawn_v6, &encoded, nh, &mut v6, ctx, buf)?
                        {
                            withdrawn_v6.clear();
                            packed.messages += n;
                        }
                    }
                    packed.messages += pack_ipv6_announcements(&path, nh, v6, ctx, buf)?;
                }
                None => {
                    packed
                        .skipped
                        .extend(v6.iter().map(|n| Prefix::V6(n.prefix)));
                    withdrawn_v6.extend(v6);
                }
            }
        }
    }
    packed.messages += pack_ipv4_withdrawals(withdrawn_v4, ctx, buf)?;
    packed.messages += pack_ipv6_withdrawals(withdrawn_v6, ctx, buf)?;
    Ok(packed)
}

/// One UPDATE holding all of `withdrawn` and, after the encoded `attributes`, as many of
/// `nlri` as fit. `None` (nothing written) when the withdrawals and one prefix do not fit
/// together; the caller then sends them apart.
fn pack_ipv4_mixed<I: Iterator<Item = Nlri<Ipv4Prefix>>>(
    withdrawn: &[Nlri<Ipv4Prefix>],
    attributes: &[u8],
    nlri: &mut std::iter::Peekable<I>,
    ctx: &Context,
    buf: &mut BytesMut,
) -> Result<Option<usize>, EncodeError> {
    let add_path = ctx.add_path.ipv4_unicast;
    let max = ctx.max_message_len();
    let Some(first) = nlri.peek() else {
        return Ok(None);
    };
    let withdrawn_len: usize = withdrawn.iter().map(|n| nlri_len(n, add_path)).sum();
    if HEADER_LEN + 4 + withdrawn_len + attributes.len() + nlri_len(first, add_path) > max {
        return Ok(None);
    }
    let start = buf.len();
    buf.reserve(max);
    buf.extend_from_slice(&MARKER);
    buf.put_u16(0);
    buf.put_u8(message_type::UPDATE);
    let wlen_at = buf.len();
    buf.put_u16(0);
    withdrawn.iter().for_each(|n| encode_nlri(n, add_path, buf));
    patch_u16(buf, wlen_at, buf.len() - wlen_at - 2);
    buf.put_u16(u16::try_from(attributes.len()).unwrap_or(u16::MAX));
    buf.extend_from_slice(attributes);
    while let Some(n) = nlri.next_if(|n| buf.len() - start + nlri_len(n, add_path) <= max) {
        encode_nlri(&n, add_path, buf);
    }
    finish_message(buf, start, max).inspect_err(|_| buf.truncate(start))?;
    Ok(Some(1))
}

/// One UPDATE holding MP_UNREACH_NLRI with all of `withdrawn`, then MP_REACH_NLRI with
/// as many of `nlri` as fit, then the encoded `attributes` (RFC 4760 allows both MP
/// attributes in one UPDATE). `None` (nothing written) when they do not fit together.
fn pack_ipv6_mixed<I: Iterator<Item = Nlri<Ipv6Prefix>>>(
    withdrawn: &[Nlri<Ipv6Prefix>],
    attributes: &[u8],
    next_hop: MpNextHop,
    nlri: &mut std::iter::Peekable<I>,
    ctx: &Context,
    buf: &mut BytesMut,
) -> Result<Option<usize>, EncodeError> {
    let add_path = ctx.add_path.ipv6_unicast;
    let max = ctx.max_message_len();
    let Some(first) = nlri.peek() else {
        return Ok(None);
    };
    let withdrawn_len: usize = withdrawn.iter().map(|n| nlri_len(n, add_path)).sum();
    // Header, two length fields, two extended-length MP attribute headers with AFI/SAFI,
    // the next hop (length octet + up to 32) and its reserved octet.
    let fixed = HEADER_LEN + 4 + 2 * 7 + 33 + 1;
    if fixed + withdrawn_len + attributes.len() + nlri_len(first, add_path) > max {
        return Ok(None);
    }
    let start = buf.len();
    buf.reserve(max);
    buf.extend_from_slice(&MARKER);
    buf.put_u16(0);
    buf.put_u8(message_type::UPDATE);
    buf.put_u16(0);
    let alen_at = buf.len();
    buf.put_u16(0);
    let unreach_at = begin_mp_ipv6(buf, attribute_type::MP_UNREACH_NLRI);
    withdrawn.iter().for_each(|n| encode_nlri(n, add_path, buf));
    patch_u16(buf, unreach_at, buf.len() - unreach_at - 2);
    let reach_at = begin_mp_ipv6(buf, attribute_type::MP_REACH_NLRI);
    next_hop.encode(buf);
    buf.put_u8(0);
    let limit = (start + max).saturating_sub(attributes.len());
    while let Some(n) = nlri.next_if(|n| buf.len() + nlri_len(n, add_path) <= limit) {
        encode_nlri(&n, add_path, buf);
    }
    patch_u16(buf, reach_at, buf.len() - reach_at - 2);
    buf.extend_from_slice(attributes);
    patch_u16(buf, alen_at, buf.len() - alen_at - 2);
    finish_message(buf, start, max).inspect_err(|_| buf.truncate(start))?;
    Ok(Some(1))
}

/// Writes an IPv6 unicast MP attribute header (extended length) and AFI/SAFI; returns
/// where the two-octet attribute length goes.
fn begin_mp_ipv6(buf: &mut BytesMut, type_code: u8) -> usize {
    buf.put_u8(FLAG_OPTIONAL | FLAG_EXTENDED_LENGTH);
    buf.put_u8(type_code);
    let at = buf.len();
    buf.put_u16(0);
    buf.put_u16(Family::IPV6_UNICAST.afi.0);
    buf.put_u8(Family::IPV6_UNICAST.safi.0);
    at
}

/// Appends the End-of-RIB marker for `family` (RFC 4724 §2).
pub fn encode_end_of_rib(
    family: Family,
    ctx: &Context,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    Message::Update(Update::end_of_rib(family)).encode(ctx, buf)
}

/// The IPv4 next hop self of a session whose local address is `local`.
pub fn ipv4_of(local: std::net::IpAddr) -> Option<Ipv4Addr> {
    match local {
        std::net::IpAddr::V4(a) => Some(a),
        std::net::IpAddr::V6(a) => a.to_ipv4_mapped(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rib::adj_out::AdjRibOut;
    use crate::rib::route::RouteAttrs;
    use crate::wire::message::frame;
    use std::sync::Arc;

    fn export() -> Export {
        Export {
            local_as: 65001,
            ibgp: false,
            next_hop_v4: Some(Ipv4Addr::new(10, 0, 0, 1)),
            next_hop_v6: Some((
                "2001:db8::1".parse().expect("ip"),
                Some("fe80::1".parse().expect("ip")),
            )),
            graceful_shutdown: false,
            context: Context {
                four_octet_as: true,
                ..Context::default()
            },
        }
    }

    /// Decodes every message in `buf`.
    fn decode_all(mut buf: &[u8], ctx: &Context) -> Vec<Update> {
        let mut out = Vec::new();
        while let Some(len) = frame(buf, ctx.max_message_len()).expect("frame") {
            match Message::decode(&buf[..len], ctx).expect("decode") {
                Message::Update(u) => out.push(u),
                other => panic!("unexpected {other:?}"),
            }
            buf = &buf[len..];
        }
        assert!(buf.is_empty(), "trailing bytes");
        out
    }

    #[test]
    fn hundred_thousand_hosts_leave_in_about_125_updates() {
        let mut rib = AdjRibOut::new();
        rib.start(&[Family::IPV4_UNICAST]);
        let attrs = Arc::new(RouteAttrs::default());
        for i in 0..100_000u32 {
            rib.announce(
                Prefix::host(Ipv4Addr::from(0x0A00_0000 + i).into()),
                attrs.clone(),
            );
        }
        let batch = rib.next_batch(usize::MAX);
        let mut buf = BytesMut::new();
        let packed = encode_batch(&batch, &export(), &mut buf).expect("encode");
        // 4,096-byte messages: (4096 - 23 - attributes) / 5 bytes per /32 ≈ 810 per UPDATE.
        assert!(packed.messages <= 125, "{} UPDATEs", packed.messages);
        let updates = decode_all(&buf, &export().context);
        assert_eq!(updates.len(), packed.messages);
        assert_eq!(updates.iter().map(|u| u.nlri.len()).sum::<usize>(), 100_000);
    }

    #[test]
    fn withdrawals_share_the_first_update_with_announcements() {
        let mut rib = AdjRibOut::new();
        rib.start(&[]);
        let a = Arc::new(RouteAttrs::default());
        rib.announce("10.0.0.1".parse().expect("p"), a.clone());
        rib.next_batch(usize::MAX);
        rib.withdraw("10.0.0.1".parse().expect("p"));
        rib.announce("10.0.0.2".parse().expect("p"), a);
        let mut buf = BytesMut::new();
        let packed =
            encode_batch(&rib.next_batch(usize::MAX), &export(), &mut buf).expect("encode");
        assert_eq!(packed.messages, 1);
        let u = &decode_all(&buf, &export().context)[0];
        assert_eq!(u.withdrawn.len(), 1);
        assert_eq!(u.nlri.len(), 1);
    }

    #[test]
    fn ipv6_withdrawals_and_announcements_share_one_update() {
        let mut rib = AdjRibOut::new();
        rib.start(&[]);
        let a = Arc::new(RouteAttrs::default());
        rib.announce("2001:db8::1".parse().expect("p"), a.clone());
        rib.next_batch(usize::MAX);
        rib.withdraw("2001:db8::1".parse().expect("p"));
        rib.announce("2001:db8::2".parse().expect("p"), a);
        let mut buf = BytesMut::new();
        let packed =
            encode_batch(&rib.next_batch(usize::MAX), &export(), &mut buf).expect("encode");
        assert_eq!(packed.messages, 1);
        let u = &decode_all(&buf, &export().context)[0];
        assert!(
            matches!(u.mp_unreach(), Some(crate::wire::mp::MpUnreach::Ipv6Unicast(w)) if w.len() == 1)
        );
        assert!(matches!(
            u.mp_reach(),
            Some(crate::wire::mp::MpReach::Ipv6Unicast { nlri, .. }) if nlri.len() == 1
        ));
        assert!(u.error.is_none(), "{u:?}");
    }

    #[test]
    fn routes_without_a_next_hop_are_withdrawn_instead() {
        let mut rib = AdjRibOut::new();
        rib.start(&[]);
        rib.announce(
            "2001:db8::1".parse().expect("p"),
            Arc::new(RouteAttrs::default()),
        );
        let mut e = export();
        e.next_hop_v6 = None;
        let mut buf = BytesMut::new();
        let packed = encode_batch(&rib.next_batch(usize::MAX), &e, &mut buf).expect("encode");
        assert_eq!(
            packed.skipped,
            vec!["2001:db8::1".parse::<Prefix>().expect("p")]
        );
        rib.mark_unsent(&packed.skipped);
        assert_eq!(rib.advertised(), 0);
        let u = &decode_all(&buf, &e.context)[0];
        assert!(u.mp_reach().is_none());
        assert!(
            matches!(u.mp_unreach(), Some(crate::wire::mp::MpUnreach::Ipv6Unicast(w)) if w.len() == 1)
        );
    }

    #[test]
    fn ipv6_goes_in_mp_reach_with_link_local_and_extended_messages_pack_more() {
        let mut rib = AdjRibOut::new();
        rib.start(&[]);
        let a = Arc::new(RouteAttrs::default());
        for i in 0..1000u128 {
            rib.announce(
                Prefix::host(std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | i).into()),
                a.clone(),
            );
        }
        let mut e = export();
        e.context.extended_message = true;
        let mut buf = BytesMut::new();
        let packed = encode_batch(&rib.next_batch(usize::MAX), &e, &mut buf).expect("encode");
        assert_eq!(packed.messages, 1, "1000 /128s fit one 65,535-byte UPDATE");
        let u = &decode_all(&buf, &e.context)[0];
        match u.mp_reach() {
            Some(crate::wire::mp::MpReach::Ipv6Unicast { next_hop, nlri }) => {
                assert_eq!(nlri.len(), 1000);
                assert!(matches!(
                    next_hop,
                    crate::wire::mp::MpNextHop::V6 {
                        link_local: Some(_),
                        ..
                    }
                ));
            }
            other => panic!("no IPv6 MP_REACH: {other:?}"),
        }
    }

    #[test]
    fn end_of_rib_round_trips() {
        let ctx = Context::default();
        let mut buf = BytesMut::new();
        encode_end_of_rib(Family::IPV6_UNICAST, &ctx, &mut buf).expect("eor");
        assert_eq!(
            decode_all(&buf, &ctx)[0].end_of_rib_family(),
            Some(Family::IPV6_UNICAST)
        );
    }
}
