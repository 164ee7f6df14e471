//! `berth-speaker`: the per-node daemon. Reads cluster state from Kubernetes (default) or
//! from a directory of manifests (`--state-dir`), announces this node's VIPs over BGP with
//! itself as next hop, serves metrics/health and a read-only admin API, and on SIGTERM
//! drains (GRACEFUL_SHUTDOWN) before closing its sessions, or, for a restart, closes them
//! as they are and leaves a restart marker so that its successor sends the R bit.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use speaker::NodeContext;
use speaker::admin::{admin_route, health_route};
use speaker::daemon::{Options, Shared, ShutdownMode, run};
use speaker::source::{self, DIR_POLL_INTERVAL};
use speaker::sync::Network;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OnSigterm {
    Drain,
    Restart,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Berth's per-node BGP speaker.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// This node's name (the Node object's name).
    #[arg(long, env = "NODE_NAME")]
    node_name: String,
    /// Standalone mode: read manifests (multi-document YAML) from this directory instead
    /// of the Kubernetes API; it is watched for changes (inotify).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Standalone: seconds a pool whose manifest vanished stays in force, its VIPs announced
    /// (give the controller the same `--vanish-grace-secs`).
    #[arg(long, default_value_t = source::DIR_VANISH_GRACE.as_secs())]
    vanish_grace_secs: u64,
    /// The speaker's namespace (where Secret references without a namespace point).
    #[arg(long, env = "POD_NAMESPACE", default_value = "berth-system")]
    namespace: String,
    /// The `spec.loadBalancerClass` Berth handles (give the controller the same).
    #[arg(long, default_value = api::keys::LOAD_BALANCER_CLASS)]
    class: String,
    /// Also handle LoadBalancer Services without a class (Berth as the default; give the
    /// controller the same).
    #[arg(long)]
    default_class: bool,
    /// BGP port to listen on (overrides BgpConf spec.listenPort).
    #[arg(long)]
    listen_port: Option<u16>,
    /// Router ID when neither BgpConf nor the Node's InternalIP gives one (default: the
    /// host's first usable IPv4 address, found through rtnetlink).
    #[arg(long)]
    router_id: Option<Ipv4Addr>,
    /// Prometheus metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:7472")]
    metrics_addr: SocketAddr,
    /// Read-only JSON admin API (for berthctl); keep it on localhost.
    #[arg(long, default_value = "127.0.0.1:7473")]
    admin_addr: SocketAddr,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Put the announced VIPs on this dummy device (created if missing).
    #[arg(long)]
    vip_interface: Option<String>,
    /// Seconds routes stay marked GRACEFUL_SHUTDOWN on SIGTERM before sessions close.
    #[arg(long, default_value_t = 5)]
    drain_seconds: u64,
    /// What SIGTERM means: `drain` (the node leaves: GRACEFUL_SHUTDOWN, wait, withdraw) or
    /// `restart` (a rolling update: close without withdrawing; routers with graceful
    /// restart keep forwarding until the new speaker is back).
    #[arg(long, value_enum, default_value = "drain")]
    on_sigterm: OnSigterm,
    /// This start follows a restart of this node's speaker (a crash, an upgrade) while
    /// routers may still hold its routes as stale: the sessions configured at start send
    /// the graceful-restart Restart State bit (R, RFC 4724) in their OPENs, as `bird -R`
    /// does. Not needed after `--on-sigterm restart`: the restart marker says it.
    #[arg(long)]
    restarting: bool,
    /// The restart marker: `--on-sigterm restart` leaves it when stopping (when it stopped,
    /// the graceful-restart time it advertised); the next start reads and removes it, and
    /// starts as `--restarting` when the marker is younger than that time. Keep it on a
    /// directory that outlives the process (a hostPath in Kubernetes). Empty: off.
    #[arg(long, default_value = speaker::restart_marker::DEFAULT_PATH)]
    restart_marker: String,
    /// Layer 2: milliseconds between heartbeats to the other candidates of layer2 pools.
    #[arg(long, default_value_t = 50)]
    layer2_heartbeat_ms: u64,
    /// Layer 2: heartbeats missed before a candidate counts as gone (detection time =
    /// interval × this).
    #[arg(long, default_value_t = 3)]
    layer2_detect_multiplier: u32,
    /// Layer 2: the heartbeat UDP port (the same on every node). 0 turns layer 2 off.
    #[arg(long, default_value_t = speaker::layer2::edge::DEFAULT_PORT)]
    layer2_port: u16,
}

/// Logs go to stderr, which is what supervisors keep (Kubernetes, the testbed, the demo);
/// colour only on a terminal, and not there either when `NO_COLOR` is set
/// (<https://no-color.org>): escapes in a file or a pipe are noise.
fn init_logs(format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// How long the HTTP endpoints get to finish their exchanges at the end.
const SIDE_TASKS_GRACE: Duration = Duration::from_secs(3);

/// Serves `route` on `addr` in a task of `side` until `stop` is cancelled.
async fn serve(
    addr: SocketAddr,
    shared: Arc<Shared>,
    route: fn(&speaker::admin::View, &str) -> serving::Response,
    side: &mut JoinSet<()>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    side.spawn(serving::serve(
        listener,
        move |path| route(&shared.view(), path),
        serving::Limits::default(),
        stop.clone(),
    ));
    Ok(())
}

async fn terminated() {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!("no SIGTERM handler: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logs(args.log_format);
    // The one TLS crypto provider for the API server client, chosen explicitly (README,
    // "Dependencies"): without it rustls cannot pick one and the first request panics.
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        tracing::debug!("a TLS crypto provider was already installed");
    }
    let fallback_router_id = match args.router_id {
        Some(id) => Some(id),
        None => match speaker::netlink::host_router_id().await {
            Ok(id) => id,
            Err(e) => {
                warn!("could not read the host's addresses: {e}");
                None
            }
        },
    };
    let ctx = NodeContext {
        node_name: args.node_name.clone(),
        namespace: args.namespace.clone(),
        fallback_router_id,
        class: api::class::ClassConfig {
            class: args.class.clone(),
            default_class: args.default_class,
        },
    };
    let shared = Arc::new(Shared::default());
    // The side tasks: the HTTP endpoints (stopped by `stop`, finishing what they serve) and
    // the state sources and status writer (aborted once the BGP side has drained).
    let mut servers = JoinSet::new();
    let mut sources = JoinSet::new();
    let stop = CancellationToken::new();
    serve(
        args.metrics_addr,
        shared.clone(),
        health_route,
        &mut servers,
        &stop,
    )
    .await?;
    serve(
        args.admin_addr,
        shared.clone(),
        admin_route,
        &mut servers,
        &stop,
    )
    .await?;
    let (tx, rx) = tokio::sync::watch::channel(source::Feed::default());
    match &args.state_dir {
        Some(dir) => {
            info!(node = %args.node_name, dir = %dir.display(), "standalone mode");
            sources.spawn(source::run_dir(
                dir.clone(),
                DIR_POLL_INTERVAL,
                std::time::Duration::from_secs(args.vanish_grace_secs),
                tx,
            ));
        }
        None => {
            info!(node = %args.node_name, "Kubernetes mode");
            let client = kube::Client::try_default().await.context(
                "connecting to the Kubernetes API (use --state-dir for standalone mode)",
            )?;
            sources.spawn(source::kube::run_kube(
                client.clone(),
                args.node_name.clone(),
                args.namespace.clone(),
                tx,
            ));
            sources.spawn(speaker::kube_status::run_status_writer(
                client,
                args.node_name.clone(),
                shared.clone(),
            ));
        }
    }
    let options = Options {
        ctx,
        listen_port: args.listen_port,
        vip_interface: args.vip_interface.clone(),
        drain: Duration::from_secs(args.drain_seconds),
        on_shutdown: match args.on_sigterm {
            OnSigterm::Drain => ShutdownMode::Drain,
            OnSigterm::Restart => ShutdownMode::Restart,
        },
        network: Network::Tcp,
        restarting: args.restarting,
        restart_marker: (!args.restart_marker.is_empty())
            .then(|| PathBuf::from(&args.restart_marker)),
        layer2: (args.layer2_port != 0).then(|| speaker::layer2::edge::Options {
            node: args.node_name.clone(),
            timing: speaker::layer2::liveness::Timing {
                interval: Duration::from_millis(args.layer2_heartbeat_ms.max(1)),
                multiplier: args.layer2_detect_multiplier.max(1),
            },
            port: args.layer2_port,
            standalone: args.state_dir.is_some(),
        }),
    };
    run(options, rx, shared, terminated()).await;
    sources.shutdown().await;
    stop.cancel();
    if tokio::time::timeout(SIDE_TASKS_GRACE, servers.join_all())
        .await
        .is_err()
    {
        warn!("HTTP endpoints still open after {SIDE_TASKS_GRACE:?}");
    }
    info!("stopped");
    Ok(())
}
