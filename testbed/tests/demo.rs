//! The quick start's demo (`./demo.sh` runs `berth-demo`), run non-interactively in both
//! modes: by default on a real Kubernetes control plane (kubectl shows the Service's
//! EXTERNAL-IP), and with `--standalone` over manifest files. Each brings the tor-pair lab up
//! with the real controller and speakers, prints both routers' three-way route and the spread
//! of the client's connections over all three nodes, exits 0 and leaves no namespace behind.
//!
//! Needs root. The Berth binaries come from the same target directory as this test (`cargo
//! test --workspace` builds them; alone: `cargo build -p speaker -p controller --bins`); the
//! control plane from `BERTH_CONTROLPLANE_BIN` or `scripts/build-controlplane.sh` (`./test.sh`
//! builds it).

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

use std::path::Path;
use std::process::Command;

/// The target directory's profile folder (`target/debug`), where the workspace binaries are.
fn bin_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// Namespaces whose name says process `pid` created them.
fn namespaces_of(pid: u32) -> Vec<String> {
    let prefix = format!("bt-{pid}-");
    std::fs::read_dir("/run/netns")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `berth-demo --connections 150 args...`, checks what both modes show (the spread
/// table with a fair share per node, both routers' three next hops, the teardown, no
/// namespace left) and returns its standard output.
fn run_demo(args: &[&str]) -> String {
    testbed::lab::require_root().unwrap();
    for bin in ["berth-speaker", "berth-controller", "berthctl"] {
        assert!(
            bin_dir().join(bin).is_file(),
            "{bin} is missing in {}: build it first with `cargo build -p speaker -p controller --bins` (cargo test --workspace does)",
            bin_dir().display()
        );
    }
    let child = Command::new(env!("CARGO_BIN_EXE_berth-demo"))
        .args(args)
        .args(["--connections", "150", "--bin-dir"])
        .arg(bin_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "berth-demo {args:?} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );

    // The spread table: a row per node, each with a fair share of the 150 connections.
    let table = stdout
        .split("node    connections")
        .nth(1)
        .unwrap_or_else(|| panic!("no spread table in:\n{stdout}"));
    for node in ["node1", "node2", "node3"] {
        let row = table
            .lines()
            .find(|line| line.trim_start().starts_with(node))
            .unwrap_or_else(|| panic!("no row for {node} in:\n{table}"));
        let count: usize = row.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(
            count >= 20,
            "{node} got {count} of 150 connections:\n{table}"
        );
    }
    assert!(!table.contains("(failed)"), "failed connections:\n{table}");
    // Both routers showed a three-way multipath route, and the lab is gone.
    assert_eq!(stdout.matches("nexthop via").count(), 6, "{stdout}");
    assert!(stdout.contains("torn down"), "{stdout}");
    assert_eq!(
        namespaces_of(pid),
        Vec::<String>::new(),
        "namespaces left behind"
    );
    stdout
}

/// The lines of the command output shown under `$ command` (indented, up to a blank line).
fn shown<'a>(stdout: &'a str, command: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .skip_while(|line| line.trim() != format!("$ {command}"))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .collect()
}

#[test]
#[ignore = "needs root, network namespaces, the routers and the test control plane: ./test.sh runs it, or cargo test -p testbed --test demo -- --include-ignored"]
fn the_cluster_demo_shows_the_external_ip_and_spreads_connections() {
    let stdout = run_demo(&[]);
    // `kubectl get svc -n web`: the Service's row has an EXTERNAL-IP from demo-pool.
    let svc = shown(&stdout, "kubectl get svc -n web");
    assert!(
        svc.first().is_some_and(|h| h.contains("EXTERNAL-IP")),
        "{stdout}"
    );
    let row: Vec<&str> = svc
        .get(1)
        .unwrap_or_else(|| panic!("no Service row in:\n{stdout}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[0], "demo", "{stdout}");
    let vip = row[3];
    assert!(vip.starts_with("10.0.0."), "EXTERNAL-IP {vip}:\n{stdout}");
    assert!(stdout.contains(&format!("ip route show {vip}")), "{stdout}");
    // `kubectl get eip,bgppeer`: the pool counts one address in use; every BgpPeer is listed.
    let eip = shown(&stdout, "kubectl get eip,bgppeer");
    assert!(
        eip.iter()
            .any(|l| l.contains("eip.network.kubesphere.io/demo-pool")
                && l.split_whitespace().nth(2) == Some("1")),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("bgppeer.network.kubesphere.io/tor").count(),
        12 + 12,
        "created by the apply and listed by get:\n{stdout}"
    );
    assert!(stdout.contains("AddressAllocated"), "{stdout}");
}

#[test]
#[ignore = "needs root, network namespaces and the routers: ./test.sh runs it, or cargo test -p testbed --test demo -- --include-ignored"]
fn the_standalone_demo_spreads_connections_without_kubernetes() {
    let stdout = run_demo(&["--standalone"]);
    assert!(!stdout.contains("kubectl"), "{stdout}");
    assert!(stdout.contains("node1 $ berthctl peers"), "{stdout}");
}
