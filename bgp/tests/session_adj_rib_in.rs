//! What a session keeps of the routes it receives, driven through `Session::handle`: a
//! session without a max-prefix limit keeps nothing per path (memory does not grow with
//! the peer's table), one with a limit counts distinct paths exactly and ends the session
//! at the first path over the limit.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use bgp::rib::{NlriCounts, Tracking};
use bgp::session::{Action, Event, Session, SessionConfig, State};
use bgp::wire::{
    AttributeValue, Capability, CeaseSubcode, ErrorCode, Family, Ipv4Prefix, Ipv6Prefix, Message,
    MpReach, MpUnreach, Nlri, Open, Origin, PathAttribute, Update,
};
use common::session::{C1, PEER_ID, config, config_with_max_prefix, established_with, msg};

/// A session Established with a peer that negotiated IPv4 and IPv6 unicast.
fn established(config: SessionConfig) -> Session {
    let open = Open::new(
        65000,
        90,
        Ipv4Addr::from(PEER_ID),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::FourOctetAs(65000),
        ],
    );
    established_with(config, open)
}

fn host(i: u32) -> Nlri<Ipv4Prefix> {
    Nlri::new(Ipv4Prefix::host(Ipv4Addr::from(0xc000_0000 + i)))
}

fn announce(range: std::ops::Range<u32>) -> Message {
    Message::Update(Update {
        attributes: vec![
            PathAttribute::new(AttributeValue::Origin(Origin::Igp)),
            PathAttribute::new(AttributeValue::NextHop(Ipv4Addr::new(10, 0, 0, 9))),
        ],
        nlri: range.map(host).collect(),
        ..Update::default()
    })
}

fn withdraw(range: std::ops::Range<u32>) -> Message {
    Message::Update(Update {
        withdrawn: range.map(host).collect(),
        ..Update::default()
    })
}

fn feed(s: &mut Session, message: Message) -> Vec<Action> {
    s.handle(msg(C1, message))
}

fn cease(actions: &[Action]) -> Option<(ErrorCode, Vec<u8>)> {
    actions.iter().find_map(|a| match a {
        Action::Send {
            message: Message::Notification(n),
            ..
        } => Some((n.code, n.data.clone())),
        _ => None,
    })
}

#[test]
fn without_a_limit_ten_thousand_announcements_leave_no_entry_and_no_claimed_count() {
    let mut s = established(config());
    assert_eq!(s.received().tracking(), Tracking::Counters);
    for batch in 0..100 {
        feed(&mut s, announce(batch * 100..batch * 100 + 100));
    }
    // Announced again, and withdrawn, some of them: still nothing kept.
    feed(&mut s, announce(0..100));
    feed(&mut s, withdraw(0..50));
    let rib = s.received();
    assert_eq!((rib.stored_paths(), rib.capacity()), (0, 0));
    assert_eq!(rib.total(), None);
    assert_eq!(
        rib.nlri(),
        [(
            Family::IPV4_UNICAST,
            NlriCounts {
                announced: 10_100,
                withdrawn: 50
            }
        )]
    );
    assert_eq!(s.state(), State::Established);
}

#[test]
fn with_a_limit_replacements_and_withdrawals_are_counted_exactly_per_family() {
    let c = config_with_max_prefix(1_000, None);
    let mut s = established(c);
    assert_eq!(s.received().tracking(), Tracking::Paths);
    feed(&mut s, announce(0..10));
    feed(&mut s, announce(5..15)); // 5..10 replaced, 10..15 new
    feed(&mut s, withdraw(0..3));
    feed(&mut s, withdraw(0..3)); // already gone
    feed(&mut s, withdraw(100..110)); // never announced
    let v6 = |i: u128| {
        Nlri::new(Ipv6Prefix::host(Ipv6Addr::from(
            (0x2001_0db8u128 << 96) + i,
        )))
    };
    let mp = |reach: bool, range: std::ops::Range<u128>| {
        let nlri: Vec<_> = range.map(v6).collect();
        let value = if reach {
            AttributeValue::MpReach(MpReach::Ipv6Unicast {
                next_hop: bgp::wire::MpNextHop::V6 {
                    global: "2001:db8:ffff::9".parse().expect("ip"),
                    link_local: None,
                },
                nlri,
            })
        } else {
            AttributeValue::MpUnreach(MpUnreach::Ipv6Unicast(nlri))
        };
        let mut attributes = vec![PathAttribute::new(value)];
        if reach {
            attributes.push(PathAttribute::new(AttributeValue::Origin(Origin::Igp)));
        }
        Message::Update(Update {
            attributes,
            ..Update::default()
        })
    };
    feed(&mut s, mp(true, 0..4));
    feed(&mut s, mp(false, 3..5));
    let rib = s.received();
    assert_eq!(rib.count(Family::IPV4_UNICAST), Some(12));
    assert_eq!(rib.count(Family::IPV6_UNICAST), Some(3));
    assert_eq!(rib.total(), Some(15));
    assert_eq!(rib.stored_paths(), 15);
    assert_eq!(rib.routes().count(), 0, "attributes are not kept");
    assert_eq!(
        rib.nlri(),
        [
            (
                Family::IPV4_UNICAST,
                NlriCounts {
                    announced: 20,
                    withdrawn: 16
                }
            ),
            (
                Family::IPV6_UNICAST,
                NlriCounts {
                    announced: 4,
                    withdrawn: 2
                }
            )
        ]
    );
    // The session goes down: the table and its memory go, the counters stay.
    s.handle(Event::TcpClosed { conn: C1 });
    assert_eq!(s.received().total(), Some(0));
    assert_eq!(s.received().capacity(), 0);
    assert_eq!(s.received().nlri()[0].1.announced, 20);
}

#[test]
fn max_prefix_fires_at_the_limit_plus_one_distinct_path_not_before() {
    let c = config_with_max_prefix(100, Some(Duration::from_secs(60)));
    let mut s = established(c);
    assert!(cease(&feed(&mut s, announce(0..100))).is_none());
    // Re-announcing all 100 is no new path.
    assert!(cease(&feed(&mut s, announce(0..100))).is_none());
    // One out, one new in: still 100.
    feed(&mut s, withdraw(0..1));
    assert!(cease(&feed(&mut s, announce(100..101))).is_none());
    assert_eq!(s.state(), State::Established);
    assert_eq!(s.received().total(), Some(100));
    let actions = feed(&mut s, announce(101..102));
    assert_eq!(
        cease(&actions),
        Some((
            ErrorCode::Cease(CeaseSubcode::MaximumNumberOfPrefixesReached),
            vec![0, 1, 1, 0, 0, 0, 100]
        ))
    );
    assert_eq!(s.state(), State::Idle);
}
