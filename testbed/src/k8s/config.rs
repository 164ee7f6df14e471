//! [`ControlPlaneConfig`]: how a control plane runs — its addresses, service ranges and
//! controllers — and what follows from that alone (the names its serving certificate covers,
//! where it is reached inside its namespace). Pure data; starts nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnetwork::IpNetwork;

use super::pki::{self, ServingNames};

/// How to run a control plane; [`ControlPlaneConfig::new`] gives the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ControlPlaneConfig {
    /// The control plane namespace's address that other namespaces use: kube-apiserver
    /// advertises it, [`super::ControlPlane::server_url`] names it, the serving certificate covers it.
    pub address: IpAddr,
    /// More addresses the serving certificate covers (e.g. the namespace's other family).
    pub extra_addresses: Vec<IpAddr>,
    /// Where kube-apiserver listens inside the namespace (default `0.0.0.0:6443`; use `[::]`
    /// to accept both families).
    pub bind: SocketAddr,
    /// Service ClusterIP ranges, primary family first (default `10.96.0.0/16` and
    /// `fd00:10:96::/108`: dual stack).
    pub service_cidrs: Vec<IpNetwork>,
    /// Whether to run kube-controller-manager (default yes). Without it there are no
    /// EndpointSlices for Pods, no garbage collection, namespaces are never deleted, no
    /// namespace gets its `default` ServiceAccount (so Pods are refused), and the aggregated
    /// ClusterRoles `view`, `edit` and `admin` stay empty.
    pub controller_manager: bool,
    /// The controllers it runs (default [`super::DEFAULT_CONTROLLERS`]).
    pub controllers: Vec<String>,
    /// How long the API server gets to become ready, at start and after a restart.
    pub ready_timeout: Duration,
    /// Whether kube-apiserver writes an audit log (default no): every request at level
    /// `Metadata` (who, verb, resource, subresource, response code; no bodies), as JSON lines
    /// in [`super::ControlPlane::audit_log_path`]. For tests that check what a client really
    /// does with its rights.
    pub audit: bool,
}

impl ControlPlaneConfig {
    /// The defaults, with the namespace's address `address`.
    pub fn new(address: IpAddr) -> Self {
        ControlPlaneConfig {
            address,
            extra_addresses: Vec::new(),
            bind: SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 6443),
            service_cidrs: ["10.96.0.0/16", "fd00:10:96::/108"]
                .iter()
                .map(|cidr| cidr.parse().expect("a valid CIDR literal"))
                .collect(),
            controller_manager: true,
            controllers: super::DEFAULT_CONTROLLERS
                .iter()
                .map(|c| (*c).to_string())
                .collect(),
            ready_timeout: Duration::from_secs(60),
            audit: false,
        }
    }

    /// The names and addresses the serving certificate covers: loopback (the forwarder and
    /// kube-controller-manager), the namespace's addresses, the `kubernetes` Service's names
    /// and its ClusterIP in every service range.
    pub(crate) fn serving_names(&self) -> ServingNames {
        let mut ips = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            self.address,
        ];
        ips.extend(&self.extra_addresses);
        if !self.bind.ip().is_unspecified() {
            ips.push(self.bind.ip());
        }
        ips.extend(
            self.service_cidrs
                .iter()
                .filter_map(|net| pki::first_host(*net)),
        );
        ips.sort_unstable();
        ips.dedup();
        let dns = [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ];
        ServingNames {
            dns: dns.iter().map(|d| (*d).to_string()).collect(),
            ips,
        }
    }

    /// Where kube-apiserver is reached from inside its own namespace.
    pub(crate) fn inside_addr(&self) -> SocketAddr {
        let ip = match self.bind.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        SocketAddr::new(ip, self.bind.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serving_certificate_covers_loopback_the_namespace_and_the_service() {
        let mut config = ControlPlaneConfig::new("10.250.0.1".parse().expect("ip"));
        config
            .extra_addresses
            .push("fd00:250::1".parse().expect("ip"));
        let names = config.serving_names();
        for ip in [
            "127.0.0.1",
            "::1",
            "10.250.0.1",
            "fd00:250::1",
            "10.96.0.1",
            "fd00:10:96::1",
        ] {
            assert!(names.ips.contains(&ip.parse().expect("ip")), "{ip} missing");
        }
        for dns in [
            "kubernetes",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ] {
            assert!(names.dns.iter().any(|d| d == dns), "{dns} missing");
        }
    }

    #[test]
    fn the_inside_address_is_loopback_of_the_bound_family() {
        let mut config = ControlPlaneConfig::new("fd00:250::1".parse().expect("ip"));
        assert_eq!(
            config.inside_addr(),
            "127.0.0.1:6443".parse().expect("addr")
        );
        config.bind = "[::]:7443".parse().expect("addr");
        assert_eq!(config.inside_addr(), "[::1]:7443".parse().expect("addr"));
        config.bind = "10.250.0.1:6443".parse().expect("addr");
        assert_eq!(
            config.inside_addr(),
            "10.250.0.1:6443".parse().expect("addr")
        );
    }
}
