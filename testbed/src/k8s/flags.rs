//! The command lines of etcd, kube-apiserver and kube-controller-manager for a control plane
//! in one namespace. Pure functions of the settings and the directory holding the files; they
//! know the file names (from the PKI module) but start nothing.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use ipnetwork::IpNetwork;

use super::pki::files;

/// etcd's client port, on the namespace's loopback only.
pub(crate) const ETCD_CLIENT_PORT: u16 = 2379;
/// etcd's peer port (a one-member cluster; nothing connects to it).
pub(crate) const ETCD_PEER_PORT: u16 = 2380;

/// The issuer of service-account tokens, the one kubeadm clusters use.
pub(crate) const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The audit policy kube-apiserver reads when auditing is on.
pub(crate) const AUDIT_POLICY: &str = "audit-policy.yaml";
/// The audit log kube-apiserver writes when auditing is on (JSON lines).
pub(crate) const AUDIT_LOG: &str = "audit.log";

/// The audit policy: every request at level `Metadata` (no bodies). The `RequestReceived`
/// stage is left out, so each request is recorded with its response code: once when it
/// completes, and a watch also once when it is established (`ResponseStarted`), so an open
/// watch shows up before it ends.
pub(crate) const AUDIT_POLICY_TEXT: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\n\
omitStages: [RequestReceived]\nrules:\n  - level: Metadata\n";

/// The kubeconfig kube-controller-manager uses.
pub(crate) const CONTROLLER_MANAGER_KUBECONFIG: &str = "controller-manager.kubeconfig";

/// The kube-controller-manager controllers a lab runs by default: those that act on API
/// objects alone. Left out are controllers that need kubelets or a cloud: node-lifecycle and
/// taint-eviction would mark Pods of kubelet-less Nodes not ready and evict them, daemonset
/// would make Pods nothing runs, node-ipam and the volume controllers have nothing to do.
pub const DEFAULT_CONTROLLERS: &[&str] = &[
    "clusterrole-aggregation-controller",
    "deployment-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "replicaset-controller",
    "root-ca-certificate-publisher-controller",
    "service-cidr-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
];

/// etcd's URL on the namespace's loopback, as kube-apiserver reaches it.
pub(crate) fn etcd_url() -> String {
    format!("http://127.0.0.1:{ETCD_CLIENT_PORT}")
}

/// etcd: one member, data in `data_dir`, plain HTTP on the namespace's loopback (nothing else
/// in the namespace is a client, so TLS would only cost start-up time), no fsync (a test's
/// data needs to survive a process restart, not a power cut).
pub(crate) fn etcd(data_dir: &Path) -> Vec<String> {
    let client = etcd_url();
    let peer = format!("http://127.0.0.1:{ETCD_PEER_PORT}");
    vec![
        "etcd".into(),
        "--name=lab".into(),
        format!("--data-dir={}", data_dir.display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=lab={peer}"),
        "--unsafe-no-fsync".into(),
        "--log-level=warn".into(),
    ]
}

/// What kube-apiserver's command line depends on besides the file names.
#[derive(Debug, Clone)]
pub(crate) struct ApiServerFlags<'a> {
    /// The address it advertises (the `kubernetes` Service's endpoint).
    pub(crate) advertise: IpAddr,
    /// Where it listens.
    pub(crate) bind: SocketAddr,
    /// Service ClusterIP ranges, primary family first.
    pub(crate) service_cidrs: &'a [IpNetwork],
    /// Whether to write the audit log ([`AUDIT_LOG`] by the policy [`AUDIT_POLICY`], both
    /// in the directory).
    pub(crate) audit: bool,
}

/// kube-apiserver with certificates from `dir`, etcd on loopback, Node and RBAC authorization
/// and the default admission plugins. The endpoint reconciler stays the default (`lease`): it
/// publishes the advertised address as the `kubernetes` Service's endpoint, as in a real
/// cluster; `none` is only needed when the advertised address is a loopback one, which
/// Endpoints refuse.
pub(crate) fn apiserver(dir: &Path, flags: &ApiServerFlags<'_>) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    let cidrs: Vec<String> = flags
        .service_cidrs
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut args: Vec<String> = vec![
        "kube-apiserver".into(),
        format!("--etcd-servers={}", etcd_url()),
        format!("--secure-port={}", flags.bind.port()),
        format!("--bind-address={}", flags.bind.ip()),
        format!("--advertise-address={}", flags.advertise),
        format!("--cert-dir={}", dir.display()),
        format!("--tls-cert-file={}", file(files::APISERVER_CERT)),
        format!("--tls-private-key-file={}", file(files::APISERVER_KEY)),
        format!("--client-ca-file={}", file(files::CA_CERT)),
        format!("--service-account-issuer={SERVICE_ACCOUNT_ISSUER}"),
        format!("--service-account-key-file={}", file(files::SA_PUB)),
        format!("--service-account-signing-key-file={}", file(files::SA_KEY)),
        format!("--service-cluster-ip-range={}", cidrs.join(",")),
        "--authorization-mode=Node,RBAC".into(),
        "--allow-privileged=true".into(),
        "--shutdown-delay-duration=0s".into(),
        "--profiling=false".into(),
    ];
    if flags.audit {
        args.extend([
            format!("--audit-policy-file={}", file(AUDIT_POLICY)),
            format!("--audit-log-path={}", file(AUDIT_LOG)),
            "--audit-log-format=json".into(),
            // Written as requests complete, so a test reads everything up to now.
            "--audit-log-mode=blocking".into(),
        ]);
    }
    args
}

/// kube-controller-manager with its own client certificate (in its kubeconfig), running
/// `controllers`, each under its own service account as kubeadm runs it: the bootstrap RBAC
/// policy grants the controllers' roles to those accounts, not to the manager's own user
/// (`system:kube-controller-manager` may not even create EndpointSlices), so
/// `--use-service-account-credentials=false` would leave the controllers forbidden.
pub(crate) fn controller_manager(dir: &Path, controllers: &[String]) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    vec![
        "kube-controller-manager".into(),
        format!("--kubeconfig={}", file(CONTROLLER_MANAGER_KUBECONFIG)),
        format!("--service-account-private-key-file={}", file(files::SA_KEY)),
        format!("--root-ca-file={}", file(files::CA_CERT)),
        "--use-service-account-credentials=true".into(),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        "--secure-port=0".into(),
        format!("--controllers={}", controllers.join(",")),
        "--profiling=false".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apiserver_is_dual_stack_and_advertises_the_namespace_address() {
        let cidrs: Vec<IpNetwork> = vec![
            "10.96.0.0/16".parse().expect("net"),
            "fd00:10:96::/108".parse().expect("net"),
        ];
        let args = apiserver(
            Path::new("/run/cp"),
            &ApiServerFlags {
                advertise: "10.250.0.1".parse().expect("ip"),
                bind: "0.0.0.0:6443".parse().expect("addr"),
                service_cidrs: &cidrs,
                audit: false,
            },
        );
        assert_eq!(args[0], "kube-apiserver");
        assert!(!args.iter().any(|a| a.starts_with("--audit")));
        for flag in [
            "--service-cluster-ip-range=10.96.0.0/16,fd00:10:96::/108",
            "--advertise-address=10.250.0.1",
            "--bind-address=0.0.0.0",
            "--secure-port=6443",
            "--client-ca-file=/run/cp/ca.crt",
            "--etcd-servers=http://127.0.0.1:2379",
        ] {
            assert!(
                args.iter().any(|a| a == flag),
                "{flag} missing from {args:?}"
            );
        }
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("--disable-admission-plugins"))
        );
    }

    #[test]
    fn auditing_logs_json_lines_by_the_policy_in_the_directory() {
        let args = apiserver(
            Path::new("/run/cp"),
            &ApiServerFlags {
                advertise: "10.250.0.1".parse().expect("ip"),
                bind: "0.0.0.0:6443".parse().expect("addr"),
                service_cidrs: &[],
                audit: true,
            },
        );
        for flag in [
            "--audit-policy-file=/run/cp/audit-policy.yaml",
            "--audit-log-path=/run/cp/audit.log",
            "--audit-log-format=json",
        ] {
            assert!(
                args.iter().any(|a| a == flag),
                "{flag} missing from {args:?}"
            );
        }
        assert!(AUDIT_POLICY_TEXT.contains("level: Metadata"));
    }

    #[test]
    fn controller_manager_runs_the_chosen_controllers() {
        let controllers: Vec<String> = DEFAULT_CONTROLLERS.iter().map(|c| c.to_string()).collect();
        let args = controller_manager(Path::new("/run/cp"), &controllers);
        let flag = args
            .iter()
            .find_map(|a| a.strip_prefix("--controllers="))
            .expect("--controllers");
        assert!(flag.split(',').any(|c| c == "endpointslice-controller"));
        assert!(!flag.contains("node-lifecycle"));
    }
}
