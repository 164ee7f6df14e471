//! kube-vip (v1.2.x, BGP mode through its embedded GoBGP, Services only) in a comparison lab,
//! run as one process per node with the environment its own generator writes
//! (`kube-vip manifest daemonset --services --inCluster --bgp --localAS 65001 --bgpRouterID
//! <node> --bgppeers <tor1>:65000::false,<tor2>:65000::false --interface lo`): `vip_arp=false`,
//! `vip_interface=lo`, `svc_enable=true`, `svc_leasename=plndr-svcs-lock`, `bgp_enable=true`,
//! `bgp_routerid`, `bgp_as`, `bgp_peeras`, `bgp_peers`, `dns_mode=first`, `dhcp_mode=ipv4`,
//! `port=6443`, `prometheus_server=:2112`, `vip_nodename`. kube-vip allocates no addresses
//! (that is its cloud provider's job): the benchmark writes each Service's address into the
//! `kube-vip.io/loadbalancerIPs` annotation at creation, so kube-vip's figures have no
//! allocation step in them. It runs with a ServiceAccount bound to `cluster-admin`.

use std::path::Path;

use serde_json::json;
use testbed::incluster::Daemon;

use super::lab::{CompareLab, NODE_AS, ROUTER_AS, node_address, router_address};
use super::peers::read_line;
use super::product::{Product, Running};
use crate::incluster::objects::{NAMESPACE, NODES};

const KUBEVIP_NAMESPACE: &str = "kube-system";

/// Starts kube-vip from `binary` on every node; with `bfd`, each peer has BFD at that
/// interval (ms) × 3 (GoBGP's BFD, the seventh field of `bgp_peers`).
pub fn start(lab: &CompareLab, binary: &Path, bfd: Option<u32>) -> testbed::Result<Running> {
    lab.add_nodes()?;
    lab.cp.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}}}\n"
    ))?;
    let kubeconfig = lab
        .cp
        .service_account_kubeconfig(KUBEVIP_NAMESPACE, "kube-vip")?;
    lab.cp.apply(&format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n\
         metadata: {{name: kube-vip-bench-admin}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}\n\
         subjects: [{{kind: ServiceAccount, name: kube-vip, namespace: {KUBEVIP_NAMESPACE}}}]\n"
    ))?;
    let speakers = NODES
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let netns = lab.netns(node)?;
            let mut args: Vec<String> = environment(i + 1, node, bfd)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            args.push(binary.display().to_string());
            args.push("manager".into());
            args.push("--k8sConfigPath".into());
            args.push(kubeconfig.display().to_string());
            // `env` sets the variables and execs kube-vip: the pid is kube-vip's.
            Daemon::start(
                netns,
                Path::new("/usr/bin/env"),
                args,
                &kubeconfig,
                netns.dir()?.join("kube-vip.log"),
            )
        })
        .collect::<testbed::Result<Vec<_>>>()?;
    let version_file = binary
        .parent()
        .map(|d| d.join("version"))
        .unwrap_or_default();
    Ok(Running {
        product: Product::KubeVip,
        version: read_line(&version_file),
        settings: json!({
            "mode": "BGP (embedded GoBGP), Services only, no leader election (every node \
                     announces every Service: ECMP)",
            "environment_node1": environment(1, "node1", bfd)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
            "from": "the env of `kube-vip manifest daemonset --services --inCluster --bgp \
                     --localAS 65001 --bgpRouterID <node> --bgppeers <tor1>:65000::false,\
                     <tor2>:65000::false --interface lo` (empty values left out)",
            "hold_time": "GoBGP default (90 s); the routers' 9 s wins",
            "bfd": bfd.map(|ms| format!("GoBGP BFD on every peer: true;{ms};{ms};3 (enable; rx; tx; multiplier)")),
            "addresses": "written by the benchmark into kube-vip.io/loadbalancerIPs (kube-vip \
                          allocates none): no allocation step in its figures",
            "credentials": "a ServiceAccount bound to cluster-admin",
            "binary": binary.display().to_string(),
        }),
        controller: None,
        speakers,
    })
}

/// The environment of node `n`'s kube-vip.
pub fn environment(n: usize, node: &str, bfd: Option<u32>) -> Vec<(&'static str, String)> {
    // <address>:<AS>:<password>:<multihop>:<port>:<mp-bgp>:<BFD enable;rx;tx;multiplier>
    let peer = |tor: usize| match bfd {
        None => format!("{}:{ROUTER_AS}::false", router_address(n, tor)),
        Some(ms) => format!(
            "{}:{ROUTER_AS}::false:::true;{ms};{ms};3",
            router_address(n, tor)
        ),
    };
    vec![
        ("vip_arp", "false".into()),
        ("port", "6443".into()),
        ("vip_nodename", node.into()),
        ("vip_interface", "lo".into()),
        ("dns_mode", "first".into()),
        ("dhcp_mode", "ipv4".into()),
        ("svc_enable", "true".into()),
        ("svc_leasename", "plndr-svcs-lock".into()),
        ("bgp_enable", "true".into()),
        ("bgp_routerid", node_address(n, 1)),
        ("bgp_as", NODE_AS.to_string()),
        ("bgp_peeras", ROUTER_AS.to_string()),
        ("bgp_peers", format!("{},{}", peer(1), peer(2))),
        ("prometheus_server", ":2112".into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_node_peers_with_both_routers() {
        let env = environment(2, "node2", None);
        let peers = env
            .iter()
            .find(|(k, _)| *k == "bgp_peers")
            .map(|(_, v)| v.clone());
        assert_eq!(
            peers.as_deref(),
            Some("10.1.2.1:65000::false,10.2.2.1:65000::false")
        );
        let env = environment(1, "node1", Some(50));
        assert!(env.iter().any(|(k, v)| *k == "bgp_peers"
            && v == "10.1.1.1:65000::false:::true;50;50;3,10.2.1.1:65000::false:::true;50;50;3"));
    }
}
