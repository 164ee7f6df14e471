//! Watching a directory of manifests with the kernel's notifications (inotify, through the
//! `notify` crate) instead of reading it on a timer: an idle directory costs nothing, and a
//! change is seen as it is made. Shared by the controller and the speakers.
//!
//! It says only which manifest files ([`crate::manifest::is_manifest_name`]) changed, or that
//! the whole directory must be read again (the kernel's queue overflowed, or the watch
//! failed); reading and parsing is the caller's, off the async runtime.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use notify::Watcher as _;
use tokio::sync::mpsc;

use crate::manifest::is_manifest_name;

/// What changed in the directory since the last [`DirWatch::next`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// These manifest files were created, written, renamed or removed.
    Files(BTreeSet<PathBuf>),
    /// Events were lost: read the whole directory again.
    Rescan,
}

/// A watch on one directory (not recursive).
#[derive(Debug)]
pub struct DirWatch {
    // Dropping the watcher ends the watch.
    _watcher: notify::RecommendedWatcher,
    events: mpsc::UnboundedReceiver<Change>,
}

impl DirWatch {
    /// Starts watching `dir`.
    pub fn new(dir: &Path) -> notify::Result<Self> {
        let (tx, events) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let change = match event {
                    Ok(e) if e.need_rescan() => Change::Rescan,
                    Ok(e) => {
                        if e.kind.is_access() {
                            return;
                        }
                        let files: BTreeSet<PathBuf> = e
                            .paths
                            .into_iter()
                            .filter(|p| is_manifest_name(p))
                            .collect();
                        if files.is_empty() {
                            return;
                        }
                        Change::Files(files)
                    }
                    Err(_) => Change::Rescan,
                };
                // The receiver gone means the watch is being dropped.
                let _ = tx.send(change);
            })?;
        watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
        Ok(Self {
            _watcher: watcher,
            events,
        })
    }

    /// Waits for a change, then takes every change already queued with it, so that a burst
    /// of events (an editor's save, a rename) is read once. `None` when the watch ended.
    pub async fn next(&mut self) -> Option<Change> {
        let mut change = self.events.recv().await?;
        while let Ok(more) = self.events.try_recv() {
            change = match (change, more) {
                (Change::Files(mut a), Change::Files(b)) => {
                    a.extend(b);
                    Change::Files(a)
                }
                _ => Change::Rescan,
            };
        }
        Some(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn reports_manifest_files_written_renamed_and_removed_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut watch = DirWatch::new(dir.path()).expect("watch");
        let a = dir.path().join("a.yaml");
        std::fs::write(dir.path().join(".a.yaml.tmp"), "x").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "x").expect("write");
        std::fs::rename(dir.path().join(".a.yaml.tmp"), &a).expect("rename");
        let mut seen = BTreeSet::new();
        while !seen.contains(&a) {
            let change = tokio::time::timeout(Duration::from_secs(10), watch.next())
                .await
                .expect("an event in time")
                .expect("watching");
            match change {
                Change::Files(f) => seen.extend(f),
                Change::Rescan => panic!("no rescan expected"),
            }
        }
        assert_eq!(seen, BTreeSet::from([a.clone()]), "only the manifest");
        std::fs::remove_file(&a).expect("rm");
        let change = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("an event in time");
        assert_eq!(change, Some(Change::Files(BTreeSet::from([a]))));
    }
}
