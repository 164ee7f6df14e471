//! Berth installed on a lab control plane the way a user installs it: the shipped
//! `deploy/crds` (refused or warned about by the API server: an error), `deploy/namespace.yaml`
//! and `deploy/rbac` unchanged, Node objects for the lab's node namespaces, and the daemons
//! (`berth-controller`, `berth-speaker`) started as processes in lab namespaces with their
//! ServiceAccounts' tokens from the TokenRequest API, never as admin. The in-cluster tests
//! and the demo build on it.
//!
//! It knows the file layout of `deploy/` and the daemons' flags; it decides nothing about
//! topology (the caller's lab) or about what a test expects.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::k8s::ControlPlane;
use crate::lab::Process;
use crate::{Error, Netns, Result};

/// The namespace the shipped manifests install Berth into.
pub const NAMESPACE: &str = "berth-system";

/// The repository root (where `deploy/` is), from this crate's location.
pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Berth's install on one control plane: the kubeconfigs its daemons run with.
#[derive(Debug, Clone)]
pub struct Install {
    /// The controller's ServiceAccount token, server = the namespace-facing URL.
    pub controller_kubeconfig: PathBuf,
    /// The speakers' ServiceAccount token, server = the namespace-facing URL.
    pub speaker_kubeconfig: PathBuf,
}

/// Applies the shipped CRDs (server-side; any warning kube-apiserver prints is an error),
/// waits until they are served, then the namespace and the RBAC, and gets the daemons'
/// tokens.
pub fn install(cp: &ControlPlane) -> Result<Install> {
    let deploy = repository().join("deploy");
    let output = std::process::Command::new(cp.binary())
        .arg("kubectl")
        .arg("--kubeconfig")
        .arg(cp.admin_kubeconfig())
        .args(["apply", "--server-side", "-f"])
        .arg(deploy.join("crds"))
        .output()
        .map_err(|e| Error::io("kubectl apply deploy/crds", e))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || stderr.contains("Warning") {
        return Err(Error::Daemon(format!(
            "kube-apiserver {} deploy/crds: {}",
            if output.status.success() {
                "warned about"
            } else {
                "refused"
            },
            stderr.trim()
        )));
    }
    for name in ["eips", "bgpconfs", "bgppeers"] {
        cp.kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            &format!("crd/{name}.network.kubesphere.io"),
        ])?;
    }
    for file in ["namespace.yaml", "rbac"] {
        cp.kubectl(&[
            "apply",
            "--server-side",
            "-f",
            &deploy.join(file).to_string_lossy(),
        ])?;
    }
    Ok(Install {
        controller_kubeconfig: cp.service_account_kubeconfig(NAMESPACE, "berth-controller")?,
        speaker_kubeconfig: cp.service_account_kubeconfig(NAMESPACE, "berth-speaker")?,
    })
}

/// Creates the Node `name` (label `kubernetes.io/hostname` and `labels`) with an InternalIP
/// and a Ready condition in its status, as a kubelet would report it.
pub fn add_node(
    cp: &ControlPlane,
    name: &str,
    internal_ip: IpAddr,
    labels: &BTreeMap<String, String>,
) -> Result<()> {
    let mut all = labels.clone();
    all.insert("kubernetes.io/hostname".into(), name.into());
    let node = serde_json::json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": all},
    });
    cp.apply(&node.to_string())?;
    let status = serde_json::json!({"status": {
        "addresses": [{"type": "InternalIP", "address": internal_ip.to_string()}],
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "lab node"}],
    }});
    cp.kubectl(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ])?;
    Ok(())
}

/// A Berth daemon running in a lab namespace with a kubeconfig; its log (JSON lines, stdout
/// and stderr) goes to a file. Dropping it kills it.
#[derive(Debug)]
pub struct Daemon {
    netns: Netns,
    binary: PathBuf,
    args: Vec<String>,
    kubeconfig: PathBuf,
    log: PathBuf,
    process: Process,
}

impl Daemon {
    /// Starts `binary args` in `netns` with `KUBECONFIG=kubeconfig` and
    /// `POD_NAMESPACE=berth-system`, logging to `log`.
    pub fn start(
        netns: &Netns,
        binary: &Path,
        args: Vec<String>,
        kubeconfig: &Path,
        log: PathBuf,
    ) -> Result<Daemon> {
        let process = spawn(netns, binary, &args, kubeconfig, &log)?;
        Ok(Daemon {
            netns: netns.clone(),
            binary: binary.to_path_buf(),
            args,
            kubeconfig: kubeconfig.to_path_buf(),
            log,
            process,
        })
    }

    /// `berth-controller` replica `replica` in `netns`: leader election on the shipped Lease,
    /// identity `replica-N`, metrics on `127.0.0.1:9090+N`, JSON logs, plus `extra`.
    pub fn controller(
        netns: &Netns,
        binary: &Path,
        install: &Install,
        replica: u16,
        extra: &[&str],
    ) -> Result<Daemon> {
        let mut args: Vec<String> = [
            "--identity",
            &format!("replica-{replica}"),
            "--lease-namespace",
            NAMESPACE,
            "--metrics-addr",
            &controller_metrics(replica),
            "--log-format",
            "json",
        ]
        .iter()
        .map(|a| (*a).to_string())
        .collect();
        args.extend(extra.iter().map(|a| (*a).to_string()));
        let log = netns.dir()?.join(format!("controller-{replica}.log"));
        Daemon::start(netns, binary, args, &install.controller_kubeconfig, log)
    }

    /// `berth-speaker` for node `node` in its namespace: admin API on `127.0.0.1:7473`,
    /// metrics on `127.0.0.1:7472` (inside the namespace), its restart marker in the
    /// namespace's directory, `--drain-seconds drain`, JSON logs, plus `extra`.
    pub fn speaker(
        netns: &Netns,
        binary: &Path,
        install: &Install,
        node: &str,
        drain: u64,
        extra: &[&str],
    ) -> Result<Daemon> {
        let dir = netns.dir()?;
        let mut args: Vec<String> = [
            "--node-name",
            node,
            "--admin-addr",
            SPEAKER_ADMIN,
            "--metrics-addr",
            SPEAKER_METRICS,
            "--drain-seconds",
            &drain.to_string(),
            "--log-format",
            "json",
            "--restart-marker",
            &dir.join("restart-marker").to_string_lossy(),
        ]
        .iter()
        .map(|a| (*a).to_string())
        .collect();
        args.extend(extra.iter().map(|a| (*a).to_string()));
        let log = dir.join("speaker.log");
        Daemon::start(netns, binary, args, &install.speaker_kubeconfig, log)
    }

    /// The namespace it runs in.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        self.process.running()
    }

    /// Starts it again with the same arguments if it has exited (what the kubelet does for a
    /// container); returns whether it had to.
    pub fn restart_if_exited(&mut self) -> Result<bool> {
        if self.process.running() {
            return Ok(false);
        }
        self.start_again()?;
        Ok(true)
    }

    /// Starts it again with the same arguments; it must have exited.
    pub fn start_again(&mut self) -> Result<()> {
        if self.process.running() {
            return Err(Error::Daemon(format!("{} still runs", self.name())));
        }
        self.process = spawn(
            &self.netns,
            &self.binary,
            &self.args,
            &self.kubeconfig,
            &self.log,
        )?;
        Ok(())
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// SIGTERM and wait up to `limit` for the exit; returns how long it took, or an error
    /// (the process is then killed).
    pub fn sigterm(&mut self, limit: Duration) -> Result<Duration> {
        let start = Instant::now();
        self.process
            .signal(libc::SIGTERM)
            .map_err(|e| Error::Daemon(format!("SIGTERM {}: {e}", self.name())))?;
        if self.process.wait_exit(limit) {
            Ok(start.elapsed())
        } else {
            self.process.kill();
            Err(Error::Daemon(format!(
                "{} still ran {limit:?} after SIGTERM\n{}",
                self.name(),
                self.log_tail()
            )))
        }
    }

    /// Its memory now and at its peak (`None` once it exited).
    pub fn memory(&mut self) -> Option<crate::lab::Memory> {
        self.process.memory()
    }

    /// Its whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Where its log is.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "last lines of {}:\n{}",
            self.log.display(),
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }

    /// Waits until its log has a line containing `needle`.
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let found = crate::wait::until(&format!("{needle:?} in the log"), timeout, || {
            Ok(self.log().contains(needle).then_some(()))
        });
        found.map_err(|e| {
            let state = if self.alive() { "running" } else { "exited" };
            Error::Daemon(format!(
                "{e} ({} {state})\n{}",
                self.name(),
                self.log_tail()
            ))
        })
    }

    /// Log lines that show the API server refused a request (RBAC): least privilege must
    /// be enough, so any is a defect.
    pub fn forbidden(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains(" 403") || l.contains("Forbidden") || l.contains("forbidden"))
            .map(str::to_string)
            .collect()
    }

    fn name(&self) -> String {
        format!(
            "{} in {}",
            self.binary
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            self.netns.node()
        )
    }
}

/// Where replica `replica` of the controller serves metrics (inside its namespace).
pub fn controller_metrics(replica: u16) -> String {
    format!("127.0.0.1:{}", 9090 + replica)
}

/// Where a speaker serves its admin API inside its node namespace.
pub const SPEAKER_ADMIN: &str = "127.0.0.1:7473";
/// Where a speaker serves metrics and health inside its node namespace.
pub const SPEAKER_METRICS: &str = "127.0.0.1:7472";

fn spawn(
    netns: &Netns,
    binary: &Path,
    args: &[String],
    kubeconfig: &Path,
    log: &Path,
) -> Result<Process> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| Error::io(format!("open {}", log.display()), e))?;
    let err = file
        .try_clone()
        .map_err(|e| Error::io(format!("open {}", log.display()), e))?;
    let mut command = netns.command(binary);
    command
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAMESPACE", NAMESPACE)
        .env("RUST_LOG", "info")
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err));
    Process::spawn(format!("{} in {}", binary.display(), netns.node()), command)
}
