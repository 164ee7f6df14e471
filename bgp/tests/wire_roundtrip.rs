//! Property tests of the codec: `decode(encode(m)) == m` for every message kind within the
//! spec, under every negotiated context; decoding arbitrary bytes never panics.

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::wire::*;
use proptest::prelude::*;

fn ctx_strategy() -> impl Strategy<Value = Context> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(a, e, p4, p6)| {
        Context {
            four_octet_as: a,
            extended_message: e,
            add_path: AddPathFamilies {
                ipv4_unicast: p4,
                ipv6_unicast: p6,
            },
            external_peer: false,
        }
    })
}

fn path_id(add_path: bool) -> impl Strategy<Value = Option<u32>> {
    any::<u32>().prop_map(move |id| add_path.then_some(id))
}

fn v4_nlri(add_path: bool) -> impl Strategy<Value = Nlri<Ipv4Prefix>> {
    (path_id(add_path), any::<u32>(), 0..=32u8).prop_map(|(path_id, a, l)| Nlri {
        path_id,
        prefix: Ipv4Prefix::new(Ipv4Addr::from(a), l).expect("length in range"),
    })
}

fn v6_nlri(add_path: bool) -> impl Strategy<Value = Nlri<Ipv6Prefix>> {
    (path_id(add_path), any::<u128>(), 0..=128u8).prop_map(|(path_id, a, l)| Nlri {
        path_id,
        prefix: Ipv6Prefix::new(Ipv6Addr::from(a), l).expect("length in range"),
    })
}

fn asn(four_octet: bool) -> impl Strategy<Value = u32> {
    any::<u32>().prop_map(move |a| if four_octet { a } else { a & 0xffff })
}

fn as_path(four_octet: bool) -> impl Strategy<Value = AsPath> {
    let seg = (
        prop_oneof![
            Just(SegmentType::Set),
            Just(SegmentType::Sequence),
            Just(SegmentType::ConfedSequence),
            Just(SegmentType::ConfedSet)
        ],
        prop::collection::vec(asn(four_octet), 1..8),
    )
        .prop_map(|(kind, asns)| AsSegment { kind, asns });
    prop::collection::vec(seg, 0..4).prop_map(|segments| AsPath { segments })
}

fn unicast_next_hop() -> impl Strategy<Value = Ipv4Addr> {
    (0x0100_0000u32..0xE000_0000).prop_map(Ipv4Addr::from)
}

fn v6_next_hop() -> impl Strategy<Value = MpNextHop> {
    (any::<u128>(), prop::option::of(any::<u128>())).prop_map(|(g, ll)| MpNextHop::V6 {
        global: Ipv6Addr::from(g),
        link_local: ll.map(Ipv6Addr::from),
    })
}

/// Optional attributes beyond the mandatory ones, each at most once.
fn extra_attributes(ctx: Context) -> impl Strategy<Value = Vec<PathAttribute>> {
    let four = ctx.four_octet_as;
    (
        prop::option::of(any::<u32>().prop_map(AttributeValue::MultiExitDisc)),
        prop::option::of(any::<u32>().prop_map(AttributeValue::LocalPref)),
        prop::option::of(Just(AttributeValue::AtomicAggregate)),
        prop::option::of((asn(four), any::<u32>()).prop_map(|(asn, a)| {
            AttributeValue::Aggregator(Aggregator {
                asn,
                address: Ipv4Addr::from(a),
            })
        })),
        prop::option::of(
            prop::collection::vec(any::<u32>().prop_map(Community), 1..6)
                .prop_map(AttributeValue::Communities),
        ),
        prop::option::of(
            prop::collection::vec(any::<[u8; 8]>().prop_map(ExtendedCommunity), 1..4)
                .prop_map(AttributeValue::ExtendedCommunities),
        ),
        prop::option::of(as_path(true).prop_map(AttributeValue::As4Path)),
        prop::option::of((any::<u32>(), any::<u32>()).prop_map(|(asn, a)| {
            AttributeValue::As4Aggregator(Aggregator {
                asn,
                address: Ipv4Addr::from(a),
            })
        })),
        prop::option::of(
            prop::collection::vec(
                (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(global, local1, local2)| {
                    LargeCommunity {
                        global,
                        local1,
                        local2,
                    }
                }),
                1..4,
            )
            .prop_map(AttributeValue::LargeCommunities),
        ),
        prop::option::of(
            (any::<u32>(), prop::collection::vec(any::<u32>(), 1..4)).prop_map(|(o, c)| {
                [
                    AttributeValue::OriginatorId(Ipv4Addr::from(o)),
                    AttributeValue::ClusterList(c.into_iter().map(Ipv4Addr::from).collect()),
                ]
            }),
        ),
        prop::option::of(
            (
                prop::sample::select(vec![19u8, 20, 33, 40, 99, 200, 254]),
                prop::collection::vec(any::<u8>(), 0..300),
            )
                .prop_map(|(type_code, data)| AttributeValue::Unknown { type_code, data }),
        ),
        any::<bool>(),
    )
        .prop_map(|(a, b, c, d, e, f, g, h, i, reflected, j, extended)| {
            [a, b, c, d, e, f, g, h, i]
                .into_iter()
                .flatten()
                .chain(reflected.into_iter().flatten())
                .chain(j)
                .map(|v| {
                    let mut attr = PathAttribute::new(v);
                    if extended {
                        attr.flags |= FLAG_EXTENDED_LENGTH;
                    }
                    attr
                })
                .collect()
        })
}

fn update_strategy(ctx: Context) -> impl Strategy<Value = Update> {
    let ap4 = ctx.add_path.ipv4_unicast;
    let ap6 = ctx.add_path.ipv6_unicast;
    (
        prop::collection::vec(v4_nlri(ap4), 0..20),
        prop::collection::vec(v4_nlri(ap4), 0..20),
        prop_oneof![
            Just(Origin::Igp),
            Just(Origin::Egp),
            Just(Origin::Incomplete)
        ],
        as_path(ctx.four_octet_as),
        unicast_next_hop(),
        extra_attributes(ctx),
        prop::option::of((v6_next_hop(), prop::collection::vec(v6_nlri(ap6), 0..20))),
        prop::option::of(prop::collection::vec(v6_nlri(ap6), 0..20)),
        any::<bool>(),
    )
        .prop_map(
            move |(withdrawn, nlri, origin, path, nh, extra, reach, unreach, announce)| {
                let mut attributes = vec![];
                if let Some(u) = unreach {
                    attributes.push(PathAttribute::new(AttributeValue::MpUnreach(
                        MpUnreach::Ipv6Unicast(u),
                    )));
                }
                if announce || !nlri.is_empty() {
                    if let Some((next_hop, nlri)) = reach {
                        attributes.push(PathAttribute::new(AttributeValue::MpReach(
                            MpReach::Ipv6Unicast { next_hop, nlri },
                        )));
                    }
                    attributes.push(PathAttribute::new(AttributeValue::Origin(origin)));
                    attributes.push(PathAttribute::new(AttributeValue::AsPath(path)));
                    attributes.push(PathAttribute::new(AttributeValue::NextHop(nh)));
                    attributes.extend(extra);
                    Update {
                        withdrawn,
                        attributes,
                        nlri,
                        error: None,
                    }
                } else {
                    Update {
                        withdrawn,
                        attributes,
                        nlri: vec![],
                        error: None,
                    }
                }
            },
        )
}

fn family() -> impl Strategy<Value = Family> {
    (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Family::new(a, s))
}

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        family().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        Just(Capability::RouteRefreshCisco),
        Just(Capability::EnhancedRouteRefresh),
        Just(Capability::ExtendedMessage),
        any::<u32>().prop_map(Capability::FourOctetAs),
        (
            0..16u8,
            0..4096u16,
            prop::collection::vec((family(), any::<u8>()), 0..4)
        )
            .prop_map(|(flags, restart_time, fams)| Capability::GracefulRestart(
                GracefulRestart {
                    flags,
                    restart_time,
                    families: fams
                        .into_iter()
                        .map(|(family, flags)| GracefulRestartFamily { family, flags })
                        .collect(),
                }
            )),
        prop::collection::vec((family(), any::<u8>()), 0..4).prop_map(|v| Capability::AddPath(
            v.into_iter()
                .map(|(family, m)| AddPathFamily {
                    family,
                    mode: AddPathMode(m)
                })
                .collect()
        )),
        prop::collection::vec(any::<(u16, u16, u16)>(), 0..4).prop_map(|v| {
            Capability::ExtendedNextHop(
                v.into_iter()
                    .map(|(nlri_afi, nlri_safi, next_hop_afi)| ExtendedNextHopEntry {
                        nlri_afi,
                        nlri_safi,
                        next_hop_afi,
                    })
                    .collect(),
            )
        }),
        ("[a-z0-9.-]{0,20}", "[a-z0-9.-]{0,20}")
            .prop_map(|(hostname, domain)| Capability::Fqdn { hostname, domain }),
        prop::collection::vec((family(), any::<u8>(), 0..0x0100_0000u32), 0..4).prop_map(|v| {
            Capability::LongLivedGracefulRestart(
                v.into_iter()
                    .map(|(family, flags, stale_time)| LlgrFamily {
                        family,
                        flags,
                        stale_time,
                    })
                    .collect(),
            )
        }),
        (
            prop::sample::select(vec![3u8, 7, 66, 72, 200, 250]),
            prop::collection::vec(any::<u8>(), 0..20)
        )
            .prop_map(|(code, data)| Capability::Unknown { code, data }),
    ]
}

fn open_strategy() -> impl Strategy<Value = Open> {
    (
        1..=u16::MAX,
        prop_oneof![Just(0u16), 3..=u16::MAX],
        1..=u32::MAX,
        prop::collection::vec(
            prop_oneof![
                prop::collection::vec(capability(), 0..5).prop_map(OptionalParam::Capabilities),
                (
                    prop::sample::select(vec![1u8, 3, 4, 100]),
                    prop::collection::vec(any::<u8>(), 0..10)
                )
                    .prop_map(|(param_type, data)| OptionalParam::Unknown { param_type, data }),
            ],
            0..3,
        ),
        any::<bool>(),
    )
        .prop_map(|(my_as, hold_time, id, params, extended_params)| Open {
            my_as,
            hold_time,
            bgp_id: Ipv4Addr::from(id),
            params,
            extended_params,
        })
}

fn message_strategy(ctx: Context) -> impl Strategy<Value = Message> {
    prop_oneof![
        open_strategy().prop_map(Message::Open),
        update_strategy(ctx).prop_map(Message::Update),
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(c, s, data)| Message::Notification(Notification::new(
                ErrorCode::from_wire(c, s),
                data
            ))),
        Just(Message::Keepalive),
        (family(), any::<u8>()).prop_map(|(family, s)| Message::RouteRefresh(RouteRefresh {
            family,
            subtype: RouteRefreshSubtype(s)
        })),
    ]
}

/// The encoder sets Extended Length on attributes whose value exceeds 255 octets, and the
/// decoder keeps the flags it sees: mark those attributes the way they come back.
fn with_needed_extended_length(message: Message, ctx: &Context) -> Message {
    let Message::Update(mut u) = message else {
        return message;
    };
    for a in &mut u.attributes {
        let mut buf = bytes::BytesMut::new();
        a.encode(ctx, &mut buf);
        if a.flags & FLAG_EXTENDED_LENGTH == 0 && buf.len() > 3 + 255 {
            a.flags |= FLAG_EXTENDED_LENGTH;
        }
    }
    Message::Update(u)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_of_encode_is_identity((ctx, message) in ctx_strategy().prop_flat_map(|c| (Just(c), message_strategy(c)))) {
        let message = with_needed_extended_length(message, &ctx);
        let bytes = message.to_bytes(&ctx).expect("fits");
        prop_assert_eq!(frame(&bytes, ctx.max_message_len()), Ok(Some(bytes.len())));
        let decoded = Message::decode(&bytes, &ctx).expect("decodes");
        prop_assert_eq!(&decoded, &message);
        // And the bytes are canonical: encoding again gives the same bytes.
        prop_assert_eq!(decoded.to_bytes(&ctx).expect("fits"), bytes);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(ctx in ctx_strategy(), bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let result = Message::decode(&bytes, &ctx);
        // Random bytes almost never carry a valid marker: the error must be reported.
        if bytes.len() < 19 || bytes[..16] != [0xff; 16] {
            prop_assert!(result.is_err());
        }
        if let Err(e) = result { let _ = e.notification(); }
        let _ = frame(&bytes, ctx.max_message_len());
    }

    #[test]
    fn decoding_bodies_behind_valid_headers_never_panics(
        ctx in ctx_strategy(),
        message_type in 1..=5u8,
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = vec![0xff; 16];
        bytes.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
        bytes.push(message_type);
        bytes.extend_from_slice(&body);
        match Message::decode(&bytes, &ctx) {
            Ok(m) => {
                prop_assert_eq!(m.message_type(), message_type);
                // Whatever decodes cleanly re-encodes to something that decodes the same.
                if !matches!(&m, Message::Update(u) if u.error.is_some()) {
                    let again = Message::decode(&m.to_bytes(&ctx).expect("fits"), &ctx).expect("decodes");
                    prop_assert_eq!(again, m);
                }
            }
            Err(e) => { let _ = e.notification(); }
        }
    }
}
