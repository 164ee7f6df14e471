//! The standalone state source: a directory of multi-document YAML manifests (`*.yaml`,
//! `*.yml`, not hidden), the same objects a cluster would hold. The controller's
//! standalone mode writes Service allocations into the same files.
//!
//! One bad document never stops the directory: it is skipped and reported by file and line,
//! the object it stood for keeps its last good content, and everything else is served
//! ([`api::manifest::ManifestCache`] holds the rules, shared with the controller). A pool
//! whose document vanished (its file moved away, or shrank in a rewrite) stays in force for a
//! grace period, as the controller keeps its Services' addresses meanwhile: a pool file moved
//! away and back withdraws nothing. A Service whose document goes is withdrawn at once, as a
//! deleted Service is in a cluster.
//!
//! This module knows nothing of what the objects mean; it only turns files into a state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use api::manifest::{DecodeError, ManifestCache, ObjectId, Vanished, typed};

use crate::state::{ClusterState, Object};

pub use api::manifest::{ManifestError, manifest_paths};

/// Splits a file into `(first line, text)` documents at `---` lines.
pub fn split_documents(text: &str) -> Vec<(usize, String)> {
    api::manifest::ManifestFile::split(Path::new(""), text)
        .documents
        .into_iter()
        .map(|d| (d.first_line, d.text))
        .collect()
}

/// The speaker's [`api::manifest::Decoder`]: the kinds it reads, typed.
fn decode(kind: &str, value: serde_yaml::Value, text: &str) -> Option<Result<Object, DecodeError>> {
    fn boxed<T: serde::de::DeserializeOwned>(
        value: serde_yaml::Value,
        text: &str,
    ) -> Result<Box<T>, DecodeError> {
        typed(value, text).map(Box::new)
    }
    Some(match kind {
        "Node" => boxed(value, text).map(Object::Node),
        "Service" => boxed(value, text).map(Object::Service),
        "EndpointSlice" => boxed(value, text).map(Object::EndpointSlice),
        "Eip" => boxed(value, text).map(Object::Eip),
        "BgpConf" => boxed(value, text).map(Object::BgpConf),
        "BgpPeer" => boxed(value, text).map(Object::BgpPeer),
        "Secret" => boxed(value, text).map(Object::Secret),
        _ => return None,
    })
}

/// Parses a set of files (path, text) into one state and the documents skipped.
pub fn parse_files(files: &[(PathBuf, String)]) -> (ClusterState, Vec<ManifestError>) {
    let mut cache = ManifestCache::new(decode);
    cache.update(
        files
            .iter()
            .map(|(p, t)| (p.clone(), Ok(t.clone())))
            .collect(),
    );
    let read = cache.read();
    let state = ClusterState::from_objects(read.objects.into_iter().map(|e| e.object));
    (state, read.problems)
}

/// Reads every manifest of `dir` into one state and the documents skipped; fails only when
/// the directory cannot be listed.
pub fn load_dir(dir: &Path) -> Result<(ClusterState, Vec<ManifestError>), ManifestError> {
    let mut cache = ManifestCache::new(decode);
    cache.update(api::manifest::read_texts(dir)?);
    let read = cache.read();
    let state = ClusterState::from_objects(read.objects.into_iter().map(|e| e.object));
    Ok((state, read.problems))
}

/// What one poll of the directory found.
#[derive(Debug, Clone, PartialEq)]
pub enum Poll {
    /// Nothing changed since the last poll.
    Unchanged,
    /// The state or the set of problems changed.
    Changed {
        /// Every object in force (skipped documents' last good content and vanished objects
        /// in their grace period included).
        state: ClusterState,
        /// Documents skipped now, by file and line.
        problems: Vec<ManifestError>,
    },
    /// The directory cannot be listed; the last state stays in force (reported once per
    /// distinct error).
    Broken(ManifestError),
}

/// Kinds whose vanished objects are kept for the grace period: pools, whose Services keep
/// their addresses at the controller meanwhile. Any other object removed (a Service, a
/// BgpPeer) takes effect at once.
fn kept_when_vanished(kind: &str) -> bool {
    kind == "Eip"
}

/// Watches a directory by reading it, remembering each file's text and parse so that only a
/// change is reported, and vanished objects until their grace period ends.
#[derive(Debug)]
pub struct DirWatcher {
    dir: PathBuf,
    cache: ManifestCache<Object>,
    /// Pools whose document vanished, still in force.
    vanished: Vanished<ObjectId, Object>,
    last: Option<(ClusterState, Vec<ManifestError>)>,
    last_error: Option<ManifestError>,
}

impl DirWatcher {
    /// A watcher of `dir` that has read nothing yet, keeping vanished pools for `grace`.
    pub fn new(dir: impl Into<PathBuf>, grace: Duration) -> Self {
        Self {
            dir: dir.into(),
            cache: ManifestCache::new(decode),
            vanished: Vanished::new(grace),
            last: None,
            last_error: None,
        }
    }

    /// The directory watched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// When the next vanished object's grace period ends, if any is waiting.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.vanished.next_expiry()
    }

    /// Reads the directory and says what changed, as of `now`.
    pub fn poll(&mut self, now: Instant) -> Poll {
        self.refresh(None, now)
    }

    /// Reads again the files in `changed` (the whole directory when `None`) and says what
    /// changed, as of `now`.
    pub fn refresh(&mut self, changed: Option<&BTreeSet<PathBuf>>, now: Instant) -> Poll {
        let files_changed = match changed {
            Some(paths) => self.cache.update_some(api::manifest::read_changed(paths)),
            None => match api::manifest::read_texts(&self.dir) {
                Ok(f) => {
                    self.last_error = None;
                    self.cache.update(f)
                }
                Err(e) => {
                    if self.last_error.as_ref() == Some(&e) {
                        return Poll::Unchanged;
                    }
                    self.last_error = Some(e.clone());
                    return Poll::Broken(e);
                }
            },
        };
        let expired = self.next_expiry().is_some_and(|t| t <= now);
        if !files_changed && !expired && self.last.is_some() {
            return Poll::Unchanged;
        }
        let read = self.cache.read();
        let present: BTreeMap<ObjectId, Object> =
            read.objects.into_iter().map(|e| (e.id, e.object)).collect();
        self.vanished.observe(
            present
                .iter()
                .filter(|(id, _)| kept_when_vanished(&id.kind))
                .map(|(id, o)| (id.clone(), o.clone()))
                .collect(),
            now,
        );
        let state = ClusterState::from_objects(
            self.vanished
                .kept()
                .map(|(_, o, _)| o.clone())
                .chain(present.into_values()),
        );
        let now_read = (state, read.problems);
        if self.last.as_ref() == Some(&now_read) {
            return Poll::Unchanged;
        }
        self.last = Some(now_read.clone());
        Poll::Changed {
            state: now_read.0,
            problems: now_read.1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "kind: Node\nmetadata: {name: n1}\n";
    const PEER: &str = "apiVersion: network.kubesphere.io/v1alpha2\nkind: BgpPeer\nmetadata: {name: p}\nspec: {conf: {peerAs: 65000, neighborAddress: 10.0.0.1}}\n";
    const EIP: &str = "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: pool}\nspec: {address: 192.0.2.0/29}\n";

    fn changed(p: Poll) -> (ClusterState, Vec<ManifestError>) {
        match p {
            Poll::Changed { state, problems } => (state, problems),
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[test]
    fn split_tracks_first_lines() {
        let docs = split_documents("a: 1\n---\nb: 2\n--- # c\nc: 3\n");
        let lines: Vec<_> = docs.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 3, 5]);
        assert_eq!(docs[2].1, "c: 3\n");
    }

    #[test]
    fn reads_kinds_and_skips_others() {
        let text = format!(
            "{NODE}---\nkind: ConfigMap\nmetadata: {{name: x}}\n---\n# only a comment\n---\napiVersion: network.kubesphere.io/v1alpha2\nkind: BgpConf\nmetadata: {{name: default}}\nspec: {{as: 65001}}\n"
        );
        let (state, problems) = parse_files(&[(PathBuf::from("m.yaml"), text)]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(state.nodes.len(), 1);
        assert_eq!(state.bgp_confs["default"].spec.as_number, 65001);
        assert_eq!(state.len(), 2);
    }

    #[test]
    fn a_broken_document_is_skipped_and_reported_by_file_and_line_the_rest_is_served() {
        let text = format!("{NODE}---\nkind: Service\nmetadata:\n  name: [oops\n---\n{PEER}");
        let (state, problems) = parse_files(&[(PathBuf::from("svc.yaml"), text)]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].file, PathBuf::from("svc.yaml"));
        assert!(
            (4..=7).contains(&problems[0].line),
            "line {}",
            problems[0].line
        );
        assert_eq!((state.nodes.len(), state.bgp_peers.len()), (1, 1));

        // A type error (peerAs past u32) names the field's own line.
        let text = format!(
            "{NODE}---\n{PEER}---\nkind: BgpPeer\nmetadata: {{name: q}}\nspec:\n  conf:\n    peerAs: 4294967296\n    neighborAddress: 10.0.0.2\n"
        );
        let (state, problems) = parse_files(&[(PathBuf::from("p.yaml"), text)]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, 13, "{}", problems[0]);
        assert!(
            problems[0].message.starts_with("BgpPeer q"),
            "{}",
            problems[0]
        );
        assert!(state.bgp_peers.contains_key("p") && !state.bgp_peers.contains_key("q"));

        let (_, problems) = parse_files(&[(PathBuf::from("k.yaml"), "metadata: {}\n".into())]);
        assert!(problems[0].message.contains("kind"), "{problems:?}");
    }

    #[test]
    fn every_kind_is_read_only_in_its_own_api_version() {
        for (kind, wrong) in [
            ("Eip", "metallb.io/v1beta1"),
            ("BgpPeer", "network.kubesphere.io/v1alpha1"),
            ("BgpConf", "metallb.io/v1beta2"),
            ("Node", "v2"),
            ("Service", "apps/v1"),
            ("EndpointSlice", "discovery.k8s.io/v1beta1"),
            ("Secret", "example.com/v1"),
        ] {
            let text = format!("apiVersion: {wrong}\nkind: {kind}\nmetadata: {{name: x}}\n");
            let (state, problems) = parse_files(&[(PathBuf::from("w.yaml"), text)]);
            assert!(state.is_empty(), "{kind} of {wrong} was read");
            assert_eq!(problems.len(), 1, "{kind}: {problems:?}");
            assert!(
                problems[0].message.contains(wrong) && problems[0].line == 1,
                "{}",
                problems[0]
            );
        }
        // The pool of issue 14 item 10: MetalLB's group is not a pool.
        let metallb = EIP.replace("network.kubesphere.io/v1alpha2", "metallb.io/v1beta1");
        let (state, _) = parse_files(&[(PathBuf::from("e.yaml"), metallb)]);
        assert!(state.eips.is_empty());
    }

    #[test]
    fn duplicates_across_files_the_first_by_file_order_wins() {
        let other = EIP.replace("192.0.2.0/29", "198.51.100.0/29");
        let (state, problems) = parse_files(&[
            (PathBuf::from("a.yaml"), EIP.into()),
            (PathBuf::from("b.yaml"), other),
        ]);
        assert_eq!(state.eips["pool"].spec.address, "192.0.2.0/29");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].file, PathBuf::from("b.yaml"));
        assert!(problems[0].message.contains("a.yaml:1"), "{}", problems[0]);
        // Namespaced kinds: the same name in two namespaces is two objects.
        let svc = |ns: &str| {
            format!("apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: {ns}}}\n")
        };
        let (state, problems) = parse_files(&[
            (PathBuf::from("a.yaml"), svc("a")),
            (
                PathBuf::from("b.yaml"),
                format!("{}---\n{}", svc("b"), svc("a")),
            ),
        ]);
        assert_eq!(state.services.len(), 2);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn a_document_that_breaks_keeps_its_last_good_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, format!("{NODE}---\n{PEER}")).expect("write");
        std::fs::write(dir.path().join(".hidden.yaml"), "garbage: [").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "garbage: [").expect("write");
        let mut w = DirWatcher::new(dir.path(), Duration::ZERO);
        let t = Instant::now();
        let (s, p) = changed(w.poll(t));
        assert_eq!((s.nodes.len(), s.bgp_peers.len(), p.len()), (1, 1, 0));
        assert_eq!(w.poll(t), Poll::Unchanged);
        // The peer's AS becomes a type error: the peer stays as it was, reported.
        let bad = PEER.replace("65000", "4294967296");
        std::fs::write(&path, format!("{NODE}---\n{bad}")).expect("write");
        let (s, p) = changed(w.poll(t));
        assert_eq!(s.bgp_peers["p"].spec.conf.peer_as, 65000);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].file == path && p[0].message.contains("last good"),
            "{}",
            p[0]
        );
        assert_eq!(
            w.poll(t),
            Poll::Unchanged,
            "the same problem is reported once"
        );
        // Bad YAML in the same place: still the last good peer.
        std::fs::write(&path, format!("{NODE}---\nkind: BgpPeer\nspec: [\n")).expect("write");
        let (s, p) = changed(w.poll(t));
        assert_eq!(s.bgp_peers["p"].spec.conf.peer_as, 65000);
        assert_eq!(p.len(), 1);
        std::fs::write(
            &path,
            format!("{NODE}---\nkind: Node\nmetadata: {{name: n2}}\n"),
        )
        .expect("write");
        let (s, p) = changed(w.poll(t));
        assert_eq!((s.nodes.len(), s.bgp_peers.len(), p.len()), (2, 0, 0));
    }

    #[test]
    fn a_vanished_pool_stays_for_the_grace_period_a_service_goes_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\n";
        std::fs::write(dir.path().join("pools.yaml"), EIP).expect("write");
        std::fs::write(dir.path().join("svc.yaml"), format!("{svc}---\n{PEER}")).expect("write");
        let grace = Duration::from_secs(30);
        let mut w = DirWatcher::new(dir.path(), grace);
        let t0 = Instant::now();
        let (s, _) = changed(w.poll(t0));
        assert_eq!(
            (s.eips.len(), s.services.len(), s.bgp_peers.len()),
            (1, 1, 1)
        );
        std::fs::remove_file(dir.path().join("pools.yaml")).expect("rm");
        std::fs::write(dir.path().join("svc.yaml"), "").expect("shrink");
        let (s, _) = changed(w.poll(t0));
        assert_eq!(s.eips.len(), 1, "the pool is kept in its grace period");
        assert!(s.services.is_empty(), "a removed Service goes at once");
        assert!(s.bgp_peers.is_empty(), "a removed peer goes at once");
        assert_eq!(w.next_expiry(), Some(t0 + grace));
        // The pool comes back within the grace period: nothing changed for the speaker.
        std::fs::write(dir.path().join("pools.yaml"), EIP).expect("write");
        assert_eq!(w.poll(t0 + grace / 2), Poll::Unchanged);
        assert_eq!(w.next_expiry(), None);
        // Away again, for good: it goes when the grace period ends.
        std::fs::remove_file(dir.path().join("pools.yaml")).expect("rm");
        let t1 = t0 + grace;
        assert_eq!(w.poll(t1), Poll::Unchanged, "nothing withdrawn");
        assert_eq!(w.poll(t1 + grace / 2), Poll::Unchanged);
        let (s, _) = changed(w.poll(t1 + grace));
        assert!(s.eips.is_empty());
    }

    #[test]
    fn a_refresh_reads_only_the_files_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
        std::fs::write(&a, NODE).expect("write");
        std::fs::write(&b, PEER).expect("write");
        let mut w = DirWatcher::new(dir.path(), Duration::ZERO);
        let t = Instant::now();
        let (s, _) = changed(w.poll(t));
        assert_eq!((s.nodes.len(), s.bgp_peers.len()), (1, 1));
        std::fs::write(
            &a,
            format!("{NODE}---\nkind: Node\nmetadata: {{name: n2}}\n"),
        )
        .expect("write");
        std::fs::remove_file(&b).expect("rm");
        let (s, _) = changed(w.refresh(Some(&BTreeSet::from([a.clone()])), t));
        assert_eq!(
            (s.nodes.len(), s.bgp_peers.len()),
            (2, 1),
            "b not read again yet"
        );
        let (s, _) = changed(w.refresh(Some(&BTreeSet::from([b])), t));
        assert_eq!((s.nodes.len(), s.bgp_peers.len()), (2, 0));
        assert_eq!(w.refresh(Some(&BTreeSet::new()), t), Poll::Unchanged);
    }
}
