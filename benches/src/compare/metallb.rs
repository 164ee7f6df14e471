//! MetalLB (v0.15.x, native BGP mode) in a comparison lab, run as processes: its CRDs from the
//! Go module cache (a scratch copy with the `maximum: 4294967295` lines dropped, which
//! kube-apiserver 1.37 refuses on `format: int32` fields: without that every BGPPeer is
//! refused), the namespace `metallb-system` with a Pod object per speaker (the speaker exits
//! unless `--pod-name` names an existing Pod), an IPAddressPool, a BGPAdvertisement and one
//! BGPPeer per node and router with MetalLB's defaults (hold time 90 s, no BFD: native mode
//! has none). Its controller runs with `--webhook-mode=disabled --disable-cert-rotation`.
//! Both run with a ServiceAccount bound to `cluster-admin` (MetalLB's RBAC manifests are not
//! used; that changes no timing). No MetalLB code or manifest is copied into this tree.

use std::path::Path;

use serde_json::json;
use testbed::incluster::Daemon;

use super::lab::{CompareLab, NODE_AS, ROUTER_AS, router_address};
use super::peers::read_line;
use super::product::{Product, Running};
use crate::incluster::objects::{NAMESPACE, NODES, POOL};

/// MetalLB's namespace.
pub const METALLB_NAMESPACE: &str = "metallb-system";

/// Installs MetalLB's CRDs and objects and starts its controller and speakers from `dir`
/// (a cache directory of `scripts/build-peers.sh`).
pub fn start(lab: &CompareLab, dir: &Path) -> testbed::Result<Running> {
    let crds = read_line(&dir.join("crd-dir"));
    let scratch = lab.clab.lab().dir().join("metallb-crds");
    let dropped = fixed_crds(Path::new(&crds), &scratch)?;
    lab.cp
        .kubectl(&["apply", "--server-side", "-f", &scratch.to_string_lossy()])?;
    for crd in ["ipaddresspools", "bgppeers", "bgpadvertisements"] {
        lab.cp.kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            &format!("crd/{crd}.metallb.io"),
        ])?;
    }
    lab.add_nodes()?;
    lab.cp.apply(&namespaces())?;
    let kubeconfig = lab
        .cp
        .service_account_kubeconfig(METALLB_NAMESPACE, "metallb")?;
    lab.cp.apply(&admin_binding())?;
    lab.cp.apply(&objects())?;
    let controller = Daemon::start(
        lab.netns("cp")?,
        &dir.join("controller"),
        args(&[
            "--namespace",
            METALLB_NAMESPACE,
            "--webhook-mode=disabled",
            "--disable-cert-rotation",
            "--port",
            "7480",
        ]),
        &kubeconfig,
        lab.netns("cp")?.dir()?.join("metallb-controller.log"),
    )?;
    let speakers = NODES
        .iter()
        .map(|node| {
            let netns = lab.netns(node)?;
            Daemon::start(
                netns,
                &dir.join("speaker"),
                args(&[
                    "--namespace",
                    METALLB_NAMESPACE,
                    "--node-name",
                    node,
                    "--pod-name",
                    &format!("speaker-{node}"),
                    "--port",
                    "7472",
                ]),
                &kubeconfig,
                netns.dir()?.join("metallb-speaker.log"),
            )
        })
        .collect::<testbed::Result<Vec<_>>>()?;
    Ok(Running {
        product: Product::MetalLb,
        version: read_line(&dir.join("version")),
        settings: json!({
            "mode": "native BGP (METALLB_BGP_TYPE unset), ECMP from every node with a ready endpoint",
            "objects": format!("IPAddressPool {POOL} (autoAssign), BGPAdvertisement of it, \
                                BGPPeer v1beta2 per node and router: myASN {NODE_AS}, \
                                peerASN {ROUTER_AS}, holdTime default (90 s, the routers' 9 s wins), \
                                no BFD (native mode has none)"),
            "controller": "controller --webhook-mode=disabled --disable-cert-rotation",
            "speaker": "speaker --node-name N --pod-name speaker-N (a Pod object, no kubelet), \
                        no memberlist (BGP only)",
            "crd_fixup": format!("{dropped} lines `maximum: 4294967295` dropped from a scratch \
                                  copy of the module's config/crd/bases (kube-apiserver 1.37 \
                                  refuses them on format int32)"),
            "crds_from": crds,
            "credentials": "a ServiceAccount bound to cluster-admin (not MetalLB's RBAC)",
            "binaries": dir.display().to_string(),
        }),
        controller: Some(controller),
        speakers,
    })
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| (*a).to_string()).collect()
}

/// Copies the CRDs of `from` into `to` without the `maximum: 4294967295` lines; returns how
/// many lines it dropped.
pub fn fixed_crds(from: &Path, to: &Path) -> testbed::Result<usize> {
    let io = |what: &str, e| testbed::Error::io(format!("{what} {}", from.display()), e);
    std::fs::create_dir_all(to).map_err(|e| io("create scratch for", e))?;
    let mut dropped = 0;
    let entries = std::fs::read_dir(from).map_err(|e| io("read", e))?;
    for entry in entries {
        let path = entry.map_err(|e| io("read", e))?.path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| io("read", e))?;
        let (kept, n) = drop_uint32_maximum(&text);
        dropped += n;
        let name = path.file_name().unwrap_or_default();
        std::fs::write(to.join(name), kept).map_err(|e| io("write", e))?;
    }
    Ok(dropped)
}

/// `text` without its `maximum: 4294967295` lines, and how many there were.
pub fn drop_uint32_maximum(text: &str) -> (String, usize) {
    let mut dropped = 0;
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            let hit = l.trim() == "maximum: 4294967295";
            dropped += usize::from(hit);
            !hit
        })
        .collect();
    (kept.join("\n") + "\n", dropped)
}

fn namespaces() -> String {
    let mut docs = vec![
        format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {METALLB_NAMESPACE}}}\n"),
        format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}}}\n"),
        format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {METALLB_NAMESPACE}}}\n"
        ),
    ];
    for node in NODES {
        docs.push(format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: speaker-{node}\n  namespace: {METALLB_NAMESPACE}\n  \
             labels: {{app: metallb, component: speaker}}\nspec:\n  nodeName: {node}\n  \
             containers: [{{name: speaker, image: quay.io/metallb/speaker:v0.15.3}}]\n"
        ));
    }
    docs.join("---\n")
}

fn admin_binding() -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n\
         metadata: {{name: metallb-bench-admin}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}\n\
         subjects: [{{kind: ServiceAccount, name: metallb, namespace: {METALLB_NAMESPACE}}}]\n"
    )
}

/// The pool, its BGP advertisement and a BGPPeer per node and router.
pub fn objects() -> String {
    let mut docs = vec![
        format!(
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\n\
             metadata: {{name: bench, namespace: {METALLB_NAMESPACE}}}\nspec: {{addresses: [\"{POOL}\"]}}\n"
        ),
        format!(
            "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\n\
             metadata: {{name: bench, namespace: {METALLB_NAMESPACE}}}\nspec: {{ipAddressPools: [bench]}}\n"
        ),
    ];
    for n in 1..=NODES.len() {
        for tor in 1..=2 {
            docs.push(format!(
                "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\n\
                 metadata: {{name: tor{tor}-node{n}, namespace: {METALLB_NAMESPACE}}}\nspec:\n  \
                 myASN: {NODE_AS}\n  peerASN: {ROUTER_AS}\n  peerAddress: \"{}\"\n  \
                 nodeSelectors: [{{matchLabels: {{kubernetes.io/hostname: node{n}}}}}]\n",
                router_address(n, tor)
            ));
        }
    }
    docs.join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_uint32_maximum_lines_are_dropped() {
        let text = "a:\n  format: int32\n  maximum: 4294967295\n  minimum: 0\nb:\n  maximum: 10\n";
        let (kept, n) = drop_uint32_maximum(text);
        assert_eq!(n, 1);
        assert!(!kept.contains("4294967295"));
        assert!(kept.contains("maximum: 10"));
    }

    #[test]
    fn one_peer_per_node_and_router() {
        let text = objects();
        assert_eq!(text.matches("kind: BGPPeer").count(), 6);
        assert!(text.contains("peerAddress: \"10.2.3.1\""));
    }
}
