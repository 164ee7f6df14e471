//! Standalone mode end to end on a temporary directory: the real `berth-controller` binary
//! watches manifests, writes allocations back into them, survives a broken manifest and a
//! restart without moving anything.

use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use controller::metrics::Metrics;
use controller::standalone::{CycleError, run_once};
use controller::view::ClassConfig;

const POOLS: &str = "\
# Two pools, OpenELB style.
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata:
  name: v4
  annotations:
    eip.openelb.kubesphere.io/is-default-eip: \"true\"
spec:
  address: 192.0.2.0/29
---
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata:
  name: v6
  annotations:
    eip.openelb.kubesphere.io/is-default-eip: \"true\"
spec:
  address: 2001:db8::10-2001:db8::1f
";

fn service(name: &str, extra_annotations: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: demo
  annotations:
    lb.kubesphere.io/v1alpha1: openelb
{extra_annotations}spec:
  type: LoadBalancer # keep this comment
  ports:
  - port: 80
    protocol: TCP
{extra_spec}"
    )
}

fn services_yaml(extra: &str) -> String {
    let mut s = String::from("# Services of the demo.\n");
    s.push_str(&service("web", "", ""));
    s.push_str("---\n");
    s.push_str(&service(
        "fixed",
        "    eip.openelb.kubesphere.io/v1alpha1: 192.0.2.5\n",
        "",
    ));
    s.push_str("---\n");
    s.push_str(&service("dual", "", "  ipFamilyPolicy: RequireDualStack\n"));
    s.push_str(extra);
    s
}

fn write(dir: &Path, name: &str, text: &str) {
    // Replace atomically, like an editor or `kubectl`-style tool would, so the controller never
    // reads half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

fn docs(path: &Path) -> Vec<serde_yaml::Value> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(path).expect("read");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::Value::deserialize(d).expect("yaml"))
        .collect()
}

fn ingress_of(path: &Path, name: &str) -> Vec<String> {
    docs(path)
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .and_then(|d| {
            d["status"]["loadBalancer"]["ingress"]
                .as_sequence()
                .cloned()
        })
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i["ip"].as_str().map(str::to_string))
        .collect()
}

fn eip_usage(path: &Path, name: &str) -> Option<u64> {
    docs(path)
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .and_then(|d| d["status"]["usage"].as_u64())
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path) -> Running {
    Running(
        Command::new(env!("CARGO_BIN_EXE_berth-controller"))
            .args(["--state-dir"])
            .arg(dir)
            .args([
                "--poll-ms",
                "50",
                "--metrics-addr",
                "",
                "--log-format",
                "text",
            ])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start berth-controller"),
    )
}

#[test]
fn binary_allocates_watches_and_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(d, "pools.yaml", POOLS);
    write(d, "services.yaml", &services_yaml(""));
    write(
        d,
        "peer.yaml",
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {name: p}\nspec: {conf: {peerAs: 65000, neighborAddress: 10.0.0.1}}\n",
    );
    let svcs = d.join("services.yaml");
    let pools = d.join("pools.yaml");

    let mut proc = start(d);
    wait_for("first allocations", || ingress_of(&svcs, "dual").len() == 2);
    // Without creationTimestamp, Services are served in namespace/name order.
    assert_eq!(ingress_of(&svcs, "dual"), ["192.0.2.1", "2001:db8::10"]);
    assert_eq!(ingress_of(&svcs, "fixed"), ["192.0.2.5"]);
    assert_eq!(ingress_of(&svcs, "web"), ["192.0.2.2"]);
    wait_for("eip status", || eip_usage(&pools, "v4") == Some(3));
    assert_eq!(eip_usage(&pools, "v6"), Some(1));
    let text = std::fs::read_to_string(&svcs).expect("read");
    assert!(text.starts_with("# Services of the demo.\n"), "{text}");
    assert!(
        text.contains("type: LoadBalancer # keep this comment"),
        "{text}"
    );
    assert!(
        std::fs::read_to_string(d.join("peer.yaml"))
            .expect("peer")
            .ends_with("10.0.0.1}}\n"),
        "unrelated manifest rewritten"
    );

    // A new Service appears in the watched file.
    let with_new = format!(
        "{}---\n{}",
        std::fs::read_to_string(&svcs).expect("read"),
        service("late", "", "")
    );
    write(d, "services.yaml", &with_new);
    wait_for("the new Service", || {
        ingress_of(&svcs, "late") == ["192.0.2.3"]
    });

    // A broken manifest changes nothing.
    let before = std::fs::read_to_string(&svcs).expect("read");
    write(
        d,
        "broken.yaml",
        "kind: Service\nmetadata:\n  name: [oops\n",
    );
    let broken_edit = before.replace("name: late", "name: later");
    write(d, "services.yaml", &broken_edit);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(std::fs::read_to_string(&svcs).expect("read"), broken_edit);
    assert!(
        ingress_of(&svcs, "later") == ["192.0.2.3"],
        "status kept as written"
    );
    std::fs::remove_file(d.join("broken.yaml")).expect("rm");

    // Removing a Service releases its address.
    let without_web: Vec<&str> = broken_edit
        .split("---\n")
        .filter(|doc| !doc.contains("name: web"))
        .collect();
    write(d, "services.yaml", &without_web.join("---\n"));
    wait_for("release", || eip_usage(&pools, "v4") == Some(3));

    // A Service that stops being a LoadBalancer is released and its status cleared.
    let now = std::fs::read_to_string(&svcs).expect("read");
    let fixed_doc = now
        .split("---\n")
        .find(|doc| doc.contains("name: fixed"))
        .expect("fixed")
        .to_string();
    let as_cluster_ip = fixed_doc.replace("type: LoadBalancer", "type: ClusterIP");
    write(d, "services.yaml", &now.replace(&fixed_doc, &as_cluster_ip));
    // Pool status and Service status live in different files, written one after the other.
    wait_for("release of a ClusterIP", || {
        eip_usage(&pools, "v4") == Some(2) && ingress_of(&svcs, "fixed").is_empty()
    });

    // Restart: nothing moves and nothing is rewritten.
    drop(proc);
    let snapshot = std::fs::read_to_string(&svcs).expect("read");
    proc = start(d);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(std::fs::read_to_string(&svcs).expect("read"), snapshot);
    let mut out = String::new();
    let mut child = proc.0.stdout.take().expect("stdout");
    drop(proc);
    child.read_to_string(&mut out).expect("log");
    assert!(
        !out.contains("AddressAllocated"),
        "restart allocated: {out}"
    );
}

#[test]
fn broken_manifest_is_reported_with_file_and_line_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(d, "pools.yaml", POOLS);
    let broken = format!(
        "{}---\nkind: Service\nmetadata:\n  name: [oops\n",
        services_yaml("")
    );
    write(d, "services.yaml", &broken);
    let err = run_once(d, &ClassConfig::default(), &Metrics::default()).expect_err("broken");
    let CycleError::Manifest(m) = &err else {
        panic!("unexpected error {err}");
    };
    assert!(m.file.ends_with("services.yaml"));
    let broken_line = broken
        .lines()
        .position(|l| l.contains("[oops"))
        .expect("line")
        + 1;
    assert!(
        (broken_line..=broken_line + 1).contains(&m.line),
        "reported line {} for {broken_line}",
        m.line
    );
    assert_eq!(
        std::fs::read_to_string(d.join("services.yaml")).expect("read"),
        broken
    );
    assert_eq!(
        std::fs::read_to_string(d.join("pools.yaml")).expect("read"),
        POOLS
    );

    // An Eip failing validation is refused the same way.
    write(d, "services.yaml", &services_yaml(""));
    write(
        d,
        "bad-pool.yaml",
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: bad}\nspec: {address: 10.0.0.9-10.0.0.1}\n",
    );
    let err = run_once(d, &ClassConfig::default(), &Metrics::default()).expect_err("bad pool");
    assert!(err.to_string().contains("bad-pool.yaml:1"), "{err}");
    assert!(err.to_string().contains("spec.address"), "{err}");
}

#[test]
fn second_pass_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(d, "pools.yaml", POOLS);
    write(d, "services.yaml", &services_yaml(""));
    let m = Metrics::default();
    let first = run_once(d, &ClassConfig::default(), &m).expect("first");
    assert_eq!(first.files_written.len(), 2);
    let second = run_once(d, &ClassConfig::default(), &m).expect("second");
    assert!(
        second.files_written.is_empty(),
        "{:?}",
        second.files_written
    );
    assert!(m.render().contains("berth_pool_usage{pool=\"v4\"} 3"));
}
