//! The Kubernetes objects the benchmark creates: Berth's cluster configuration (BgpConf,
//! BgpPeers for the tor-pair lab, one large pool) and the measured Services with their
//! EndpointSlices. Knows nothing about timing.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

/// The namespace of the measured Services.
pub const NAMESPACE: &str = "bench";
/// The default pool: room for 16,382 Services (the 10,000 scale step included).
pub const POOL: &str = "10.100.0.0/18";
/// Nodes of the tor-pair lab.
pub const NODES: [&str; 3] = ["node1", "node2", "node3"];

/// The `default` BgpConf, one IPv4 BgpPeer per node and router, the default pool and the
/// Services' namespace, as one multi-document manifest.
pub fn berth_objects() -> String {
    let mut docs = vec![
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpConf\nmetadata: {name: default}\n\
         spec: {as: 65001}\n"
            .to_string(),
        format!(
            "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata:\n  name: bench\n  \
             annotations: {{eip.openelb.kubesphere.io/is-default-eip: \"true\"}}\n\
             spec: {{address: {POOL}}}\n"
        ),
        format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}}}\n"),
    ];
    for n in 1..=NODES.len() {
        for tor in 1..=2 {
            docs.push(format!(
                "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\n\
                 metadata: {{name: tor{tor}-node{n}}}\nspec:\n  \
                 conf: {{peerAs: 65000, neighborAddress: \"10.{tor}.{n}.1\"}}\n  \
                 timers: {{config: {{holdTime: \"9\", connectRetry: \"1\"}}}}\n  \
                 nodeSelector: {{matchLabels: {{kubernetes.io/hostname: node{n}}}}}\n"
            ));
        }
    }
    docs.join("---\n")
}

/// A LoadBalancer Service of Berth's class without selector (its endpoints are ours),
/// policy Cluster, no NodePorts (10,000 Services would not fit the NodePort range).
pub fn service(name: &str) -> Service {
    service_of_class(name, "berth.io/lb")
}

/// The same Service with another `loadBalancerClass`: Berth leaves it alone, so creating it
/// measures what the API server alone takes.
pub fn service_of_class(name: &str, class: &str) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"type": "LoadBalancer", "loadBalancerClass": class,
                 "externalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": false,
                 "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    }))
    .unwrap_or_default()
}

/// The Service's EndpointSlice: one ready endpoint on each node (as a Deployment with one
/// Pod per node would have).
pub fn endpoint_slice(service: &str) -> EndpointSlice {
    let endpoints: Vec<serde_json::Value> = (1..=NODES.len())
        .map(|i| {
            json!({"addresses": [format!("10.244.{i}.10")], "nodeName": format!("node{i}"),
                   "conditions": {"ready": true}})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-1"), "namespace": NAMESPACE,
                     "labels": {"kubernetes.io/service-name": service,
                                "endpointslice.kubernetes.io/managed-by": "berth-bench"}},
        "addressType": "IPv4",
        "ports": [{"port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_complete() {
        let svc = service("a");
        assert_eq!(
            svc.spec.and_then(|s| s.load_balancer_class).as_deref(),
            Some("berth.io/lb")
        );
        let slice = endpoint_slice("a");
        assert_eq!(slice.endpoints.map(|e| e.len()), Some(3));
        assert_eq!(berth_objects().matches("kind: BgpPeer").count(), 6);
    }
}
