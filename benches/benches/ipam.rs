//! Allocator benchmarks: 10,000 Services allocated across 3 pools from empty, and the start-up
//! rebuild of 10,000 existing allocations. Time by criterion; peak heap memory by a counting
//! global allocator (`peak_alloc`), measured once per workload before criterion starts.
//!
//! Run: `cargo bench -p benches --bench ipam`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::IpAddr;

use controller::ipam::{
    AllocationRequest, Allocator, ExistingClaim, PoolSpec, PortClaim, Protocol, ServiceRef,
    SharingTerms, TrafficPolicy,
};
use criterion::{BatchSize, Criterion};
use peak_alloc::PeakAlloc;

/// Counts live heap bytes and their peak (a few atomic adds per allocation, timed runs included).
#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

const SERVICES: usize = 10_000;

/// Two namespace-bound pools and a default pool, 16,382 usable addresses each.
fn pools() -> Vec<PoolSpec> {
    let mut a = PoolSpec::new("team-a", "10.0.0.0/18");
    a.namespaces = vec!["team-a".into()];
    let mut b = PoolSpec::new("team-b", "10.1.0.0/18");
    b.namespace_selector = BTreeMap::from([("team".into(), "b".into())]);
    b.priority = 1;
    let mut c = PoolSpec::new("default", "10.2.0.0/18");
    c.is_default = true;
    vec![a, b, c]
}

/// Services spread over three namespaces; every 10th asks for an address, every 25th pair
/// shares one by key, the rest take the lowest free address.
fn requests() -> Vec<AllocationRequest> {
    (0..SERVICES)
        .map(|i| {
            let ns = ["team-a", "team-b", "other"][i % 3];
            let mut r = AllocationRequest::new(ServiceRef::new(ns, format!("svc-{i}")));
            if ns == "team-b" {
                r.namespace_labels = BTreeMap::from([("team".into(), "b".into())]);
            }
            r.sharing = SharingTerms {
                key: None,
                ports: vec![PortClaim {
                    port: 80,
                    protocol: Protocol::Tcp,
                }],
                policy: TrafficPolicy::Cluster,
            };
            if i % 10 == 0 {
                // High in the default pool, away from the lowest-free cursor.
                let n = 40 * 256 + i / 10;
                let ip: IpAddr = format!("10.2.{}.{}", n / 256, n % 256)
                    .parse()
                    .expect("generated address");
                r.addresses = vec![ip];
            } else if i % 25 == 1 || i % 25 == 4 {
                r.sharing.key = Some(format!("pair-{}", i / 25));
                r.sharing.ports[0].port = if i % 25 == 1 { 80 } else { 443 };
            }
            r
        })
        .collect()
}

fn fresh() -> Allocator {
    let mut a = Allocator::new();
    for p in pools() {
        a.upsert_pool(p).expect("valid pool");
    }
    a
}

fn allocate_all(mut a: Allocator, requests: &[AllocationRequest]) -> Allocator {
    for r in requests {
        a.allocate(r).expect("enough room for every Service");
    }
    a
}

/// The claims a restarted controller reads from Service status, in a scrambled order.
fn claims(requests: &[AllocationRequest]) -> Vec<ExistingClaim> {
    let allocated = allocate_all(fresh(), requests);
    let mut claims: Vec<ExistingClaim> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| ExistingClaim {
            request: r.clone(),
            addresses: allocated
                .addresses_of(&r.service)
                .iter()
                .map(|a| a.address)
                .collect(),
            created: Some(1_700_000_000 + (i as i64 * 7919) % 5000),
        })
        .collect();
    claims.reverse();
    claims
}

fn rebuild(claims: Vec<ExistingClaim>) -> Allocator {
    let rebuilt = Allocator::rebuild(pools(), claims);
    assert!(
        rebuilt.refused.is_empty(),
        "a consistent state rebuilds fully"
    );
    rebuilt.allocator
}

/// Runs `workload` once and prints the peak heap above what existed before it, and the net
/// change once it returns (its inputs freed, its result kept).
fn report_memory<T>(name: &str, workload: impl FnOnce() -> T) {
    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let kept = workload();
    let peak = HEAP.peak_usage().saturating_sub(before);
    let net = HEAP.current_usage() as f64 - before as f64;
    black_box(&kept);
    drop(kept);
    println!(
        "memory, {name}: peak +{:.2} MiB heap, net {:+.2} MiB after",
        peak as f64 / (1024.0 * 1024.0),
        net / (1024.0 * 1024.0)
    );
}

fn bench(c: &mut Criterion) {
    let requests = requests();
    let claims = claims(&requests);
    let mut group = c.benchmark_group("ipam");
    group.sample_size(20);
    group.bench_function("allocate_10k_services_3_pools_from_empty", |b| {
        b.iter_batched(
            fresh,
            |a| black_box(allocate_all(a, &requests)),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("rebuild_10k_existing_allocations", |b| {
        b.iter_batched(
            || claims.clone(),
            |c| black_box(rebuild(c)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn main() {
    let requests = requests();
    let claims = claims(&requests);
    report_memory("allocate_10k_services_3_pools_from_empty", || {
        allocate_all(fresh(), &requests)
    });
    // The claims already exist (read from Service status) and are consumed by the rebuild.
    report_memory("rebuild_10k_existing_allocations", move || rebuild(claims));
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
