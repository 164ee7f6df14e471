//! Property: whatever sequence of announcements, withdrawals, partial drains and session
//! restarts happens, once the Adj-RIB-Out queue is drained the peer (modelled by applying
//! every batch) holds exactly the wanted routes with their latest attributes, and the
//! advertised count agrees. The same holds for the wire: UPDATEs decoded back give the
//! same table.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use bgp::rib::export::Export;
use bgp::rib::pack::encode_batch;
use bgp::rib::{AdjRibOut, Batch, Prefix, RouteAttrs};
use bgp::wire::{AttributeValue, Context, Family, Message, frame};
use bytes::BytesMut;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Announce(u8, u8),
    Withdraw(u8),
    Drain(usize),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..40, 0u8..3).prop_map(|(p, a)| Op::Announce(p, a)),
        2 => (0u8..40).prop_map(Op::Withdraw),
        2 => (1usize..20).prop_map(Op::Drain),
        1 => Just(Op::Restart),
    ]
}

fn prefix(i: u8) -> Prefix {
    Prefix::host(Ipv4Addr::new(192, 0, 2, i).into())
}

fn apply(peer: &mut HashMap<Prefix, u32>, batch: &Batch) {
    let mut seen = std::collections::HashSet::new();
    for p in &batch.withdrawn {
        assert!(seen.insert(*p), "prefix twice in one batch");
        peer.remove(p);
    }
    for (attrs, prefixes) in &batch.announced {
        for p in prefixes {
            assert!(seen.insert(*p), "prefix twice in one batch");
            peer.insert(*p, attrs.med.unwrap_or(0));
        }
    }
}

fn export() -> Export {
    Export {
        local_as: 65001,
        ibgp: false,
        next_hop_v4: Some(Ipv4Addr::new(10, 0, 0, 1)),
        next_hop_v6: None,
        graceful_shutdown: false,
        context: Context {
            four_octet_as: true,
            ..Context::default()
        },
    }
}

/// Applies the UPDATEs in `bytes` to a table of prefix → MED.
fn apply_wire(peer: &mut HashMap<Prefix, u32>, mut bytes: &[u8]) {
    let ctx = export().context;
    while let Some(len) = frame(bytes, ctx.max_message_len()).expect("frame") {
        let Message::Update(u) = Message::decode(&bytes[..len], &ctx).expect("decode") else {
            panic!("not an UPDATE")
        };
        for n in &u.withdrawn {
            peer.remove(&Prefix::V4(n.prefix));
        }
        let med = match u.attribute(4) {
            Some(AttributeValue::MultiExitDisc(m)) => *m,
            _ => 0,
        };
        for n in &u.nlri {
            peer.insert(Prefix::V4(n.prefix), med);
        }
        bytes = &bytes[len..];
    }
}

proptest! {
    #[test]
    fn the_peer_ends_up_with_exactly_the_wanted_routes(ops in prop::collection::vec(op(), 0..80)) {
        let attrs: Vec<Arc<RouteAttrs>> =
            (0..3).map(|m| Arc::new(RouteAttrs { med: Some(m), ..RouteAttrs::default() })).collect();
        let mut rib = AdjRibOut::new();
        let mut wanted: HashMap<Prefix, u32> = HashMap::new();
        let mut peer: HashMap<Prefix, u32> = HashMap::new();
        let mut wire_peer: HashMap<Prefix, u32> = HashMap::new();
        rib.start(&[Family::IPV4_UNICAST]);
        let drain = |rib: &mut AdjRibOut, peer: &mut HashMap<Prefix, u32>, wire: &mut HashMap<Prefix, u32>, limit| {
            let batch = rib.next_batch(limit);
            apply(peer, &batch);
            let mut buf = BytesMut::new();
            encode_batch(&batch, &export(), &mut buf).expect("encode");
            apply_wire(wire, &buf);
        };
        for op in ops {
            match op {
                Op::Announce(p, a) => {
                    rib.announce(prefix(p), attrs[usize::from(a)].clone());
                    wanted.insert(prefix(p), u32::from(a));
                }
                Op::Withdraw(p) => {
                    rib.withdraw(prefix(p));
                    wanted.remove(&prefix(p));
                }
                Op::Drain(n) => drain(&mut rib, &mut peer, &mut wire_peer, n),
                Op::Restart => {
                    rib.reset();
                    peer.clear();
                    wire_peer.clear();
                    rib.start(&[Family::IPV4_UNICAST]);
                }
            }
        }
        drain(&mut rib, &mut peer, &mut wire_peer, usize::MAX);
        prop_assert!(!rib.has_pending());
        prop_assert_eq!(&peer, &wanted);
        prop_assert_eq!(&wire_peer, &wanted);
        prop_assert_eq!(rib.advertised(), wanted.len());
        prop_assert_eq!(rib.len(), wanted.len());
    }
}
