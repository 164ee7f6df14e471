//! Issue 14 items 3, 6 and 14 through the real `berth-controller` binary in standalone mode:
//! an Eip added over the pool in use, named to sort first, is refused in its own status
//! (Valid=False, PoolOverlaps) and holds nothing; the Service keeps its address, also after a
//! restart. A loopback pool is refused (InvalidPool, a log line); a bgp pool with an
//! `interface` allocates, with a FieldsIgnored condition and a log line.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_yaml::Value;

const POOLS: &str = "\
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata:
  name: b-in-use
  annotations: {eip.openelb.kubesphere.io/is-default-eip: \"true\"}
spec:
  address: 10.20.0.0/24
---
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata:
  name: c-loopback
spec:
  address: 127.0.0.0/8
---
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata:
  name: d-iface
spec:
  address: 10.30.0.0/24
  protocol: bgp
  interface: eth0
";

fn service(name: &str, pool: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  namespace: ns\n  name: {name}\n  annotations:\n    \
         lb.kubesphere.io/v1alpha1: openelb\n    eip.openelb.kubesphere.io/v1alpha2: {pool}\nspec:\n  \
         type: LoadBalancer\n  ports: [{{port: 80, protocol: TCP}}]\n"
    )
}

const NEWCOMER: &str = "\
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata:
  name: a-newcomer
  annotations: {eip.openelb.kubesphere.io/is-default-eip: \"true\"}
spec:
  address: 10.20.0.0/16
";

struct Running {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, log: &Path) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_berth-controller"))
        .arg("--state-dir")
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
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("start berth-controller");
    Running {
        child,
        log: log.to_path_buf(),
    }
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|d| Value::deserialize(d).ok())
        .collect()
}

fn object(path: &Path, name: &str) -> Value {
    documents(path)
        .into_iter()
        .find(|d| d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or(Value::Null)
}

fn ingress(path: &Path, name: &str) -> Vec<String> {
    object(path, name)["status"]["loadBalancer"]["ingress"]
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|i| i["ip"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The Eip's `Valid` condition reason, if any.
fn valid_reason(path: &Path, name: &str) -> Option<String> {
    object(path, name)["status"]["conditions"]
        .as_sequence()?
        .iter()
        .find(|c| c["type"].as_str() == Some("Valid"))?["reason"]
        .as_str()
        .map(str::to_string)
}

fn wait_for(what: &str, run: &Running, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "timed out waiting for {what}; log:\n{}",
        std::fs::read_to_string(&run.log).unwrap_or_default()
    );
}

#[test]
fn an_overlapping_pool_added_later_moves_nothing_in_standalone_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let pools = d.join("pools.yaml");
    let svcs = d.join("services.yaml");
    std::fs::write(&pools, POOLS).expect("write");
    std::fs::write(
        &svcs,
        format!(
            "{}---\n{}",
            service("web", "b-in-use"),
            service("nic", "d-iface")
        ),
    )
    .expect("write");
    let log = logs.path().join("controller.log");
    let run = start(d, &log);
    wait_for("web's address", &run, || {
        ingress(&svcs, "web") == ["10.20.0.1"] && ingress(&svcs, "nic") == ["10.30.0.1"]
    });
    wait_for("the pools' statuses", &run, || {
        object(&pools, "b-in-use")["status"]["ready"].as_bool() == Some(true)
            && valid_reason(&pools, "c-loopback").as_deref() == Some("InvalidPool")
            && valid_reason(&pools, "d-iface").as_deref() == Some("FieldsIgnored")
    });
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.lines()
            .any(|l| l.contains("c-loopback") && l.contains("loopback addresses")),
        "no log line for the loopback pool:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("d-iface") && l.contains("spec.interface")),
        "no log line for the ignored interface:\n{text}"
    );

    std::fs::write(d.join("newcomer.yaml"), NEWCOMER).expect("write");
    let newcomer = d.join("newcomer.yaml");
    wait_for("the newcomer refused in its status", &run, || {
        valid_reason(&newcomer, "a-newcomer").as_deref() == Some("PoolOverlaps")
    });
    assert_eq!(ingress(&svcs, "web"), ["10.20.0.1"], "web's address moved");
    let used = &object(&pools, "b-in-use")["status"]["used"];
    assert_eq!(used["10.20.0.1"].as_str(), Some("ns/web"), "{used:?}");
    assert_eq!(
        object(&newcomer, "a-newcomer")["status"]["usage"].as_u64(),
        Some(0)
    );

    // A restart decides from the files alone: the pool in use stays the one kept.
    drop(run);
    let log2 = logs.path().join("controller-2.log");
    let run = start(d, &log2);
    let with_late = format!(
        "{}---\n{}",
        std::fs::read_to_string(&svcs).expect("read"),
        service("late", "b-in-use")
    );
    std::fs::write(&svcs, with_late).expect("write");
    wait_for("the late Service", &run, || {
        !ingress(&svcs, "late").is_empty()
    });
    assert_eq!(ingress(&svcs, "late"), ["10.20.0.2"]);
    assert_eq!(ingress(&svcs, "web"), ["10.20.0.1"], "web's address moved");
    assert_eq!(
        valid_reason(&newcomer, "a-newcomer").as_deref(),
        Some("PoolOverlaps")
    );
}
