//! Where the cluster state comes from: a directory of manifests (`dir`, standalone mode)
//! or the Kubernetes API (`kube`, reflectors). Both publish whole `ClusterState` values on
//! one `tokio::sync::watch` channel, so everything after the source is one code path.

pub mod dir;
pub mod kube;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::dir_watch::Change;
use tokio::sync::watch;
use tracing::{error, info, warn};

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

/// How often the standalone directory is read where it cannot be watched.
pub const DIR_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How long a pool whose manifest vanished stays in force (the controller's default grace
/// too): a pool file moved away and back within it withdraws nothing.
pub const DIR_VANISH_GRACE: Duration = Duration::from_secs(30);

/// Watches `dir` (inotify; reading it every `interval` only where a watch cannot be set up)
/// and publishes each new state until `tx` has no receiver. Only the files that changed are
/// read and parsed again, off the async runtime. Skipped documents are logged with their file
/// and line when they first appear, and kept in the feed's `error` while they last; the rest
/// of the directory is served. Pools whose manifest vanished stay for `grace`.
pub async fn run_dir(dir: PathBuf, interval: Duration, grace: Duration, tx: StateSender) {
    // Watch before the first read, so that nothing written meanwhile is missed.
    let mut watch = match api::dir_watch::DirWatch::new(&dir) {
        Ok(w) => Some(w),
        Err(e) => {
            warn!(dir = %dir.display(), "cannot watch the directory ({e}): reading it every {interval:?} instead");
            None
        }
    };
    let shown = dir.display().to_string();
    let mut watcher = dir::DirWatcher::new(dir, grace);
    let mut reported: Vec<dir::ManifestError> = Vec::new();
    // `None`: read the whole directory.
    let mut changed: Option<BTreeSet<PathBuf>> = None;
    loop {
        if tx.is_closed() {
            return;
        }
        let now = Instant::now();
        let paths = changed.take();
        let read = tokio::task::spawn_blocking(move || {
            let poll = watcher.refresh(paths.as_ref(), now);
            (watcher, poll)
        })
        .await;
        let poll;
        (watcher, poll) = match read {
            Ok(r) => r,
            Err(e) => {
                error!(dir = %shown, "reading the manifests failed: {e}");
                return;
            }
        };
        publish(poll, &shown, &mut reported, &tx);
        let expiry = watcher.next_expiry();
        let grace_ends = async move {
            match expiry {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        match watch.as_mut() {
            Some(w) => tokio::select! {
                change = w.next() => match change {
                    Some(Change::Files(files)) => changed = Some(files),
                    Some(Change::Rescan) => {}
                    None => {
                        warn!(dir = %shown, "the directory watch ended: reading it every {interval:?} instead");
                        watch = None;
                    }
                },
                () = grace_ends => changed = Some(BTreeSet::new()),
                () = tx.closed() => return,
            },
            None => tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = tx.closed() => return,
            },
        }
    }
}

/// Publishes what one read found, logging new problems.
fn publish(poll: dir::Poll, dir: &str, reported: &mut Vec<dir::ManifestError>, tx: &StateSender) {
    match poll {
        dir::Poll::Unchanged => {}
        dir::Poll::Changed { state, problems } => {
            for p in problems.iter().filter(|p| !reported.contains(p)) {
                error!(file = %p.file.display(), line = p.line, "manifest skipped: {}", p.message);
            }
            info!(
                dir,
                objects = state.len(),
                skipped = problems.len(),
                "manifests read"
            );
            let error = (!problems.is_empty()).then(|| {
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            *reported = problems;
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
