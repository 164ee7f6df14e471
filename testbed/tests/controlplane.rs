//! A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager from the
//! testbed's `berth-controlplane`) in a lab namespace: the forwarder and the admin kubeconfig
//! work for kubectl and kube clients in the root namespace; service-account kubeconfigs work
//! from another lab namespace, under RBAC; data survives restarts of the API server and of
//! etcd; the real EndpointSlice controller publishes Pods a test marks ready.
//!
//! Needs root and the binary (`BERTH_CONTROLPLANE_BIN`, or `scripts/build-controlplane.sh`,
//! which builds it on first use); without either the tests fail, they never skip. Each test
//! runs its own control plane (~300 MB) in its own namespaces, so they run in parallel.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Namespace, Node, Pod, PodSpec, Service, ServiceAccount, ServicePort,
    ServiceSpec,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use testbed::k8s::{Component, ControlPlane, ControlPlaneConfig};
use testbed::{Lab, Netns};

/// The control plane namespace's address on the management bridge.
const CP_ADDRESS: &str = "10.250.0.1";
/// A node namespace's address on it.
const NODE_ADDRESS: &str = "10.250.0.2";

/// A lab with a control plane in `cp` and a node namespace `n1`, both on bridge `mgmt`.
/// Fields drop in order: the control plane before the lab's namespaces.
struct Cluster {
    plane: ControlPlane,
    lab: Lab,
}

fn cluster(label: &str, configure: impl FnOnce(&mut ControlPlaneConfig)) -> Cluster {
    let mut lab = Lab::new(label).unwrap();
    lab.add_bridge("mgmt").unwrap();
    for (node, v4, v6) in [
        ("cp", CP_ADDRESS, "fd00:250::1"),
        ("n1", NODE_ADDRESS, "fd00:250::2"),
    ] {
        lab.add_namespace(node).unwrap();
        lab.attach("mgmt", (node, "eth0")).unwrap();
        lab.add_address(node, "eth0", format!("{v4}/24").parse().unwrap())
            .unwrap();
        lab.add_address(node, "eth0", format!("{v6}/64").parse().unwrap())
            .unwrap();
    }
    let mut config = ControlPlaneConfig::new(CP_ADDRESS.parse().unwrap());
    config.extra_addresses.push("fd00:250::1".parse().unwrap());
    configure(&mut config);
    let plane = ControlPlane::start(lab.netns("cp").unwrap(), config).unwrap();
    Cluster { plane, lab }
}

fn node(cluster: &Cluster) -> &Netns {
    cluster.lab.netns("n1").unwrap()
}

fn mib(plane: &mut ControlPlane, component: Component) -> String {
    plane.memory(component).map_or_else(
        || "not running".to_string(),
        |m| format!("{} MiB (peak {} MiB)", m.rss_kib / 1024, m.hwm_kib / 1024),
    )
}

/// Retries `probe` every 200 ms until it returns `Some`, for at most `timeout`.
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> F,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
async fn kubectl_and_kube_clients_reach_the_api_server_through_the_forwarder() {
    let mut cluster = cluster("cp-basic", |_| {});
    let plane = &mut cluster.plane;
    eprintln!(
        "control plane ready after {:?}; kube-apiserver {}, etcd {}",
        plane.ready_after(),
        mib(plane, Component::ApiServer),
        mib(plane, Component::Etcd)
    );
    assert_eq!(plane.get("/readyz").unwrap(), (200, "ok".to_string()));

    let version: serde_json::Value =
        serde_json::from_str(&plane.kubectl(&["version", "-o", "json"]).unwrap()).unwrap();
    assert_eq!(
        version["serverVersion"]["gitVersion"], "v1.37.2",
        "{version}"
    );
    assert_eq!(
        version["clientVersion"]["gitVersion"], "v1.37.2",
        "{version}"
    );

    let client = plane.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some("berth-lab".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let listed = plane.kubectl(&["get", "namespaces", "-o", "name"]).unwrap();
    assert!(
        listed.lines().any(|l| l == "namespace/berth-lab"),
        "{listed}"
    );
    let applied = plane
        .apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied, namespace: berth-lab}\ndata: {a: b}\n")
        .unwrap();
    assert_eq!(applied.trim(), "configmap/applied created");

    // The `kubernetes` Service has the first ClusterIP of each range (dual stack) and, through
    // the lease endpoint reconciler, the advertised address as its endpoint.
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let kubernetes = services.get("kubernetes").await.unwrap();
    let spec = kubernetes.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.1"));
    let slices: Api<EndpointSlice> = Api::namespaced(client, "default");
    let address = eventually(
        "the kubernetes Service's endpoint",
        Duration::from_secs(20),
        || {
            let slices = slices.clone();
            async move {
                let slice = slices.get_opt("kubernetes").await.ok()??;
                slice.endpoints?.first()?.addresses.first().cloned()
            }
        },
    )
    .await;
    assert_eq!(address, CP_ADDRESS);

    std::thread::sleep(Duration::from_secs(2));
    eprintln!(
        "after 2 s: kube-apiserver {}, etcd {}, kube-controller-manager {}",
        mib(plane, Component::ApiServer),
        mib(plane, Component::Etcd),
        mib(plane, Component::ControllerManager)
    );
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn a_service_account_kubeconfig_works_from_a_node_namespace_under_rbac() {
    let cluster = cluster("cp-rbac", |_| {});
    let plane = &cluster.plane;
    let kubeconfig = plane
        .service_account_kubeconfig("berth-system", "probe")
        .unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap();
    let binary = plane.binary().to_str().unwrap();
    let get_services = || {
        node(&cluster).output(
            binary,
            &[
                "kubectl",
                "--kubeconfig",
                kubeconfig,
                "get",
                "services",
                "-A",
                "-o",
                "name",
            ],
        )
    };

    // Authenticated (403, not 401) but not authorised: no binding yet.
    let err = get_services().unwrap_err().to_string();
    assert!(
        err.contains(
            r#"User "system:serviceaccount:berth-system:probe" cannot list resource "services""#
        ),
        "{err}"
    );

    plane
        .kubectl(&[
            "create",
            "clusterrolebinding",
            "probe-view",
            "--clusterrole=view",
            "--serviceaccount=berth-system:probe",
        ])
        .unwrap();
    let listed = testbed::wait::until("RBAC to allow the binding", Duration::from_secs(15), || {
        get_services().map(Some)
    })
    .unwrap();
    assert!(
        listed.lines().any(|l| l == "service/kubernetes"),
        "{listed}"
    );

    // Still only `view`: it cannot create anything.
    let err = node(&cluster)
        .output(
            binary,
            &[
                "kubectl",
                "--kubeconfig",
                kubeconfig,
                "create",
                "namespace",
                "nope",
            ],
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("forbidden"), "{err}");

    // The same account through the forwarder, from the root namespace.
    let local = plane
        .service_account_kubeconfig_local("berth-system", "probe")
        .unwrap();
    let output = std::process::Command::new(plane.binary())
        .arg("kubectl")
        .arg("--kubeconfig")
        .arg(&local)
        .args(["get", "services", "-n", "default", "-o", "name"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "service/kubernetes"
    );
}

#[tokio::test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
async fn data_survives_restarts_of_the_api_server_and_of_etcd() {
    let mut cluster = cluster("cp-restart", |config| config.controller_manager = false);
    let plane = &mut cluster.plane;
    let namespaces: Api<Namespace> = Api::all(plane.client().await.unwrap());
    plane.kubectl(&["create", "namespace", "survivor"]).unwrap();

    // A stopped API server refuses connections, through the forwarder too.
    plane.stop_apiserver();
    assert!(plane.pid(Component::ApiServer).is_none());
    assert!(plane.get("/readyz").is_err());
    let refused = Instant::now();
    let err = plane
        .kubectl(&["get", "namespace", "survivor"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("connection refused"), "{err}");
    assert!(
        refused.elapsed() < Duration::from_secs(10),
        "{:?}",
        refused.elapsed()
    );
    assert!(namespaces.get("survivor").await.is_err());

    let restart = Instant::now();
    plane.start_apiserver().unwrap();
    eprintln!(
        "kube-apiserver ready {:?} after its restart",
        restart.elapsed()
    );
    plane.kubectl(&["get", "namespace", "survivor"]).unwrap();
    // A client made before the outage works again.
    eventually(
        "the old client to work again",
        Duration::from_secs(10),
        || {
            let namespaces = namespaces.clone();
            async move { namespaces.get("survivor").await.ok() }
        },
    )
    .await;

    // Without etcd, writes fail (reads may still come from the API server's cache) and
    // /readyz does not answer ok.
    plane.stop_component(Component::Etcd);
    let err = plane
        .kubectl(&["create", "namespace", "lost", "--request-timeout=5s"])
        .unwrap_err();
    eprintln!("while etcd is stopped: {err}");
    // The API server notices on its next etcd health check.
    testbed::wait::until(
        "/readyz to stop answering ok",
        Duration::from_secs(30),
        || Ok((!matches!(plane.get("/readyz"), Ok((200, _)))).then_some(())),
    )
    .unwrap();

    let restart = Instant::now();
    plane.start_component(Component::Etcd).unwrap();
    plane.wait_ready().unwrap();
    eprintln!(
        "kube-apiserver ready {:?} after etcd's restart",
        restart.elapsed()
    );
    plane
        .kubectl(&["create", "namespace", "after-etcd"])
        .unwrap();
    let names = plane.kubectl(&["get", "namespaces", "-o", "name"]).unwrap();
    assert!(names.lines().any(|l| l == "namespace/survivor"), "{names}");
}

#[tokio::test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
async fn the_endpointslice_controller_publishes_a_ready_pod() {
    let mut cluster = cluster("cp-slices", |_| {});
    let client = cluster.plane.client().await.unwrap();
    let params = PostParams::default();
    let meta = |name: &str| ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    };

    // A Node object; no kubelet stands behind it.
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(
            &params,
            &Node {
                metadata: meta("n1"),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    services
        .create(
            &params,
            &Service {
                metadata: meta("web"),
                spec: Some(ServiceSpec {
                    selector: Some(labels.clone()),
                    ports: Some(vec![ServicePort {
                        port: 80,
                        target_port: Some(IntOrString::Int(8080)),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    // The ServiceAccount admission plugin refuses Pods until the namespace's `default`
    // account exists, which the serviceaccount controller makes.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    eventually(
        "the default ServiceAccount",
        Duration::from_secs(30),
        || {
            let accounts = accounts.clone();
            async move { accounts.get_opt("default").await.ok().flatten() }
        },
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(
        &params,
        &Pod {
            metadata: ObjectMeta {
                labels: Some(labels),
                ..meta("web-1")
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                containers: vec![Container {
                    name: "web".into(),
                    image: Some("registry.invalid/web:1".into()),
                    ports: Some(vec![ContainerPort {
                        container_port: 8080,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // What the kubelet would report once the container runs.
    let status = serde_json::json!({
        "status": {
            "phase": "Running",
            "hostIP": NODE_ADDRESS,
            "podIP": "10.244.1.5",
            "podIPs": [{ "ip": "10.244.1.5" }],
            "conditions": [
                { "type": "PodScheduled", "status": "True" },
                { "type": "Initialized", "status": "True" },
                { "type": "ContainersReady", "status": "True" },
                { "type": "Ready", "status": "True" },
            ],
        }
    });
    pods.patch_status("web-1", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();

    let slices: Api<EndpointSlice> = Api::namespaced(client, "default");
    let list = ListParams::default().labels("kubernetes.io/service-name=web");
    let slice = eventually(
        "an EndpointSlice with the ready Pod",
        Duration::from_secs(30),
        || {
            let (slices, list) = (slices.clone(), list.clone());
            async move {
                slices
                    .list(&list)
                    .await
                    .ok()?
                    .items
                    .into_iter()
                    .find(|slice| {
                        slice.endpoints.iter().flatten().any(|e| {
                            e.addresses == ["10.244.1.5"]
                                && e.conditions.as_ref().and_then(|c| c.ready) == Some(true)
                        })
                    })
            }
        },
    )
    .await;
    assert_eq!(slice.address_type, "IPv4");
    let endpoints = slice.endpoints.unwrap_or_default();
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    let endpoint = &endpoints[0];
    assert_eq!(endpoint.node_name.as_deref(), Some("n1"));
    assert_eq!(
        endpoint.target_ref.as_ref().and_then(|r| r.name.as_deref()),
        Some("web-1")
    );
    let ports = slice.ports.unwrap_or_default();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].port, Some(8080));
    eprintln!(
        "kube-controller-manager {}",
        mib(&mut cluster.plane, Component::ControllerManager)
    );
}
