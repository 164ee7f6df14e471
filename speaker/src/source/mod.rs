//! Where the cluster state comes from: a directory of manifests (`dir`, standalone mode)
//! or the Kubernetes API (`kube`, reflectors). Both publish whole `ClusterState` values on
//! one `tokio::sync::watch` channel, so everything after the source is one code path.

pub mod dir;
pub mod kube;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info};

use crate::state::ClusterState;

/// What a source publishes.
#[derive(Clone, Debug, Default)]
pub struct Feed {
    /// The last complete, good state; `None` until the first one.
    pub state: Option<Arc<ClusterState>>,
    /// What the source could not read (e.g. each skipped manifest's file, line and reason,
    /// joined by `; `), while `state` holds everything else.
    pub error: Option<String>,
}

/// The channel a source publishes on.
pub type StateSender = watch::Sender<Feed>;
/// The receiving end of a [`StateSender`].
pub type StateReceiver = watch::Receiver<Feed>;

/// How often the standalone directory is read for changes.
pub const DIR_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How long a pool whose manifest vanished stays in force (the controller's default grace
/// too): a pool file moved away and back within it withdraws nothing.
pub const DIR_VANISH_GRACE: Duration = Duration::from_secs(30);

/// Polls `dir` every `interval` and publishes each new state until `tx` has no receiver.
/// Skipped documents are logged with their file and line when they first appear, and kept in
/// the feed's `error` while they last; the rest of the directory is served. Objects whose
/// manifest vanished stay for `grace`.
pub async fn run_dir(dir: PathBuf, interval: Duration, grace: Duration, tx: StateSender) {
    let mut watcher = dir::DirWatcher::new(dir, grace);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported: Vec<dir::ManifestError> = Vec::new();
    loop {
        tick.tick().await;
        if tx.is_closed() {
            return;
        }
        match watcher.poll(std::time::Instant::now()) {
            dir::Poll::Unchanged => {}
            dir::Poll::Changed { state, problems } => {
                for p in problems.iter().filter(|p| !reported.contains(p)) {
                    error!(file = %p.file.display(), line = p.line, "manifest skipped: {}", p.message);
                }
                info!(dir = %watcher.dir().display(), objects = state.len(), skipped = problems.len(), "manifests read");
                let error = (!problems.is_empty()).then(|| {
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                });
                reported = problems;
                tx.send_modify(|f| {
                    f.state = Some(Arc::new(state));
                    f.error = error;
                });
            }
            dir::Poll::Broken(e) => {
                error!(file = %e.file.display(), "manifests cannot be listed, keeping the last state: {}", e.message);
                tx.send_modify(|f| f.error = Some(e.to_string()));
            }
        }
    }
}
