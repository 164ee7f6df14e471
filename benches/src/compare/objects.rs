//! The measured Services, as each product expects them: the same LoadBalancer Service (policy
//! Cluster, no NodePorts, no selector: its EndpointSlice, one ready endpoint per node, comes
//! from the in-cluster benchmark) with Berth's `loadBalancerClass`, with no class for MetalLB
//! (its default), and with no class plus the `kube-vip.io/loadbalancerIPs` annotation for
//! kube-vip (which allocates nothing). Knows nothing about timing.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use serde_json::json;

use super::product::Product;
use crate::incluster::objects::NAMESPACE;

/// The Service `name`, the `index`-th the benchmark creates, for `product`.
pub fn service(product: Product, name: &str, index: usize) -> Service {
    let mut spec = json!({
        "type": "LoadBalancer", "externalTrafficPolicy": "Cluster",
        "allocateLoadBalancerNodePorts": false,
        "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
    });
    let mut metadata = json!({"name": name, "namespace": NAMESPACE});
    match product {
        Product::Berth => spec["loadBalancerClass"] = json!("berth.io/lb"),
        Product::MetalLb => {}
        Product::KubeVip => {
            metadata["annotations"] =
                json!({"kube-vip.io/loadbalancerIPs": address(index).to_string()});
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec,
    }))
    .unwrap_or_default()
}

/// The address the benchmark gives its `index`-th Service where the product allocates none:
/// 10.100.0.1 onwards (inside the pool the allocating products use).
pub fn address(index: usize) -> Ipv4Addr {
    let base = u32::from(Ipv4Addr::new(10, 100, 0, 1));
    Ipv4Addr::from(base + u32::try_from(index).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_product_gets_its_own_form() {
        let class = |p| service(p, "a", 0).spec.and_then(|s| s.load_balancer_class);
        assert_eq!(class(Product::Berth).as_deref(), Some("berth.io/lb"));
        assert_eq!(class(Product::MetalLb), None);
        let kv = service(Product::KubeVip, "a", 300);
        let annotation = kv
            .metadata
            .annotations
            .and_then(|a| a.get("kube-vip.io/loadbalancerIPs").cloned());
        assert_eq!(annotation.as_deref(), Some("10.100.1.45"));
    }
}
