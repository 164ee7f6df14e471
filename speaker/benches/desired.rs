//! How long the pure decision takes at scale: `desired` for one node of a cluster with
//! 10,000 LoadBalancer Services (half policy Local), 100 nodes' worth of endpoints and 4
//! peers, and the `diff` of two such states differing in one Service.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use speaker::desired::desired;
use speaker::diff::{Running, diff};
use speaker::{ClusterState, NodeContext, Object};

const SERVICES: usize = 10_000;
const NODES: usize = 100;

fn parse<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    serde_yaml::from_str(yaml).expect("fixture parses")
}

fn cluster(moved: usize) -> ClusterState {
    let mut objects = vec![
        Object::BgpConf(Box::new(parse(
            "kind: BgpConf\nmetadata: {name: default}\nspec: {as: 65001}\n",
        ))),
        Object::Eip(Box::new(parse(
            "kind: Eip\nmetadata: {name: pool}\nspec: {address: 10.128.0.0/16}\n",
        ))),
        Object::Node(Box::new(parse(
            "kind: Node\nmetadata: {name: n0}\nstatus:\n  addresses: [{type: InternalIP, address: 10.0.0.1}]\n",
        ))),
    ];
    for p in 0..4 {
        objects.push(Object::BgpPeer(Box::new(parse(&format!(
            "kind: BgpPeer\nmetadata: {{name: p{p}}}\nspec: {{conf: {{peerAs: 65000, neighborAddress: 10.0.1.{p}}}}}\n"
        )))));
    }
    for i in 0..SERVICES {
        let ip = format!("10.128.{}.{}", i / 250, i % 250 + 1);
        let policy = if i % 2 == 0 { "Local" } else { "Cluster" };
        objects.push(Object::Service(Box::new(parse(&format!(
            "kind: Service\nmetadata: {{namespace: ns, name: s{i}}}\nspec: {{type: LoadBalancer, externalTrafficPolicy: {policy}}}\nstatus: {{loadBalancer: {{ingress: [{{ip: {ip}}}]}}}}\n"
        )))));
        let node = if i == moved { 1 } else { i % NODES };
        objects.push(Object::EndpointSlice(Box::new(parse(&format!(
            "kind: EndpointSlice\naddressType: IPv4\nmetadata: {{namespace: ns, name: s{i}-1, labels: {{kubernetes.io/service-name: s{i}}}}}\nendpoints:\n- {{addresses: [10.244.0.1], nodeName: n{node}}}\n- {{addresses: [10.244.0.2], nodeName: n{}}}\n",
            (node + 1) % NODES
        )))));
    }
    ClusterState::from_objects(objects)
}

fn bench(c: &mut Criterion) {
    let ctx = NodeContext {
        node_name: "n0".into(),
        namespace: "berth-system".into(),
        fallback_router_id: None,
        ..NodeContext::default()
    };
    let before = cluster(usize::MAX);
    let after = cluster(0);
    c.bench_function("desired/10k services, 4 peers", |b| {
        b.iter(|| desired(black_box(&ctx), black_box(&before)))
    });
    let running = Running::target(&desired(&ctx, &before));
    let next = desired(&ctx, &after);
    c.bench_function("diff/10k services x 4 peers, one change", |b| {
        b.iter(|| diff(black_box(&running), black_box(&next)))
    });
    let plan = diff(&running, &next);
    assert_eq!(
        plan.route_changes(),
        4,
        "the moved Local endpoint withdraws one VIP on 4 peers"
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
