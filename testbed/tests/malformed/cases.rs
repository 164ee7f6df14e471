//! The cases of `malformed.rs`: each message written out byte by byte, with the RFC
//! section it proves and the answer it must get. Byte constants name their fields.

use std::net::{IpAddr, Ipv6Addr};

use ipnetwork::IpNetwork;
use testbed::router::raw::{self, RawOpen};

use crate::common::{ROUTER_AS, ip, net, vip4, vip6};

/// The two sessions of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn afi(self) -> u16 {
        match self {
            Family::V4 => 1,
            Family::V6 => 2,
        }
    }

    /// The raw peer's address: the speaker's peer address.
    pub fn router(self) -> IpAddr {
        match self {
            Family::V4 => ip("10.1.1.1"),
            Family::V6 => ip("fd00:1::1"),
        }
    }

    pub fn node(self) -> IpAddr {
        match self {
            Family::V4 => ip("10.1.1.2"),
            Family::V6 => ip("fd00:1::2"),
        }
    }

    pub fn vip(self) -> IpNetwork {
        match self {
            Family::V4 => vip4(),
            Family::V6 => vip6(),
        }
    }
}

/// Prefixes the raw peer announces, A, B and C, per family.
pub fn route(family: Family, which: u8) -> IpNetwork {
    match family {
        Family::V4 => net(&format!("198.51.100.{which}/32")),
        Family::V6 => net(&format!("2001:db8:51::{which}/128")),
    }
}
pub const A: u8 = 1;
pub const B: u8 = 2;
pub const C: u8 = 3;

// Valid attributes (4-octet AS negotiated). Flags: 0x40 well-known transitive, 0x80
// optional non-transitive, 0xc0 optional transitive.
/// ORIGIN IGP: flags, type 1, length 1, value 0.
pub const ORIGIN: &[u8] = &[0x40, 0x01, 0x01, 0x00];
/// AS_PATH: type 2, length 6, one AS_SEQUENCE (2) of one AS, 65000 in four octets.
pub const AS_PATH: &[u8] = &[0x40, 0x02, 0x06, 0x02, 0x01, 0x00, 0x00, 0xfd, 0xe8];
/// NEXT_HOP: type 3, length 4, 10.1.1.1 (the raw peer).
pub const NEXT_HOP: &[u8] = &[0x40, 0x03, 0x04, 10, 1, 1, 1];

/// MP_REACH_NLRI (type 14, RFC 4760 §3) for IPv6 unicast, next hop fd00:1::1.
fn mp_reach_v6(routes: &[u8]) -> Vec<u8> {
    let mut value = vec![0x00, 0x02, 0x01, 16]; // AFI 2, SAFI 1, next hop length 16
    value.extend_from_slice(&"fd00:1::1".parse::<Ipv6Addr>().unwrap().octets());
    value.push(0x00); // reserved
    for &r in routes {
        value.extend(raw::prefix(route(Family::V6, r)));
    }
    [vec![0x80, 0x0e, u8::try_from(value.len()).unwrap()], value].concat()
}

/// An UPDATE announcing `routes` of `family` with `attributes` (for IPv6 an MP_REACH_NLRI
/// is appended to them).
pub fn announce(family: Family, attributes: &[&[u8]], routes: &[u8]) -> Vec<u8> {
    let mut attrs = attributes.concat();
    let nlri: Vec<u8> = match family {
        Family::V4 => routes
            .iter()
            .flat_map(|&r| raw::prefix(route(family, r)))
            .collect(),
        Family::V6 => {
            attrs.extend(mp_reach_v6(routes));
            vec![]
        }
    };
    raw::update(&[], &attrs, &nlri)
}

/// The valid attributes for `family` (no NEXT_HOP attribute with MP_REACH_NLRI only,
/// RFC 4760 §3).
pub fn valid(family: Family) -> Vec<&'static [u8]> {
    match family {
        Family::V4 => vec![ORIGIN, AS_PATH, NEXT_HOP],
        Family::V6 => vec![ORIGIN, AS_PATH],
    }
}

/// The header of a message as written by hand: marker, then length and type.
fn header(length: u16, message_type: u8) -> Vec<u8> {
    let mut h = vec![0xff; 16];
    h.extend_from_slice(&length.to_be_bytes());
    h.push(message_type);
    h
}

/// A case whose answer is a NOTIFICATION and a closed connection.
pub struct ResetCase {
    pub what: &'static str,
    pub family: Family,
    pub message: Vec<u8>,
    /// (code, subcode, data); `None`: the connection closes with no NOTIFICATION at all.
    pub expect: Option<(u8, u8, Vec<u8>)>,
}

pub fn reset_cases() -> Vec<ResetCase> {
    use Family::*;
    let case = |what, family, message, code, subcode, data: &[u8]| ResetCase {
        what,
        family,
        message,
        expect: Some((code, subcode, data.to_vec())),
    };
    let route_refresh_24 = [header(24, 5), vec![0x00, 0x01, 0x00, 0x01, 0x00]].concat();
    vec![
        ResetCase {
            what: "RFC 4271 §6.4: NOTIFICATION of length 20, too short for code and subcode → \
                   the connection closes, and no NOTIFICATION answers a NOTIFICATION",
            family: V4,
            message: [header(20, 3), vec![0x06]].concat(),
            expect: None,
        },
        case(
            "RFC 4271 §6.1: marker not all ones → 1/1 Connection Not Synchronized",
            V4,
            [vec![0xff; 15], vec![0xfe, 0x00, 0x13, 0x04]].concat(),
            1,
            1,
            &[],
        ),
        case(
            "RFC 4271 §6.1: length 18, below the header → 1/2 Bad Message Length, data the length",
            V4,
            header(18, 4),
            1,
            2,
            &[0x00, 0x12],
        ),
        case(
            "RFC 4271 §6.1: length 4097, above the maximum → 1/2, data the length",
            V4,
            header(4097, 2),
            1,
            2,
            &[0x10, 0x01],
        ),
        case(
            "RFC 4271 §6.1, §4.4: KEEPALIVE of length 20 → 1/2, data the length",
            V4,
            [header(20, 4), vec![0x00]].concat(),
            1,
            2,
            &[0x00, 0x14],
        ),
        case(
            "RFC 4271 §6.1, §4.3: UPDATE of length 22, below its minimum of 23 → 1/2",
            V4,
            [header(22, 2), vec![0x00, 0x00, 0x00]].concat(),
            1,
            2,
            &[0x00, 0x16],
        ),
        case(
            "RFC 4271 §6.1: message type 42 → 1/3 Bad Message Type, data the type",
            V4,
            header(19, 42),
            1,
            3,
            &[42],
        ),
        case(
            "RFC 4271 §6.3: Withdrawn Routes Length 64 overruns the message → 3/1 Malformed \
             Attribute List (RFC 7606 cannot locate the NLRI: unchanged)",
            V4,
            // Withdrawn Routes Length 64, then only the 2-octet Total Path Attribute Length.
            raw::message(2, &[0x00, 0x40, 0x00, 0x00]),
            3,
            1,
            &[],
        ),
        case(
            "RFC 4271 §6.3: Total Path Attribute Length 64 overruns the message → 3/1",
            V4,
            // No withdrawn routes; attribute length 64 but only ORIGIN (4 octets) follows.
            raw::message(2, &[&[0x00, 0x00, 0x00, 0x40], ORIGIN].concat()),
            3,
            1,
            &[],
        ),
        case(
            "RFC 7606 §3 g: MP_UNREACH_NLRI twice → 3/1",
            V4,
            // Two empty MP_UNREACH_NLRI (type 15) for IPv4 unicast (AFI 1, SAFI 1).
            raw::update(
                &[],
                &[
                    0x80, 0x0f, 0x03, 0x00, 0x01, 0x01, //
                    0x80, 0x0f, 0x03, 0x00, 0x01, 0x01,
                ],
                &[],
            ),
            3,
            1,
            &[],
        ),
        case(
            "RFC 4271 §6.3: unrecognized well-known attribute (type 99, optional bit clear) → \
             3/2, data the attribute",
            V4,
            announce(
                V4,
                &[ORIGIN, AS_PATH, NEXT_HOP, &[0x40, 0x63, 0x02, 0xab, 0xcd]],
                &[A],
            ),
            3,
            2,
            &[0x40, 0x63, 0x02, 0xab, 0xcd],
        ),
        case(
            "RFC 4271 §6.3, RFC 7606 §5.3: NLRI prefix of length 33 → 3/10 Invalid Network Field",
            V4,
            raw::update(
                &[],
                &[ORIGIN, AS_PATH, NEXT_HOP].concat(),
                &[33, 198, 51, 100, 1, 0],
            ),
            3,
            10,
            &[],
        ),
        case(
            "RFC 4271 §6.3, RFC 7606 §5.3: withdrawn /32 with one octet → 3/10",
            V4,
            raw::update(&[32, 198], &[], &[]),
            3,
            10,
            &[],
        ),
        case(
            "RFC 4760 §7, RFC 7606 §7.12: MP_UNREACH_NLRI whose /32 overruns → 3/9 Optional \
             Attribute Error, data the attribute",
            V4,
            raw::update(&[], &[0x80, 0x0f, 0x05, 0x00, 0x01, 0x01, 0x20, 0xc6], &[]),
            3,
            9,
            &[0x80, 0x0f, 0x05, 0x00, 0x01, 0x01, 0x20, 0xc6],
        ),
        case(
            "RFC 7313 §5: ROUTE-REFRESH of length 24 → 7/1, data the message",
            V4,
            route_refresh_24.clone(),
            7,
            1,
            &route_refresh_24,
        ),
        case(
            "RFC 4271 §8.2.2, RFC 6608 §4: OPEN in Established → 5/3 FSM error",
            V4,
            RawOpen::new(ROUTER_AS, "10.255.0.1".parse().unwrap()).to_bytes(),
            5,
            3,
            &[],
        ),
        case(
            "RFC 7606 §3 g: MP_REACH_NLRI twice (IPv6) → 3/1",
            V6,
            raw::update(
                &[],
                &[ORIGIN, AS_PATH, &mp_reach_v6(&[A]), &mp_reach_v6(&[C])].concat(),
                &[],
            ),
            3,
            1,
            &[],
        ),
        case(
            "RFC 7606 §7.11, RFC 4760 §7: MP_REACH_NLRI with a 5-octet IPv6 next hop → 3/9, \
             data the attribute",
            V6,
            raw::update(
                &[],
                &[
                    ORIGIN,
                    AS_PATH,
                    // Type 14, length 13: AFI 2, SAFI 1, next hop length 5, five octets,
                    // reserved, 2001::/16.
                    &[
                        0x80, 0x0e, 0x0d, 0x00, 0x02, 0x01, 0x05, 0xfd, 0x00, 0x00, 0x01, 0x00,
                        0x00, 0x10, 0x20, 0x01,
                    ],
                ]
                .concat(),
                &[],
            ),
            3,
            9,
            &[
                0x80, 0x0e, 0x0d, 0x00, 0x02, 0x01, 0x05, 0xfd, 0x00, 0x00, 0x01, 0x00, 0x00, 0x10,
                0x20, 0x01,
            ],
        ),
        case(
            "RFC 7606 §5.3, §7.11: MP_REACH_NLRI with an IPv6 prefix of length 129 → 3/9, data \
             the attribute",
            V6,
            raw::update(&[], &[ORIGIN, AS_PATH, MP_REACH_129].concat(), &[]),
            3,
            9,
            MP_REACH_129,
        ),
        case(
            "RFC 7606 §7.12, RFC 4760 §7: MP_UNREACH_NLRI whose IPv6 /128 overruns → 3/9, \
             data the attribute",
            V6,
            // Type 15, length 5: AFI 2, SAFI 1, a /128 with one octet of its sixteen.
            raw::update(&[], &[0x80, 0x0f, 0x05, 0x00, 0x02, 0x01, 0x80, 0x20], &[]),
            3,
            9,
            &[0x80, 0x0f, 0x05, 0x00, 0x02, 0x01, 0x80, 0x20],
        ),
    ]
}

/// MP_REACH_NLRI (type 14, length 39): AFI 2, SAFI 1, next hop fd00:1::1, reserved, and a
/// prefix of length 129 (0x81) with its seventeen octets.
const MP_REACH_129: &[u8] = &[
    0x80, 0x0e, 0x27, //
    0x00, 0x02, 0x01, 0x10, //
    0xfd, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
    0x00, //
    0x81, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x51, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
];

/// A case the session survives: the malformed UPDATE announces A and C.
pub struct SurvivedCase {
    pub what: &'static str,
    pub family: Family,
    pub message: Vec<u8>,
}

/// Malformed UPDATEs RFC 7606 answers with treat-as-withdraw: each announces A and C.
pub fn withdraw_cases() -> Vec<SurvivedCase> {
    use Family::*;
    let case = |what, family, attributes: &[&[u8]]| SurvivedCase {
        what,
        family,
        message: announce(family, attributes, &[A, C]),
    };
    vec![
        case(
            "RFC 7606 §3 d (RFC 4271 3/3): ORIGIN missing",
            V4,
            &[AS_PATH, NEXT_HOP],
        ),
        case(
            "RFC 7606 §3 c (RFC 4271 3/4): ORIGIN flagged optional (0x80)",
            V4,
            &[&[0x80, 0x01, 0x01, 0x00], AS_PATH, NEXT_HOP],
        ),
        case(
            "RFC 7606 §7.1 (RFC 4271 3/5): ORIGIN of length 2",
            V4,
            &[&[0x40, 0x01, 0x02, 0x00, 0x00], AS_PATH, NEXT_HOP],
        ),
        case(
            "RFC 7606 §7.1 (RFC 4271 3/6): ORIGIN value 5",
            V4,
            &[&[0x40, 0x01, 0x01, 0x05], AS_PATH, NEXT_HOP],
        ),
        case(
            "RFC 7606 §7.2 (RFC 4271 3/11): AS_PATH segment type 9",
            V4,
            &[
                ORIGIN,
                &[0x40, 0x02, 0x06, 0x09, 0x01, 0x00, 0x00, 0xfd, 0xe8],
                NEXT_HOP,
            ],
        ),
        case(
            "RFC 7606 §7.2 (RFC 4271 3/11): AS_PATH segment of two ASes with one present",
            V4,
            &[
                ORIGIN,
                &[0x40, 0x02, 0x06, 0x02, 0x02, 0x00, 0x00, 0xfd, 0xe8],
                NEXT_HOP,
            ],
        ),
        case(
            "RFC 7606 §7.3 (RFC 4271 3/5): NEXT_HOP of length 5",
            V4,
            &[ORIGIN, AS_PATH, &[0x40, 0x03, 0x05, 10, 1, 1, 1, 0]],
        ),
        case(
            "RFC 7606 §7.3 (RFC 4271 3/8): NEXT_HOP 0.0.0.0",
            V4,
            &[ORIGIN, AS_PATH, &[0x40, 0x03, 0x04, 0, 0, 0, 0]],
        ),
        case(
            "RFC 7606 §7.4 (RFC 4271 3/5): MULTI_EXIT_DISC of length 2",
            V4,
            &[ORIGIN, AS_PATH, NEXT_HOP, &[0x80, 0x04, 0x02, 0x00, 0x01]],
        ),
        case(
            "RFC 7606 §7.8 (RFC 4271 3/9): COMMUNITIES of length 3",
            V4,
            &[
                ORIGIN,
                AS_PATH,
                NEXT_HOP,
                &[0xc0, 0x08, 0x03, 0x01, 0x02, 0x03],
            ],
        ),
        case(
            "RFC 7606 §7.14 (RFC 4271 3/9): EXTENDED_COMMUNITIES of length 7",
            V4,
            &[
                ORIGIN,
                AS_PATH,
                NEXT_HOP,
                &[0xc0, 0x10, 0x07, 0x00, 0x02, 0xfd, 0xe8, 0x00, 0x00, 0x01],
            ],
        ),
        case(
            "RFC 7606 §4 (RFC 4271 3/1): last attribute (MULTI_EXIT_DISC, length 4) overruns \
             the attribute list by three octets",
            V4,
            &[ORIGIN, AS_PATH, NEXT_HOP, &[0x80, 0x04, 0x04, 0x00]],
        ),
        case(
            "RFC 7606 §4 (RFC 4271 3/1): two octets left in the attribute list, too few for \
             an attribute",
            V4,
            &[ORIGIN, AS_PATH, NEXT_HOP, &[0x80, 0x04]],
        ),
        case(
            "RFC 7606 §7.2: IPv6 route (MP_REACH_NLRI) with AS_PATH segment type 9",
            V6,
            &[
                ORIGIN,
                &[0x40, 0x02, 0x06, 0x09, 0x01, 0x00, 0x00, 0xfd, 0xe8],
            ],
        ),
        case(
            "RFC 7606 §3 d: IPv6 route (MP_REACH_NLRI) without AS_PATH",
            V6,
            &[ORIGIN],
        ),
        case(
            "RFC 7606 §7.8: IPv6 route (MP_REACH_NLRI) with COMMUNITIES of length 3",
            V6,
            &[ORIGIN, AS_PATH, &[0xc0, 0x08, 0x03, 0x01, 0x02, 0x03]],
        ),
    ]
}

/// Malformed UPDATEs RFC 7606 answers with attribute discard, and what RFC 4271 says to
/// accept or ignore: each announces A and C.
pub fn discard_cases() -> Vec<SurvivedCase> {
    use Family::*;
    let case = |what, family, attributes: &[&[u8]]| SurvivedCase {
        what,
        family,
        message: announce(family, attributes, &[A, C]),
    };
    vec![
        case(
            "RFC 7606 §7.6 (RFC 4271 3/5): ATOMIC_AGGREGATE of length 1, discarded",
            V4,
            &[ORIGIN, AS_PATH, NEXT_HOP, &[0x40, 0x06, 0x01, 0x00]],
        ),
        case(
            "RFC 7606 §7.7 (RFC 4271 3/5): AGGREGATOR of length 2, discarded",
            V4,
            &[ORIGIN, AS_PATH, NEXT_HOP, &[0xc0, 0x07, 0x02, 0x01, 0x02]],
        ),
        case(
            "RFC 6793 §6 (RFC 4271 3/9): AS4_PATH segment of one AS with one octet, discarded",
            V4,
            &[
                ORIGIN,
                AS_PATH,
                NEXT_HOP,
                &[0xc0, 0x11, 0x03, 0x02, 0x01, 0x00],
            ],
        ),
        case(
            "RFC 6793 §6 (RFC 4271 3/5): AS4_AGGREGATOR of length 3, discarded",
            V4,
            &[
                ORIGIN,
                AS_PATH,
                NEXT_HOP,
                &[0xc0, 0x12, 0x03, 0x00, 0x00, 0x01],
            ],
        ),
        case(
            "RFC 7606 §3 g (RFC 4271 3/1): ORIGIN twice, the second (INCOMPLETE) discarded",
            V4,
            &[ORIGIN, AS_PATH, NEXT_HOP, &[0x40, 0x01, 0x01, 0x02]],
        ),
        case(
            "RFC 4271 §4.3: ORIGIN with the Extended Length bit (2-octet length 1), accepted",
            V4,
            &[&[0x50, 0x01, 0x00, 0x01, 0x00], AS_PATH, NEXT_HOP],
        ),
        case(
            "RFC 4271 §4.3: unused low-order flag bits set on AS_PATH (0x4f), ignored",
            V4,
            &[
                ORIGIN,
                &[0x4f, 0x02, 0x06, 0x02, 0x01, 0x00, 0x00, 0xfd, 0xe8],
                NEXT_HOP,
            ],
        ),
        case(
            "RFC 7606 §3 c: Partial bit on ORIGIN (0x60), not checked",
            V4,
            &[&[0x60, 0x01, 0x01, 0x00], AS_PATH, NEXT_HOP],
        ),
        case(
            "RFC 7606 §3 c, §7.7: AGGREGATOR flagged well-known (0x40): §7.7 discard, not \
             treat-as-withdraw",
            V4,
            &[
                ORIGIN,
                AS_PATH,
                NEXT_HOP,
                &[0x40, 0x07, 0x08, 0x00, 0x00, 0xfd, 0xe8, 10, 1, 1, 1],
            ],
        ),
        case(
            "RFC 7606 §3 c, §7.6: ATOMIC_AGGREGATE flagged optional (0x80): §7.6 discard",
            V4,
            &[ORIGIN, AS_PATH, NEXT_HOP, &[0x80, 0x06, 0x00]],
        ),
        case(
            "RFC 4271 §5: unrecognized optional non-transitive attribute, ignored",
            V4,
            &[ORIGIN, AS_PATH, NEXT_HOP, &[0x80, 0x63, 0x02, 0xab, 0xcd]],
        ),
        case(
            "RFC 4271 §5: unrecognized optional transitive attribute, kept",
            V4,
            &[ORIGIN, AS_PATH, NEXT_HOP, &[0xc0, 0x63, 0x02, 0xab, 0xcd]],
        ),
        case(
            "RFC 4271 §5.1.5: LOCAL_PREF from an external peer, ignored",
            V4,
            &[
                ORIGIN,
                AS_PATH,
                NEXT_HOP,
                &[0x40, 0x05, 0x04, 0x00, 0x00, 0x00, 0x64],
            ],
        ),
        case(
            "RFC 7606 §7.5: LOCAL_PREF of length 3 from an external peer: attribute discard, \
             not treat-as-withdraw",
            V4,
            &[
                ORIGIN,
                AS_PATH,
                NEXT_HOP,
                &[0x40, 0x05, 0x03, 0x00, 0x00, 0x64],
            ],
        ),
        case(
            "RFC 7606 §7.9: ORIGINATOR_ID of length 5 from an external peer: attribute discard",
            V4,
            &[
                ORIGIN,
                AS_PATH,
                NEXT_HOP,
                &[0x80, 0x09, 0x05, 10, 0, 0, 1, 0],
            ],
        ),
        case(
            "RFC 7606 §7.10: CLUSTER_LIST of length 3 from an external peer: attribute discard",
            V4,
            &[ORIGIN, AS_PATH, NEXT_HOP, &[0x80, 0x0a, 0x03, 10, 0, 0]],
        ),
        SurvivedCase {
            what: "RFC 4271 §4.3: a /23 whose padding bit is set (198.51.101.0/23 as written), \
                   accepted: the value of trailing bits is irrelevant",
            family: V4,
            message: raw::update(
                &[],
                &[ORIGIN, AS_PATH, NEXT_HOP].concat(),
                &[&raw::prefix(route(V4, A))[..], &[23, 198, 51, 101]].concat(),
            ),
        },
        case(
            "RFC 7606 §7.7: IPv6 route (MP_REACH_NLRI) with AGGREGATOR of length 2, discarded",
            V6,
            &[ORIGIN, AS_PATH, &[0xc0, 0x07, 0x02, 0x01, 0x02]],
        ),
    ]
}
