//! Update packing: many prefixes with one attribute set become as few full UPDATEs as the
//! maximum message size allows, and every prefix comes back out exactly once.

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::wire::*;
use bytes::BytesMut;

fn attributes_v4() -> Vec<PathAttribute> {
    vec![
        PathAttribute::new(AttributeValue::Origin(Origin::Igp)),
        PathAttribute::new(AttributeValue::AsPath(AsPath::sequence(vec![65000]))),
        PathAttribute::new(AttributeValue::NextHop(Ipv4Addr::new(192, 0, 2, 1))),
        PathAttribute::new(AttributeValue::Communities(vec![Community::new(65000, 1)])),
    ]
}

fn v4(n: u32) -> Vec<Nlri<Ipv4Prefix>> {
    (0..n)
        .map(|i| Nlri::new(Ipv4Prefix::host(Ipv4Addr::from(0x0a00_0000 + i))))
        .collect()
}

fn v6(n: u128) -> Vec<Nlri<Ipv6Prefix>> {
    (0..n)
        .map(|i| {
            Nlri::new(Ipv6Prefix::host(Ipv6Addr::from(
                (0x2001_0db8u128 << 96) + i,
            )))
        })
        .collect()
}

/// Splits a buffer of whole messages and decodes each.
fn messages(buf: &[u8], ctx: &Context) -> Vec<(usize, Update)> {
    let mut out = vec![];
    let mut rest = buf;
    while !rest.is_empty() {
        let len = frame(rest, ctx.max_message_len())
            .expect("valid")
            .expect("whole");
        let Message::Update(u) = Message::decode(&rest[..len], ctx).expect("decodes") else {
            panic!("not an UPDATE")
        };
        assert_eq!(u.error, None);
        out.push((len, u));
        rest = &rest[len..];
    }
    out
}

#[test]
fn ipv4_announcements_fill_messages_and_keep_every_prefix_once() {
    let ctx = Context {
        four_octet_as: true,
        ..Context::default()
    };
    let prefixes = v4(2000);
    let mut buf = BytesMut::new();
    let n =
        pack_ipv4_announcements(&attributes_v4(), prefixes.clone(), &ctx, &mut buf).expect("packs");
    let msgs = messages(&buf, &ctx);
    assert_eq!(msgs.len(), n);
    assert_eq!(n, 3, "2000 /32s of 5 bytes need three 4,096-byte UPDATEs");
    // All but the last message are full: no room left for one more /32.
    for (len, _) in &msgs[..n - 1] {
        assert!(*len > 4096 - 5, "message of {len} bytes is not full");
    }
    let got: Vec<_> = msgs
        .iter()
        .flat_map(|(_, u)| u.nlri.iter().copied())
        .collect();
    assert_eq!(got, prefixes);
    assert!(msgs.iter().all(|(_, u)| u.attributes == attributes_v4()));
}

#[test]
fn ipv4_announcements_with_add_path_carry_path_ids() {
    let ctx = Context {
        four_octet_as: true,
        add_path: AddPathFamilies {
            ipv4_unicast: true,
            ipv6_unicast: false,
        },
        ..Context::default()
    };
    let prefixes: Vec<_> = v4(10)
        .into_iter()
        .map(|n| Nlri {
            path_id: Some(7),
            ..n
        })
        .collect();
    let mut buf = BytesMut::new();
    pack_ipv4_announcements(&attributes_v4(), prefixes.clone(), &ctx, &mut buf).expect("packs");
    assert_eq!(messages(&buf, &ctx)[0].1.nlri, prefixes);
}

#[test]
fn ipv4_withdrawals_split_and_round_trip() {
    let ctx = Context::default();
    let prefixes = v4(1000);
    let mut buf = BytesMut::new();
    let n = pack_ipv4_withdrawals(prefixes.clone(), &ctx, &mut buf).expect("packs");
    assert_eq!(n, 2);
    let got: Vec<_> = messages(&buf, &ctx)
        .into_iter()
        .flat_map(|(_, u)| u.withdrawn)
        .collect();
    assert_eq!(got, prefixes);
}

#[test]
fn ipv6_announcements_use_mp_reach_first_and_round_trip() {
    let ctx = Context {
        four_octet_as: true,
        ..Context::default()
    };
    let attrs = &attributes_v4()[..2];
    let next_hop = MpNextHop::V6 {
        global: "2001:db8::1".parse().expect("addr"),
        link_local: None,
    };
    let prefixes = v6(500);
    let mut buf = BytesMut::new();
    let n =
        pack_ipv6_announcements(attrs, next_hop, prefixes.clone(), &ctx, &mut buf).expect("packs");
    assert_eq!(n, 3, "500 /128s of 17 bytes need three UPDATEs");
    let mut got = vec![];
    for (_, u) in messages(&buf, &ctx) {
        assert!(
            matches!(u.attributes[0].value, AttributeValue::MpReach(_)),
            "MP_REACH first"
        );
        assert_eq!(&u.attributes[1..], attrs);
        let Some(MpReach::Ipv6Unicast { next_hop: nh, nlri }) = u.mp_reach() else {
            panic!("no IPv6 MP_REACH")
        };
        assert_eq!(*nh, next_hop);
        got.extend_from_slice(nlri);
    }
    assert_eq!(got, prefixes);
}

#[test]
fn ipv6_withdrawals_round_trip() {
    let ctx = Context::default();
    let prefixes = v6(300);
    let mut buf = BytesMut::new();
    let n = pack_ipv6_withdrawals(prefixes.clone(), &ctx, &mut buf).expect("packs");
    assert_eq!(n, 2);
    let mut got = vec![];
    for (_, u) in messages(&buf, &ctx) {
        let Some(MpUnreach::Ipv6Unicast(nlri)) = u.mp_unreach() else {
            panic!("no MP_UNREACH")
        };
        got.extend_from_slice(nlri);
    }
    assert_eq!(got, prefixes);
}

#[test]
fn no_prefixes_write_nothing() {
    let mut buf = BytesMut::new();
    assert_eq!(
        pack_ipv4_announcements(&attributes_v4(), vec![], &Context::default(), &mut buf),
        Ok(0)
    );
    assert!(buf.is_empty());
}

#[test]
fn attributes_too_large_for_any_prefix_is_an_error_and_writes_nothing() {
    let huge = PathAttribute::new(AttributeValue::Unknown {
        type_code: 99,
        data: vec![0; 4070],
    });
    let mut buf = BytesMut::new();
    let r = pack_ipv4_announcements(&[huge], v4(1), &Context::default(), &mut buf);
    assert!(matches!(r, Err(EncodeError::MessageTooLong { .. })));
    assert!(buf.is_empty());
}

#[test]
fn end_of_rib_markers_for_both_families() {
    let ctx = Context::default();
    for family in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        let m = Message::Update(Update::end_of_rib(family));
        let bytes = m.to_bytes(&ctx).expect("fits");
        let Message::Update(u) = Message::decode(&bytes, &ctx).expect("decodes") else {
            panic!()
        };
        assert_eq!(u.end_of_rib_family(), Some(family));
    }
    assert_eq!(Update::end_of_rib(Family::IPV4_UNICAST).attributes.len(), 0);
    let ipv4 = Message::Update(Update::end_of_rib(Family::IPV4_UNICAST))
        .to_bytes(&ctx)
        .expect("fits");
    assert_eq!(ipv4.len(), 23, "IPv4 End-of-RIB is the minimal UPDATE");
}
