//! Malformed messages from a raw BGP peer: the speaker answers as RFC 4271 and RFC 7606 say,
//! stays up where treat-as-withdraw or attribute discard applies, and never crashes.
//!
//! Why a raw peer: router daemons (BIRD, FRR, GoBGP) never send malformed messages, and
//! ExaBGP 4.2 can only add odd path attributes to otherwise valid UPDATEs (the interop suite
//! covers those). A bad marker, a length field that lies, a /33 in the NLRI field or a
//! duplicate MP_REACH_NLRI need a peer that writes exactly the bytes the test spells out:
//! [`testbed::router::raw`]. Its parser is hand-written and shares nothing with Berth's
//! codec, so the assertions do not depend on the code under test.
//!
//! Lab: a router namespace `r` holding the raw peer (listening on port 179 over IPv4 and
//! IPv6) and a node `n1` running `berth-speaker` (the real binary, see `common/berth.rs`)
//! with one session per family, announcing one VIP per family. Every case gets a fresh
//! session: the raw peer accepts the speaker's next connection, completes OPEN/KEEPALIVE
//! (4-octet AS, multiprotocol IPv4 and IPv6 unicast, route refresh), and sends one
//! hand-written message. Then, by outcome class:
//!
//! - **Session reset**: the exact NOTIFICATION (code, subcode, and data where the RFC
//!   specifies it) arrives, and the speaker closes the connection after it.
//! - **Treat-as-withdraw** (RFC 7606 §2): the peer first announces A and B with valid
//!   attributes, then the malformed UPDATE announces A and C. No NOTIFICATION arrives; a
//!   ROUTE-REFRESH is answered with the speaker's VIP (the session works and every message
//!   before it was processed); the speaker then holds exactly one route from the peer, B
//!   (its admin API's received-prefix count): A was withdrawn and C never taken.
//! - **Attribute discard** (RFC 7606 §2), and what RFC 4271 §4.3 / §5 and RFC 7606 §3 c
//!   say to accept or ignore (Extended Length on a short attribute, unused flag bits, the
//!   Partial bit, unknown optional attributes, LOCAL_PREF over eBGP): the same exchange
//!   ends with A, B and C held.
//!
//! Beyond UPDATEs, the reset class also covers ROUTE-REFRESH of a bad length (RFC 7313 §5)
//! and an OPEN in Established (RFC 6608 §4). The cases found two bugs, fixed in the `bgp`
//! driver with unit tests of their own: a header claiming more than 4,096 octets without
//! extended messages waited for the hold timer instead of 1/2, and a malformed
//! NOTIFICATION was answered with a NOTIFICATION.
//!
//! After all cases of a class, both sessions come up again and answer a ROUTE-REFRESH, and
//! the speaker still runs.
//!
//! Which case stands for which rule (RFC 4271 §6.3 error → RFC 7606 outcome):
//!
//! | RFC 4271 error (code/subcode) | RFC 7606 | case class |
//! |---|---|---|
//! | §6.1 marker, length, type (1/1, 1/2, 1/3) | unchanged | reset |
//! | §6.4 error in a NOTIFICATION | not reported: the connection closes | reset, no NOTIFICATION |
//! | Withdrawn Routes / Total Attribute Length overrun (3/1) | unchanged: NLRI not locatable | reset |
//! | attribute overruns the attribute list (3/1) | §4 | withdraw |
//! | attribute twice (3/1) | §3 g: MP_REACH/MP_UNREACH reset 3/1, others discard | both |
//! | unrecognized well-known attribute (3/2) | unchanged | reset |
//! | missing well-known attribute (3/3) | §3 d | withdraw |
//! | attribute flags (3/4) | §3 c | withdraw |
//! | attribute length (3/5) | §7.x per attribute | withdraw / discard |
//! | invalid ORIGIN (3/6) | §7.1 | withdraw |
//! | invalid NEXT_HOP (3/8) | §7.3 | withdraw |
//! | optional attribute error (3/9) | §7.8, §7.14 withdraw; §7.11, §7.12 (RFC 4760 §7) reset 3/9; RFC 6793 §6 discard | all |
//! | invalid network field (3/10) | §5.3 | reset |
//! | malformed AS_PATH (3/11) | §7.2 | withdraw |
//!
//! RFC 7606 also allows "AFI/SAFI disable" instead of a reset for MP_REACH_NLRI and
//! MP_UNREACH_NLRI errors; Berth does not implement it and resets, which the RFC permits.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use common::berth::{BerthPeer, BerthSpeaker};
use common::{NODE_AS, ROUTER_AS, SESSION_TIMEOUT, ip, net, vip4, vip6};
use ipnetwork::IpNetwork;
use testbed::Lab;
use testbed::router::raw::{
    self, RawConnection, RawListener, RawMessage, RawNotification, RawOpen,
};

/// How long one answer of the speaker may take (generous: the machine is shared).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// The two sessions of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn afi(self) -> u16 {
        match self {
            Family::V4 => 1,
            Family::V6 => 2,
        }
    }

    /// The raw peer's address: the speaker's peer address.
    fn router(self) -> IpAddr {
        match self {
            Family::V4 => ip("10.1.1.1"),
            Family::V6 => ip("fd00:1::1"),
        }
    }

    fn node(self) -> IpAddr {
        match self {
            Family::V4 => ip("10.1.1.2"),
            Family::V6 => ip("fd00:1::2"),
        }
    }

    fn vip(self) -> IpNetwork {
        match self {
            Family::V4 => vip4(),
            Family::V6 => vip6(),
        }
    }
}

/// A router namespace with the raw peer's listeners and a node running a Berth speaker.
/// Fields drop in order: the speaker first, the namespaces last.
struct MalformedLab {
    speaker: BerthSpeaker,
    v4: RawListener,
    v6: RawListener,
    _lab: Lab,
}

impl MalformedLab {
    fn new(label: &str) -> MalformedLab {
        let mut lab = Lab::new(label).unwrap_or_else(|e| panic!("lab needs root: {e}"));
        lab.add_namespace("r").unwrap();
        lab.add_namespace("n1").unwrap();
        lab.link(("r", "eth1"), ("n1", "eth0")).unwrap();
        for family in [Family::V4, Family::V6] {
            let len = if family == Family::V4 { 24 } else { 64 };
            lab.add_address("r", "eth1", IpNetwork::new(family.router(), len).unwrap())
                .unwrap();
            lab.add_address("n1", "eth0", IpNetwork::new(family.node(), len).unwrap())
                .unwrap();
        }
        // Listening before the speaker starts, so its first connection finds us.
        let r = lab.netns("r").unwrap();
        let v4 = RawListener::bind(r, Family::V4.router()).unwrap();
        let v6 = RawListener::bind(r, Family::V6.router()).unwrap();
        let speaker = BerthSpeaker::start(
            lab.netns("n1").unwrap(),
            NODE_AS,
            "10.255.1.1".parse().unwrap(),
            [Family::V4, Family::V6]
                .into_iter()
                .map(|f| BerthPeer::new(f.router(), f.node(), ROUTER_AS))
                .collect(),
            vec![vip4(), vip6()],
        );
        MalformedLab {
            speaker,
            v4,
            v6,
            _lab: lab,
        }
    }

    fn listener(&self, family: Family) -> &RawListener {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    /// A fresh session of `family`: the speaker's next connection, OPEN/KEEPALIVE done,
    /// and its first announcement (the VIP) read, so every later VIP UPDATE answers one
    /// ROUTE-REFRESH of ours.
    fn session(&self, family: Family) -> RawConnection {
        let open = RawOpen::new(ROUTER_AS, "10.255.0.1".parse().unwrap());
        let mut connection = self
            .listener(family)
            .accept_session(&open, SESSION_TIMEOUT)
            .unwrap_or_else(|e| {
                panic!(
                    "the speaker did not come back on {family:?}: {e}; peers {:?}\n{}",
                    self.speaker.peers(),
                    self.speaker.log_tail()
                )
            });
        connection
            .recv_until("the VIP after Established", ANSWER_TIMEOUT, |m| {
                announces(m, family.vip()).then_some(())
            })
            .unwrap();
        connection
    }

    /// Routes the speaker holds from the `family` peer (none while it is down: the expected
    /// counts are never 0).
    fn received(&self, family: Family) -> Option<u64> {
        self.speaker
            .peers()
            .into_iter()
            .find(|p| p.address == family.router())
            .map(|p| p.prefixes_received_total())
    }

    /// Waits until the speaker holds `count` routes from the `family` peer.
    fn wait_received(&self, family: Family, count: u64) -> Result<(), String> {
        testbed::wait::until(
            &format!("{count} routes held from the {family:?} peer"),
            ANSWER_TIMEOUT,
            || Ok((self.received(family) == Some(count)).then_some(())),
        )
        .map_err(|e| format!("{e}; peers {:?}", self.speaker.peers()))
    }

    /// After all cases: both sessions come up and work, and the speaker still runs.
    fn assert_speaker_still_serves(&mut self) {
        let mut sessions: Vec<_> = [Family::V4, Family::V6]
            .into_iter()
            .map(|f| (f, self.session(f)))
            .collect();
        self.speaker.wait_established(2, SESSION_TIMEOUT);
        for (family, connection) in &mut sessions {
            refresh_answered(connection, *family).unwrap();
        }
        assert!(
            self.speaker.alive(),
            "the speaker process exited\n{}",
            self.speaker.log_tail()
        );
        assert_eq!(self.speaker.peers().len(), 2, "its admin API answers");
        assert_eq!(self.speaker.established(), 2);
    }
}

/// Whether `m` is an UPDATE announcing `prefix`.
fn announces(m: &RawMessage, prefix: IpNetwork) -> bool {
    matches!(m, RawMessage::Update { body } if raw::announced(body).contains(&prefix))
}

/// Sends a ROUTE-REFRESH and waits for the VIP it brings back; a NOTIFICATION or a closed
/// connection first is the failure. Messages are handled in order, so the answer also
/// proves that everything sent before the ROUTE-REFRESH was processed.
fn refresh_answered(connection: &mut RawConnection, family: Family) -> Result<(), String> {
    connection
        .send(&raw::route_refresh(family.afi(), 1))
        .map_err(|e| e.to_string())?;
    connection
        .recv_until("the VIP after ROUTE-REFRESH", ANSWER_TIMEOUT, |m| match m {
            RawMessage::Notification(n) => Some(Err(format!("NOTIFICATION {n:?}"))),
            m if announces(m, family.vip()) => Some(Ok(())),
            _ => None,
        })
        .map_err(|e| e.to_string())?
}

/// Prefixes the raw peer announces, A, B and C, per family.
fn route(family: Family, which: u8) -> IpNetwork {
    match family {
        Family::V4 => net(&format!("198.51.100.{which}/32")),
        Family::V6 => net(&format!("2001:db8:51::{which}/128")),
    }
}
const A: u8 = 1;
const B: u8 = 2;
const C: u8 = 3;

// Valid attributes (4-octet AS negotiated). Flags: 0x40 well-known transitive, 0x80
// optional non-transitive, 0xc0 optional transitive.
/// ORIGIN IGP: flags, type 1, length 1, value 0.
const ORIGIN: &[u8] = &[0x40, 0x01, 0x01, 0x00];
/// AS_PATH: type 2, length 6, one AS_SEQUENCE (2) of one AS, 65000 in four octets.
const AS_PATH: &[u8] = &[0x40, 0x02, 0x06, 0x02, 0x01, 0x00, 0x00, 0xfd, 0xe8];
/// NEXT_HOP: type 3, length 4, 10.1.1.1 (the raw peer).
const NEXT_HOP: &[u8] = &[0x40, 0x03, 0x04, 10, 1, 1, 1];

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
fn announce(family: Family, attributes: &[&[u8]], routes: &[u8]) -> Vec<u8> {
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
fn valid(family: Family) -> Vec<&'static [u8]> {
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
struct ResetCase {
    what: &'static str,
    family: Family,
    message: Vec<u8>,
    /// (code, subcode, data); `None`: the connection closes with no NOTIFICATION at all.
    expect: Option<(u8, u8, Vec<u8>)>,
}

fn reset_cases() -> Vec<ResetCase> {
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

/// Runs one reset case on a fresh session; `Err` names what went wrong.
fn run_reset(lab: &MalformedLab, case: &ResetCase) -> Result<(), String> {
    let mut connection = lab.session(case.family);
    connection.send(&case.message).map_err(|e| e.to_string())?;
    let Some((code, subcode, data)) = case.expect.clone() else {
        let before_close = connection
            .recv_until_closed(ANSWER_TIMEOUT)
            .map_err(|e| e.to_string())?;
        return match before_close
            .iter()
            .find(|m| matches!(m, RawMessage::Notification(_)))
        {
            Some(n) => Err(format!("answered with {n:?}")),
            None => Ok(()),
        };
    };
    let got = connection
        .recv_until("a NOTIFICATION", ANSWER_TIMEOUT, |m| match m {
            RawMessage::Notification(n) => Some(n.clone()),
            _ => None,
        })
        .map_err(|e| e.to_string())?;
    let want = RawNotification {
        code,
        subcode,
        data,
    };
    if got != want {
        return Err(format!("NOTIFICATION {got:?}, want {want:?}"));
    }
    let after = connection
        .recv_until_closed(ANSWER_TIMEOUT)
        .map_err(|e| format!("connection not closed after the NOTIFICATION: {e}"))?;
    if !after.is_empty() {
        return Err(format!("messages after the NOTIFICATION: {after:?}"));
    }
    Ok(())
}

#[test]
fn errors_that_rfc_7606_leaves_fatal_get_the_exact_notification_and_a_closed_connection() {
    let mut lab = MalformedLab::new("malformed-reset");
    let cases = reset_cases();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            run_reset(&lab, case)
                .err()
                .map(|e| format!("{}: {e}", case.what))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    lab.assert_speaker_still_serves();
}

/// A case the session survives: the malformed UPDATE announces A and C.
struct SurvivedCase {
    what: &'static str,
    family: Family,
    message: Vec<u8>,
}

/// Runs one survived case on a fresh session: A and B valid, then the malformed UPDATE
/// (A and C), then a ROUTE-REFRESH. Checks no NOTIFICATION came and the speaker holds
/// `held` routes from the peer (1: B only, A withdrawn; 3: A, B and C).
fn run_survived(lab: &MalformedLab, case: &SurvivedCase, held: u64) -> Result<(), String> {
    let family = case.family;
    let mut connection = lab.session(family);
    connection
        .send(&announce(family, &valid(family), &[A, B]))
        .map_err(|e| e.to_string())?;
    refresh_answered(&mut connection, family).map_err(|e| format!("before: {e}"))?;
    lab.wait_received(family, 2)
        .map_err(|e| format!("before: {e}"))?;
    connection.send(&case.message).map_err(|e| e.to_string())?;
    refresh_answered(&mut connection, family).map_err(|e| format!("after: {e}"))?;
    lab.wait_received(family, held)?;
    connection.close();
    Ok(())
}

fn run_survived_cases(label: &str, cases: Vec<SurvivedCase>, held: u64) {
    let mut lab = MalformedLab::new(label);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            run_survived(&lab, case, held)
                .err()
                .map(|e| format!("{}: {e}", case.what))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    lab.assert_speaker_still_serves();
}

#[test]
fn treat_as_withdraw_errors_withdraw_the_update_routes_and_keep_the_session() {
    use Family::*;
    let case = |what, family, attributes: &[&[u8]]| SurvivedCase {
        what,
        family,
        message: announce(family, attributes, &[A, C]),
    };
    let cases = vec![
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
    ];
    run_survived_cases("malformed-withdraw", cases, 1);
}

#[test]
fn attribute_discard_errors_and_ignorable_attributes_keep_the_routes_and_the_session() {
    use Family::*;
    let case = |what, family, attributes: &[&[u8]]| SurvivedCase {
        what,
        family,
        message: announce(family, attributes, &[A, C]),
    };
    let cases = vec![
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
    ];
    run_survived_cases("malformed-discard", cases, 3);
}
