//! Standalone mode: `berth-controller --state-dir DIR`. The directory holds the same manifests
//! as a cluster would (multi-document YAML); each change is decided by [`crate::plan`] from
//! scratch, and each Service's allocation and each Eip's status are written back into the
//! same files, atomically. The directory is watched with inotify; only the files that changed
//! are read and parsed again.
//!
//! Nothing is lost and nothing moves:
//! - one bad document (not YAML, a type error, an invalid Eip, a wrong `apiVersion`, a
//!   duplicate name) is skipped and reported; its object keeps its last good content and the
//!   rest of the directory is served ([`manifests`]);
//! - a Service or a pool whose document vanished (a file moved away, truncated while being
//!   rewritten) keeps its addresses for a grace period ([`Options::grace`]): a pool hands out
//!   nothing new meanwhile, and a Service that comes back, even without its status, gets the
//!   same addresses;
//! - where two Services claim one address, the older allocation keeps it: each allocation's
//!   time is written with the status ([`api::keys::ALLOCATED_AT`]), since files have no
//!   creation time to trust;
//! - a file is only written when every edited document parses back to the intended object
//!   ([`writeback`]).

mod manifests;
mod writeback;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use api::manifest::{ManifestCache, Vanished};
use k8s_openapi::jiff::Timestamp;

pub use manifests::{
    Document, Location, ManifestError, ManifestFile, Object, Placed, Snapshot, load_dir,
    manifest_paths,
};
pub use writeback::{
    Edit, RewriteError, remove_stale_temporaries, rewrite_document, write_atomically,
};

use crate::decision::{Event, EventType, Subject};
use crate::ipam::ServiceRef;
use crate::metrics::Metrics;
use crate::plan::{ClusterState, plan};
use crate::view::{ClassConfig, EipView, ServiceView};

/// The default grace period of a vanished pool's or Service's addresses.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// How the directory is handled.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which Services are Berth's.
    pub class: ClassConfig,
    /// How long the addresses of a vanished pool or Service are kept before release.
    pub grace: Duration,
}

/// What one pass over the directory did.
#[derive(Debug, Default)]
pub struct CycleReport {
    /// Files rewritten.
    pub files_written: Vec<PathBuf>,
    /// Events decided (also logged).
    pub events: Vec<Event>,
    /// Documents skipped, by file and line (also logged when they first appear).
    pub problems: Vec<ManifestError>,
}

/// Why a pass changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    /// The directory cannot be listed; nothing was changed.
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

/// A claim time as the decisions compare it: microseconds since the epoch. Standalone views
/// carry this in [`ServiceView::created`] (finer than the seconds of a cluster's creation
/// timestamps, as two passes may fall in one second); it is only ever compared.
fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

/// When a Service's addresses were claimed: its `berth.io/allocated-at`, else its
/// `creationTimestamp`, else unknown.
fn claim_time(svc: &k8s_openapi::api::core::v1::Service) -> Option<i64> {
    let annotated = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(api::keys::ALLOCATED_AT))
        .and_then(|t| t.parse::<Timestamp>().ok());
    annotated
        .or_else(|| svc.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .map(micros)
}

/// The controller's memory of one directory between passes: the parsed files, and what
/// vanished.
#[derive(Debug)]
pub struct Directory {
    dir: PathBuf,
    options: Options,
    cache: ManifestCache<Object>,
    services: Vanished<ServiceRef, ServiceView>,
    eips: Vanished<String, EipView>,
    reported: Vec<ManifestError>,
    passes: u64,
}

impl Directory {
    /// Starts on `dir`: temporary files a killed controller left are removed first.
    pub fn open(dir: impl Into<PathBuf>, options: Options) -> Self {
        let dir = dir.into();
        for p in remove_stale_temporaries(&dir) {
            tracing::info!(file = %p.display(), "removed a temporary file left by an interrupted write");
        }
        Self {
            dir,
            services: Vanished::new(options.grace),
            eips: Vanished::new(options.grace),
            options,
            cache: ManifestCache::new(manifests::decode),
            reported: Vec::new(),
            passes: 0,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// When the next vanished pool's or Service's grace period ends.
    pub fn next_expiry(&self) -> Option<Instant> {
        [self.services.next_expiry(), self.eips.next_expiry()]
            .into_iter()
            .flatten()
            .min()
    }

    /// One pass over the whole directory: read it, decide everything, write changed
    /// statuses back.
    pub fn pass(&mut self, metrics: &Metrics, now: Instant) -> Result<CycleReport, CycleError> {
        self.pass_changed(None, metrics, now)
    }

    /// One pass after the files in `changed` changed (`None`: any file may have): read those
    /// again; when something changed, or a grace period ended, decide everything and write
    /// changed statuses back.
    pub fn pass_changed(
        &mut self,
        changed: Option<&BTreeSet<PathBuf>>,
        metrics: &Metrics,
        now: Instant,
    ) -> Result<CycleReport, CycleError> {
        let started = Instant::now();
        let wall = Timestamp::now();
        let files_changed = match changed {
            Some(paths) => self.cache.update_some(api::manifest::read_changed(paths)),
            None => self.cache.update(api::manifest::read_texts(&self.dir)?),
        };
        let due = self.next_expiry().is_some_and(|t| t <= now);
        if !files_changed && !due && self.passes > 0 {
            return Ok(CycleReport::default());
        }
        let mut snapshot = Snapshot::of(&self.cache);
        self.report_problems(&snapshot.problems, metrics);

        // Pools.
        let present_eips: BTreeMap<String, EipView> = snapshot
            .eips
            .iter()
            .map(|p| {
                let v = EipView::from_eip(&p.object);
                (v.spec.name.clone(), v)
            })
            .collect();
        let kept_before: BTreeSet<String> = self.eips.kept().map(|(k, _, _)| k.clone()).collect();
        self.eips.observe(present_eips.clone(), now);
        let mut eips: Vec<EipView> = present_eips.into_values().collect();
        let mut ghosts: BTreeSet<Subject> = BTreeSet::new();
        for (name, view, until) in self.eips.kept() {
            if !kept_before.contains(name) {
                tracing::warn!(eip = %name, grace_secs = until.saturating_duration_since(now).as_secs(), "pool vanished from the manifests: its Services keep their addresses for the grace period, nothing new is handed out");
            }
            ghosts.insert(Subject::Eip(name.clone()));
            eips.push(EipView {
                deleting: true,
                ..view.clone()
            });
        }
        for gone in kept_before.iter().filter(|n| self.eips.get(n).is_none()) {
            if !eips.iter().any(|e| e.spec.name == *gone) {
                tracing::warn!(eip = %gone, "pool's grace period ended: its addresses are released");
            }
        }

        // Services.
        let no_labels = BTreeMap::new();
        let mut services: Vec<ServiceView> = Vec::with_capacity(snapshot.services.len());
        let mut as_written: Vec<Vec<IpAddr>> = Vec::with_capacity(snapshot.services.len());
        for placed in &snapshot.services {
            let s = &placed.object;
            let ns = s.metadata.namespace.as_deref().unwrap_or("default");
            let labels = snapshot.namespaces.get(ns).unwrap_or(&no_labels);
            let mut view = ServiceView::from_service(s, &self.options.class, labels);
            view.created = claim_time(s);
            as_written.push(view.ingress.clone());
            if view.ingress.is_empty()
                && view.managed
                && let Some(ghost) = self.services.get(&view.key)
                && !ghost.ingress.is_empty()
            {
                // Back within the grace period without its status: same addresses.
                tracing::info!(service = %view.key, addresses = ?ghost.ingress, "Service is back: it keeps its addresses");
                view.ingress = ghost.ingress.clone();
                view.created = ghost.created;
            }
            // No finalizers on files: the directory is Berth's own, so an address in a
            // Service's status is taken as published by Berth, to be cleared on release.
            view.has_finalizer = !view.ingress.is_empty();
            if !placed.fresh && view.ingress.is_empty() {
                // Its document is broken and its last good content holds no address: nothing
                // new is allocated to it, since nothing could be written.
                view.managed = false;
            }
            services.push(view);
        }
        let kept_before: BTreeSet<ServiceRef> =
            self.services.kept().map(|(k, _, _)| k.clone()).collect();
        self.services.observe(
            services
                .iter()
                .map(|v| (v.key.clone(), v.clone()))
                .collect(),
            now,
        );
        let real = services.len();
        for (key, view, until) in self.services.kept() {
            if view.ingress.is_empty() || !view.managed {
                continue;
            }
            if !kept_before.contains(key) {
                tracing::warn!(service = %key, addresses = ?view.ingress, grace_secs = until.saturating_duration_since(now).as_secs(), "Service vanished from the manifests: its addresses are kept for the grace period");
            }
            ghosts.insert(Subject::Service(key.clone()));
            services.push(view.clone());
        }
        for gone in kept_before
            .iter()
            .filter(|k| self.services.get(k).is_none())
        {
            if !services[..real].iter().any(|v| v.key == *gone) {
                tracing::info!(service = %gone, "vanished Service's grace period ended: its addresses are released");
            }
        }

        let state = ClusterState { eips, services };
        let (engine, decided) = plan(&state);

        let mut changes: BTreeMap<Location, Edit> = BTreeMap::new();
        let now_text = Timestamp::from_microsecond(micros(wall))
            .unwrap_or(wall)
            .to_string();
        for (i, placed) in snapshot.services.iter().enumerate() {
            let view = &state.services[i];
            let Some(decision) = decided.services.get(&view.key) else {
                continue;
            };
            if decision.allocated {
                metrics.allocated();
            }
            if let Some(reason) = decision.failure {
                metrics.failed(reason);
            }
            let ingress = decision.ingress.as_ref().unwrap_or(&view.ingress);
            if let Some(present) = self.services.present_mut(&view.key) {
                present.ingress.clone_from(ingress);
            }
            if !placed.fresh {
                continue;
            }
            let mut edit = Edit::default();
            if *ingress != as_written[i] {
                let svc = &placed.object;
                let mut status = serde_json::to_value(svc.status.clone().unwrap_or_default())
                    .unwrap_or_default();
                let entries: Vec<serde_json::Value> = ingress
                    .iter()
                    .map(|ip| serde_json::json!({"ip": ip.to_string(), "ipMode": "VIP"}))
                    .collect();
                status["loadBalancer"] = if entries.is_empty() {
                    serde_json::json!({})
                } else {
                    serde_json::json!({"ingress": entries})
                };
                edit.status = Some(serde_yaml::to_value(status)?);
            }
            if view.managed && !ingress.is_empty() {
                let gained = ingress.iter().any(|a| !view.ingress.contains(a));
                let at = match view.created {
                    Some(t) if !gained => Timestamp::from_microsecond(t)
                        .map_or_else(|_| now_text.clone(), |t| t.to_string()),
                    _ => now_text.clone(),
                };
                let written = placed
                    .object
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(api::keys::ALLOCATED_AT));
                if written != Some(&at) {
                    edit.annotations.insert(api::keys::ALLOCATED_AT.into(), at);
                }
            }
            if !edit.is_empty() {
                changes.insert(placed.at, edit);
            }
        }
        for placed in snapshot.eips.iter().filter(|p| p.fresh) {
            let eip = &placed.object;
            let name = eip.metadata.name.clone().unwrap_or_default();
            let Some(mut status) = decided.eips.get(&name).and_then(|d| d.status.clone()) else {
                continue;
            };
            if let Some(selected) =
                crate::selection::selected(&eip.spec, &snapshot.nodes, &snapshot.peers)
            {
                if selected.status == "False"
                    && eip
                        .status
                        .as_ref()
                        .is_none_or(|s| !s.conditions.contains(&selected))
                {
                    tracing::warn!(eip = %name, reason = %selected.reason, "{}", selected.message);
                }
                status.conditions.push(selected);
            }
            if eip.status.as_ref() != Some(&status) {
                changes.insert(
                    placed.at,
                    Edit {
                        status: Some(serde_yaml::to_value(status)?),
                        ..Edit::default()
                    },
                );
            }
        }

        let mut report = CycleReport {
            events: decided
                .events()
                .filter(|e| !ghosts.contains(&e.subject))
                .cloned()
                .collect(),
            problems: snapshot.problems.clone(),
            ..CycleReport::default()
        };
        // Each touched file's text as read, to detect an edit made while this cycle ran.
        let mut touched: BTreeMap<usize, String> = BTreeMap::new();
        for (at, edit) in changes {
            let file = &mut snapshot.files[at.file];
            touched.entry(at.file).or_insert_with(|| file.join());
            let doc = &mut file.documents[at.document];
            match rewrite_document(&doc.text, &edit) {
                Ok(text) => doc.text = text,
                Err(e) => tracing::error!(
                    file = %file.path.display(),
                    line = doc.first_line,
                    "status not written: {e}"
                ),
            }
        }
        for (file, as_read) in &touched {
            let f = &snapshot.files[*file];
            let text = f.join();
            if text == *as_read {
                continue;
            }
            // The documents must still be the same documents once joined (a `---` inside an
            // edited one would split it).
            let again = ManifestFile::split(&f.path, &text);
            if again.documents.len() != f.documents.len() {
                tracing::error!(file = %f.path.display(), "status not written: the file would not split into the same documents");
                continue;
            }
            // Someone edited the file since it was read: writing now would lose their edit. Skip
            // it; the watch sees the new content and the next cycle decides again from it.
            if std::fs::read_to_string(&f.path).ok().as_deref() != Some(as_read.as_str()) {
                tracing::debug!(path = %f.path.display(), "changed while deciding; not written");
                continue;
            }
            write_atomically(&f.path, &text).map_err(|source| CycleError::Write {
                path: f.path.clone(),
                source,
            })?;
            // What was written is the file's last good content from now on, even if it is
            // replaced before the next read.
            self.cache.put(f.path.clone(), text);
            report.files_written.push(f.path.clone());
        }
        for e in &report.events {
            log_event(e);
        }
        if self.passes == 0 {
            tracing::info!(
                dir = %self.dir.display(),
                eips = snapshot.eips.len(),
                services = snapshot.services.len(),
                skipped = report.problems.len(),
                "manifests read"
            );
        }
        self.passes += 1;
        metrics.observe_pools(&engine);
        metrics.reconciled("standalone", started.elapsed());
        Ok(report)
    }

    /// Logs each skipped document once, when it first appears, and counts them.
    fn report_problems(&mut self, problems: &[ManifestError], metrics: &Metrics) {
        for p in problems.iter().filter(|p| !self.reported.contains(p)) {
            tracing::error!(file = %p.file.display(), line = p.line, "manifest skipped: {}", p.message);
        }
        metrics.manifests_skipped(problems.len());
        self.reported = problems.to_vec();
    }
}

/// One pass over `dir` from nothing (no memory of vanished objects): read everything,
/// decide, write changed statuses back.
pub fn run_once(
    dir: &Path,
    class: &ClassConfig,
    metrics: &Metrics,
) -> Result<CycleReport, CycleError> {
    Directory::open(
        dir,
        Options {
            class: class.clone(),
            grace: Duration::ZERO,
        },
    )
    .pass(metrics, Instant::now())
}

fn log_event(e: &Event) {
    let subject = match &e.subject {
        Subject::Service(s) => format!("Service {s}"),
        Subject::Eip(n) => format!("Eip {n}"),
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

/// Watches `dir` and runs a pass on every change, and when a vanished object's grace period
/// ends, until `shutdown`. The directory is watched with inotify (only the files that changed
/// are read and parsed again, off the async runtime); where a watch cannot be set up it is
/// read every `poll` instead.
pub async fn run(
    dir: PathBuf,
    options: Options,
    poll: Duration,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    // Watch before the first read, so that nothing written meanwhile is missed.
    let mut watch = match api::dir_watch::DirWatch::new(&dir) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "cannot watch the directory ({e}): reading it every {poll:?} instead");
            None
        }
    };
    let mut directory = Directory::open(dir, options);
    // `None`: read the whole directory.
    let mut changed: Option<BTreeSet<PathBuf>> = None;
    let mut seen = None;
    loop {
        let now = fingerprint(directory.dir());
        let due = directory.next_expiry().is_some_and(|t| t <= Instant::now());
        let polled_change = watch.is_none() && seen.as_ref() != Some(&now);
        if watch.is_some() || polled_change || due {
            let paths = if watch.is_some() {
                changed.take()
            } else {
                None
            };
            let m = metrics.clone();
            let done = tokio::task::spawn_blocking(move || {
                match directory.pass_changed(paths.as_ref(), &m, Instant::now()) {
                    Ok(report) => {
                        for p in &report.files_written {
                            tracing::info!(file = %p.display(), "status written");
                        }
                    }
                    Err(e) => tracing::error!("nothing changed: {e}"),
                }
                directory
            })
            .await;
            directory = match done {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!("a pass failed: {e}");
                    return;
                }
            };
            // Our own writes change the fingerprint; the next pass then finds nothing to do.
            seen = Some(now);
        }
        let expiry = directory.next_expiry();
        let grace_ends = async move {
            match expiry {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        match watch.as_mut() {
            Some(w) => tokio::select! {
                () = &mut shutdown => return,
                change = w.next() => match change {
                    Some(api::dir_watch::Change::Files(files)) => changed = Some(files),
                    Some(api::dir_watch::Change::Rescan) => changed = None,
                    None => {
                        tracing::warn!("the directory watch ended: reading it every {poll:?} instead");
                        watch = None;
                    }
                },
                () = grace_ends => changed = Some(BTreeSet::new()),
            },
            None => tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(poll) => {}
            },
        }
    }
}
