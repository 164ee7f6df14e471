//! Kubernetes mode against a scripted API server (the kube-rs `tower-test` pattern): the
//! reflectors list every kind (this node only; Secrets of the speaker's namespace only)
//! and publish one `ClusterState`; the status writer server-side-applies this node's
//! entries of `BgpPeer` and `BgpConf` status with its own field manager.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bgp::driver::{MemoryNetwork, PeerConfig, Speaker, SpeakerConfig};
use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use speaker::daemon::Shared;
use speaker::desired::{Afi, DesiredPeer, SpeakerSettings};
use speaker::source::Feed;

/// One request: method, path, query, body.
type Call = (String, String, String, Value);

fn list(kind: &str, items: Value) -> Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"),
           "metadata": {"resourceVersion": "1"}, "items": items})
}

fn answer(path: &str) -> Value {
    let meta = |name: &str| json!({"name": name, "resourceVersion": "1"});
    let nsmeta =
        |ns: &str, name: &str| json!({"namespace": ns, "name": name, "resourceVersion": "1"});
    match path {
        "/api/v1/nodes" => list(
            "Node",
            json!([{"metadata": meta("n1"),
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}}]),
        ),
        "/api/v1/services" => list(
            "Service",
            json!([{"metadata": nsmeta("web", "a"),
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "berth.io/lb",
                     "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}}]),
        ),
        "/apis/discovery.k8s.io/v1/endpointslices" => list(
            "EndpointSlice",
            json!([{
            "metadata": {"namespace": "web", "name": "a-1", "resourceVersion": "1",
                         "labels": {"kubernetes.io/service-name": "a"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.244.0.1"], "nodeName": "n1"}]}]),
        ),
        "/apis/network.kubesphere.io/v1alpha2/eips" => list(
            "Eip",
            json!([{
            "metadata": meta("pool"), "spec": {"address": "192.0.2.0/24"}}]),
        ),
        "/apis/network.kubesphere.io/v1alpha2/bgpconfs" => list(
            "BgpConf",
            json!([{
            "metadata": meta("default"), "spec": {"as": 65001}}]),
        ),
        "/apis/network.kubesphere.io/v1alpha2/bgppeers" => list(
            "BgpPeer",
            json!([{
            "metadata": meta("tor"),
            "spec": {"conf": {"peerAs": 65000, "neighborAddress": "10.0.0.254"},
                     "authPasswordSecretRef": {"name": "md5"}}}]),
        ),
        "/api/v1/namespaces/berth-system/secrets" => list(
            "Secret",
            json!([{
            "metadata": nsmeta("berth-system", "md5"), "data": {"password": "czNjcmV0"}}]),
        ),
        _ => json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
    }
}

/// A client talking to the scripted server, and the log of what it was asked.
fn fake_api() -> (Client, Arc<Mutex<Vec<Call>>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let log = calls.clone();
    tokio::spawn(async move {
        // Watches are held open and never answered: the state comes from the lists.
        let mut watches = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            let query = request.uri().query().unwrap_or("").to_string();
            if query.contains("watch=true") {
                watches.push(send);
                continue;
            }
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes)
                .or_else(|_| serde_yaml::from_slice(&bytes))
                .unwrap_or(Value::Null);
            let path = parts.uri.path().to_string();
            log.lock().expect("log").push((
                parts.method.to_string(),
                path.clone(),
                query,
                body.clone(),
            ));
            let reply = if parts.method == http::Method::PATCH {
                body
            } else {
                answer(&path)
            };
            let response = Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&reply).unwrap_or_default()))
                .expect("response");
            send.send_response(response);
        }
    });
    (Client::new(service, "default"), calls)
}

#[tokio::test]
async fn reflectors_publish_one_state_from_every_kind() {
    let (client, calls) = fake_api();
    let (tx, mut rx) = tokio::sync::watch::channel(Feed::default());
    let source = tokio::spawn(speaker::source::kube::run_kube(
        client,
        "n1".into(),
        "berth-system".into(),
        tx,
    ));
    let state = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(s) = rx.borrow_and_update().state.clone() {
                return s;
            }
            rx.changed().await.expect("source alive");
        }
    })
    .await
    .expect("a state within 20 s");
    assert_eq!(state.nodes.len(), 1);
    assert_eq!(state.services.len(), 1);
    assert_eq!(state.endpoint_slices.len(), 1);
    assert_eq!(
        (
            state.eips.len(),
            state.bgp_confs.len(),
            state.bgp_peers.len()
        ),
        (1, 1, 1)
    );
    assert_eq!(state.secrets.len(), 1);

    let ctx = speaker::NodeContext {
        node_name: "n1".into(),
        namespace: "berth-system".into(),
        fallback_router_id: None,
        ..speaker::NodeContext::default()
    };
    let d = speaker::desired(&ctx, &state);
    assert_eq!(d.problems, vec![]);
    let peer = &d.peers[&"10.0.0.254".parse::<IpAddr>().expect("ip")];
    assert_eq!(
        peer.md5_password.as_deref(),
        Some("s3cret"),
        "base64 Secret data decoded"
    );
    assert_eq!(d.announce.len(), 1, "{:?}", d.vips);

    let calls = calls.lock().expect("log").clone();
    let node_list = calls
        .iter()
        .find(|c| c.1 == "/api/v1/nodes")
        .expect("node list");
    // Every Node is watched: layer 2's candidates and heartbeat members are other nodes
    // (watching this node alone, every node owned every layer-2 address).
    assert!(
        !node_list.2.contains("fieldSelector"),
        "every Node is watched: {}",
        node_list.2
    );
    assert!(
        !calls.iter().any(|c| c.1 == "/api/v1/secrets"),
        "no cluster-wide Secret list"
    );
    source.abort();
}

#[tokio::test(start_paused = true)]
async fn status_writer_applies_this_nodes_entries() {
    let (client, calls) = fake_api();
    let net = MemoryNetwork::new();
    let router_id = Ipv4Addr::new(10, 0, 0, 1);
    let bgp = Speaker::start_in_memory(SpeakerConfig::new(65001, router_id), &net);
    let neighbor: IpAddr = "10.0.0.254".parse().expect("ip");
    // Passive, so its state stays put (Active) and only a real change would rewrite it.
    let mut config = PeerConfig::new(neighbor, 65001, 65000, router_id);
    config.session.mode = bgp::session::ConnectMode::Passive;
    bgp.add_peer(config).expect("peer");
    let shared = Arc::new(Shared::default());
    {
        let mut view = shared.view();
        view.speaker = Some(bgp);
        view.desired = Some(speaker::desired::Desired {
            problems: vec![speaker::desired::Problem {
                kind: "BgpPeer".into(),
                name: "bad".into(),
                message: "spec.conf.peerAs: must be set".into(),
            }],
            ..Default::default()
        });
        view.running.settings = Some(SpeakerSettings {
            local_as: 65001,
            router_id,
            listen_port: Some(179),
            listen_addresses: vec![],
        });
        view.running.peers.insert(
            neighbor,
            DesiredPeer {
                name: "tor".into(),
                description: String::new(),
                address: neighbor,
                port: None,
                peer_as: 65000,
                local_as: 65001,
                router_id,
                hold_time: None,
                keepalive: None,
                connect_retry: None,
                passive: false,
                multihop_ttl: None,
                source_address: None,
                md5_password: None,
                families: BTreeSet::from([Afi::Ipv4]),
                max_prefix: None,
                graceful_restart: None,
                next_hop_v4: None,
                next_hop_v6: None,
                bfd: None,
            },
        );
    }
    let writer = tokio::spawn(speaker::kube_status::run_status_writer(
        client,
        "n1".into(),
        shared,
    ));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let calls = calls.lock().expect("log").clone();
    let peer_patch = calls
        .iter()
        .find(|c| {
            c.0 == "PATCH" && c.1 == "/apis/network.kubesphere.io/v1alpha2/bgppeers/tor/status"
        })
        .expect("BgpPeer status applied");
    assert!(
        peer_patch.2.contains("fieldManager=berth-speaker-n1"),
        "{}",
        peer_patch.2
    );
    let entry = &peer_patch.3["status"]["nodesPeerStatus"]["n1"]["peerState"];
    assert_eq!(entry["peerAs"], 65000, "{}", peer_patch.3);
    assert_eq!(entry["neighborAddress"], "10.0.0.254");
    let valid = &peer_patch.3["status"]["nodesPeerStatus"]["n1"]["conditions"][0];
    assert_eq!(
        (&valid["type"], &valid["status"]),
        (&json!("Valid"), &json!("True")),
        "{}",
        peer_patch.3
    );
    let bad_patch = calls
        .iter()
        .find(|c| {
            c.0 == "PATCH" && c.1 == "/apis/network.kubesphere.io/v1alpha2/bgppeers/bad/status"
        })
        .expect("status of the invalid BgpPeer applied");
    let invalid = &bad_patch.3["status"]["nodesPeerStatus"]["n1"]["conditions"][0];
    assert_eq!(invalid["type"], "Valid", "{}", bad_patch.3);
    assert_eq!(invalid["status"], "False");
    assert_eq!(invalid["reason"], "Invalid");
    assert_eq!(invalid["message"], "spec.conf.peerAs: must be set");
    assert!(
        invalid["lastTransitionTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{}",
        bad_patch.3
    );
    let conf_patch = calls
        .iter()
        .find(|c| {
            c.0 == "PATCH" && c.1 == "/apis/network.kubesphere.io/v1alpha2/bgpconfs/default/status"
        })
        .expect("BgpConf status applied");
    assert_eq!(conf_patch.3["status"]["nodesConfStatus"]["n1"]["as"], 65001);
    assert_eq!(
        conf_patch.3["status"]["nodesConfStatus"]["n1"]["routerId"],
        "10.0.0.1"
    );
    assert_eq!(
        conf_patch.3["status"]["nodesConfStatus"]["n1"]["conditions"][0]["status"],
        "True"
    );
    // Nothing changed since: no second write of the same status.
    let writes = calls
        .iter()
        .filter(|c| c.1.ends_with("/bgppeers/tor/status"))
        .count();
    let bad_writes = calls
        .iter()
        .filter(|c| c.1.ends_with("/bgppeers/bad/status"))
        .count();
    assert_eq!(
        bad_writes, 1,
        "invalid BgpPeer's status rewritten without a change"
    );
    let bodies: Vec<_> = calls
        .iter()
        .filter(|c| c.1.ends_with("/bgppeers/tor/status"))
        .map(|c| c.3.to_string())
        .collect();
    assert_eq!(writes, 1, "status rewritten without a change: {bodies:#?}");
    writer.abort();
}
