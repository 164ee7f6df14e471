//! `berth-controller`: hands out load-balancer addresses to Services.
//!
//! Kubernetes mode (default): kube-runtime controllers with leader election on a Lease.
//! Standalone mode (`--state-dir DIR`): the same decisions over a directory of manifests.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use controller::cluster::{self, ClusterOptions};
use controller::metrics::{self, Metrics};
use controller::standalone;
use controller::view::ClassConfig;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Berth's address controller.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Standalone mode: read and write manifests in this directory instead of a cluster.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Standalone: poll period of the directory, in milliseconds, where it cannot be watched
    /// with inotify.
    #[arg(long, default_value_t = 200)]
    poll_ms: u64,
    /// Standalone: one pass, then exit (non-zero when a manifest document was skipped).
    #[arg(long)]
    once: bool,
    /// Standalone: seconds the addresses of a pool or a Service whose manifest vanished (a
    /// file moved away, or truncated while being rewritten) are kept before release.
    #[arg(long, default_value_t = standalone::DEFAULT_GRACE.as_secs())]
    vanish_grace_secs: u64,
    /// The `spec.loadBalancerClass` Berth handles.
    #[arg(long, default_value = api::keys::LOAD_BALANCER_CLASS)]
    class: String,
    /// Also handle LoadBalancer Services without a class (Berth as the default).
    #[arg(long)]
    default_class: bool,
    /// Address of the metrics endpoint (`/metrics`); empty disables it.
    #[arg(long, default_value = "0.0.0.0:9090")]
    metrics_addr: String,
    /// Kubernetes: run without leader election (only ever one replica!).
    #[arg(long)]
    no_leader_election: bool,
    /// Kubernetes: namespace of the leader Lease (default: $POD_NAMESPACE, else berth-system).
    #[arg(long)]
    lease_namespace: Option<String>,
    /// Kubernetes: name of the leader Lease.
    #[arg(long, default_value = "berth-controller")]
    lease_name: String,
    /// This replica's identity (default: $POD_NAME, else $HOSTNAME).
    #[arg(long)]
    identity: Option<String>,
    /// Log format: `text` or `json`.
    #[arg(long, default_value = "text")]
    log_format: String,
}

/// Logs go to stderr, which is what supervisors keep (Kubernetes, the testbed, the demo);
/// colour only on a terminal, and not there either when `NO_COLOR` is set
/// (<https://no-color.org>): escapes in a file or a pipe are noise.
fn init_logs(format: &str) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGTERM or SIGINT, and says which.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("no SIGTERM handler: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
        () = term => tracing::info!("SIGTERM: stopping"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logs(&args.log_format);
    // The one TLS crypto provider for the API server client, chosen explicitly (README,
    // "Dependencies"): without it rustls cannot pick one and the first request panics.
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        tracing::debug!("a TLS crypto provider was already installed");
    }
    let class = ClassConfig {
        class: args.class.clone(),
        default_class: args.default_class,
    };
    let metrics = Metrics::default();

    if let Some(dir) = args.state_dir.clone() {
        if args.once {
            let report = standalone::run_once(&dir, &class, &metrics)?;
            for f in &report.files_written {
                tracing::info!(file = %f.display(), "status written");
            }
            if !report.problems.is_empty() {
                anyhow::bail!("{} manifest document(s) skipped", report.problems.len());
            }
            return Ok(());
        }
        let (mut servers, stop) = (JoinSet::new(), CancellationToken::new());
        start_metrics(&args.metrics_addr, &metrics, &mut servers, &stop).await?;
        standalone::run(
            dir,
            standalone::Options {
                class,
                grace: Duration::from_secs(args.vanish_grace_secs),
            },
            Duration::from_millis(args.poll_ms),
            metrics,
            shutdown_signal(),
        )
        .await;
        stop_servers(servers, stop).await;
        return Ok(());
    }

    let (mut servers, stop) = (JoinSet::new(), CancellationToken::new());
    start_metrics(&args.metrics_addr, &metrics, &mut servers, &stop).await?;
    let identity = args
        .identity
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("berth-controller-{}", std::process::id()));
    let lease_namespace = args
        .lease_namespace
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| "berth-system".into());
    let client = kube::Client::try_default().await?;
    cluster::run(
        client,
        ClusterOptions {
            class,
            reporter: "berth-controller".into(),
            identity,
            lease: (!args.no_leader_election).then_some((lease_namespace, args.lease_name)),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        },
        metrics,
        shutdown_signal(),
    )
    .await?;
    stop_servers(servers, stop).await;
    tracing::info!("stopped");
    Ok(())
}

/// Starts the metrics endpoint in `servers` (stopped by `stop`); a taken port is a warning.
async fn start_metrics(
    addr: &str,
    metrics: &Metrics,
    servers: &mut JoinSet<()>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    if addr.is_empty() {
        return Ok(());
    }
    // Metrics are an aid, not a duty: a taken port must not stop address management.
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            tracing::info!(%addr, "metrics on /metrics");
            let metrics = metrics.clone();
            servers.spawn(serving::serve(
                listener,
                move |path| metrics::route(&metrics, path),
                serving::Limits::default(),
                stop.clone(),
            ));
        }
        Err(e) => tracing::warn!(%addr, "metrics endpoint disabled: {e}"),
    }
    Ok(())
}

/// Stops the side tasks' endpoints and gives them a moment to finish their exchanges.
async fn stop_servers(mut servers: JoinSet<()>, stop: CancellationToken) {
    stop.cancel();
    let grace = Duration::from_secs(3);
    if tokio::time::timeout(grace, async {
        while servers.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!("metrics endpoint still open after {grace:?}");
        servers.shutdown().await;
    }
}
