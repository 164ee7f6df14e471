//! Cluster mode (the default): a real Kubernetes control plane (etcd, kube-apiserver,
//! kube-controller-manager) runs in a namespace of the lab that every node reaches over a
//! management bridge. Berth is installed from `deploy/` as a user installs it, its daemons run
//! with their ServiceAccounts' tokens, and the person watching sees what `kubectl` shows.
//! Knows nothing about standalone mode's files.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::Value;
use testbed::incluster::{self, Daemon};
use testbed::k8s::{ControlPlane, ControlPlaneConfig};

use crate::console::{show, step};
use crate::routers::{self, Sockets};
use crate::topology::{self, CONTROL_PLANE, CONTROL_PLANE_ADDRESS, NODES};
use crate::{CLUSTER_YAML, Options, SERVICE_YAML, connections, signals};

/// The application's namespace and Service, as `service.yaml` names them.
const APP_NAMESPACE: &str = "web";
const SERVICE: &str = "demo";
/// The pool `cluster.yaml` defines and the Service asks for.
const POOL: &str = "demo-pool";

/// Runs the demo on a control plane; the lab and the control plane go when this returns.
pub fn run(options: &Options) -> Result<()> {
    let controller_bin = options.bin("berth-controller")?;
    let speaker_bin = options.bin("berth-speaker")?;

    step(
        "bringing up the tor-pair lab: tor1 (BIRD), tor2 (FRR), node1-3, client, and cp on a management bridge",
    );
    let mut clab = topology::up()?;
    topology::add_management(&mut clab)?;
    signals::check()?;
    topology::print_namespaces(&clab);

    step(
        "starting the Kubernetes control plane in cp (etcd, kube-apiserver, kube-controller-manager)",
    );
    let cp_ns = clab.lab().netns(CONTROL_PLANE)?;
    let cp = ControlPlane::start(
        cp_ns,
        ControlPlaneConfig::new(CONTROL_PLANE_ADDRESS.parse()?),
    )
    .context("start the control plane")?;
    println!(
        "  kube-apiserver ready at {} after {:.1} s",
        cp.server_url(),
        cp.ready_after().as_secs_f64()
    );
    signals::check()?;

    step(
        "installing Berth from deploy/ (CRDs, namespace berth-system, RBAC) and registering the nodes",
    );
    let install = incluster::install(&cp).context("install Berth")?;
    for (i, node) in NODES.iter().enumerate() {
        // As each node's kubelet would: the InternalIP on its link to tor1.
        let ip: IpAddr = format!("10.1.{}.2", i + 1).parse()?;
        incluster::add_node(&cp, node, ip, &BTreeMap::new())?;
    }
    show(
        "$ kubectl get nodes",
        &cp.kubectl(&["get", "nodes", "-o", "wide"])?,
    );
    signals::check()?;

    step(
        "starting berth-controller (in cp) and a berth-speaker on each node, on their ServiceAccount tokens",
    );
    let controller = Daemon::controller(cp_ns, &controller_bin, &install, 1, &[])?;
    let speakers = NODES
        .iter()
        .map(|node| {
            Daemon::speaker(
                clab.lab().netns(node)?,
                &speaker_bin,
                &install,
                node,
                1,
                &["--vip-interface", "lo"],
            )
            .map_err(anyhow::Error::from)
        })
        .collect::<Result<Vec<_>>>()?;
    println!("  logs: {}", controller.log_path().display());
    for speaker in &speakers {
        println!("        {}", speaker.log_path().display());
    }
    let responders = connections::responders(&clab)?;

    step("the cluster's BGP setup: BgpConf, the address pool, a BgpPeer per node and router");
    show(
        "$ kubectl apply -f testbed/demo/manifests/cluster.yaml",
        &cp.apply(CLUSTER_YAML).context("apply cluster.yaml")?,
    );
    step("waiting for the BGP sessions (each node peers with both routers, IPv4 and IPv6)");
    routers::wait_for_sessions(&clab)?;

    step("creating Service web/demo (no address yet; berth-controller picks one from demo-pool)");
    show(
        &format!("$ kubectl create namespace {APP_NAMESPACE}"),
        &cp.kubectl(&["create", "namespace", APP_NAMESPACE])?,
    );
    let created = Instant::now();
    show(
        "$ kubectl apply -f testbed/demo/manifests/service.yaml",
        &cp.apply(SERVICE_YAML).context("apply service.yaml")?,
    );
    let vip = signals::wait_for("an address for web/demo", || Ok(external_ip(&cp)))?;
    let addressed = created.elapsed();
    routers::wait_for_ecmp(&clab, vip)?;
    println!(
        "  address in status after {} ms, in both routers' FIBs via three nodes after {} ms",
        addressed.as_millis(),
        created.elapsed().as_millis()
    );
    show(
        &format!("$ kubectl get svc -n {APP_NAMESPACE}"),
        &cp.kubectl(&["get", "svc", "-n", APP_NAMESPACE])?,
    );
    // The statuses come a moment after the address: wait, so the tables show them.
    signals::wait_for("demo-pool's status to count web/demo", || {
        let eip = get(
            &cp,
            &format!("/apis/network.kubesphere.io/v1alpha2/eips/{POOL}"),
        )?;
        Ok(eip
            .is_some_and(|e| e["status"]["used"][vip.to_string()].is_string())
            .then_some(()))
    })?;
    show(
        "$ kubectl get eip,bgppeer",
        &cp.kubectl(&["get", "eip,bgppeer"])?,
    );
    show(
        &format!("$ kubectl get events -n {APP_NAMESPACE}"),
        &cp.kubectl(&["get", "events", "-n", APP_NAMESPACE])?,
    );

    step(&format!(
        "the routers' route for {vip}: one route, three next hops (ECMP)"
    ));
    routers::show_routes(&clab, vip)?;
    let sockets = Sockets::of(&clab)?;
    routers::show_sessions(&sockets, false)?;
    connections::show_spread(&clab, vip, options.connections)?;

    if options.keep {
        let client = clab.lab().netns("client")?.name().to_string();
        print_explore(&cp, &client, vip);
        signals::wait_for_signal();
    }
    step("tearing down");
    // Daemons first, then the control plane, then the lab.
    drop(responders);
    drop(speakers);
    drop(controller);
    drop(cp);
    drop(clab);
    Ok(())
}

/// The Service's first `status.loadBalancer.ingress` address, once it has one.
fn external_ip(cp: &ControlPlane) -> Option<IpAddr> {
    let svc = get(
        cp,
        &format!("/api/v1/namespaces/{APP_NAMESPACE}/services/{SERVICE}"),
    )
    .ok()??;
    svc["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()?
        .parse()
        .ok()
}

/// `GET path` as the admin: the object, or `None` if there is none (yet).
fn get(cp: &ControlPlane, path: &str) -> Result<Option<Value>> {
    match cp.get(path)? {
        (200, body) => Ok(Some(serde_json::from_str(&body)?)),
        (404, _) => Ok(None),
        (status, body) => anyhow::bail!("GET {path}: {status} {body}"),
    }
}

/// With `--keep`: how to use kubectl against the running control plane, and how to end it.
fn print_explore(cp: &ControlPlane, client: &str, vip: IpAddr) {
    let pid = std::process::id();
    println!(
        "\n==> the cluster keeps running (--keep). From another shell, as root:\n\n\
         \x20 # kubectl is built into the control plane's binary; the admin kubeconfig's server\n\
         \x20 # is a forwarder on {local} that lives as long as this berth-demo runs\n\
         \x20 alias kubectl='{bin} kubectl --kubeconfig {kubeconfig}'\n\
         \x20 kubectl get svc -n web\n\
         \x20 kubectl get eip,bgppeer -o yaml\n\
         \x20 kubectl get events -A\n\
         \x20 # delete the Service: its address returns to demo-pool, the routers drop the route\n\
         \x20 kubectl delete svc -n web demo\n\
         \x20 # a connection from the client (each node answers with its name)\n\
         \x20 ip netns exec {client} bash -c 'cat </dev/tcp/{vip}/80'; echo\n\n\
         To tear it all down: press Ctrl-C here, or run `kill {pid}`.",
        local = cp.local_url(),
        bin = cp.binary().display(),
        kubeconfig = cp.admin_kubeconfig().display(),
    );
}
