//! A Berth speaker as it runs on a node: the real `berth-speaker` binary, started in
//! standalone mode inside a node namespace from a directory of manifests written for it
//! (BgpConf, Node, one BgpPeer per session, an Eip and a Service per VIP, with a ready
//! endpoint), and read back through its JSON admin API (`/api/v1/peers`, what `berthctl
//! peers -o json` shows), polled inside the namespace.
//!
//! The binary comes from the test's own target directory: `cargo build --workspace --bins`
//! first (`./test.sh` does). Each speaker runs from its node's runtime directory inside
//! the lab (`berth-state/` for the manifests, `berth-speaker.log` for its JSON logs, kept
//! across restarts of that node's speaker), and is always stopped when its guard drops:
//! SIGTERM, then SIGKILL if it has not exited in time.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use super::workspace_bin;
use ipnetwork::IpNetwork;
use serde::Deserialize;
use testbed::Netns;
use testbed::lab::{Memory, Process};

/// Where the speaker serves its admin API, on each node namespace's loopback.
pub const ADMIN_ADDR: &str = "127.0.0.1:7473";
/// Where it serves metrics and health (only on loopback: the node namespaces are not shared).
pub const METRICS_ADDR: &str = "127.0.0.1:7472";
/// Hold time written into every BgpPeer unless a peer says otherwise: short, so the suite
/// sees hold-timer expiry in seconds.
pub const HOLD_TIME: u16 = 9;
/// How long a speaker gets to read its manifests and configure its sessions.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a SIGTERM gets before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// One session of a speaker: a BgpPeer manifest.
#[derive(Debug, Clone)]
pub struct BerthPeer {
    /// `spec.conf.neighborAddress`.
    pub address: IpAddr,
    /// `spec.transport.localAddress`: our address on the link.
    pub local: IpAddr,
    /// `spec.conf.peerAs`.
    pub remote_as: u32,
    /// `spec.conf.authPassword` (TCP MD5).
    pub password: Option<String>,
    /// `spec.maxPrefix`: more received routes end the session with Cease subcode 1
    /// (RFC 4486); the speaker keeps it down for a minute.
    pub max_prefix: Option<u64>,
    /// This speaker comes back from a restart: it is started with `--restarting`, so its
    /// OPENs carry the graceful-restart R bit (RFC 4724). Per process: set on any peer, it
    /// applies to every session of that start.
    pub restarting: bool,
    /// `spec.timers.config.holdTime`, seconds.
    pub hold_time: u16,
    /// Graceful restart advertised (Berth's default); `false` writes
    /// `spec.gracefulRestart.enabled: false`.
    pub graceful_restart: bool,
}

impl BerthPeer {
    /// A session to `address` (AS `remote_as`) from `local`, with the suite's defaults.
    pub fn new(address: IpAddr, local: IpAddr, remote_as: u32) -> Self {
        BerthPeer {
            address,
            local,
            remote_as,
            password: None,
            max_prefix: None,
            restarting: false,
            hold_time: HOLD_TIME,
            graceful_restart: true,
        }
    }

    /// With a TCP MD5 password (or none).
    pub fn password(mut self, password: Option<&str>) -> Self {
        self.password = password.map(Into::into);
        self
    }

    /// Marks this start as a restart (see [`BerthPeer::restarting`]).
    pub fn restarting(mut self, restarting: bool) -> Self {
        self.restarting = restarting;
        self
    }

    /// With a `maxPrefix` limit: the speaker then counts received paths exactly (and ends
    /// the session above `limit`); without one it keeps only NLRI counters.
    pub fn max_prefix(mut self, limit: u64) -> Self {
        self.max_prefix = Some(limit);
        self
    }

    /// Without graceful restart: a lost session loses its routes at once.
    pub fn without_graceful_restart(mut self) -> Self {
        self.graceful_restart = false;
        self
    }

    /// The BgpPeer manifest named `name`.
    fn manifest(&self, name: &str) -> String {
        let mut conf = format!(
            "{{peerAs: {}, neighborAddress: \"{}\"",
            self.remote_as, self.address
        );
        if let Some(password) = &self.password {
            conf.push_str(&format!(", authPassword: \"{password}\""));
        }
        conf.push('}');
        let mut spec = format!(
            "  conf: {conf}\n  transport: {{localAddress: \"{}\"}}\n  \
             timers: {{config: {{holdTime: {}, connectRetry: 1}}}}\n",
            self.local, self.hold_time
        );
        if let Some(limit) = self.max_prefix {
            spec.push_str(&format!("  maxPrefix: {limit}\n"));
        }
        if !self.graceful_restart {
            spec.push_str("  gracefulRestart: {enabled: false}\n");
        }
        format!(
            "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {{name: {name}}}\nspec:\n{spec}"
        )
    }
}

/// The manifests of one node's speaker: its BgpConf, its Node, its BgpPeers, and each VIP
/// as the address of a Service (policy Cluster, one ready endpoint on this node) in an
/// Eip of its own.
fn manifests(
    node: &str,
    local_as: u32,
    router_id: Ipv4Addr,
    peers: &[BerthPeer],
    vips: &[IpNetwork],
) -> String {
    let mut docs = vec![
        format!(
            "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpConf\nmetadata: {{name: default}}\n\
             spec: {{as: {local_as}, routerId: \"{router_id}\"}}\n"
        ),
        format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {node}}}\n"),
    ];
    for (i, peer) in peers.iter().enumerate() {
        docs.push(peer.manifest(&format!("peer{}", i + 1)));
    }
    if !vips.is_empty() {
        let mut ingress = Vec::new();
        for (i, vip) in vips.iter().enumerate() {
            docs.push(format!(
                "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {{name: vip{}}}\n\
                 spec: {{address: \"{vip}\"}}\n",
                i + 1
            ));
            ingress.push(format!("{{ip: \"{}\"}}", vip.ip()));
        }
        docs.push(format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{namespace: web, name: vips}}\nspec:\n  \
             type: LoadBalancer\n  loadBalancerClass: berth.io/lb\n  externalTrafficPolicy: Cluster\n  ports: [{{port: 80}}]\n\
             status:\n  loadBalancer:\n    ingress: [{}]\n",
            ingress.join(", ")
        ));
        docs.push(format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  namespace: web\n  \
             name: vips-1\n  labels: {{kubernetes.io/service-name: vips}}\naddressType: IPv4\n\
             endpoints:\n- addresses: [10.244.0.5]\n  nodeName: {node}\n  conditions: {{ready: true}}\n"
        ));
    }
    docs.join("---\n")
}

/// Message counters of a session, as the admin API shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Messages {
    pub open: u64,
    pub update: u64,
    pub notification: u64,
    pub keepalive: u64,
    pub route_refresh: u64,
}

/// One session as the speaker's admin API (`/api/v1/peers`) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpeakerPeer {
    /// The BgpPeer (`peer1`, … in the order given to [`BerthSpeaker::start`]).
    pub name: String,
    /// Neighbour address.
    pub address: IpAddr,
    /// FSM state (`Established`, `Idle`, …).
    pub state: String,
    /// Times the session left Established.
    pub flaps: u64,
    /// Negotiated hold time.
    pub hold_time: Option<u16>,
    /// Prefixes the neighbour has from us.
    pub prefixes_advertised: usize,
    /// Paths the neighbour has at the speaker now: known only with a `maxPrefix` limit
    /// ([`BerthPeer::max_prefix`]); `None` (JSON `null`) otherwise, as the speaker then
    /// keeps nothing per received path.
    pub prefixes_received: Option<u64>,
    /// NLRI the neighbour announced (monotonic; a re-announcement counts again).
    pub nlri_announced: u64,
    /// NLRI the neighbour withdrew (monotonic).
    pub nlri_withdrawn: u64,
    /// Messages sent, by type.
    pub sent: Messages,
    /// Messages received, by type.
    pub received: Messages,
    /// The last NOTIFICATION: `sent <code>` or `received <code>`, the code as
    /// `bgp::wire::ErrorCode`'s Debug form.
    pub last_error: Option<String>,
}

impl SpeakerPeer {
    /// Whether the session is Established.
    pub fn is_established(&self) -> bool {
        self.state == "Established"
    }

    /// Paths received, all families, when the speaker tracks them (the library driver's
    /// name for it).
    pub fn prefixes_received_total(&self) -> Option<u64> {
        self.prefixes_received
    }

    /// The code of the last NOTIFICATION this speaker sent, if that was the last one.
    pub fn last_error_sent(&self) -> Option<&str> {
        self.last_error.as_deref()?.strip_prefix("sent ")
    }
}

/// `ErrorCode`'s spelling in [`SpeakerPeer::last_error`].
pub fn error_code_text(code: bgp::wire::ErrorCode) -> String {
    format!("{code:?}")
}

/// A `GET` on the admin API of the speaker in `netns` (`berthctl`'s client, inside the
/// namespace): the body of a 200 answer.
fn admin_get(netns: &Netns, path: &str) -> testbed::Result<String> {
    let request = path.to_string();
    let (status, body) = netns
        .run(move || serving::get(ADMIN_ADDR, &request, Duration::from_secs(5)))?
        .map_err(|e| testbed::Error::io(format!("GET {path} on {}", netns.node()), e))?;
    if status == 200 {
        Ok(body)
    } else {
        Err(testbed::Error::Daemon(format!(
            "GET {path} on {}: {status} {body}",
            netns.node()
        )))
    }
}

/// A running `berth-speaker` in a node namespace; dropping it stops it (SIGTERM, then
/// SIGKILL), so no process outlives a test.
pub struct BerthSpeaker {
    netns: Netns,
    process: Process,
    log: PathBuf,
}

impl BerthSpeaker {
    /// Starts `berth-speaker` in `netns` in `local_as` with `router_id`, one BgpPeer per
    /// entry of `peers`, announcing each VIP to the peers of its family with next hop
    /// self; returns once every session is configured (not yet Established). Drain on
    /// SIGTERM is 0 s: the sessions close (Cease) at once.
    pub fn start(
        netns: &Netns,
        local_as: u32,
        router_id: Ipv4Addr,
        peers: Vec<BerthPeer>,
        vips: Vec<IpNetwork>,
    ) -> BerthSpeaker {
        let bin = workspace_bin("berth-speaker");
        let dir = netns.dir().expect("node directory");
        let state = dir.join("berth-state");
        std::fs::create_dir_all(&state).expect("state directory");
        let node = netns.node().to_string();
        let text = manifests(&node, local_as, router_id, &peers, &vips);
        // Written whole, then renamed: the speaker polls the directory.
        let tmp = state.join(".speaker.yaml.tmp");
        std::fs::write(&tmp, text).expect("manifests");
        std::fs::rename(&tmp, state.join("speaker.yaml")).expect("manifests");

        let log = dir.join("berth-speaker.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("speaker log");
        let mut command = netns.command(&bin);
        command
            .args(["--node-name", &node, "--state-dir"])
            .arg(&state)
            .args(["--admin-addr", ADMIN_ADDR, "--metrics-addr", METRICS_ADDR])
            .args(["--drain-seconds", "0", "--log-format", "json"])
            // The node's own marker, never the host's /run/berth/restart.
            .arg("--restart-marker")
            .arg(dir.join("restart-marker"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        if peers.iter().any(|p| p.restarting) {
            command.arg("--restarting");
        }
        let process =
            Process::spawn(format!("berth-speaker on {node}"), command).expect("berth-speaker");
        let mut speaker = BerthSpeaker {
            netns: netns.clone(),
            process,
            log,
        };
        let configured = testbed::wait::until(
            &format!(
                "berth-speaker on {node} configuring {} sessions",
                peers.len()
            ),
            START_TIMEOUT,
            || {
                if !speaker.process.running() {
                    return Err(testbed::Error::Daemon("berth-speaker exited".into()));
                }
                Ok((speaker.try_peers()?.len() == peers.len()).then_some(()))
            },
        );
        if let Err(e) = configured {
            panic!("{e}\n{}", speaker.log_tail());
        }
        speaker
    }

    /// The process id (the `ip netns exec` wrapper execs the speaker, so it is its own).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.process.running()
    }

    /// Its resident memory now and at its peak; `None` once it exited.
    pub fn memory(&mut self) -> Option<Memory> {
        self.process.memory()
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("last lines of {}:\n{tail}", self.log.display())
    }

    fn try_peers(&self) -> testbed::Result<Vec<SpeakerPeer>> {
        let body = admin_get(&self.netns, "/api/v1/peers")?;
        serde_json::from_str(&body).map_err(|e| testbed::Error::Parse {
            what: "/api/v1/peers".into(),
            detail: format!("{e}: {body}"),
        })
    }

    /// Every session, from the admin API (empty when it does not answer).
    pub fn peers(&self) -> Vec<SpeakerPeer> {
        self.try_peers().unwrap_or_default()
    }

    /// How many sessions are Established.
    pub fn established(&self) -> usize {
        self.peers().iter().filter(|p| p.is_established()).count()
    }

    /// Waits until `count` sessions are Established.
    pub fn wait_established(&self, count: usize, timeout: Duration) {
        testbed::wait::until(
            &format!("{count} Berth sessions established"),
            timeout,
            || Ok((self.established() >= count).then_some(())),
        )
        .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", self.peers(), self.log_tail()));
    }

    /// Sends `signal` to the process.
    pub fn signal(&mut self, signal: i32) {
        self.process.signal(signal).expect("signal berth-speaker");
    }

    /// SIGKILL: the process dies at once and sends nothing (the kernel closes its sockets).
    pub fn crash(mut self) {
        self.process.kill();
    }

    /// SIGTERM, waiting for the exit: the speaker sends Cease to every peer and exits.
    pub fn shutdown(mut self) {
        self.signal(libc::SIGTERM);
        assert!(
            self.process.wait_exit(STOP_GRACE),
            "berth-speaker did not exit on SIGTERM\n{}",
            self.log_tail()
        );
    }
}

impl Drop for BerthSpeaker {
    fn drop(&mut self) {
        self.process.stop(STOP_GRACE);
    }
}
