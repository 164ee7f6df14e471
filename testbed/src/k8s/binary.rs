//! Finds the `berth-controlplane` binary: the one `BERTH_CONTROLPLANE_BIN` names, or the one
//! `scripts/build-controlplane.sh` builds (or finds in its cache). Knows nothing about what the
//! binary is used for.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::{Error, Result};

/// The environment variable that names a prebuilt `berth-controlplane` binary.
pub const BINARY_ENV: &str = "BERTH_CONTROLPLANE_BIN";

/// The `berth-controlplane` binary (etcd, kube-apiserver, kube-controller-manager and kubectl
/// in one). Taken from [`BINARY_ENV`] if set, else from `scripts/build-controlplane.sh`, which
/// builds it on first use (about 6 minutes cold, seconds once cached). Failures are errors,
/// never a silent skip. The answer is computed once per process, so parallel tests do not run
/// the build script twice.
pub fn binary() -> Result<PathBuf> {
    static FOUND: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            find().map_err(|err| match err {
                Error::Missing(what) => what,
                other => other.to_string(),
            })
        })
        .clone()
        .map_err(Error::Missing)
}

fn find() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(BINARY_ENV) {
        let path = PathBuf::from(path);
        return check(&path, &format!("{BINARY_ENV}={}", path.display()));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("build-controlplane.sh");
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|e| Error::io(format!("run {}", script.display()), e))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(Error::Missing(format!(
            "the test control plane: {} failed ({}): {}",
            script.display(),
            output.status,
            tail(&stderr, 20)
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(last) = stdout.lines().rev().find(|line| !line.trim().is_empty()) else {
        return Err(Error::Missing(format!(
            "the test control plane: {} printed no path: {}",
            script.display(),
            tail(&stderr, 20)
        )));
    };
    check(Path::new(last.trim()), &script.display().to_string())
}

fn check(path: &Path, origin: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {
            Ok(path.to_path_buf())
        }
        _ => Err(Error::Missing(format!(
            "the test control plane: {} (from {origin}) is not an executable file",
            path.display()
        ))),
    }
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 3), "");
    }
}
