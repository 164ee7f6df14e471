//! Berth in Kubernetes mode on a real control plane: the interop star (router `r` running
//! BIRD, nodes `n1..`, client `c`) plus a control-plane namespace `cp` on a management bridge
//! that every node reaches, with etcd, kube-apiserver and kube-controller-manager from the
//! testbed's `berth-controlplane`. The shipped `deploy/crds`, `deploy/namespace.yaml` and
//! `deploy/rbac` are applied unchanged; `berth-controller` (in `cp`, like a control-plane
//! node's pod) and `berth-speaker` (one per node namespace) run with their ServiceAccounts'
//! tokens from the TokenRequest API, never as admin. Reads go through the admin's HTTPS client
//! ([`ControlPlane::get`]), writes through `kubectl`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;
use serde_json::Value;
use testbed::k8s::{ControlPlane, ControlPlaneConfig};
use testbed::lab::Process;
use testbed::router::bird::Bird;
use testbed::{Lab, Netns};

use super::{NODE_AS, ROUTER_AS, link_addresses, router_config, star, workspace_bin};

/// The control plane's address on the management bridge.
pub const CP_ADDRESS: &str = "10.99.0.1";
/// Where a speaker serves its admin API inside its node namespace.
pub const SPEAKER_ADMIN: &str = "127.0.0.1:7473";
/// Where a speaker serves metrics and health inside its node namespace.
pub const SPEAKER_METRICS: &str = "127.0.0.1:7472";
/// The pool every test allocates from.
pub const POOL: &str = "10.0.0.96/28";
/// The namespace of the test's Services.
pub const APP_NS: &str = "shop";
/// How long anything in the cluster gets (a generous bound; tests report what they saw).
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// How long a daemon may take to exit on SIGTERM (issue 22: 2 s in every state).
pub const SIGTERM_BOUND: Duration = Duration::from_secs(2);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A lab with a control plane, Berth's CRDs and RBAC installed, a Node object per node, a
/// BIRD router with a session configured per node, the `default` BgpConf, one BgpPeer per
/// node and the pool [`POOL`]; no Berth process runs yet.
pub struct Cluster {
    /// Dropped last (fields drop in order): processes in it die with it.
    pub cp: ControlPlane,
    pub router: Bird,
    pub nodes: usize,
    controller_kubeconfig: PathBuf,
    speaker_kubeconfig: PathBuf,
    pub lab: Lab,
}

impl Cluster {
    /// Builds it all; panics (with the logs) on any failure.
    pub fn start(label: &str, nodes: usize) -> Cluster {
        let mut lab = star(label, nodes);
        lab.add_namespace("cp").unwrap();
        lab.add_bridge("mgmt").unwrap();
        lab.attach("mgmt", ("cp", "eth0")).unwrap();
        lab.add_address("cp", "eth0", format!("{CP_ADDRESS}/24").parse().unwrap())
            .unwrap();
        for i in 1..=nodes {
            let node = format!("n{i}");
            lab.attach("mgmt", (&node, "mgmt")).unwrap();
            lab.add_address(
                &node,
                "mgmt",
                format!("10.99.0.{}/24", 10 + i).parse().unwrap(),
            )
            .unwrap();
        }
        let cp = ControlPlane::start(
            lab.netns("cp").unwrap(),
            ControlPlaneConfig::new(CP_ADDRESS.parse().unwrap()),
        )
        .unwrap_or_else(|e| panic!("control plane: {e}"));
        install(&cp);
        let router = Bird::start(lab.netns("r").unwrap(), &router_config(nodes)).unwrap();
        let mut objects = vec![format!(
            "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpConf\nmetadata: {{name: default}}\n\
             spec: {{as: {NODE_AS}}}\n"
        )];
        for i in 1..=nodes {
            objects.push(node_object(i));
            objects.push(peer_object(i));
        }
        objects.push(format!(
            "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {{name: pool}}\n\
             spec: {{address: \"{POOL}\"}}\n"
        ));
        objects.push(format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {APP_NS}}}\n"
        ));
        cp.apply(&objects.join("---\n")).unwrap();
        for i in 1..=nodes {
            let (_, n4, _, _) = link_addresses(i);
            let status = format!(
                r#"{{"status":{{"addresses":[{{"type":"InternalIP","address":"{n4}"}}],"conditions":[{{"type":"Ready","status":"True","reason":"KubeletReady","message":"test"}}]}}}}"#
            );
            cp.kubectl(&[
                "patch",
                "node",
                &format!("n{i}"),
                "--subresource=status",
                "--type=merge",
                "-p",
                &status,
            ])
            .unwrap();
        }
        let controller_kubeconfig = cp
            .service_account_kubeconfig("berth-system", "berth-controller")
            .unwrap();
        let speaker_kubeconfig = cp
            .service_account_kubeconfig("berth-system", "berth-speaker")
            .unwrap();
        Cluster {
            cp,
            router,
            nodes,
            controller_kubeconfig,
            speaker_kubeconfig,
            lab,
        }
    }

    /// Starts a `berth-controller` replica in `cp` with the controller's ServiceAccount and
    /// leader election on the shipped Lease; `replica` picks its identity and metrics port.
    pub fn controller(&self, replica: u16) -> Daemon {
        self.controller_with(replica, &[])
    }

    /// Same, with more arguments.
    pub fn controller_with(&self, replica: u16, extra: &[&str]) -> Daemon {
        let netns = self.lab.netns("cp").unwrap();
        let mut args = vec![
            "--identity".to_string(),
            format!("replica-{replica}"),
            "--lease-namespace".into(),
            "berth-system".into(),
            "--metrics-addr".into(),
            format!("127.0.0.1:{}", 9090 + replica),
            "--log-format".into(),
            "json".into(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_string()));
        Daemon::start(
            netns,
            "berth-controller",
            &format!("controller-{replica}"),
            args,
            &self.controller_kubeconfig,
        )
    }

    /// Starts `berth-speaker` on node `i` with the speaker's ServiceAccount.
    pub fn speaker(&self, i: usize) -> Daemon {
        let netns = self.lab.netns(&format!("n{i}")).unwrap();
        let dir = netns.dir().unwrap();
        let args = [
            "--node-name",
            &format!("n{i}"),
            "--admin-addr",
            SPEAKER_ADMIN,
            "--metrics-addr",
            SPEAKER_METRICS,
            "--drain-seconds",
            "0",
            "--log-format",
            "json",
            "--restart-marker",
            &dir.join("restart-marker").to_string_lossy(),
        ]
        .iter()
        .map(|a| (*a).to_string())
        .collect();
        Daemon::start(
            netns,
            "berth-speaker",
            "speaker",
            args,
            &self.speaker_kubeconfig,
        )
    }

    /// An object as JSON (`None` when it does not exist), read with the admin's client.
    pub fn get(&self, path: &str) -> Option<Value> {
        match self.cp.get(path) {
            Ok((200, body)) => Some(serde_json::from_str(&body).unwrap()),
            Ok((404, _)) => None,
            Ok((status, body)) => panic!("GET {path}: {status} {body}"),
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    /// Creates a LoadBalancer Service `name` in [`APP_NS`] the OpenELB way (its annotations,
    /// the pool named), with a ready endpoint on every node (an EndpointSlice of our own, as
    /// for a Service without selector); returns when the API server has it.
    pub fn create_service(&self, name: &str) -> Instant {
        let endpoints: Vec<String> = (1..=self.nodes)
            .map(|i| {
                format!(
                    "- addresses: [10.244.{i}.10]\n  nodeName: n{i}\n  conditions: {{ready: true}}\n"
                )
            })
            .collect();
        let text = format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  namespace: {APP_NS}\n  \
             name: {name}-1\n  labels: {{kubernetes.io/service-name: {name}, \
             endpointslice.kubernetes.io/managed-by: berth-test}}\naddressType: IPv4\n\
             ports: [{{port: 8080, protocol: TCP}}]\nendpoints:\n{}---\n\
             apiVersion: v1\nkind: Service\nmetadata:\n  namespace: {APP_NS}\n  name: {name}\n  \
             annotations:\n    lb.kubesphere.io/v1alpha1: openelb\n    \
             eip.openelb.kubesphere.io/v1alpha2: pool\nspec:\n  type: LoadBalancer\n  \
             externalTrafficPolicy: Cluster\n  ports: [{{port: 80, targetPort: 8080, protocol: TCP}}]\n",
            endpoints.concat()
        );
        self.cp.apply(&text).unwrap();
        Instant::now()
    }

    /// Deletes the Service `name` (without waiting for its finalizer).
    pub fn delete_service(&self, name: &str) {
        self.cp
            .kubectl(&["delete", "service", "-n", APP_NS, name, "--wait=false"])
            .unwrap();
    }

    /// The Service `name` as JSON, if it exists.
    pub fn service(&self, name: &str) -> Option<Value> {
        self.get(&format!("/api/v1/namespaces/{APP_NS}/services/{name}"))
    }

    /// The addresses in the Service's status.
    pub fn ingress(&self, name: &str) -> Vec<IpAddr> {
        self.service(name)
            .and_then(|s| s["status"]["loadBalancer"]["ingress"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|i| i["ip"].as_str()?.parse().ok())
            .collect()
    }

    /// Waits until the Service has an address; returns it and when it was first seen.
    pub fn wait_address(&self, name: &str, controllers: &mut [&mut Daemon]) -> (IpAddr, Instant) {
        let found = testbed::wait::until(&format!("an address for {name}"), TIMEOUT, || {
            Ok(self.ingress(name).first().map(|ip| (*ip, Instant::now())))
        });
        found.unwrap_or_else(|e| {
            let logs: Vec<String> = controllers.iter().map(|d| d.log_tail()).collect();
            panic!("{e}\n{:?}\n{}", self.service(name), logs.join("\n"))
        })
    }

    /// The pool's status as the controller wrote it.
    pub fn pool_status(&self) -> Value {
        self.get("/apis/network.kubesphere.io/v1alpha2/eips/pool")
            .map(|e| e["status"].clone())
            .unwrap_or(Value::Null)
    }

    /// The holder of the controller's Lease.
    pub fn leader(&self) -> Option<String> {
        self.get("/apis/coordination.k8s.io/v1/namespaces/berth-system/leases/berth-controller")?
            ["spec"]["holderIdentity"]
            .as_str()
            .map(str::to_string)
    }

    /// The Events about the Service `name`: `(reason, note)`.
    pub fn events_for(&self, name: &str) -> Vec<(String, String)> {
        let list = self
            .get(&format!(
                "/apis/events.k8s.io/v1/namespaces/{APP_NS}/events?fieldSelector=regarding.name%3D{name}"
            ))
            .unwrap_or(Value::Null);
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or("").to_string(),
                    e["note"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// Whether the router's kernel FIB holds `vip` via node `i` (its link).
    pub fn router_has(&self, vip: IpAddr, i: usize) -> bool {
        let prefix = IpNetwork::new(vip, if vip.is_ipv4() { 32 } else { 128 }).unwrap();
        let Some(route) = self.router_fib().route(prefix).cloned() else {
            return false;
        };
        let (_, n4, _, _) = link_addresses(i);
        route.next_hops.iter().any(|hop| hop.gateway == Some(n4))
    }

    fn router_fib(&self) -> testbed::Fib {
        use testbed::router::Router;
        self.router.fib().unwrap()
    }

    /// Waits until the router's FIB holds (`true`) or lacks (`false`) `vip` via node `i`.
    pub fn wait_router(&self, vip: IpAddr, i: usize, present: bool, speaker: &Daemon) -> Instant {
        testbed::wait::until(
            &format!(
                "{vip} via n{i} {}",
                if present { "in" } else { "gone from" }
            ),
            TIMEOUT,
            || Ok((self.router_has(vip, i) == present).then(Instant::now)),
        )
        .unwrap_or_else(|e| panic!("{e}\nFIB: {:?}\n{}", self.router_fib(), speaker.log_tail()))
    }
}

/// Applies the shipped CRDs (server-side, checking that kube-apiserver prints no warning),
/// the namespace and the RBAC, and waits until the CRDs are served.
fn install(cp: &ControlPlane) {
    let crds = repo().join("deploy/crds");
    let output = std::process::Command::new(cp.binary())
        .arg("kubectl")
        .arg("--kubeconfig")
        .arg(cp.admin_kubeconfig())
        .args(["apply", "--server-side", "-f"])
        .arg(&crds)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the API server refused deploy/crds: {stderr}"
    );
    assert!(
        !stderr.contains("Warning"),
        "applying deploy/crds printed warnings: {stderr}"
    );
    for name in ["eips", "bgpconfs", "bgppeers"] {
        cp.kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            &format!("crd/{name}.network.kubesphere.io"),
        ])
        .unwrap();
    }
    for file in ["deploy/namespace.yaml", "deploy/rbac"] {
        cp.kubectl(&[
            "apply",
            "--server-side",
            "-f",
            &repo().join(file).to_string_lossy(),
        ])
        .unwrap();
    }
}

fn node_object(i: usize) -> String {
    format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n{i}\n  labels: {{kubernetes.io/hostname: n{i}}}\n"
    )
}

/// Node `i`'s session to the router: one BgpPeer per node (each node has its own link).
fn peer_object(i: usize) -> String {
    let (r4, n4, _, _) = link_addresses(i);
    format!(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {{name: r-n{i}}}\n\
         spec:\n  conf: {{peerAs: {ROUTER_AS}, neighborAddress: \"{r4}\"}}\n  \
         transport: {{localAddress: \"{n4}\"}}\n  \
         timers: {{config: {{holdTime: \"9\", connectRetry: \"1\"}}}}\n  \
         nodeSelector: {{matchLabels: {{kubernetes.io/hostname: n{i}}}}}\n"
    )
}

/// A Berth daemon running in a lab namespace with a kubeconfig, its JSON log in the
/// namespace's runtime directory. Dropping it kills it.
pub struct Daemon {
    netns: Netns,
    binary: &'static str,
    args: Vec<String>,
    kubeconfig: PathBuf,
    log: PathBuf,
    process: Process,
}

impl Daemon {
    fn start(
        netns: &Netns,
        binary: &'static str,
        name: &str,
        args: Vec<String>,
        kubeconfig: &std::path::Path,
    ) -> Daemon {
        let log = netns.dir().unwrap().join(format!("{name}.log"));
        let process = spawn(netns, binary, &args, kubeconfig, &log);
        Daemon {
            netns: netns.clone(),
            binary,
            args,
            kubeconfig: kubeconfig.to_path_buf(),
            log,
            process,
        }
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        self.process.running()
    }

    /// Starts it again with the same arguments if it has exited (what the kubelet does for a
    /// pod's container); returns whether it had to.
    pub fn restart_if_exited(&mut self) -> bool {
        if self.process.running() {
            return false;
        }
        self.process = spawn(
            &self.netns,
            self.binary,
            &self.args,
            &self.kubeconfig,
            &self.log,
        );
        true
    }

    /// Starts it again (after [`Daemon::kill`] or [`Daemon::sigterm`]).
    pub fn start_again(&mut self) {
        assert!(!self.process.running(), "{} still runs", self.binary);
        self.process = spawn(
            &self.netns,
            self.binary,
            &self.args,
            &self.kubeconfig,
            &self.log,
        );
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// SIGTERM; returns how long it took to exit (panics if it has not within 10 s).
    pub fn sigterm(&mut self) -> Duration {
        let start = Instant::now();
        self.process.signal(libc::SIGTERM).unwrap();
        assert!(
            self.process.wait_exit(Duration::from_secs(10)),
            "{} still runs 10 s after SIGTERM\n{}",
            self.binary,
            self.log_tail()
        );
        start.elapsed()
    }

    /// Its whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "last lines of {}:\n{}",
            self.log.display(),
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }

    /// Waits until its log has a line containing `needle`.
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) {
        let found = testbed::wait::until(&format!("{needle:?} in the log"), timeout, || {
            Ok(self.log().contains(needle).then_some(()))
        });
        if let Err(e) = found {
            let state = if self.alive() { "running" } else { "exited" };
            panic!("{e} ({} {state})\n{}", self.binary, self.log_tail());
        }
    }

    /// Fails if the API server refused any of its requests (RBAC): least privilege must be
    /// enough.
    pub fn assert_no_forbidden(&self) {
        let log = self.log();
        assert!(
            !log.contains("403") && !log.contains("orbidden"),
            "{} was refused by the API server:\n{}",
            self.binary,
            self.log_tail()
        );
    }

    /// A GET on an HTTP endpoint the daemon serves in its namespace.
    pub fn http_get(&self, addr: &str, path: &str) -> Option<String> {
        let (addr, path) = (addr.to_string(), path.to_string());
        let answer = self
            .netns
            .run(move || speaker::http::get(&addr, &path, Duration::from_secs(2)))
            .ok()?;
        match answer {
            Ok((200, body)) => Some(body),
            _ => None,
        }
    }
}

fn spawn(
    netns: &Netns,
    binary: &str,
    args: &[String],
    kubeconfig: &std::path::Path,
    log: &std::path::Path,
) -> Process {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut command = netns.command(workspace_bin(binary));
    command
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAMESPACE", "berth-system")
        .env("RUST_LOG", "info")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log));
    Process::spawn(format!("{binary} in {}", netns.node()), command).unwrap()
}

/// The value of a counter or gauge in a Prometheus text page.
pub fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
