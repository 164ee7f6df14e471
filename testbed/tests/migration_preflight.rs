//! The migration guide's pre-flight check for shared addresses (step 0b of
//! `docs/migrating-from-openelb.md`), run exactly as printed there with a real `kubectl`
//! against a real API server holding Services as OpenELB left them: every group of Services
//! asking for one address is listed, and the groups Berth would split (a port used twice,
//! traffic policies that differ) are marked CONFLICT — the same rules as the controller's
//! `ipam::sharing::may_share`, whose decisions on these cases `controller/tests/decisions.rs`
//! checks.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::install::{cluster, repo};

/// The command between the guide's `# BEGIN/END preflight-shared-addresses` lines.
fn preflight_command() -> String {
    let guide = std::fs::read_to_string(repo().join("docs/migrating-from-openelb.md")).unwrap();
    let begin = "# BEGIN preflight-shared-addresses\n";
    let start = guide
        .find(begin)
        .expect("the guide has the pre-flight block")
        + begin.len();
    let len = guide[start..]
        .find("# END preflight-shared-addresses")
        .expect("the block ends");
    guide[start..start + len].to_string()
}

/// A Service opted in the OpenELB way unless `opted_in` is false.
fn service(ns: &str, name: &str, opted_in: bool, extra: serde_json::Value) -> serde_json::Value {
    let mut annotations = serde_json::Map::new();
    if opted_in {
        annotations.insert("lb.kubesphere.io/v1alpha1".into(), "openelb".into());
    }
    let mut v = serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": {"type": "LoadBalancer", "selector": {"app": name},
                 "ports": [{"name": "p", "port": 80, "protocol": "TCP"}]}
    });
    merge(&mut v, extra);
    v
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn asks(ip: &str) -> serde_json::Value {
    serde_json::json!({"metadata": {"annotations": {"eip.openelb.kubesphere.io/v1alpha1": ip}}})
}

fn port(n: u16) -> serde_json::Value {
    serde_json::json!({"spec": {"ports": [{"name": "p", "port": n, "protocol": "TCP"}]}})
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it"]
fn preflight_lists_shared_groups_and_marks_what_berth_would_split() {
    let cluster = cluster("preflight");
    let plane = &cluster.plane;
    for ns in ["shop", "web"] {
        plane.kubectl(&["create", "namespace", ns]).unwrap();
    }
    let with = |mut v: serde_json::Value, extra: Vec<serde_json::Value>| {
        for e in extra {
            merge(&mut v, e);
        }
        v
    };
    let services = [
        // Shared on different ports, one by annotation, one by spec.loadBalancerIP: fine.
        with(
            service("shop", "checkout", true, asks("10.0.0.205")),
            vec![],
        ),
        with(
            service("shop", "checkout-admin", true, port(8443)),
            vec![serde_json::json!({"spec": {"loadBalancerIP": "10.0.0.205"}})],
        ),
        // Not opted in the OpenELB way: not OpenELB's, not listed.
        with(service("shop", "other", false, asks("10.0.0.205")), vec![]),
        // The same port twice.
        with(service("web", "a", true, asks("10.0.0.50")), vec![]),
        with(service("web", "b", true, asks("10.0.0.50")), vec![]),
        // Local and Cluster on one address.
        with(service("web", "c", true, asks("10.0.0.60")), vec![]),
        with(
            service("web", "d", true, asks("10.0.0.60")),
            vec![
                port(443),
                serde_json::json!({"spec": {"externalTrafficPolicy": "Local"}}),
            ],
        ),
        // Alone on its address, and one with no address asked for.
        with(service("web", "solo", true, asks("10.0.0.70")), vec![]),
        service("web", "any", true, serde_json::json!({})),
    ];
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": services});
    plane.apply(&list.to_string()).unwrap();

    // `kubectl` on PATH is the control plane's own kubectl, as the admin.
    let bin = plane.dir().join("preflight-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let kubectl = bin.join("kubectl");
    std::fs::write(
        &kubectl,
        format!(
            "#!/bin/sh\nexec '{}' kubectl --kubeconfig '{}' \"$@\"\n",
            plane.binary().display(),
            plane.admin_kubeconfig().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&kubectl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-ec", &preflight_command()])
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the pre-flight command failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "10.0.0.205 shop/checkout,shop/checkout-admin shared",
            "10.0.0.50 web/a,web/b CONFLICT: a port is used twice",
            "10.0.0.60 web/c,web/d CONFLICT: traffic policies differ",
        ],
        "{stdout}"
    );
}
