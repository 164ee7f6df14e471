//! The quick start's demo (`./demo.sh` runs `berth-demo`), run non-interactively: it brings the
//! tor-pair lab up with the real controller and speakers, prints the spread of the client's
//! connections over all three nodes, exits 0 and leaves no namespace behind.
//!
//! The Berth binaries come from the same target directory as this test (`cargo test
//! --workspace` builds them; alone: `cargo build -p speaker -p controller --bins`).

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

#[test]
fn the_demo_spreads_connections_over_three_nodes_and_cleans_up() {
    testbed::lab::require_root().unwrap();
    for bin in ["berth-speaker", "berth-controller", "berthctl"] {
        assert!(
            bin_dir().join(bin).is_file(),
            "{bin} is missing in {}: build it first with `cargo build -p speaker -p controller --bins` (cargo test --workspace does)",
            bin_dir().display()
        );
    }
    let child = Command::new(env!("CARGO_BIN_EXE_berth-demo"))
        .args(["--connections", "150", "--bin-dir"])
        .arg(bin_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "berth-demo failed ({}):\n{stdout}\n{stderr}",
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
}
