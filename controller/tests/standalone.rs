//! Standalone mode end to end on a temporary directory: the real `berth-controller` binary
//! watches manifests, writes allocations back into them, survives a broken manifest and a
//! restart without moving anything.
//!
//! Issue 14 ("Nothing lost, nothing moved"), standalone items, each with its scenario here:
//! 7 (vanished pool or Service keeps its addresses for the grace period), 8 (the older
//! allocation keeps a contested address, by `berth.io/allocated-at`), 10 and 11 (a wrong
//! `apiVersion` or one bad document is skipped and reported, the rest served), 12 (statuses
//! written into JSON, flow-style and indented documents parse back), 15 (duplicates reported,
//! the first wins; temporaries of a killed write removed at start).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use controller::metrics::Metrics;
use controller::standalone::run_once;
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

/// The documents of a file that parse (a test may leave a broken one in place on purpose).
fn docs(path: &Path) -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(path).expect("read");
    api::manifest::ManifestFile::split(path, &text)
        .documents
        .iter()
        .filter_map(|d| serde_yaml::from_str(&d.text).ok())
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

/// The controller, killed on drop, with its log in a file beside (not in) the directory.
struct Running {
    child: Child,
    log: PathBuf,
    _logs: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a log line holding every one of `parts`.
    fn wait_log(&self, parts: &[&str]) -> String {
        let mut found = String::new();
        wait_for(&format!("a log line with {parts:?}"), || {
            match self
                .log()
                .lines()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                Some(l) => {
                    found = l.to_string();
                    true
                }
                None => false,
            }
        });
        found
    }
}

fn start(dir: &Path) -> Running {
    start_with(dir, &["--vanish-grace-secs", "0"])
}

fn start_with(dir: &Path, args: &[&str]) -> Running {
    let logs = tempfile::tempdir().expect("tempdir");
    let log = logs.path().join("controller.log");
    let child = Command::new(env!("CARGO_BIN_EXE_berth-controller"))
        .args(["--state-dir"])
        .arg(dir)
        .args(["--metrics-addr", "", "--log-format", "text"])
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start berth-controller");
    Running {
        child,
        log,
        _logs: logs,
    }
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

    // A broken manifest beside changes nothing else; a Service renamed with its status keeps
    // the address (grace 0 here: the old name is released at once).
    let before = std::fs::read_to_string(&svcs).expect("read");
    write(
        d,
        "broken.yaml",
        "kind: Service\nmetadata:\n  name: [oops\n",
    );
    let broken_edit = before.replace("name: late", "name: later");
    write(d, "services.yaml", &broken_edit);
    proc.wait_log(&["manifest skipped", "broken.yaml"]);
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
    proc.wait_log(&["manifests read"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(std::fs::read_to_string(&svcs).expect("read"), snapshot);
    let out = proc.log();
    assert!(
        !out.contains("AddressAllocated") && !out.contains("status written"),
        "restart allocated or wrote: {out}"
    );
}

#[test]
fn a_broken_manifest_is_reported_with_file_and_line_and_the_rest_is_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(d, "pools.yaml", POOLS);
    let broken_doc = "kind: Service\nmetadata:\n  name: [oops\n";
    let broken = format!("{}---\n{broken_doc}", services_yaml(""));
    write(d, "services.yaml", &broken);
    let m = Metrics::default();
    let report = run_once(d, &ClassConfig::default(), &m).expect("served");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let p = &report.problems[0];
    assert!(p.file.ends_with("services.yaml"));
    let broken_line = broken
        .lines()
        .position(|l| l.contains("[oops"))
        .expect("line")
        + 1;
    assert!(
        (broken_line..=broken_line + 1).contains(&p.line),
        "reported line {} for {broken_line}",
        p.line
    );
    assert!(
        m.render().contains("berth_manifests_skipped 1"),
        "{}",
        m.render()
    );
    // The rest is served, and the broken document is left as the user wrote it.
    let svcs = d.join("services.yaml");
    assert_eq!(ingress_of(&svcs, "web"), ["192.0.2.2"]);
    assert!(
        std::fs::read_to_string(&svcs)
            .expect("read")
            .ends_with(&format!("---\n{broken_doc}"))
    );

    // An Eip failing validation is no pool, reported the same way.
    write(
        d,
        "bad-pool.yaml",
        "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: bad}\nspec: {address: not-an-address}\n",
    );
    let report = run_once(d, &ClassConfig::default(), &m).expect("served");
    let shown: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert!(
        shown
            .iter()
            .any(|p| p.contains("bad-pool.yaml:1") && p.contains("spec.address")),
        "{shown:?}"
    );
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

/// One address, so that a second Service waits.
const ONE_ADDRESS: &str = "\
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata:
  name: one
  annotations:
    eip.openelb.kubesphere.io/is-default-eip: \"true\"
spec:
  address: 192.0.2.7
";

fn ingress_in(dir: &Path, file: &str, name: &str) -> Vec<String> {
    let path = dir.join(file);
    if std::fs::read_to_string(&path).is_ok_and(|t| t.trim().is_empty()) {
        return Vec::new();
    }
    ingress_of(&path, name)
}

/// Issue 14 items 10 and 11: a wrong `apiVersion`, bad YAML, a type error and an invalid Eip
/// are each skipped and logged by file and line; everything else is served; a document that
/// breaks keeps its last good content (its address stays held).
#[test]
fn one_bad_document_is_skipped_and_the_rest_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let metallb = "apiVersion: metallb.io/v1beta1\nkind: Eip\nmetadata: {name: mlb}\nspec: {address: 198.51.100.0/29}\n";
    let invalid = "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: bad}\nspec: {address: not-an-address}\n";
    write(
        d,
        "pools.yaml",
        &format!("{POOLS}---\n{metallb}---\n{invalid}"),
    );
    let typed = "apiVersion: v1\nkind: Service\nmetadata: {name: typed, namespace: demo}\nspec:\n  type: LoadBalancer\n  ports:\n  - port: 99999999999\n";
    let services = format!(
        "{}---\nkind: Service\nmetadata:\n  name: [oops\n---\n{typed}",
        services_yaml("")
    );
    write(d, "services.yaml", &services);
    let line_of =
        |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).expect("line") + 1;
    let proc = start(d);
    let svcs = d.join("services.yaml");
    wait_for("the good Services", || ingress_of(&svcs, "dual").len() == 2);
    assert_eq!(ingress_of(&svcs, "web"), ["192.0.2.2"]);
    assert!(ingress_of(&svcs, "typed").is_empty());
    let pools = format!("{POOLS}---\n{metallb}---\n{invalid}");
    let oops = line_of(&services, "[oops");
    for (file, lines, what) in [
        (
            "pools.yaml",
            [line_of(&pools, "metallb.io")].to_vec(),
            "metallb.io/v1beta1",
        ),
        (
            "pools.yaml",
            // Validation is about the whole object: its first line.
            [line_of(&pools, "name: bad") - 2].to_vec(),
            "Eip bad",
        ),
        (
            "services.yaml",
            [oops, oops + 1].to_vec(),
            "manifest skipped",
        ),
        (
            "services.yaml",
            [line_of(&services, "99999999999")].to_vec(),
            "Service demo/typed",
        ),
    ] {
        proc.wait_log(&["manifest skipped", file, what]);
        let all = proc.log();
        let at = |l: &str, n: usize| {
            let field = format!("line={n}");
            l.ends_with(&field) || l.contains(&format!("{field} "))
        };
        assert!(
            all.lines()
                .any(|l| l.contains(what) && l.contains(file) && lines.iter().any(|n| at(l, *n))),
            "no log line for {what} at {file}:{lines:?}:\n{all}"
        );
    }
    assert!(
        !std::fs::read_to_string(&svcs)
            .expect("read")
            .contains("198.51.100.")
    );

    // web's document gets a type error: it keeps its address, which nobody else gets.
    let now = std::fs::read_to_string(&svcs).expect("read");
    let web_doc = now
        .split("---\n")
        .find(|doc| doc.contains("name: web"))
        .expect("web")
        .to_string();
    let broken_web = web_doc.replace("port: 80", "port: eighty");
    write(d, "services.yaml", &now.replace(&web_doc, &broken_web));
    proc.wait_log(&["Service demo/web", "last good content"]);
    write(d, "late.yaml", &service("late", "", ""));
    wait_for("the late Service", || {
        !ingress_of(&d.join("late.yaml"), "late").is_empty()
    });
    assert_eq!(ingress_of(&d.join("late.yaml"), "late"), ["192.0.2.3"]);
    assert!(
        std::fs::read_to_string(&svcs)
            .expect("read")
            .contains(&broken_web),
        "the broken document is left as written"
    );
}

/// Issue 14 item 12: statuses written into a JSON document, a flow-style one and one with
/// indented top-level keys parse back to the Service with its status; JSON stays JSON.
#[test]
fn statuses_written_into_json_flow_and_indented_documents_parse_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(d, "pools.yaml", POOLS);
    let docs = [
        (
            "json.yaml",
            "json",
            "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"json\", \"namespace\": \"demo\", \"annotations\": {\"lb.kubesphere.io/v1alpha1\": \"openelb\"}}, \"spec\": {\"type\": \"LoadBalancer\", \"ports\": [{\"port\": 80}]}}\n",
        ),
        (
            "flow.yaml",
            "flow",
            "{apiVersion: v1, kind: Service, metadata: {name: flow, namespace: demo, annotations: {lb.kubesphere.io/v1alpha1: openelb}}, spec: {type: LoadBalancer, ports: [{port: 80}]}}\n",
        ),
        (
            "indented.yaml",
            "indented",
            "  # indented keys\n  apiVersion: v1\n  kind: Service\n  metadata:\n    name: indented\n    namespace: demo\n    annotations:\n      lb.kubesphere.io/v1alpha1: openelb\n  spec:\n    type: LoadBalancer\n    ports:\n    - port: 80\n",
        ),
    ];
    for (file, _, text) in docs {
        write(d, file, text);
    }
    let proc = start(d);
    for (file, name, _) in docs {
        wait_for(name, || !ingress_in(d, file, name).is_empty());
        let text = std::fs::read_to_string(d.join(file)).expect("read");
        let v: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
        assert_eq!(v["spec"]["type"], "LoadBalancer", "{text}");
        assert_eq!(v["spec"]["ports"][0]["port"], 80, "{text}");
        assert!(
            v["metadata"]["annotations"]["berth.io/allocated-at"].is_string(),
            "{text}"
        );
    }
    let json = std::fs::read_to_string(d.join("json.yaml")).expect("read");
    assert!(
        serde_json::from_str::<serde_json::Value>(&json).is_ok(),
        "{json}"
    );
    assert!(
        std::fs::read_to_string(d.join("indented.yaml"))
            .expect("read")
            .starts_with("  # indented keys\n")
    );
    // The pool's status is written last (files in name order).
    wait_for("the pool's status", || {
        eip_usage(&d.join("pools.yaml"), "v4") == Some(3)
    });
    drop(proc);
    let again = run_once(d, &ClassConfig::default(), &Metrics::default()).expect("pass");
    assert!(again.files_written.is_empty(), "{:?}", again.files_written);
    assert!(again.problems.is_empty(), "{:?}", again.problems);
}

/// Issue 14 item 15: a second Eip or Service of one name is reported and skipped (the first
/// by file order wins); a temporary file left by a killed write is removed at start and never
/// read.
#[test]
fn duplicates_are_reported_and_stale_temporaries_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(d, "a-pools.yaml", POOLS);
    write(
        d,
        "b-pools.yaml",
        &POOLS.replace("192.0.2.0/29", "198.51.100.0/29"),
    );
    write(d, "a-web.yaml", &service("web", "", ""));
    let duplicate = service("web", "", "  loadBalancerIP: 192.0.2.6\n");
    write(d, "b-web.yaml", &duplicate);
    let stale = d.join(".a-web.yaml.berth-tmp-99999999");
    std::fs::write(
        &stale,
        "apiVersion: v1\nkind: Service\nmetadata: {name: ghost",
    )
    .expect("tmp");
    let proc = start(d);
    proc.wait_log(&["removed a temporary file", ".a-web.yaml.berth-tmp-99999999"]);
    assert!(!stale.exists());
    wait_for("web", || !ingress_in(d, "a-web.yaml", "web").is_empty());
    assert_eq!(ingress_in(d, "a-web.yaml", "web"), ["192.0.2.1"]);
    let eip = proc.wait_log(&["manifest skipped", "b-pools.yaml", "duplicate Eip v4"]);
    assert!(eip.contains("a-pools.yaml"), "names the first: {eip}");
    proc.wait_log(&[
        "manifest skipped",
        "b-web.yaml",
        "duplicate Service demo/web",
    ]);
    assert_eq!(
        std::fs::read_to_string(d.join("b-web.yaml")).expect("read"),
        duplicate,
        "the duplicate is never written"
    );
}

/// Issue 14 item 7: a pool whose file is moved away keeps its Services' addresses and hands
/// out nothing new; when it comes back nothing has moved.
#[test]
fn a_pool_moved_away_and_back_moves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let aside = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(d, "pools.yaml", POOLS);
    write(d, "services.yaml", &services_yaml(""));
    let proc = start_with(d, &["--vanish-grace-secs", "300"]);
    let svcs = d.join("services.yaml");
    wait_for("allocations", || ingress_of(&svcs, "dual").len() == 2);
    let held = std::fs::read_to_string(&svcs).expect("read");

    std::fs::rename(d.join("pools.yaml"), aside.path().join("pools.yaml")).expect("move away");
    proc.wait_log(&["pool vanished", "eip=v4"]);
    write(d, "late.yaml", &service("late", "", ""));
    proc.wait_log(&["Service demo/late", "AllocationFailed"]);
    assert!(ingress_in(d, "late.yaml", "late").is_empty());
    assert_eq!(std::fs::read_to_string(&svcs).expect("read"), held);

    std::fs::rename(aside.path().join("pools.yaml"), d.join("pools.yaml")).expect("move back");
    wait_for("late's address", || {
        !ingress_in(d, "late.yaml", "late").is_empty()
    });
    assert_eq!(ingress_in(d, "late.yaml", "late"), ["192.0.2.3"]);
    assert_eq!(std::fs::read_to_string(&svcs).expect("read"), held);
}

fn holder_and_waiter(d: &Path) -> String {
    write(d, "pool.yaml", ONE_ADDRESS);
    // Names chosen so that name order would favour the waiter.
    let holder = service("b-holder", "", "");
    write(d, "holder.yaml", &holder);
    wait_for_file(d, "holder.yaml", "b-holder");
    write(d, "waiter.yaml", &service("a-waiter", "", ""));
    holder
}

fn wait_for_file(d: &Path, file: &str, name: &str) {
    wait_for(name, || !ingress_in(d, file, name).is_empty());
}

/// Issue 14 items 7 and 8: a file rewritten in place (truncated, then written) within the
/// grace period keeps its address, even written back without its status; the waiting
/// Service never gets it.
#[test]
fn a_file_rewritten_in_place_keeps_its_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let proc = start_with(d, &["--vanish-grace-secs", "300"]);
    let holder = holder_and_waiter(d);
    assert_eq!(ingress_in(d, "holder.yaml", "b-holder"), ["192.0.2.7"]);
    proc.wait_log(&["Service demo/a-waiter", "AllocationFailed"]);

    std::fs::write(d.join("holder.yaml"), "").expect("truncate");
    proc.wait_log(&["Service vanished", "demo/b-holder"]);
    std::fs::write(d.join("holder.yaml"), &holder).expect("write in place");
    proc.wait_log(&["Service is back", "demo/b-holder"]);
    wait_for_file(d, "holder.yaml", "b-holder");
    assert_eq!(ingress_in(d, "holder.yaml", "b-holder"), ["192.0.2.7"]);
    assert!(ingress_in(d, "waiter.yaml", "a-waiter").is_empty());
}

/// Issue 14 item 8: without a grace period the waiting Service gets the address while the
/// holder's file is empty, but when the holder's file is back with its status the older
/// allocation keeps the address, whatever the names (name order would favour the waiter).
#[test]
fn the_older_allocation_keeps_a_contested_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let _proc = start(d);
    holder_and_waiter(d);
    let with_status = std::fs::read_to_string(d.join("holder.yaml")).expect("read");
    assert!(
        with_status.contains("berth.io/allocated-at"),
        "{with_status}"
    );

    std::fs::write(d.join("holder.yaml"), "").expect("truncate");
    wait_for_file(d, "waiter.yaml", "a-waiter");
    assert_eq!(ingress_in(d, "waiter.yaml", "a-waiter"), ["192.0.2.7"]);
    std::fs::write(d.join("holder.yaml"), &with_status).expect("write in place");
    wait_for("the waiter to lose the contest", || {
        ingress_in(d, "waiter.yaml", "a-waiter").is_empty()
    });
    assert_eq!(ingress_in(d, "holder.yaml", "b-holder"), ["192.0.2.7"]);
}

/// Issue 14 item 7: after the grace period a vanished Service's address is released.
#[test]
fn a_vanished_service_is_released_after_the_grace_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let proc = start_with(d, &["--vanish-grace-secs", "1"]);
    holder_and_waiter(d);
    proc.wait_log(&["Service demo/a-waiter", "AllocationFailed"]);
    std::fs::remove_file(d.join("holder.yaml")).expect("rm");
    proc.wait_log(&["Service vanished", "demo/b-holder"]);
    wait_for_file(d, "waiter.yaml", "a-waiter");
    assert_eq!(ingress_in(d, "waiter.yaml", "a-waiter"), ["192.0.2.7"]);
    proc.wait_log(&["grace period ended", "demo/b-holder"]);
}

/// Issue 15 (idle is idle): the directory is watched, not polled: with a poll period of an
/// hour a new Service is still allocated, and its file rewritten in place is seen.
#[test]
fn changes_are_seen_without_polling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(d, "pools.yaml", POOLS);
    let proc = start_with(d, &["--poll-ms", "3600000"]);
    proc.wait_log(&["manifests read"]);
    write(d, "web.yaml", &service("web", "", ""));
    wait_for("web", || !ingress_in(d, "web.yaml", "web").is_empty());
    // In place, not by rename: a new Service appended to the same file.
    let text = std::fs::read_to_string(d.join("web.yaml")).expect("read");
    std::fs::write(
        d.join("web.yaml"),
        format!("{text}---\n{}", service("api", "", "")),
    )
    .expect("append");
    wait_for("api", || !ingress_in(d, "web.yaml", "api").is_empty());
    assert_eq!(ingress_in(d, "web.yaml", "web"), ["192.0.2.1"]);
}

/// Issue 14 item 11: a Service whose document broke before it got an address is allocated
/// nothing (nothing could be written into it), so it holds back no address from others.
#[test]
fn a_broken_service_without_an_address_holds_none_back() {
    use controller::standalone::{Directory, Options};
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let stale = service("a-stale", "", "");
    write(d, "stale.yaml", &stale);
    let mut directory = Directory::open(
        d,
        Options {
            class: ClassConfig::default(),
            grace: Duration::ZERO,
        },
    );
    let m = Metrics::default();
    directory.pass(&m, Instant::now()).expect("no pool yet");
    write(d, "stale.yaml", &stale.replace("port: 80", "port: eighty"));
    let report = directory.pass(&m, Instant::now()).expect("broken");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    write(d, "pools.yaml", POOLS);
    write(d, "late.yaml", &service("late", "", ""));
    let report = directory.pass(&m, Instant::now()).expect("pools");
    assert_eq!(ingress_in(d, "late.yaml", "late"), ["192.0.2.1"]);
    assert!(
        !report
            .events
            .iter()
            .any(|e| format!("{:?}", e.subject).contains("a-stale")),
        "{:?}",
        report.events
    );
}
