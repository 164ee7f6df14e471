//! Berth in Kubernetes mode on a real control plane: the interop star (router `r` running
//! BIRD, nodes `n1..`, client `c`) plus a control-plane namespace `cp` on a management bridge
//! that every node reaches, with etcd, kube-apiserver and kube-controller-manager from the
//! testbed's `berth-controlplane`, and Berth installed from `deploy/` as a user would
//! ([`testbed::incluster`]): `berth-controller` runs in `cp` (like a control-plane node's
//! pod) and `berth-speaker` in each node namespace, with their ServiceAccounts' tokens. Reads
//! go through the admin's HTTPS client ([`ControlPlane::get`]), writes through `kubectl`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;
use serde_json::Value;
use testbed::Lab;
use testbed::incluster::{self, Daemon, Install};
use testbed::k8s::{ControlPlane, ControlPlaneConfig};
use testbed::router::bird::Bird;

use super::{NODE_AS, ROUTER_AS, link_addresses, router_config, star, workspace_bin};

/// The control plane's address on the management bridge.
pub const CP_ADDRESS: &str = "10.99.0.1";
/// The pool every test allocates from.
pub const POOL: &str = "10.0.0.96/28";
/// The namespace of the test's Services.
pub const APP_NS: &str = "shop";
/// How long anything in the cluster gets (a generous bound; tests report what they saw).
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// How long a daemon may take to exit on SIGTERM (issue 22: 2 s in every state).
pub const SIGTERM_BOUND: Duration = Duration::from_secs(2);

/// A lab with a control plane, Berth's CRDs and RBAC installed, a Node object per node, a
/// BIRD router with a session configured per node, the `default` BgpConf, one BgpPeer per
/// node and the pool [`POOL`]; no Berth process runs yet.
pub struct Cluster {
    /// Dropped first (fields drop in order), so no Berth process outlives its API server.
    pub cp: ControlPlane,
    pub router: Bird,
    pub nodes: usize,
    install: Install,
    pub lab: Lab,
}

impl Cluster {
    /// Builds it all; panics (with the logs) on any failure.
    pub fn start(label: &str, nodes: usize) -> Cluster {
        Self::start_with(label, nodes, |_| {})
    }

    /// [`Cluster::start`] with the control plane's settings changed by `configure` first
    /// (e.g. auditing on).
    pub fn start_with(
        label: &str,
        nodes: usize,
        configure: impl FnOnce(&mut ControlPlaneConfig),
    ) -> Cluster {
        let mut config = ControlPlaneConfig::new(CP_ADDRESS.parse().unwrap());
        configure(&mut config);
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
        let cp = ControlPlane::start(lab.netns("cp").unwrap(), config)
            .unwrap_or_else(|e| panic!("control plane: {e}"));
        let install = incluster::install(&cp).unwrap_or_else(|e| panic!("install: {e}"));
        let router = Bird::start(lab.netns("r").unwrap(), &router_config(nodes)).unwrap();
        let mut objects = vec![format!(
            "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpConf\nmetadata: {{name: default}}\n\
             spec: {{as: {NODE_AS}}}\n"
        )];
        for i in 1..=nodes {
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
            incluster::add_node(&cp, &format!("n{i}"), n4, &BTreeMap::new()).unwrap();
        }
        Cluster {
            cp,
            router,
            nodes,
            install,
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
        Daemon::controller(
            self.lab.netns("cp").unwrap(),
            &workspace_bin("berth-controller"),
            &self.install,
            replica,
            extra,
        )
        .unwrap()
    }

    /// Starts `berth-speaker` on node `i` with the speaker's ServiceAccount (no drain: SIGTERM
    /// closes the sessions at once).
    pub fn speaker(&self, i: usize) -> Daemon {
        self.speaker_with(i, &[])
    }

    /// Same, with more arguments.
    pub fn speaker_with(&self, i: usize, extra: &[&str]) -> Daemon {
        Daemon::speaker(
            self.lab.netns(&format!("n{i}")).unwrap(),
            &workspace_bin("berth-speaker"),
            &self.install,
            &format!("n{i}"),
            0,
            extra,
        )
        .unwrap()
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
        self.create_service_as(
            name,
            "  annotations:\n    lb.kubesphere.io/v1alpha1: openelb\n    \
             eip.openelb.kubesphere.io/v1alpha2: pool\n",
            "",
        )
    }

    /// Creates a LoadBalancer Service `name` of `spec.loadBalancerClass: class` asking for the
    /// pool, with a ready endpoint on every node.
    pub fn create_service_of_class(&self, name: &str, class: &str) -> Instant {
        self.create_service_as(
            name,
            "  annotations: {eip.openelb.kubesphere.io/v1alpha2: pool}\n",
            &format!("  loadBalancerClass: {class}\n"),
        )
    }

    /// A Service with `metadata_extra` and `spec_extra` (YAML lines, two-space indented) and
    /// its EndpointSlice.
    fn create_service_as(&self, name: &str, metadata_extra: &str, spec_extra: &str) -> Instant {
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
             apiVersion: v1\nkind: Service\nmetadata:\n  namespace: {APP_NS}\n  name: {name}\n\
             {metadata_extra}spec:\n  type: LoadBalancer\n{spec_extra}  \
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
        reasons_and_notes(&list)
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

/// What the tests check on every daemon beside the lab part's own API.
pub trait DaemonChecks {
    /// SIGTERM; returns how long it took to exit (panics past 10 s).
    fn stop(&mut self) -> Duration;
    /// Fails if the API server refused any of its requests.
    fn assert_no_forbidden(&self);
    /// A GET on an HTTP endpoint it serves in its namespace; the body of a 200 answer.
    fn http_get(&self, addr: &str, path: &str) -> Option<String>;
}

impl DaemonChecks for Daemon {
    fn stop(&mut self) -> Duration {
        self.sigterm(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn assert_no_forbidden(&self) {
        let refused = self.forbidden();
        assert!(
            refused.is_empty(),
            "the API server refused requests:\n{}",
            refused.join("\n")
        );
    }

    fn http_get(&self, addr: &str, path: &str) -> Option<String> {
        // A few tries: on a loaded 2-core machine one GET can miss its deadline.
        let mut last = String::new();
        for _ in 0..5 {
            let (a, p) = (addr.to_string(), path.to_string());
            match self
                .netns()
                .run(move || serving::get(&a, &p, Duration::from_secs(5)))
            {
                Ok(Ok((200, body))) => return Some(body),
                Ok(Ok((status, body))) => last = format!("HTTP {status}: {body}"),
                Ok(Err(e)) => last = e.to_string(),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        eprintln!(
            "GET {path} on {addr} in {} failed: {last}",
            self.netns().node()
        );
        None
    }
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

/// `(reason, note)` of each Event in an `events.k8s.io/v1` list.
pub fn reasons_and_notes(list: &Value) -> Vec<(String, String)> {
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
