//! The "must not depend on" column of ARCHITECTURE.md, checked: each crate's normal
//! dependency graph, resolved as `cargo build -p <crate>` resolves it (its own features only,
//! not the workspace's union), must not reach the crates its row forbids. Unprivileged; runs
//! `cargo tree` offline on the committed lock file.

use std::process::Command;

/// One row of the table: the crate, and what must not appear in its normal dependencies.
const RULES: [(&str, &[&str]); 6] = [
    (
        "bgp",
        &["kube", "k8s-openapi", "api", "controller", "speaker", "bfd"],
    ),
    (
        "bfd",
        &["kube", "k8s-openapi", "api", "controller", "speaker", "bgp"],
    ),
    (
        "api",
        &[
            "kube-runtime",
            "kube-client",
            "bgp",
            "bfd",
            "controller",
            "speaker",
        ],
    ),
    (
        "serving",
        &[
            "kube",
            "k8s-openapi",
            "api",
            "bgp",
            "bfd",
            "controller",
            "speaker",
        ],
    ),
    ("controller", &["bgp", "bfd", "speaker"]),
    ("speaker", &["controller"]),
];

/// The names of every package in `krate`'s normal dependency graph (itself included).
fn dependencies(krate: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            krate,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {krate} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn crates_depend_only_downward() {
    let mut broken = Vec::new();
    for (krate, forbidden) in RULES {
        let deps = dependencies(krate);
        assert!(
            deps.iter().any(|d| d == krate),
            "cargo tree -p {krate} did not list the crate itself: {deps:?}"
        );
        for f in forbidden {
            if deps.iter().any(|d| d == f) {
                broken.push(format!("{krate} depends on {f}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "ARCHITECTURE.md's rules are broken: {broken:?}"
    );
}

/// The check can fail: the speaker does depend on bgp and the controller on kube-runtime.
#[test]
fn the_check_sees_real_dependencies() {
    assert!(dependencies("speaker").iter().any(|d| d == "bgp"));
    assert!(
        dependencies("controller")
            .iter()
            .any(|d| d == "kube-runtime")
    );
}
