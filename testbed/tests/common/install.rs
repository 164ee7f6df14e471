//! Installing manifests on a real control plane the way a user does, with kubectl (the
//! testbed's `berth-controlplane kubectl`, kustomize built in) and the Helm chart rendered by
//! Helm's own engine; every refusal and every warning is a failure. Knows nothing of Berth's
//! kinds beyond the files under `deploy/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use testbed::Lab;
use testbed::k8s::{ControlPlane, ControlPlaneConfig};

/// The control plane namespace's address on its bridge.
const CP_ADDRESS: &str = "10.251.0.1";
/// How long a CRD gets to become Established.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(20);

/// A control plane alone in a lab. Fields drop in order: the control plane before the lab.
pub struct Cluster {
    pub plane: ControlPlane,
    _lab: Lab,
}

/// A control plane without kube-controller-manager (nothing here needs one), on a bridge.
pub fn cluster(label: &str) -> Cluster {
    let mut lab = Lab::new(label).unwrap();
    lab.add_bridge("mgmt").unwrap();
    lab.add_namespace("cp").unwrap();
    lab.attach("mgmt", ("cp", "eth0")).unwrap();
    lab.add_address("cp", "eth0", format!("{CP_ADDRESS}/24").parse().unwrap())
        .unwrap();
    let mut config = ControlPlaneConfig::new(CP_ADDRESS.parse().unwrap());
    config.controller_manager = false;
    let plane = ControlPlane::start(lab.netns("cp").unwrap(), config).unwrap();
    Cluster { plane, _lab: lab }
}

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// What one kubectl run said.
pub struct Run {
    pub success: bool,
    pub stdout: String,
    /// Trimmed.
    pub stderr: String,
}

/// `kubectl args...` as the admin, with `input` on stdin; its own discovery cache (so
/// parallel tests and the user's `~/.kube` stay apart).
pub fn kubectl(plane: &ControlPlane, args: &[&str], input: Option<&str>) -> Run {
    let mut child = Command::new(plane.binary())
        .arg("kubectl")
        .arg("--kubeconfig")
        .arg(plane.admin_kubeconfig())
        .arg("--cache-dir")
        .arg(plane.dir().join("kubectl-cache"))
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    }
}

/// [`kubectl`] that must succeed without a word on stderr (a warning is a failure too);
/// returns stdout.
pub fn kubectl_ok(plane: &ControlPlane, what: &str, args: &[&str], input: Option<&str>) -> String {
    let run = kubectl(plane, args, input);
    assert!(
        run.success,
        "{what}: `kubectl {}` was refused:\n{}",
        args.join(" "),
        run.stderr
    );
    assert!(
        run.stderr.is_empty(),
        "{what}: `kubectl {}` warned:\n{}",
        args.join(" "),
        run.stderr
    );
    run.stdout
}

/// The objects of a multi-document YAML stream (empty documents dropped).
pub fn documents(yaml: &str, what: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{what}: {e}")))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// `objects` as one multi-document manifest, as kustomize and Helm write them. Not a `List`:
/// kubectl validates a `List` on the client (against the server's OpenAPI), not by the
/// server's field validation as it does each object of a stream.
pub fn stream(objects: &[Value]) -> String {
    let docs: Vec<String> = objects.iter().map(Value::to_string).collect();
    docs.join("\n---\n")
}

/// The object's `kind`.
pub fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

/// Applies `objects` the way a careful user does: Namespaces and CRDs first, then (once the
/// CRDs are Established) the rest; each phase with `--dry-run=server` first, then for real,
/// server-side under `manager`. Every object must be applied, without any warning.
pub fn install(plane: &ControlPlane, what: &str, manager: &str, objects: &[Value]) {
    let (first, rest): (Vec<Value>, Vec<Value>) = objects
        .iter()
        .cloned()
        .partition(|o| matches!(kind(o), "Namespace" | "CustomResourceDefinition"));
    let field_manager = format!("--field-manager={manager}");
    for phase in [first, rest] {
        if phase.is_empty() {
            continue;
        }
        let manifest = stream(&phase);
        let apply = ["apply", "--server-side", &field_manager, "-f", "-"];
        let dry_run = [&apply[..], &["--dry-run=server"]].concat();
        kubectl_ok(plane, what, &dry_run, Some(&manifest));
        let out = kubectl_ok(plane, what, &apply, Some(&manifest));
        let applied = out.lines().filter(|l| l.ends_with("serverside-applied"));
        assert_eq!(
            applied.count(),
            phase.len(),
            "{what}: not every object was applied:\n{out}"
        );
        let crds: Vec<&str> = phase
            .iter()
            .filter(|o| kind(o) == "CustomResourceDefinition")
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        established(plane, what, &crds);
    }
}

/// Waits until the CRDs `names` are Established, and fails if one has any condition but
/// Established and NamesAccepted, both True (e.g. NonStructuralSchema).
pub fn established(plane: &ControlPlane, what: &str, names: &[&str]) {
    if names.is_empty() {
        return;
    }
    let start = Instant::now();
    let args = [&["get", "crd"], names, &["-o", "json"]].concat();
    loop {
        let out: Value = serde_json::from_str(&kubectl_ok(plane, what, &args, None)).unwrap();
        let mut pending = Vec::new();
        // One name gives the object itself, several a List.
        let crds = match out.get("items") {
            Some(Value::Array(items)) => items.clone(),
            _ => vec![out],
        };
        for crd in &crds {
            let name = &crd["metadata"]["name"];
            let conditions = crd["status"]["conditions"].as_array().cloned();
            let conditions = conditions.unwrap_or_default();
            for c in &conditions {
                assert!(
                    matches!(c["type"].as_str(), Some("Established" | "NamesAccepted")),
                    "{what}: CRD {name} has condition {c}"
                );
            }
            let true_ = |t: &str| {
                conditions
                    .iter()
                    .any(|c| c["type"] == t && c["status"] == "True")
            };
            if !(true_("Established") && true_("NamesAccepted")) {
                pending.push(format!("{name}: {conditions:?}"));
            }
        }
        if pending.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < ESTABLISH_TIMEOUT,
            "{what}: CRDs not Established after {ESTABLISH_TIMEOUT:?}: {pending:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The installed ServiceAccounts `berth-speaker` and `berth-controller` in `namespace` are bound
/// to their roles: each may patch the status it writes (`kubectl auth can-i` as each says yes).
pub fn accounts_bound(plane: &ControlPlane, what: &str, namespace: &str) {
    for (account, resource) in [
        ("berth-speaker", "bgppeers.network.kubesphere.io"),
        ("berth-controller", "eips.network.kubesphere.io"),
    ] {
        let account = format!("system:serviceaccount:{namespace}:{account}");
        let args = ["auth", "can-i", "patch", resource, "--subresource=status"];
        let run = kubectl(plane, &[&args[..], &["--as", &account]].concat(), None);
        assert!(
            run.success && run.stdout.trim() == "yes",
            "{what}: {account} may not patch {resource} status: {} {}",
            run.stdout.trim(),
            run.stderr
        );
    }
}

/// Renders the chart as `helm template` does, with Helm's Go engine through helm-python-sdk
/// (as `deploy/check.py` does): the CRDs of `crds/` first, then the templates.
const RENDER_CHART: &str = r#"
import sys, yaml, helm_python as helm
chart_dir, release, namespace, values_file = sys.argv[1:5]
values = yaml.safe_load(open(values_file)) if values_file else None
with helm.Chart.load(chart_dir) as chart:
    files = chart.render(values, name=release, namespace=namespace, is_install=True)
    docs = [crd["data"] for crd in chart.crds]
docs += [text for name, text in sorted(files.items()) if not name.endswith("NOTES.txt")]
sys.stdout.write("\n---\n".join(docs))
"#;

/// The chart's objects as release `release` in `namespace`, with the values file `values`
/// (the chart's defaults without one). Fails, naming the script to run, when the virtualenv
/// `scripts/check-deploy.sh` makes is missing.
pub fn render_chart(release: &str, namespace: &str, values: Option<&Path>) -> Vec<Value> {
    let python = repo().join("target/deploy-check/venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/check-deploy.sh (./test.sh does) to install the chart \
         renderer",
        python.display()
    );
    let values = values.map(|v| v.display().to_string()).unwrap_or_default();
    let chart = repo().join("deploy/chart");
    let output = Command::new(&python)
        .args(["-c", RENDER_CHART])
        .arg(&chart)
        .args([release, namespace, &values])
        .output()
        .unwrap();
    let what = format!("helm template {release} deploy/chart -n {namespace} {values}");
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    documents(&String::from_utf8_lossy(&output.stdout), &what)
}
