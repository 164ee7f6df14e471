//! The test's API server as the admin sees it: kubectl and GETs that fail loudly, the OpenELB
//! objects and CRDs as the tests compare them, and the guide's step 3b. Knows the OpenELB
//! kinds and the guide; nothing of the lab or of Berth's processes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testbed::k8s::ControlPlane;

/// How long anything in the cluster gets (a generous bound; the tests print what they saw).
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// OpenELB's kinds, by plural.
pub const KINDS: [&str; 3] = ["eips", "bgpconfs", "bgppeers"];
/// What a read of an object still stored as a version the CRD no longer lists fails with.
pub const UNDECODABLE: &str =
    "request to convert CR from an invalid group/version: network.kubesphere.io/v1alpha1";

/// `kubectl` as the admin with `input` on stdin, whatever its outcome.
pub fn kubectl_raw(cp: &ControlPlane, args: &[&str], input: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = std::process::Command::new(cp.binary())
        .arg("kubectl")
        .arg("--kubeconfig")
        .arg(cp.admin_kubeconfig())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(input.unwrap_or_default().as_bytes())
        .unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// `kubectl args...`, which must succeed without a warning; its stdout.
pub fn kubectl(cp: &ControlPlane, args: &[&str]) -> String {
    kubectl_in(cp, args, None)
}

/// The same with `input` on stdin.
pub fn kubectl_in(cp: &ControlPlane, args: &[&str], input: Option<&str>) -> String {
    let output = kubectl_raw(cp, args, input);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stderr.contains("Warning"),
        "kubectl {}: {}\n{stderr}",
        args.join(" "),
        output.status
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `kubectl args...`, which must fail; its stderr.
pub fn kubectl_refused(cp: &ControlPlane, args: &[&str]) -> String {
    let output = kubectl_raw(cp, args, None);
    assert!(
        !output.status.success(),
        "kubectl {} succeeded: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `GET path` as the admin, once: the status code and the body as JSON (or as a string).
pub fn get_once(cp: &ControlPlane, path: &str) -> (u16, Value) {
    let (status, body) = cp.get(path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, value)
}

/// Waits until `GET path` fails with [`UNDECODABLE`] (a plain 429 "storage is
/// (re)initializing" comes first, for a moment): 429 while the API server's cache of the kind
/// tries to start, 500 when the read goes to etcd. Fails on a 200.
pub fn assert_undecodable(cp: &ControlPlane, path: &str) {
    let mut last = (0, Value::Null);
    let found = testbed::wait::until(&format!("GET {path} to fail"), TIMEOUT, || {
        last = get_once(cp, path);
        assert_ne!(last.0, 200, "GET {path}: {}", last.1);
        Ok(last
            .1
            .to_string()
            .contains(UNDECODABLE)
            .then(|| last.clone()))
    });
    let (status, body) = found.unwrap_or_else(|e| panic!("{e}: {} {}", last.0, last.1));
    assert!(matches!(status, 429 | 500), "GET {path}: {status} {body}");
    println!("GET {path}: {status} {}", body["message"]);
}

/// `GET path` as the admin: the status code and the body as JSON (or as a string). A 429
/// ("storage is (re)initializing", for a moment after a CRD changes) is waited out.
pub fn get(cp: &ControlPlane, path: &str) -> (u16, Value) {
    let start = Instant::now();
    loop {
        let (status, value) = get_once(cp, path);
        if status != 429 || start.elapsed() > TIMEOUT {
            return (status, value);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET path`, which must answer 200.
pub fn get_ok(cp: &ControlPlane, path: &str) -> Value {
    match get(cp, path) {
        (200, value) => value,
        (status, value) => panic!("GET {path}: {status} {value}"),
    }
}

/// Every Eip, BgpConf and BgpPeer read as v1alpha2: `kind/name` → its uid and spec.
pub fn openelb_objects(cp: &ControlPlane) -> BTreeMap<String, Value> {
    let mut objects = BTreeMap::new();
    for kind in KINDS {
        let list = get_ok(cp, &format!("/apis/network.kubesphere.io/v1alpha2/{kind}"));
        for item in list["items"].as_array().unwrap() {
            let name = item["metadata"]["name"].as_str().unwrap();
            objects.insert(
                format!("{kind}/{name}"),
                json!({"uid": item["metadata"]["uid"], "spec": item["spec"]}),
            );
        }
    }
    objects
}

/// Fails with each object that differs.
pub fn assert_unchanged(before: &BTreeMap<String, Value>, after: &BTreeMap<String, Value>) {
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "objects appeared or disappeared"
    );
    let changed: Vec<String> = before
        .iter()
        .filter(|(key, value)| after[*key] != **value)
        .map(|(key, value)| format!("{key}:\n  before {value}\n  after  {}", after[key]))
        .collect();
    assert!(changed.is_empty(), "changed:\n{}", changed.join("\n"));
}

/// The `enabled` keys Berth's schema defaults to `false` (serde's default, the same meaning
/// as OpenELB's omitted Go `bool`), which the API server fills in when it reads an object
/// written without them: where `testbed/openelb/in-cluster.yaml`'s BgpPeer `router-n2`
/// leaves them out.
pub const DEFAULTED_ON_READ: [&str; 4] = [
    "/spec/ebgpMultihop/enabled",
    "/spec/gracefulRestart/enabled",
    "/spec/afiSafis/0/config/enabled",
    "/spec/afiSafis/0/mpGracefulRestart/config/enabled",
];

/// `objects` as they read under Berth's CRDs: `router-n2` with [`DEFAULTED_ON_READ`] set.
pub fn with_berth_defaults(objects: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    let mut expected = objects.clone();
    let peer = expected.get_mut("bgppeers/router-n2").unwrap();
    for pointer in DEFAULTED_ON_READ {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = peer.pointer_mut(parent).unwrap();
        assert!(parent.get(key).is_none(), "router-n2 has {pointer} already");
        parent[key] = Value::Bool(false);
    }
    expected
}

/// A CRD's version names, its storedVersions and its conversion strategy.
pub fn crd_versions(cp: &ControlPlane, kind: &str) -> (Vec<String>, Vec<String>, String) {
    let crd = get_ok(
        cp,
        &format!(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{kind}.network.kubesphere.io"
        ),
    );
    let names = |v: &Value, field: Option<&str>| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| field.map_or(x, |f| &x[f]).as_str().unwrap().to_string())
            .collect()
    };
    (
        names(&crd["spec"]["versions"], Some("name")),
        names(&crd["status"]["storedVersions"], None),
        crd["spec"]["conversion"]["strategy"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

pub fn wait_established(cp: &ControlPlane) {
    for kind in KINDS {
        kubectl(
            cp,
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=30s",
                &format!("crd/{kind}.network.kubesphere.io"),
            ],
        );
    }
}

/// Waits until `GET path` answers `status`: how the tests see that the API server serves a
/// CRD's new version set (it rebuilds a CRD's handlers a moment after the update).
pub fn wait_status(cp: &ControlPlane, path: &str, status: u16) {
    testbed::wait::until(&format!("GET {path} to answer {status}"), TIMEOUT, || {
        Ok((get(cp, path).0 == status).then_some(()))
    })
    .unwrap();
    // The handler for the new version set serves from a storage of its own, made on its
    // first request; give the watch that triggered the switch a moment to retire the old one.
    std::thread::sleep(Duration::from_millis(500));
}

/// The guide's step 3b for one kind: every object rewritten through v1alpha2 (so stored as
/// v1alpha2) without the managedFields entries recorded under v1alpha1. The guide's jq filter,
/// done in Rust:
/// `kubectl get KIND.v1alpha2.network.kubesphere.io -o json --show-managed-fields | jq
/// '.items[].metadata.managedFields |= (map(select(.apiVersion !=
/// "network.kubesphere.io/v1alpha1")) | if length == 0 then [{}] else . end)' | kubectl
/// replace -f -` (`[{}]`, not `[]`: an empty list would keep the stored entries).
pub fn rewrite_for_berth(cp: &ControlPlane, kind: &str) {
    let text = kubectl(
        cp,
        &[
            "get",
            &format!("{kind}.v1alpha2.network.kubesphere.io"),
            "-o",
            "json",
            "--show-managed-fields",
        ],
    );
    let mut list: Value = serde_json::from_str(&text).unwrap();
    let items = list["items"].as_array_mut().unwrap();
    if items.is_empty() {
        return;
    }
    for item in items {
        let kept: Vec<Value> = item["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["apiVersion"] != "network.kubesphere.io/v1alpha1")
            .cloned()
            .collect();
        item["metadata"]["managedFields"] = if kept.is_empty() {
            json!([{}])
        } else {
            Value::Array(kept)
        };
    }
    kubectl_in(cp, &["replace", "-f", "-"], Some(&list.to_string()));
}

/// The guide's step 3b, first half, for one kind: every object's status dropped (Berth's
/// controller and speakers write their own). Berth writes status by server-side apply, which
/// never removes what another field manager wrote: an address OpenELB's controller left in an
/// Eip's `status.used` would stay there for good.
pub fn clear_status(cp: &ControlPlane, kind: &str) {
    let resource = format!("{kind}.v1alpha2.network.kubesphere.io");
    let names = kubectl(
        cp,
        &["get", &resource, "-o", "jsonpath={.items[*].metadata.name}"],
    );
    for name in names.split_whitespace() {
        kubectl(
            cp,
            &[
                "patch",
                &resource,
                name,
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":null}"#,
            ],
        );
    }
}

/// The managers of an object whose managedFields entries are recorded under v1alpha1.
pub fn v1alpha1_managers(cp: &ControlPlane, kind: &str, name: &str) -> Vec<String> {
    let object = get_ok(
        cp,
        &format!("/apis/network.kubesphere.io/v1alpha2/{kind}/{name}"),
    );
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["apiVersion"] == "network.kubesphere.io/v1alpha1")
        .map(|entry| entry["manager"].as_str().unwrap_or("").to_string())
        .collect()
}

/// An Eip status written the way Berth's controller writes it: server-side apply of the
/// status subresource, field manager `berth-controller`.
pub fn apply_eip_status(cp: &ControlPlane, name: &str) -> Output {
    let status = format!(
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {{name: {name}}}\n\
         status: {{usage: 0, poolSize: 16, ready: true}}\n"
    );
    kubectl_raw(
        cp,
        &[
            "apply",
            "--server-side",
            "--subresource=status",
            "--field-manager=berth-controller",
            "-f",
            "-",
        ],
        Some(&status),
    )
}

/// The addresses in a Service's `status.loadBalancer.ingress`.
pub fn ingress(cp: &ControlPlane, namespace: &str, name: &str) -> Vec<IpAddr> {
    let service = get_ok(
        cp,
        &format!("/api/v1/namespaces/{namespace}/services/{name}"),
    );
    service["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["ip"].as_str()?.parse().ok())
        .collect()
}
