//! One test per error case of RFC 4271 §6.1–6.3 and RFC 7606 (§3–§5, §7), each named
//! after its case: malformed bytes in, the exact NOTIFICATION (code, subcode, data) or
//! RFC 7606 outcome out.

use bgp::wire::*;
use std::net::Ipv4Addr;

const KEEPALIVE_LEN: u16 = 19;

/// A whole message with a correct header around `body`.
fn message(message_type: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    m.push(message_type);
    m.extend_from_slice(body);
    m
}

/// An UPDATE with the given fields.
fn update(withdrawn: &[u8], attributes: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = (withdrawn.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(withdrawn);
    body.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
    body.extend_from_slice(attributes);
    body.extend_from_slice(nlri);
    message(2, &body)
}

/// One attribute (short length form).
fn attr(flags: u8, type_code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, type_code, value.len() as u8];
    a.extend_from_slice(value);
    a
}

const ORIGIN: &[u8] = &[0x40, 1, 1, 0];
const AS_PATH: &[u8] = &[0x40, 2, 4, 2, 1, 0xfd, 0xe8]; // AS_SEQUENCE [65000]
const NEXT_HOP: &[u8] = &[0x40, 3, 4, 10, 0, 0, 1];
const NLRI: &[u8] = &[24, 10, 1, 2]; // 10.1.2.0/24

/// ORIGIN, AS_PATH, NEXT_HOP, then `extra`.
fn attrs_with(extra: &[u8]) -> Vec<u8> {
    [ORIGIN, AS_PATH, NEXT_HOP, extra].concat()
}

/// An OPEN body with the given fields and optional parameters.
fn open(version: u8, my_as: u16, hold: u16, id: [u8; 4], params: &[u8]) -> Vec<u8> {
    let mut b = vec![version];
    b.extend_from_slice(&my_as.to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id);
    b.push(params.len() as u8);
    b.extend_from_slice(params);
    message(1, &b)
}

fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    Message::decode(bytes, &Context::default())
}

fn wire(n: &Notification) -> (u8, u8, Vec<u8>) {
    let (c, s) = n.code.to_wire();
    (c, s, n.data.clone())
}

/// The message must be refused with exactly this NOTIFICATION.
fn assert_reset(bytes: &[u8], code: u8, subcode: u8, data: &[u8]) {
    let err = decode(bytes).expect_err("must be a session reset");
    assert_eq!(
        wire(&err.notification()),
        (code, subcode, data.to_vec()),
        "{err:?}"
    );
}

/// An UPDATE whose routes are only in the MP_REACH_NLRI attribute `bad` (after ORIGIN and
/// AS_PATH; no NEXT_HOP, no NLRI field) must be refused with Optional Attribute Error
/// (3/9), `bad` as the data: with the NLRI unlocatable, no route can be withdrawn.
fn assert_mp_reach_resets(bad: &[u8]) {
    assert_reset(
        &update(&[], &[ORIGIN, AS_PATH, bad].concat(), &[]),
        3,
        9,
        bad,
    );
}

fn decoded_update(bytes: &[u8]) -> Update {
    match decode(bytes) {
        Ok(Message::Update(u)) => u,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

/// The UPDATE must be treat-as-withdraw, caused by this RFC 4271 error.
fn assert_treat_as_withdraw(bytes: &[u8], code: u8, subcode: u8, data: &[u8]) -> Update {
    let u = decoded_update(bytes);
    match &u.error {
        Some(UpdateError::TreatAsWithdraw(e)) => {
            assert_eq!(
                wire(&e.notification()),
                (code, subcode, data.to_vec()),
                "{e:?}"
            )
        }
        other => panic!("expected treat-as-withdraw, got {other:?}"),
    }
    u
}

/// The attribute of `type_code` must be discarded, the rest of the UPDATE kept.
fn assert_attribute_discard(bytes: &[u8], type_code: u8, code: u8, subcode: u8, data: &[u8]) {
    let u = decoded_update(bytes);
    match &u.error {
        Some(UpdateError::AttributeDiscard(e)) => {
            assert_eq!(
                wire(&e.notification()),
                (code, subcode, data.to_vec()),
                "{e:?}"
            )
        }
        other => panic!("expected attribute discard, got {other:?}"),
    }
    assert!(
        u.attribute(type_code).is_none(),
        "attribute {type_code} still present"
    );
    assert_eq!(u.nlri.len(), 1, "routes must survive an attribute discard");
}

// ---------------------------------------------------------------- RFC 4271 §6.1

#[test]
fn rfc4271_6_1_connection_not_synchronized() {
    let mut m = message(4, &[]);
    m[3] = 0;
    assert_reset(&m, 1, 1, &[]);
    assert_eq!(frame(&m, 4096), Err(FrameError::ConnectionNotSynchronized));
    assert_eq!(
        wire(&FrameError::ConnectionNotSynchronized.notification()),
        (1, 1, vec![])
    );
}

#[test]
fn rfc4271_6_1_bad_message_length_below_header() {
    let mut m = message(4, &[]);
    m[17] = 18;
    let err = frame(&m, 4096).expect_err("length 18");
    assert_eq!(wire(&err.notification()), (1, 2, vec![0, 18]));
}

#[test]
fn rfc4271_6_1_bad_message_length_above_4096() {
    let mut m = message(2, &[]);
    m[16..18].copy_from_slice(&4097u16.to_be_bytes());
    let err = frame(&m, 4096).expect_err("length 4097");
    assert_eq!(wire(&err.notification()), (1, 2, vec![0x10, 0x01]));
    // RFC 8654: accepted once extended messages were negotiated.
    assert_eq!(frame(&m, MAX_EXTENDED_MESSAGE_LEN), Ok(None));
}

/// A header alone: marker, `length` and `message_type`, none of the body it announces.
fn header(length: u16, message_type: u8) -> Vec<u8> {
    let mut h = vec![0xff; 16];
    h.extend_from_slice(&length.to_be_bytes());
    h.push(message_type);
    h
}

/// RFC 4271 §6.1: a length the type cannot have is an error as soon as the header is in,
/// not once the bytes it announces arrived (they may never come: a KEEPALIVE claiming 25
/// octets would otherwise wait for the hold timer).
#[test]
fn rfc4271_6_1_length_wrong_for_the_type_is_refused_from_the_header_alone() {
    use MAX_EXTENDED_MESSAGE_LEN as EXT;
    // (type, length, largest message allowed): refused with 1/2, data = the length field.
    let refused: &[(u8, u16, usize)] = &[
        (1, 28, 4096),   // OPEN below 29
        (1, 4097, EXT),  // OPEN above 4,096: RFC 8654 §4 does not extend OPEN
        (2, 22, 4096),   // UPDATE below 23
        (3, 20, 4096),   // NOTIFICATION below 21
        (4, 25, 4096),   // KEEPALIVE other than 19
        (4, 20, EXT),    // ... nor does RFC 8654 extend KEEPALIVE
        (2, 4097, 4096), // any type above the negotiated maximum
    ];
    for &(message_type, length, max) in refused {
        let h = header(length, message_type);
        let err = frame(&h, max).expect_err(&format!("type {message_type} length {length}"));
        assert_eq!(
            wire(&err.notification()),
            (1, 2, length.to_be_bytes().to_vec()),
            "type {message_type} length {length} max {max}"
        );
        // The same answer whatever follows the header.
        let mut more = h.clone();
        more.extend(std::iter::repeat_n(0u8, usize::from(length)));
        assert_eq!(frame(&more, max), Err(err));
    }
    // Lengths the type can have: the header alone waits for the rest.
    let waiting: &[(u8, u16, usize)] = &[
        (1, 29, 4096),
        (1, 4096, EXT),
        (2, 23, 4096),
        (2, 65535, EXT), // UPDATE and NOTIFICATION are extended (RFC 8654 §4)
        (3, 21, 4096),
        (3, 5000, EXT),
        (5, 23, 4096),
    ];
    for &(message_type, length, max) in waiting {
        assert_eq!(
            frame(&header(length, message_type), max),
            Ok(None),
            "type {message_type} length {length} max {max}"
        );
    }
    assert_eq!(frame(&header(19, 4), 4096), Ok(Some(19)));
}

/// RFC 7313 §5 wants a ROUTE-REFRESH of the wrong length quoted whole (7/1, data the
/// complete message), so framing reads it whole, short or long, and decoding refuses it.
#[test]
fn rfc7313_5_route_refresh_of_a_wrong_length_is_framed_whole_and_answered_7_1() {
    for body in [&[0, 1, 0][..], &[0, 1, 0, 1, 0][..]] {
        let m = message(5, body);
        assert_eq!(frame(&m[..19], 4096), Ok(None));
        assert_eq!(frame(&m, 4096), Ok(Some(m.len())));
        assert_reset(&m, 7, 1, &m);
    }
}

/// RFC 4271 §6.1: an unknown type is known to be one from the header alone.
#[test]
fn rfc4271_6_1_bad_message_type_is_refused_from_the_header_alone() {
    let err = frame(&header(100, 6), 4096).expect_err("type 6");
    assert_eq!(wire(&err.notification()), (1, 3, vec![6]));
    // A length out of any range is reported first, as before the type is known.
    let err = frame(&header(5000, 6), 4096).expect_err("length 5000");
    assert_eq!(
        wire(&err.notification()),
        (1, 2, 5000u16.to_be_bytes().to_vec())
    );
    assert_eq!(frame(&header(100, 6)[..18], 4096), Ok(None));
}

/// Decoding agrees: an OPEN is never extended, even on a session with extended messages.
#[test]
fn rfc8654_4_open_above_4096_is_refused_even_when_extended() {
    let mut big = open(4, 65000, 90, [1, 1, 1, 1], &[]);
    big.resize(4097, 0);
    big[16..18].copy_from_slice(&4097u16.to_be_bytes());
    let ctx = Context {
        extended_message: true,
        ..Context::default()
    };
    let err = Message::decode(&big, &ctx).expect_err("OPEN of 4,097");
    assert_eq!(wire(&err.notification()), (1, 2, vec![0x10, 0x01]));
}

#[test]
fn rfc4271_6_1_bad_message_length_open_too_short() {
    assert_reset(&message(1, &[4; 9]), 1, 2, &[0, 28]);
}

#[test]
fn rfc4271_6_1_bad_message_length_update_too_short() {
    assert_reset(&message(2, &[0; 3]), 1, 2, &[0, 22]);
}

#[test]
fn rfc4271_6_1_bad_message_length_keepalive_not_19() {
    assert_reset(&message(4, &[0]), 1, 2, &(KEEPALIVE_LEN + 1).to_be_bytes());
}

#[test]
fn rfc4271_6_1_bad_message_length_notification_too_short() {
    assert_reset(&message(3, &[6]), 1, 2, &[0, 20]);
}

#[test]
fn rfc4271_6_1_bad_message_length_field_disagrees_with_buffer() {
    let mut m = message(4, &[]);
    m.push(0);
    assert_reset(&m, 1, 2, &[0, 19]);
}

#[test]
fn rfc4271_6_1_bad_message_type() {
    assert_reset(&message(6, &[]), 1, 3, &[6]);
}

// ---------------------------------------------------------------- RFC 4271 §6.2

#[test]
fn rfc4271_6_2_unsupported_version_number() {
    // Data: the largest locally supported version, two octets.
    assert_reset(&open(3, 65000, 90, [1, 1, 1, 1], &[]), 2, 1, &[0, 4]);
}

#[test]
fn rfc4271_6_2_bad_peer_as_zero() {
    // RFC 7607: AS 0 in OPEN.
    assert_reset(&open(4, 0, 90, [1, 1, 1, 1], &[]), 2, 2, &[]);
    assert_eq!(
        wire(&DecodeError::BadPeerAs { asn: 65001 }.notification()),
        (2, 2, vec![])
    );
}

#[test]
fn rfc4271_6_2_bad_bgp_identifier() {
    assert_reset(&open(4, 65000, 90, [0, 0, 0, 0], &[]), 2, 3, &[]);
}

#[test]
fn rfc4271_6_2_unsupported_optional_parameter() {
    // Decoding keeps unknown parameters (the session decides); refusing one maps to 2/4.
    let m = decode(&open(4, 65000, 90, [1, 1, 1, 1], &[9, 2, 0xab, 0xcd])).expect("decodes");
    let Message::Open(o) = m else {
        panic!("not an OPEN")
    };
    assert_eq!(
        o.params,
        vec![OptionalParam::Unknown {
            param_type: 9,
            data: vec![0xab, 0xcd]
        }]
    );
    let err = DecodeError::UnsupportedOptionalParameter { param_type: 9 };
    assert_eq!(wire(&err.notification()), (2, 4, vec![]));
}

#[test]
fn rfc4271_6_2_unacceptable_hold_time_one() {
    assert_reset(&open(4, 65000, 1, [1, 1, 1, 1], &[]), 2, 6, &[]);
}

#[test]
fn rfc4271_6_2_unacceptable_hold_time_two() {
    assert_reset(&open(4, 65000, 2, [1, 1, 1, 1], &[]), 2, 6, &[]);
}

#[test]
fn rfc4271_6_2_hold_time_zero_and_three_accepted() {
    assert!(decode(&open(4, 65000, 0, [1, 1, 1, 1], &[])).is_ok());
    assert!(decode(&open(4, 65000, 3, [1, 1, 1, 1], &[])).is_ok());
}

#[test]
fn rfc5492_unsupported_capability() {
    let err = DecodeError::UnsupportedCapability {
        capabilities: vec![65, 4, 0, 0, 0xfd, 0xe8],
    };
    assert_eq!(
        wire(&err.notification()),
        (2, 7, vec![65, 4, 0, 0, 0xfd, 0xe8])
    );
}

#[test]
fn rfc4271_6_2_optional_parameters_overrun() {
    // Opt Parm Len says 4, the parameter inside claims 9 octets.
    assert_reset(&open(4, 65000, 90, [1, 1, 1, 1], &[2, 9, 65, 4]), 2, 0, &[]);
}

#[test]
fn rfc5492_unknown_capability_kept_as_bytes() {
    let m = decode(&open(4, 65000, 90, [1, 1, 1, 1], &[2, 4, 200, 2, 7, 7])).expect("decodes");
    let Message::Open(o) = m else {
        panic!("not an OPEN")
    };
    assert_eq!(
        o.capabilities().next(),
        Some(&Capability::Unknown {
            code: 200,
            data: vec![7, 7]
        })
    );
}

// ---------------------------------------------------------------- RFC 4271 §6.3

#[test]
fn rfc4271_6_3_malformed_attribute_list_withdrawn_length_overrun() {
    let mut m = update(&[], &attrs_with(&[]), NLRI);
    m[19..21].copy_from_slice(&200u16.to_be_bytes());
    assert_reset(&m, 3, 1, &[]);
}

#[test]
fn rfc4271_6_3_malformed_attribute_list_total_attribute_length_overrun() {
    let mut m = update(&[], &attrs_with(&[]), &[]);
    m[21..23].copy_from_slice(&500u16.to_be_bytes());
    assert_reset(&m, 3, 1, &[]);
}

#[test]
fn rfc4271_6_3_unrecognized_well_known_attribute() {
    let bad = attr(0x40, 99, &[1, 2]);
    assert_reset(&update(&[], &attrs_with(&bad), NLRI), 3, 2, &bad);
}

#[test]
fn rfc4271_6_3_missing_well_known_attribute_origin() {
    let attrs = [AS_PATH, NEXT_HOP].concat();
    let u = assert_treat_as_withdraw(&update(&[], &attrs, NLRI), 3, 3, &[1]);
    assert_eq!(u.nlri.len(), 1, "the routes to withdraw are still reported");
}

#[test]
fn rfc4271_6_3_missing_well_known_attribute_as_path() {
    let attrs = [ORIGIN, NEXT_HOP].concat();
    assert_treat_as_withdraw(&update(&[], &attrs, NLRI), 3, 3, &[2]);
}

#[test]
fn rfc4271_6_3_missing_well_known_attribute_next_hop() {
    let attrs = [ORIGIN, AS_PATH].concat();
    assert_treat_as_withdraw(&update(&[], &attrs, NLRI), 3, 3, &[3]);
}

#[test]
fn rfc4271_6_3_no_next_hop_needed_for_mp_reach_only() {
    let value = [
        &[0, 2, 1, 16, 0x20, 1, 0xd, 0xb8][..],
        &[0; 12],
        &[0, 32, 0x20, 1, 0xd, 0xb8],
    ]
    .concat();
    let reach = attr(0x80, 14, &value);
    let u = decoded_update(&update(&[], &[ORIGIN, AS_PATH, &reach].concat(), &[]));
    assert_eq!(u.error, None);
    assert_eq!(u.mp_reach().map(MpReach::prefix_count), Some(1));
}

#[test]
fn rfc4271_6_3_attribute_flags_error() {
    let bad = attr(0xc0, 1, &[0]); // ORIGIN marked optional
    let attrs = [&bad[..], AS_PATH, NEXT_HOP].concat();
    assert_treat_as_withdraw(&update(&[], &attrs, NLRI), 3, 4, &bad);
}

#[test]
fn rfc4271_6_3_attribute_length_error() {
    let bad = attr(0x40, 1, &[0, 0]); // ORIGIN of two octets
    let attrs = [&bad[..], AS_PATH, NEXT_HOP].concat();
    assert_treat_as_withdraw(&update(&[], &attrs, NLRI), 3, 5, &bad);
}

#[test]
fn rfc4271_6_3_invalid_origin_attribute() {
    let bad = attr(0x40, 1, &[3]);
    let attrs = [&bad[..], AS_PATH, NEXT_HOP].concat();
    assert_treat_as_withdraw(&update(&[], &attrs, NLRI), 3, 6, &bad);
}

#[test]
fn rfc4271_6_3_invalid_next_hop_attribute() {
    for nh in [[0, 0, 0, 0], [224, 0, 0, 1], [255, 255, 255, 255]] {
        let bad = attr(0x40, 3, &nh);
        let attrs = [ORIGIN, AS_PATH, &bad[..]].concat();
        assert_treat_as_withdraw(&update(&[], &attrs, NLRI), 3, 8, &bad);
    }
}

#[test]
fn rfc4271_6_3_optional_attribute_error() {
    // MP_REACH_NLRI for IPv6 with a 5-octet next hop: the NLRI cannot be located.
    let bad = attr(0x80, 14, &[0, 2, 1, 5, 1, 2, 3, 4, 5, 0]);
    assert_mp_reach_resets(&bad);
}

#[test]
fn rfc4271_6_3_invalid_network_field() {
    assert_reset(
        &update(&[], &attrs_with(&[]), &[33, 10, 1, 2, 3, 4]),
        3,
        10,
        &[],
    );
}

#[test]
fn rfc4271_6_3_invalid_network_field_truncated_prefix() {
    assert_reset(&update(&[], &attrs_with(&[]), &[24, 10, 1]), 3, 10, &[]);
}

#[test]
fn rfc4271_6_3_invalid_network_field_in_withdrawn_routes() {
    assert_reset(&update(&[40, 1], &[], &[]), 3, 10, &[]);
}

#[test]
fn rfc4271_6_3_malformed_as_path() {
    let bad = attr(0x40, 2, &[5, 1, 0xfd, 0xe8]); // segment type 5
    let attrs = [ORIGIN, &bad[..], NEXT_HOP].concat();
    assert_treat_as_withdraw(&update(&[], &attrs, NLRI), 3, 11, &[]);
}

#[test]
fn rfc7313_5_route_refresh_invalid_length() {
    let m = message(5, &[0, 1, 0, 1, 0]);
    assert_reset(&m, 7, 1, &m);
}

#[test]
fn rfc7313_route_refresh_unknown_subtype_is_kept() {
    let m = decode(&message(5, &[0, 1, 9, 1])).expect("decodes");
    assert_eq!(
        m,
        Message::RouteRefresh(RouteRefresh {
            family: Family::IPV4_UNICAST,
            subtype: RouteRefreshSubtype(9)
        })
    );
}

// ---------------------------------------------------------------- RFC 7606

#[test]
fn rfc7606_3_d_no_attributes_with_nlri_is_treat_as_withdraw() {
    assert_treat_as_withdraw(&update(&[], &[], NLRI), 3, 3, &[1]);
}

#[test]
fn rfc7606_3_g_duplicate_attribute_keeps_first() {
    let dup = attr(0x80, 4, &[0, 0, 0, 7]);
    let attrs = attrs_with(&[attr(0x80, 4, &[0, 0, 0, 5]), dup].concat());
    let u = decoded_update(&update(&[], &attrs, NLRI));
    assert!(matches!(
        u.error,
        Some(UpdateError::AttributeDiscard(
            DecodeError::MalformedAttributeList
        ))
    ));
    assert_eq!(u.attribute(4), Some(&AttributeValue::MultiExitDisc(5)));
}

#[test]
fn rfc7606_3_g_duplicate_mp_reach_is_session_reset() {
    let unreach = attr(0x80, 15, &[0, 2, 1]);
    let attrs = [&unreach[..], &unreach[..]].concat();
    assert_reset(&update(&[], &attrs, &[]), 3, 1, &[]);
}

#[test]
fn rfc7606_3_c_flags_checked_only_for_optional_and_transitive() {
    // Partial bit on a well-known attribute is not a flags error.
    let attrs = [&[0x60, 1, 1, 0][..], AS_PATH, NEXT_HOP].concat();
    assert_eq!(decoded_update(&update(&[], &attrs, NLRI)).error, None);
}

#[test]
fn rfc7606_4_attribute_overruns_attribute_list() {
    let attrs = attrs_with(&[0xc0, 8, 9, 0, 0]); // COMMUNITIES claims 9 octets, has 2
    let u = assert_treat_as_withdraw(&update(&[], &attrs, NLRI), 3, 1, &[]);
    assert_eq!(u.nlri.len(), 1);
}

#[test]
fn rfc7606_4_truncated_attribute_header() {
    let attrs = attrs_with(&[0xc0]);
    assert_treat_as_withdraw(&update(&[], &attrs, NLRI), 3, 1, &[]);
}

#[test]
fn rfc7606_5_3_nlri_length_too_long_is_session_reset() {
    assert_reset(&update(&[], &attrs_with(&[]), &[32, 10, 1]), 3, 10, &[]);
}

#[test]
fn rfc7606_7_1_origin_malformed_treat_as_withdraw() {
    let bad = attr(0x40, 1, &[]);
    let attrs = [&bad[..], AS_PATH, NEXT_HOP].concat();
    assert_treat_as_withdraw(&update(&[], &attrs, NLRI), 3, 5, &bad);
}

#[test]
fn rfc7606_7_2_as_path_segment_overrun_treat_as_withdraw() {
    let bad = attr(0x40, 2, &[2, 2, 0xfd, 0xe8]);
    assert_treat_as_withdraw(
        &update(&[], &[ORIGIN, &bad[..], NEXT_HOP].concat(), NLRI),
        3,
        11,
        &[],
    );
}

#[test]
fn rfc7606_7_2_as_path_zero_length_segment_treat_as_withdraw() {
    let bad = attr(0x40, 2, &[2, 0]);
    assert_treat_as_withdraw(
        &update(&[], &[ORIGIN, &bad[..], NEXT_HOP].concat(), NLRI),
        3,
        11,
        &[],
    );
}

#[test]
fn rfc7606_7_2_as4_path_malformed_attribute_discard() {
    // RFC 6793 §6 via RFC 7606 §7.2: AS4_PATH errors discard the attribute.
    let bad = attr(0xc0, 17, &[2, 1, 0, 0]);
    assert_attribute_discard(&update(&[], &attrs_with(&bad), NLRI), 17, 3, 9, &bad);
}

#[test]
fn rfc7606_7_3_next_hop_bad_length_treat_as_withdraw() {
    let bad = attr(0x40, 3, &[10, 0, 0]);
    assert_treat_as_withdraw(
        &update(&[], &[ORIGIN, AS_PATH, &bad[..]].concat(), NLRI),
        3,
        5,
        &bad,
    );
}

#[test]
fn rfc7606_7_4_multi_exit_disc_bad_length_treat_as_withdraw() {
    let bad = attr(0x80, 4, &[0, 0, 1]);
    assert_treat_as_withdraw(&update(&[], &attrs_with(&bad), NLRI), 3, 5, &bad);
}

#[test]
fn rfc7606_7_5_local_pref_bad_length_treat_as_withdraw() {
    let bad = attr(0x40, 5, &[0, 0, 0, 0, 100]);
    assert_treat_as_withdraw(&update(&[], &attrs_with(&bad), NLRI), 3, 5, &bad);
}

#[test]
fn rfc7606_7_6_atomic_aggregate_bad_length_attribute_discard() {
    let bad = attr(0x40, 6, &[1]);
    assert_attribute_discard(&update(&[], &attrs_with(&bad), NLRI), 6, 3, 5, &bad);
}

#[test]
fn rfc7606_7_7_aggregator_bad_length_attribute_discard() {
    let bad = attr(0xc0, 7, &[0xfd, 0xe8, 10, 0, 0, 1, 9]);
    assert_attribute_discard(&update(&[], &attrs_with(&bad), NLRI), 7, 3, 5, &bad);
}

#[test]
fn rfc7606_7_7_as4_aggregator_bad_length_attribute_discard() {
    let bad = attr(0xc0, 18, &[0xfd, 0xe8, 10, 0, 0, 1]);
    assert_attribute_discard(&update(&[], &attrs_with(&bad), NLRI), 18, 3, 5, &bad);
}

#[test]
fn rfc7606_7_8_communities_bad_length_treat_as_withdraw() {
    let bad = attr(0xc0, 8, &[0xfd, 0xe8, 0, 1, 0]);
    assert_treat_as_withdraw(&update(&[], &attrs_with(&bad), NLRI), 3, 5, &bad);
}

#[test]
fn rfc7606_7_8_communities_empty_treat_as_withdraw() {
    let bad = attr(0xc0, 8, &[]);
    assert_treat_as_withdraw(&update(&[], &attrs_with(&bad), NLRI), 3, 5, &bad);
}

#[test]
fn rfc4456_originator_id_and_cluster_list_decoded() {
    let originator = attr(0x80, 9, &[10, 0, 0, 1]);
    let clusters = attr(0x80, 10, &[10, 0, 0, 2, 10, 0, 0, 3]);
    let bytes = update(&[], &attrs_with(&[originator, clusters].concat()), NLRI);
    let u = decoded_update(&bytes);
    assert_eq!(u.error, None);
    assert_eq!(
        u.attribute(9),
        Some(&AttributeValue::OriginatorId(Ipv4Addr::new(10, 0, 0, 1)))
    );
    assert_eq!(
        u.attribute(10),
        Some(&AttributeValue::ClusterList(vec![
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 3)
        ]))
    );
}

#[test]
fn rfc7606_7_9_originator_id_bad_length_treat_as_withdraw() {
    let bad = attr(0x80, 9, &[10, 0, 0, 1, 0]);
    assert_treat_as_withdraw(&update(&[], &attrs_with(&bad), NLRI), 3, 5, &bad);
}

#[test]
fn rfc7606_7_10_cluster_list_bad_length_treat_as_withdraw() {
    let bad = attr(0x80, 10, &[10, 0, 0, 2, 10]);
    assert_treat_as_withdraw(&update(&[], &attrs_with(&bad), NLRI), 3, 5, &bad);
    let empty = attr(0x80, 10, &[]);
    assert_treat_as_withdraw(&update(&[], &attrs_with(&empty), NLRI), 3, 5, &empty);
}

/// Decodes an UPDATE received from a peer in another AS.
fn decoded_from_external(bytes: &[u8]) -> Update {
    let ctx = Context {
        external_peer: true,
        ..Context::default()
    };
    match Message::decode(bytes, &ctx) {
        Ok(Message::Update(u)) => u,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

#[test]
fn rfc4271_5_1_5_local_pref_from_an_external_peer_is_ignored() {
    let local_pref = attr(0x40, 5, &[0, 0, 0, 200]);
    let u = decoded_from_external(&update(&[], &attrs_with(&local_pref), NLRI));
    assert_eq!(u.error, None, "a well-formed one is dropped silently");
    assert_eq!(u.attribute(5), None);
    assert_eq!(u.nlri.len(), 1);
    // From an internal peer it is kept.
    assert_eq!(
        decoded_update(&update(&[], &attrs_with(&local_pref), NLRI)).attribute(5),
        Some(&AttributeValue::LocalPref(200))
    );
}

#[test]
fn rfc7606_7_5_7_9_7_10_malformed_internal_only_attributes_from_an_external_peer_are_discarded() {
    for bad in [
        attr(0x40, 5, &[0, 0, 200]),
        attr(0x80, 9, &[10, 0, 0, 1, 0]),
        attr(0x80, 10, &[10, 0, 0]),
    ] {
        let u = decoded_from_external(&update(&[], &attrs_with(&bad), NLRI));
        match &u.error {
            Some(UpdateError::AttributeDiscard(e)) => {
                assert_eq!(wire(&e.notification()), (3, 5, bad.clone()), "{e:?}")
            }
            other => panic!("{bad:?}: expected attribute discard, got {other:?}"),
        }
        assert_eq!(u.attribute(bad[1]), None);
        assert_eq!(u.nlri.len(), 1, "routes must survive: {bad:?}");
    }
}

#[test]
fn rfc7606_7_9_originator_id_from_an_external_peer_is_discarded_silently() {
    let originator = attr(0x80, 9, &[10, 0, 0, 1]);
    let u = decoded_from_external(&update(&[], &attrs_with(&originator), NLRI));
    assert_eq!(u.error, None);
    assert_eq!(u.attribute(9), None);
}

#[test]
fn rfc7606_7_11_mp_reach_next_hop_length_session_reset() {
    let bad = attr(0x80, 14, &[0, 1, 1, 3, 10, 0, 0, 0, 8, 10]);
    assert_mp_reach_resets(&bad);
}

#[test]
fn rfc7606_7_11_mp_reach_nlri_malformed_session_reset() {
    let bad = attr(0x80, 14, &[0, 1, 1, 4, 10, 0, 0, 1, 0, 33, 10, 0, 0, 0, 0]);
    assert_mp_reach_resets(&bad);
}

#[test]
fn rfc7606_7_12_mp_unreach_malformed_session_reset() {
    let bad = attr(0x80, 15, &[0, 2, 1, 129, 0]);
    assert_reset(&update(&[], &bad, &[]), 3, 9, &bad);
}

#[test]
fn rfc7606_7_14_extended_communities_bad_length_treat_as_withdraw() {
    let bad = attr(0xc0, 16, &[0, 2, 0xfd, 0xe8, 0, 0, 0]);
    assert_treat_as_withdraw(&update(&[], &attrs_with(&bad), NLRI), 3, 5, &bad);
}

#[test]
fn rfc8092_6_large_community_bad_length_treat_as_withdraw() {
    let bad = attr(0xc0, 32, &[0; 11]);
    assert_treat_as_withdraw(&update(&[], &attrs_with(&bad), NLRI), 3, 5, &bad);
}

#[test]
fn rfc4271_5_unknown_optional_transitive_kept_and_marked_partial_when_passed_on() {
    let unknown = attr(0xc0, 99, &[1, 2, 3]);
    let u = decoded_update(&update(&[], &attrs_with(&unknown), NLRI));
    let a = u
        .attributes
        .iter()
        .find(|a| a.type_code() == 99)
        .expect("kept");
    assert_eq!(a.flags & FLAG_PARTIAL, 0, "decoded as received");
    assert_eq!(a.for_propagation().flags & FLAG_PARTIAL, FLAG_PARTIAL);
}

#[test]
fn rfc4271_5_unknown_optional_non_transitive_dropped() {
    let unknown = attr(0x80, 99, &[1, 2, 3]);
    let u = decoded_update(&update(&[], &attrs_with(&unknown), NLRI));
    assert_eq!(u.error, None);
    assert!(u.attributes.iter().all(|a| a.type_code() != 99));
    assert_eq!(u.attributes.len(), 3);
}

// ---------------------------------------------------------------- notifications

#[test]
fn rfc9003_shutdown_communication_round_trip() {
    let n = Notification::cease_with_communication(
        CeaseSubcode::AdministrativeShutdown,
        "maintenance ✓",
    );
    assert_eq!(n.shutdown_communication(), Some("maintenance ✓"));
    let bytes = Message::Notification(n.clone())
        .to_bytes(&Context::default())
        .expect("fits");
    assert_eq!(decode(&bytes), Ok(Message::Notification(n)));
}

#[test]
fn rfc9003_shutdown_communication_truncated_at_255_octets_on_char_boundary() {
    let text = "é".repeat(200);
    let n = Notification::cease_with_communication(CeaseSubcode::AdministrativeReset, &text);
    assert_eq!(n.data[0], 254);
    assert_eq!(n.shutdown_communication().map(str::len), Some(254));
}

#[test]
fn rfc9003_malformed_communication_is_none() {
    let n = Notification::new(
        ErrorCode::Cease(CeaseSubcode::AdministrativeShutdown),
        vec![10, b'a'],
    );
    assert_eq!(n.shutdown_communication(), None);
}

#[test]
fn every_error_code_and_subcode_maps_back_to_itself() {
    for code in 0..=255u8 {
        for subcode in 0..=255u8 {
            assert_eq!(
                ErrorCode::from_wire(code, subcode).to_wire(),
                (code, subcode)
            );
        }
    }
}

// ---------------------------------------------------------------- framing

#[test]
fn frame_empty_buffer_needs_more() {
    assert_eq!(frame(&[], 4096), Ok(None));
}

#[test]
fn frame_partial_header_and_partial_body_need_more() {
    let m = update(&[], &attrs_with(&[]), NLRI);
    for cut in [1, 15, 16, 17, 18, 19, m.len() - 1] {
        assert_eq!(frame(&m[..cut], 4096), Ok(None), "cut at {cut}");
    }
}

#[test]
fn frame_two_messages_in_one_buffer() {
    let first = message(4, &[]);
    let second = update(&[], &attrs_with(&[]), NLRI);
    let buf = [first.clone(), second.clone()].concat();
    let n = frame(&buf, 4096).expect("valid").expect("whole");
    assert_eq!(n, first.len());
    assert_eq!(decode(&buf[..n]), Ok(Message::Keepalive));
    let m = frame(&buf[n..], 4096).expect("valid").expect("whole");
    assert_eq!(m, second.len());
    assert!(matches!(decode(&buf[n..n + m]), Ok(Message::Update(_))));
}

#[test]
fn decode_refuses_message_over_negotiated_maximum() {
    let mut big = update(&[], &attrs_with(&[]), &[]);
    big.extend(std::iter::repeat_n([32u8, 10, 0, 0, 1], 1000).flatten());
    let len = big.len() as u16;
    big[16..18].copy_from_slice(&len.to_be_bytes());
    assert_reset(&big, 1, 2, &len.to_be_bytes());
    let ctx = Context {
        extended_message: true,
        ..Context::default()
    };
    assert!(Message::decode(&big, &ctx).is_ok());
}
