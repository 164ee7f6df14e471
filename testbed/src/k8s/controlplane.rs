//! [`ControlPlane`]: etcd, kube-apiserver and kube-controller-manager as processes in one lab
//! namespace, their files in the namespace's runtime directory, a forwarder for the test
//! process, and what a test needs to talk to them (kubeconfigs, kubectl, a kube client).
//! Knows nothing about Berth: it is a cluster, not a deployment of the product.

use std::fs::OpenOptions;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::debug;

use super::binary::tail;
use super::config::ControlPlaneConfig;
use super::flags::{self, ApiServerFlags};
use super::forward::Forwarder;
use super::https;
use super::kubeconfig::{self, Credentials};
use super::pki::{self, Pki};
use crate::lab::{Memory, Netns, Process};
use crate::{Error, Result};

/// How many log lines failure messages quote.
const LOG_TAIL: usize = 30;
/// How long a stopped process gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long one probe request may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// One process of the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    /// etcd, the store.
    Etcd,
    /// kube-apiserver.
    ApiServer,
    /// kube-controller-manager.
    ControllerManager,
}

impl Component {
    /// The program's name (the first argument of `berth-controlplane`).
    pub fn program(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::ApiServer => "kube-apiserver",
            Component::ControllerManager => "kube-controller-manager",
        }
    }
}

/// A running control plane in a lab namespace. Dropping it kills its processes (and the lab's
/// sweep kills them if the test process itself was killed, since they live in a lab
/// namespace). Its files, in `<namespace dir>/controlplane/`, go with the lab.
#[derive(Debug)]
pub struct ControlPlane {
    netns: Netns,
    config: ControlPlaneConfig,
    binary: PathBuf,
    dir: PathBuf,
    pki: Pki,
    probe: Arc<rustls::ClientConfig>,
    etcd: Option<Process>,
    apiserver: Option<Process>,
    controller_manager: Option<Process>,
    forwarder: Forwarder,
    ready_after: Duration,
}

impl ControlPlane {
    /// Makes the certificates, starts etcd and kube-apiserver in `netns`, waits for `/readyz`
    /// and then starts kube-controller-manager (if configured). The binary comes from
    /// [`super::binary`]. A control plane left in `netns` by an earlier, dropped one is
    /// replaced (its files are removed).
    pub fn start(netns: &Netns, config: ControlPlaneConfig) -> Result<ControlPlane> {
        let binary = super::binary()?;
        Self::start_with_binary(netns, config, &binary)
    }

    /// [`ControlPlane::start`] with the `berth-controlplane` binary at `binary`.
    pub fn start_with_binary(
        netns: &Netns,
        config: ControlPlaneConfig,
        binary: &Path,
    ) -> Result<ControlPlane> {
        let started = Instant::now();
        let dir = netns.dir()?.join("controlplane");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| Error::io(format!("remove {}", dir.display()), e))?;
        }
        std::fs::create_dir_all(dir.join("etcd"))
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;

        let pki = Pki::generate(&config.serving_names())?;
        pki.write(&dir)?;
        let admin = pki.client(pki::ADMIN)?;
        let probe = https::client_config(&pki.ca_identity.cert_der, &admin)?;
        let forwarder = Forwarder::start(netns, config.inside_addr())?;
        let local_url = url(forwarder.local_addr());
        let ca = pki.ca_identity.cert_pem.clone();
        let admin_config = kubeconfig::render(
            &local_url,
            &ca,
            pki::ADMIN.user,
            Credentials::Certificate {
                cert_pem: &admin.cert_pem,
                key_pem: &admin.key_pem,
            },
        );
        pki::write_file(&dir.join(ADMIN_KUBECONFIG), &admin_config, true)?;
        let manager = pki.client(pki::CONTROLLER_MANAGER)?;
        let manager_config = kubeconfig::render(
            &url(config.inside_addr()),
            &ca,
            pki::CONTROLLER_MANAGER.user,
            Credentials::Certificate {
                cert_pem: &manager.cert_pem,
                key_pem: &manager.key_pem,
            },
        );
        pki::write_file(
            &dir.join(flags::CONTROLLER_MANAGER_KUBECONFIG),
            &manager_config,
            true,
        )?;
        if config.audit {
            pki::write_file(
                &dir.join(flags::AUDIT_POLICY),
                flags::AUDIT_POLICY_TEXT,
                false,
            )?;
        }

        let mut plane = ControlPlane {
            netns: netns.clone(),
            config,
            binary: binary.to_path_buf(),
            dir,
            pki,
            probe,
            etcd: None,
            apiserver: None,
            controller_manager: None,
            forwarder,
            ready_after: Duration::ZERO,
        };
        // kube-apiserver retries etcd until it answers, so both start at once; the wait for
        // /readyz covers etcd too.
        plane.spawn(Component::Etcd)?;
        plane.spawn(Component::ApiServer)?;
        plane.wait_ready()?;
        plane.ready_after = started.elapsed();
        if plane.config.controller_manager {
            plane.spawn(Component::ControllerManager)?;
        }
        debug!(
            node = plane.netns.node(),
            ready_after = ?plane.ready_after,
            url = plane.local_url(),
            "control plane ready"
        );
        Ok(plane)
    }

    /// The namespace it runs in.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Its settings.
    pub fn config(&self) -> &ControlPlaneConfig {
        &self.config
    }

    /// The `berth-controlplane` binary it runs (`<binary> kubectl ...` is kubectl).
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Its directory: certificates, kubeconfigs, etcd's data and the processes' logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How long [`ControlPlane::start`] took until `/readyz` answered `ok` (certificates
    /// included, kube-controller-manager not).
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// The API server's URL for clients in other lab namespaces:
    /// `https://<address>:<port>`.
    pub fn server_url(&self) -> String {
        url(SocketAddr::new(
            self.config.address,
            self.config.bind.port(),
        ))
    }

    /// The API server's URL for clients in the root namespace (the test process): the
    /// forwarder, `https://127.0.0.1:<port>`.
    pub fn local_url(&self) -> String {
        url(self.forwarder.local_addr())
    }

    /// The CA certificate (PEM) every serving and client certificate chains to.
    pub fn ca_pem(&self) -> &str {
        &self.pki.ca_identity.cert_pem
    }

    /// The CA certificate's file.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join(pki::files::CA_CERT)
    }

    /// A kubeconfig for `kubernetes-admin` (group `system:masters`) at [`Self::local_url`],
    /// for kubectl and clients in the root namespace.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.join(ADMIN_KUBECONFIG)
    }

    /// The log (stdout and stderr, all runs appended) of `component`.
    pub fn log_path(&self, component: Component) -> PathBuf {
        self.dir.join(format!("{}.log", component.program()))
    }

    /// kube-apiserver's audit log (JSON lines, one per request and stage; see
    /// [`ControlPlaneConfig::audit`]), if auditing is on.
    pub fn audit_log_path(&self) -> Option<PathBuf> {
        self.config.audit.then(|| self.dir.join(flags::AUDIT_LOG))
    }

    /// The pid of `component`, if it is running.
    pub fn pid(&mut self, component: Component) -> Option<u32> {
        let process = self.slot(component).as_mut()?;
        process.running().then(|| process.pid())
    }

    /// The memory of `component`, if it is running.
    pub fn memory(&mut self, component: Component) -> Option<Memory> {
        self.slot(component).as_mut()?.memory()
    }

    /// `GET path` through the forwarder as the admin; the status code and body. For probes
    /// such as `/readyz?verbose` or `/version`.
    pub fn get(&self, path: &str) -> Result<(u16, String)> {
        https::get(
            &self.probe,
            self.forwarder.local_addr(),
            path,
            PROBE_TIMEOUT,
        )
    }

    /// Runs `kubectl --kubeconfig <admin kubeconfig> args...` in the root namespace and returns
    /// its stdout; fails with its stderr.
    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.kubectl_with_input(args, None)
    }

    /// `kubectl apply -f -` of `manifest` (YAML or JSON, several documents allowed) as the
    /// admin; returns kubectl's stdout.
    pub fn apply(&self, manifest: &str) -> Result<String> {
        self.kubectl_with_input(&["apply", "-f", "-"], Some(manifest))
    }

    fn kubectl_with_input(&self, args: &[&str], input: Option<&str>) -> Result<String> {
        use std::io::Write;
        let mut command = std::process::Command::new(&self.binary);
        command
            .arg("kubectl")
            .arg("--kubeconfig")
            .arg(self.admin_kubeconfig())
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let shown = format!("kubectl {}", args.join(" "));
        let mut child = command
            .spawn()
            .map_err(|e| Error::io(format!("run {shown}"), e))?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(input.as_bytes())
                .map_err(|e| Error::io(format!("write to {shown}"), e))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|e| Error::io(format!("run {shown}"), e))?;
        if !output.status.success() {
            return Err(Error::Daemon(format!(
                "`{shown}` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// A kube client for the admin through the forwarder, built from
    /// [`Self::admin_kubeconfig`] the way a controller reads a kubeconfig. Must be called
    /// inside a tokio runtime (the client spawns its connection task there). Installs ring as
    /// rustls' process-wide crypto provider if none is installed.
    pub async fn client(&self) -> Result<kube::Client> {
        client_from(&self.admin_kubeconfig()).await
    }

    /// Creates the namespace and the ServiceAccount `namespace/name` if missing, asks the
    /// TokenRequest API for a token valid one hour, and writes a kubeconfig with that token
    /// whose server is [`Self::server_url`]: for processes in other lab namespaces. Its RBAC
    /// rights are whatever the test binds to `system:serviceaccount:<namespace>:<name>`.
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> Result<PathBuf> {
        self.write_service_account_kubeconfig(namespace, name, &self.server_url(), "")
    }

    /// [`Self::service_account_kubeconfig`] with [`Self::local_url`] as the server: for
    /// processes in the root namespace.
    pub fn service_account_kubeconfig_local(&self, namespace: &str, name: &str) -> Result<PathBuf> {
        self.write_service_account_kubeconfig(namespace, name, &self.local_url(), "-local")
    }

    /// Creates the namespace and the ServiceAccount if missing and returns a token for it
    /// from the TokenRequest API (`kubectl create token`, one hour).
    pub fn service_account_token(&self, namespace: &str, name: &str) -> Result<String> {
        for args in [
            vec!["create", "namespace", namespace],
            vec!["create", "serviceaccount", name, "-n", namespace],
        ] {
            match self.kubectl(&args) {
                Ok(_) => {}
                Err(Error::Daemon(message)) if message.contains("already exists") => {}
                Err(err) => return Err(err),
            }
        }
        let token =
            self.kubectl(&["create", "token", name, "-n", namespace, "--duration=3600s"])?;
        Ok(token.trim().to_string())
    }

    fn write_service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
        server: &str,
        suffix: &str,
    ) -> Result<PathBuf> {
        let token = self.service_account_token(namespace, name)?;
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let text = kubeconfig::render(server, self.ca_pem(), &user, Credentials::Token(&token));
        let path = self
            .dir
            .join(format!("sa-{namespace}-{name}{suffix}.kubeconfig"));
        pki::write_file(&path, &text, true)?;
        Ok(path)
    }

    /// Stops kube-apiserver alone (SIGTERM, SIGKILL after a grace period); etcd keeps the
    /// data. Requests fail until [`Self::start_apiserver`].
    pub fn stop_apiserver(&mut self) {
        self.stop_component(Component::ApiServer);
    }

    /// Starts kube-apiserver again with the same flags and certificates and waits for
    /// `/readyz`.
    pub fn start_apiserver(&mut self) -> Result<()> {
        self.start_component(Component::ApiServer)
    }

    /// Stops `component` (SIGTERM, SIGKILL after a grace period). Nothing else is touched:
    /// stopping etcd leaves kube-apiserver running, hanging on reads that miss its cache and
    /// on writes. While kube-apiserver is stopped the forwarder refuses connections too, so
    /// clients in the root namespace see what clients in other namespaces see.
    pub fn stop_component(&mut self, component: Component) {
        if component == Component::ApiServer {
            self.forwarder.stop_listening();
        }
        if let Some(mut process) = self.slot(component).take() {
            process.stop(STOP_GRACE);
            debug!(component = component.program(), "stopped");
        }
    }

    /// Starts `component` again (no-op if it runs) with the same flags and files, and waits
    /// for it: etcd until it reports healthy, kube-apiserver until `/readyz` answers `ok`
    /// (which needs etcd), kube-controller-manager not at all (it has no port here).
    pub fn start_component(&mut self, component: Component) -> Result<()> {
        if self.pid(component).is_some() {
            return Ok(());
        }
        self.spawn(component)?;
        if component == Component::ApiServer {
            self.forwarder.listen_again()?;
        }
        match component {
            Component::Etcd => self.wait_etcd(),
            Component::ApiServer => self.wait_ready(),
            Component::ControllerManager => Ok(()),
        }
    }

    /// Waits up to the configured timeout for `/readyz` to answer `ok`; fails at once if a
    /// running component exits, and with the logs' tails on timeout.
    pub fn wait_ready(&mut self) -> Result<()> {
        let start = Instant::now();
        let mut last;
        loop {
            self.check_alive()?;
            match self.get("/readyz") {
                Ok((200, body)) if body.trim() == "ok" => return Ok(()),
                Ok((status, body)) => last = format!("HTTP {status}: {}", body.trim()),
                Err(err) => last = err.to_string(),
            }
            if start.elapsed() >= self.config.ready_timeout {
                let verbose = self
                    .get("/readyz?verbose")
                    .map(|(_, body)| body)
                    .unwrap_or_default();
                return Err(Error::Timeout {
                    what: format!(
                        "kube-apiserver /readyz in {} (last: {last})\n{}\n{}",
                        self.netns.node(),
                        tail(&verbose, LOG_TAIL),
                        self.log_tails(&[Component::ApiServer, Component::Etcd])
                    ),
                    seconds: self.config.ready_timeout.as_secs_f64(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fails if a component that was started has exited since, quoting its log.
    fn check_alive(&mut self) -> Result<()> {
        for component in [
            Component::Etcd,
            Component::ApiServer,
            Component::ControllerManager,
        ] {
            if let Some(process) = self.slot(component).as_mut()
                && !process.running()
            {
                self.slot(component).take();
                return Err(Error::Daemon(format!(
                    "{} in {} exited\n{}",
                    component.program(),
                    self.netns.node(),
                    self.log_tails(&[component])
                )));
            }
        }
        Ok(())
    }

    fn wait_etcd(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.config.ready_timeout;
        loop {
            self.check_alive()?;
            if self.etcd_healthy() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "etcd /health in {}\n{}",
                        self.netns.node(),
                        self.log_tails(&[Component::Etcd])
                    ),
                    seconds: self.config.ready_timeout.as_secs_f64(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether etcd answers `/health` with `"health":"true"` on the namespace's loopback.
    fn etcd_healthy(&self) -> bool {
        use std::io::{Read, Write};
        let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), flags::ETCD_CLIENT_PORT);
        self.netns
            .run(move || -> std::io::Result<String> {
                let mut stream = std::net::TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
                stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
                stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
                let mut reply = String::new();
                stream.read_to_string(&mut reply)?;
                Ok(reply)
            })
            .ok()
            .and_then(Result::ok)
            .is_some_and(|reply| reply.contains(r#""health":"true""#))
    }

    fn slot(&mut self, component: Component) -> &mut Option<Process> {
        match component {
            Component::Etcd => &mut self.etcd,
            Component::ApiServer => &mut self.apiserver,
            Component::ControllerManager => &mut self.controller_manager,
        }
    }

    fn spawn(&mut self, component: Component) -> Result<()> {
        let args = match component {
            Component::Etcd => flags::etcd(&self.dir.join("etcd")),
            Component::ApiServer => flags::apiserver(
                &self.dir,
                &ApiServerFlags {
                    advertise: self.config.address,
                    bind: self.config.bind,
                    service_cidrs: &self.config.service_cidrs,
                    audit: self.config.audit,
                },
            ),
            Component::ControllerManager => {
                flags::controller_manager(&self.dir, &self.config.controllers)
            }
        };
        let log_path = self.log_path(component);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(format!("open {}", log_path.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| Error::io("duplicate a log file", e))?;
        let mut command = self.netns.command(&self.binary);
        command
            .args(&args)
            .current_dir(&self.dir)
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let process = Process::spawn(
            format!("{} in {}", component.program(), self.netns.node()),
            command,
        )?;
        debug!(
            component = component.program(),
            pid = process.pid(),
            "started"
        );
        *self.slot(component) = Some(process);
        Ok(())
    }

    fn log_tails(&self, components: &[Component]) -> String {
        components
            .iter()
            .map(|component| {
                let path = self.log_path(*component);
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                format!(
                    "--- last lines of {} ---\n{}",
                    path.display(),
                    tail(&text, LOG_TAIL)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Clients first, the store last, so no component logs a storm of errors about the
        // ones already gone.
        for component in [
            Component::ControllerManager,
            Component::ApiServer,
            Component::Etcd,
        ] {
            if let Some(mut process) = self.slot(component).take() {
                process.kill();
            }
        }
    }
}

/// The admin kubeconfig's file name.
const ADMIN_KUBECONFIG: &str = "admin.kubeconfig";

/// `https://ADDR` with IPv6 addresses in brackets.
fn url(addr: SocketAddr) -> String {
    format!("https://{addr}")
}

/// A kube client from the kubeconfig at `path`.
async fn client_from(path: &Path) -> Result<kube::Client> {
    // kube picks rustls' process-wide provider; the workspace builds ring only. Installing it
    // twice is harmless (the second call reports the first).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kube_error = |e: &dyn std::fmt::Display| {
        Error::Daemon(format!("kube client from {}: {e}", path.display()))
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| kube_error(&e))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| kube_error(&e))?;
    kube::Client::try_from(config).map_err(|e| kube_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_bracket_ipv6() {
        assert_eq!(
            url("[fd00:250::1]:6443".parse().expect("addr")),
            "https://[fd00:250::1]:6443"
        );
        assert_eq!(
            url("10.250.0.1:6443".parse().expect("addr")),
            "https://10.250.0.1:6443"
        );
    }
}
