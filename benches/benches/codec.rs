//! Codec throughput: decode and encode of full-size UPDATEs (4,096 bytes, 810 IPv4 /32
//! NLRI; an IPv6 MP_REACH_NLRI UPDATE with 237 /128s), beside a plain copy of the same
//! bytes as the ceiling. Throughput is in prefixes; messages/s = prefixes/s ÷ prefixes per
//! message. Figures and the command line are in `benches/README.md`.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use bgp::wire::{
    AsPath, AttributeValue, Context, Ipv4Prefix, Ipv6Prefix, Message, MpNextHop, Nlri, Origin,
    PathAttribute, pack_ipv4_announcements, pack_ipv6_announcements,
};
use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const V4_PREFIXES: usize = 810;
const V6_PREFIXES: usize = 237;

fn ctx() -> Context {
    Context {
        four_octet_as: true,
        ..Context::default()
    }
}

fn common_attributes() -> Vec<PathAttribute> {
    vec![
        PathAttribute::new(AttributeValue::Origin(Origin::Igp)),
        PathAttribute::new(AttributeValue::AsPath(AsPath::sequence(vec![65000]))),
    ]
}

fn v4_prefixes() -> Vec<Nlri<Ipv4Prefix>> {
    (0..V4_PREFIXES as u32)
        .map(|i| Nlri::new(Ipv4Prefix::host(Ipv4Addr::from(0x0a00_0000 + i))))
        .collect()
}

fn v6_prefixes() -> Vec<Nlri<Ipv6Prefix>> {
    (0..V6_PREFIXES as u128)
        .map(|i| {
            Nlri::new(Ipv6Prefix::host(Ipv6Addr::from(
                (0x2001_0db8u128 << 96) + i,
            )))
        })
        .collect()
}

fn v4_attributes() -> Vec<PathAttribute> {
    let mut a = common_attributes();
    a.push(PathAttribute::new(AttributeValue::NextHop(Ipv4Addr::new(
        192, 0, 2, 1,
    ))));
    // Brings the message to exactly 4,096 bytes.
    a.push(PathAttribute::new(AttributeValue::AtomicAggregate));
    a
}

fn v6_next_hop() -> MpNextHop {
    MpNextHop::V6 {
        global: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        link_local: None,
    }
}

/// One UPDATE holding all `prefixes`; panics if packing needed more than one message.
fn one_message(bytes: BytesMut, count: usize) -> BytesMut {
    assert_eq!(count, 1, "benchmark message must be a single UPDATE");
    bytes
}

fn ipv4_update() -> BytesMut {
    let mut buf = BytesMut::new();
    let n =
        pack_ipv4_announcements(&v4_attributes(), v4_prefixes(), &ctx(), &mut buf).expect("fits");
    one_message(buf, n)
}

fn ipv6_update() -> BytesMut {
    let mut buf = BytesMut::new();
    let n = pack_ipv6_announcements(
        &common_attributes(),
        v6_next_hop(),
        v6_prefixes(),
        &ctx(),
        &mut buf,
    )
    .expect("fits");
    one_message(buf, n)
}

fn bench_family(
    c: &mut Criterion,
    name: &str,
    wire: &[u8],
    prefixes: usize,
    pack: &dyn Fn(&mut BytesMut),
) {
    let ctx = ctx();
    let message = Message::decode(wire, &ctx).expect("benchmark message decodes");
    let mut group = c.benchmark_group(format!("codec/{name}"));
    group.throughput(Throughput::Elements(prefixes as u64));
    group.bench_function("decode", |b| {
        b.iter(|| Message::decode(black_box(wire), &ctx).expect("decodes"))
    });
    let mut out = BytesMut::with_capacity(wire.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(&message).encode(&ctx, &mut out).expect("fits");
            black_box(out.len())
        })
    });
    group.bench_function("pack", |b| {
        b.iter(|| {
            out.clear();
            pack(&mut out);
            black_box(out.len())
        })
    });
    let mut copy = vec![0u8; wire.len()];
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            copy.copy_from_slice(black_box(wire));
            black_box(copy.as_ptr())
        })
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    let v4 = ipv4_update();
    assert_eq!(v4.len(), 4096);
    let (attrs, prefixes, ctx) = (v4_attributes(), v4_prefixes(), ctx());
    bench_family(c, "ipv4_810x32", &v4, V4_PREFIXES, &|out| {
        pack_ipv4_announcements(&attrs, prefixes.iter().copied(), &ctx, out).expect("fits");
    });

    let v6 = ipv6_update();
    let (attrs6, prefixes6) = (common_attributes(), v6_prefixes());
    bench_family(c, "ipv6_237x128", &v6, V6_PREFIXES, &|out| {
        pack_ipv6_announcements(&attrs6, v6_next_hop(), prefixes6.iter().copied(), &ctx, out)
            .expect("fits");
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = codec
}
criterion_main!(benches);
