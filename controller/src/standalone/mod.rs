//! Standalone mode: `berth-controller --state-dir DIR`. The directory holds the same manifests
//! as a cluster would (multi-document YAML); each change is decided by [`crate::plan`] from
//! scratch, and each Service's allocation and each Eip's status are written back into the
//! same files, atomically. The directory is watched by polling modification times.

mod manifests;
mod writeback;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

pub use manifests::{
    Document, Location, ManifestError, ManifestFile, Snapshot, load_dir, manifest_paths,
};
pub use writeback::{replace_status, write_atomically};

use crate::decision::{Event, EventType};
use crate::metrics::Metrics;
use crate::plan::{ClusterState, plan};
use crate::view::{ClassConfig, EipView, ServiceView};

/// What one pass over the directory did.
#[derive(Debug, Default)]
pub struct CycleReport {
    /// Files rewritten.
    pub files_written: Vec<PathBuf>,
    /// Events decided (also logged).
    pub events: Vec<Event>,
}

/// Why a pass changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    /// A manifest does not parse or validate; nothing was changed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A status could not be rendered.
    #[error("rendering status: {0}")]
    Render(#[from] serde_yaml::Error),
}

/// One pass: read everything, decide, write changed statuses back.
pub fn run_once(
    dir: &Path,
    class: &ClassConfig,
    metrics: &Metrics,
) -> Result<CycleReport, CycleError> {
    let started = Instant::now();
    let mut snapshot = load_dir(dir)?;
    let eips: Vec<EipView> = snapshot
        .eips
        .iter()
        .map(|(_, e)| EipView::from_eip(e))
        .collect();
    let no_labels = BTreeMap::new();
    let services: Vec<ServiceView> = snapshot
        .services
        .iter()
        .map(|(_, s)| {
            let ns = s.metadata.namespace.as_deref().unwrap_or("default");
            let labels = snapshot.namespaces.get(ns).unwrap_or(&no_labels);
            let mut view = ServiceView::from_service(s, class, labels);
            // No finalizers on files: the directory is Berth's own, so an address in a
            // Service's status is taken as published by Berth, to be cleared on release.
            view.has_finalizer = !view.ingress.is_empty();
            view
        })
        .collect();
    let state = ClusterState { eips, services };
    let (engine, decided) = plan(&state);

    let mut changes: BTreeMap<manifests::Location, serde_yaml::Value> = BTreeMap::new();
    for ((at, svc), view) in snapshot.services.iter().zip(&state.services) {
        let Some(decision) = decided.services.get(&view.key) else {
            continue;
        };
        if decision.allocated {
            metrics.allocated();
        }
        if let Some(reason) = decision.failure {
            metrics.failed(reason);
        }
        let Some(ingress) = &decision.ingress else {
            continue;
        };
        if *ingress == view.ingress {
            continue;
        }
        let mut status =
            serde_json::to_value(svc.status.clone().unwrap_or_default()).unwrap_or_default();
        let entries: Vec<serde_json::Value> = ingress
            .iter()
            .map(|ip| serde_json::json!({"ip": ip.to_string(), "ipMode": "VIP"}))
            .collect();
        status["loadBalancer"] = if entries.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::json!({"ingress": entries})
        };
        changes.insert(*at, serde_yaml::to_value(status)?);
    }
    for (at, eip) in &snapshot.eips {
        let name = eip.metadata.name.clone().unwrap_or_default();
        let Some(status) = decided.eips.get(&name).and_then(|d| d.status.clone()) else {
            continue;
        };
        if eip.status.as_ref() != Some(&status) {
            changes.insert(*at, serde_yaml::to_value(status)?);
        }
    }

    let mut report = CycleReport {
        events: decided.events().cloned().collect(),
        ..CycleReport::default()
    };
    // Each touched file's text as read, to detect an edit made while this cycle ran.
    let mut touched: BTreeMap<usize, String> = BTreeMap::new();
    for (at, status) in changes {
        touched
            .entry(at.file)
            .or_insert_with(|| snapshot.files[at.file].join());
        let doc = &mut snapshot.files[at.file].documents[at.document];
        doc.text = replace_status(&doc.text, &status)?;
    }
    for (file, as_read) in &touched {
        let f = &snapshot.files[*file];
        // Someone edited the file since it was read: writing now would lose their edit. Skip
        // it; the watch sees the new content and the next cycle decides again from it.
        if std::fs::read_to_string(&f.path).ok().as_deref() != Some(as_read.as_str()) {
            tracing::debug!(path = %f.path.display(), "changed while deciding; not written");
            continue;
        }
        write_atomically(&f.path, &f.join()).map_err(|source| CycleError::Write {
            path: f.path.clone(),
            source,
        })?;
        report.files_written.push(f.path.clone());
    }
    for e in &report.events {
        log_event(e);
    }
    metrics.observe_pools(&engine);
    metrics.reconciled("standalone", started.elapsed());
    Ok(report)
}

fn log_event(e: &Event) {
    let subject = match &e.subject {
        crate::decision::Subject::Service(s) => format!("Service {s}"),
        crate::decision::Subject::Eip(n) => format!("Eip {n}"),
    };
    match e.type_ {
        EventType::Normal => tracing::info!(%subject, reason = %e.reason, "{}", e.message),
        EventType::Warning => tracing::warn!(%subject, reason = %e.reason, "{}", e.message),
    }
}

/// What the directory looks like now: names, sizes and modification times.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    manifest_paths(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
            let modified = meta.and_then(|m| m.modified().ok());
            (p, len, modified)
        })
        .collect()
}

/// Watches `dir` (polling every `poll`) and runs a pass on every change until `shutdown`.
pub async fn run(
    dir: PathBuf,
    class: ClassConfig,
    poll: Duration,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut seen = None;
    loop {
        let now = fingerprint(&dir);
        if seen.as_ref() != Some(&now) {
            match run_once(&dir, &class, &metrics) {
                Ok(report) => {
                    for p in &report.files_written {
                        tracing::info!(file = %p.display(), "status written");
                    }
                }
                Err(e) => tracing::error!("nothing changed: {e}"),
            }
            // Our own writes change the fingerprint; the next pass then finds nothing to do.
            seen = Some(now);
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(poll) => {}
        }
    }
}
