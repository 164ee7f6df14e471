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
    /// Why the source cannot read a newer state right now (e.g. a manifest's file and
    /// line), while `state` stays in force.
    pub error: Option<String>,
}

/// The channel a source publishes on.
pub type StateSender = watch::Sender<Feed>;
/// The receiving end of a [`StateSender`].
pub type StateReceiver = watch::Receiver<Feed>;

/// How often the standalone directory is read for changes.
pub const DIR_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Polls `dir` every `interval` and publishes each new state until `tx` has no receiver.
/// A broken manifest is logged with its file and line and publishes nothing.
pub async fn run_dir(dir: PathBuf, interval: Duration, tx: StateSender) {
    let mut watcher = dir::DirWatcher::new(dir);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if tx.is_closed() {
            return;
        }
        match watcher.poll() {
            dir::Poll::Unchanged => {}
            dir::Poll::Changed(state) => {
                info!(dir = %watcher.dir().display(), objects = state.len(), "manifests read");
                tx.send_modify(|f| {
                    f.state = Some(Arc::new(state));
                    f.error = None;
                });
            }
            dir::Poll::Broken(e) => {
                error!(file = %e.file.display(), line = e.line, "manifest does not parse, keeping the last good state: {}", e.message);
                tx.send_modify(|f| f.error = Some(e.to_string()));
            }
        }
    }
}
