//! A Berth daemon (`berth-controller`, `berth-speaker`) in a lab namespace, as the kubelet
//! would run it with its ServiceAccount's kubeconfig. Knows nothing of what the tests check.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use testbed::Netns;
use testbed::lab::Process;

use crate::common::workspace_bin;

/// A Berth daemon in a lab namespace with a ServiceAccount's kubeconfig, logging to a file in
/// the namespace's directory; killed on drop.
pub struct Daemon {
    log: PathBuf,
    _process: Process,
}

impl Daemon {
    pub fn start(netns: &Netns, binary: &str, args: &[String], kubeconfig: &Path) -> Daemon {
        let log = netns.dir().unwrap().join(format!("{binary}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let mut command = netns.command(workspace_bin(binary));
        command
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAMESPACE", "berth-system")
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file));
        let process = Process::spawn(format!("{binary} in {}", netns.node()), command).unwrap();
        Daemon {
            log,
            _process: process,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "last lines of {}:\n{}",
            self.log.display(),
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }
}
