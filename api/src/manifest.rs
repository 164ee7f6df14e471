//! A directory of multi-document YAML manifests, as the controller and the speaker read it in
//! standalone mode: which files count, how a file splits into documents (keeping the `---`
//! separators so it can be written back unchanged), a broken manifest's file and line, and the
//! rules both binaries apply to what they read ([`ManifestCache`]: one bad document, a wrong
//! `apiVersion` or a duplicate is skipped and reported, never the directory) and to what
//! vanishes ([`Vanished`]: kept for a grace period).
//!
//! This module knows the kinds' identities and API versions, not what any object means.

use std::fmt;
use std::path::{Path, PathBuf};

/// A manifest that could not be read, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The file (or the directory when it cannot be listed).
    pub file: PathBuf,
    /// 1-based line; 0 when the error is not about a line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

impl std::error::Error for ManifestError {}

/// One YAML document of a file: its text and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// 1-based line of the document's first line (after any `---`).
    pub first_line: usize,
    /// The text, without the `---` separator line.
    pub text: String,
}

/// A file split into documents, keeping the separators so it can be written back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// The file.
    pub path: PathBuf,
    /// Text before the first document (a leading `---` line, comments), kept verbatim.
    pub separators: Vec<String>,
    /// The documents, in order; `separators[i]` precedes `documents[i]`.
    pub documents: Vec<Document>,
}

fn is_separator(line: &str) -> bool {
    line == "---" || line.starts_with("--- ") || line.starts_with("---\t")
}

impl ManifestFile {
    /// Splits `text` into documents at `---` lines.
    pub fn split(path: &Path, text: &str) -> ManifestFile {
        let mut separators = vec![String::new()];
        let mut documents = vec![Document {
            first_line: 1,
            text: String::new(),
        }];
        for (i, line) in text.split_inclusive('\n').enumerate() {
            if is_separator(line.trim_end_matches(['\n', '\r'])) {
                separators.push(line.to_string());
                documents.push(Document {
                    first_line: i + 2,
                    text: String::new(),
                });
            } else if let Some(doc) = documents.last_mut() {
                doc.text.push_str(line);
            }
        }
        ManifestFile {
            path: path.to_path_buf(),
            separators,
            documents,
        }
    }

    /// The file's text again, documents as they are now.
    pub fn join(&self) -> String {
        let mut out = String::new();
        for (sep, doc) in self.separators.iter().zip(&self.documents) {
            out.push_str(sep);
            out.push_str(&doc.text);
        }
        out
    }
}

/// The manifest files of `dir`: `*.yaml` / `*.yml`, not hidden, sorted by name.
pub fn manifest_paths(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| is_manifest_name(p) && p.is_file())
        .collect();
    paths.sort();
    Ok(paths)
}

/// Whether a path's name is a manifest's: `*.yaml` / `*.yml`, not hidden (editors' and
/// Berth's own temporary files are hidden).
pub fn is_manifest_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// Reads the manifest files among `paths` again: each with its text, or `None` when it is
/// gone (or is no longer a regular file).
#[allow(
    clippy::type_complexity,
    reason = "a list of (path, that file's state)"
)]
pub fn read_changed(
    paths: &std::collections::BTreeSet<PathBuf>,
) -> Vec<(PathBuf, Option<Result<String, ManifestError>>)> {
    paths
        .iter()
        .filter(|p| is_manifest_name(p))
        .map(|p| {
            let state = match std::fs::read_to_string(p) {
                Ok(text) => Some(Ok(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(_) if !p.is_file() => None,
                Err(e) => Some(Err(ManifestError {
                    file: p.clone(),
                    line: 0,
                    message: e.to_string(),
                })),
            };
            (p.clone(), state)
        })
        .collect()
}

/// Who an object is: its kind, namespace (for namespaced kinds; `default` when the manifest
/// has none) and name. Two documents with one identity are duplicates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace` of a namespaced kind; `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// The `apiVersion`s accepted for a kind Berth reads from a directory; `None` for other kinds.
///
/// Only these are read: an `Eip` of another group (MetalLB's, say) or an old version is not
/// Berth's object, and a pool must never come from it.
pub fn accepted_api_versions(kind: &str) -> Option<&'static [&'static str]> {
    const BERTH: &[&str] = &[concat!("network.kubesphere.io", "/", "v1alpha2")];
    match kind {
        "Eip" | "BgpConf" | "BgpPeer" => Some(BERTH),
        "Service" | "Node" | "Namespace" | "Secret" => Some(&["v1"]),
        "EndpointSlice" => Some(&["discovery.k8s.io/v1"]),
        _ => None,
    }
}

fn namespaced(kind: &str) -> bool {
    matches!(kind, "Service" | "EndpointSlice" | "Secret")
}

/// Why a document could not be turned into an object, and where inside the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// 0-based line inside the document, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl DecodeError {
    /// An error about the whole object (e.g. it fails validation).
    pub fn object(message: impl Into<String>) -> Self {
        Self {
            line: None,
            message: message.into(),
        }
    }
}

/// Deserializes a document already parsed to `value` into `T`. On a type error the document's
/// `text` is parsed again, only to find the line of the offending field.
pub fn typed<T: serde::de::DeserializeOwned>(
    value: serde_yaml::Value,
    text: &str,
) -> Result<T, DecodeError> {
    serde_yaml::from_value(value).map_err(|e| {
        let line = serde_yaml::from_str::<T>(text)
            .err()
            .and_then(|e| e.location())
            .map(|l| l.line().saturating_sub(1));
        DecodeError {
            line,
            message: e.to_string(),
        }
    })
}

/// Turns one document of a kind into a reader's object: `None` for kinds the reader does not
/// read (they are skipped silently), an error for an object it cannot take.
pub type Decoder<T> =
    fn(kind: &str, value: serde_yaml::Value, text: &str) -> Option<Result<T, DecodeError>>;

/// What became of one document.
#[derive(Debug, Clone)]
enum Outcome<T> {
    /// Empty, only comments, or a kind the reader does not read.
    Nothing,
    /// Read.
    Good(ObjectId, T),
    /// Could not be read; `kept` is the last good content of the object(s) it stood for.
    Broken {
        error: ManifestError,
        id: Option<ObjectId>,
        kept: Vec<(ObjectId, T)>,
    },
}

impl<T> Outcome<T> {
    /// The objects this document stands for now (read, or kept from before).
    fn objects(&self) -> Vec<(&ObjectId, &T)> {
        match self {
            Outcome::Good(id, o) => vec![(id, o)],
            Outcome::Broken { kept, .. } => kept.iter().map(|(id, o)| (id, o)).collect(),
            Outcome::Nothing => Vec::new(),
        }
    }
}

/// One file as last read: its text, its documents, and what each document became.
#[derive(Debug, Clone)]
struct FileRead<T> {
    text: String,
    file: ManifestFile,
    outcomes: Vec<Outcome<T>>,
    /// Why the file could not be read this time (its last content stays in force).
    unreadable: Option<ManifestError>,
}

/// One object of a [`DirRead`] and where it is.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    /// Index into [`DirRead::files`].
    pub file: usize,
    /// Index into that file's documents.
    pub document: usize,
    /// Who it is.
    pub id: ObjectId,
    /// The object.
    pub object: T,
    /// `false` when the document is broken now and this is its last good content: the text
    /// in the file is not this object, so nothing may be written into it.
    pub fresh: bool,
}

/// Everything a [`ManifestCache`] holds, merged: each identity once (the first by file
/// order, then document order), and every problem.
#[derive(Debug, Clone)]
pub struct DirRead<T> {
    /// The files, sorted by name.
    pub files: Vec<ManifestFile>,
    /// The objects, in file and document order.
    pub objects: Vec<Entry<T>>,
    /// Documents skipped (broken, wrong `apiVersion`, invalid, duplicate), by file and line.
    pub problems: Vec<ManifestError>,
}

/// The parsed content of a directory, file by file: a file is parsed again only when its text
/// changed, and a document that stops parsing keeps the object it last stood for.
///
/// Rules, the same for every kind and both binaries:
/// - a document that is not YAML, has no `kind`, has an `apiVersion` not accepted for its
///   kind ([`accepted_api_versions`]; a missing one is taken as the accepted one), or that the
///   reader's [`Decoder`] refuses is skipped and reported by file and line; the object it
///   stood for before stays in force (same identity; for a document too broken to name its
///   object, every object the file held before and no longer shows);
/// - of two documents with one [`ObjectId`], the first by file name then position wins; the
///   other is skipped and reported.
#[derive(Debug)]
pub struct ManifestCache<T> {
    decode: Decoder<T>,
    files: std::collections::BTreeMap<PathBuf, FileRead<T>>,
}

impl<T: Clone> ManifestCache<T> {
    /// An empty cache reading objects with `decode`.
    pub fn new(decode: Decoder<T>) -> Self {
        Self {
            decode,
            files: std::collections::BTreeMap::new(),
        }
    }

    /// Replaces the directory's content with `files` (path, text or why it could not be
    /// read); files not listed are gone. An unreadable file keeps what it last held and is
    /// reported. Returns whether anything changed.
    pub fn update(&mut self, files: Vec<(PathBuf, Result<String, ManifestError>)>) -> bool {
        let listed: std::collections::BTreeSet<&PathBuf> = files.iter().map(|(p, _)| p).collect();
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !listed.contains(p))
            .cloned()
            .collect();
        let mut changed = !gone.is_empty();
        for p in gone {
            self.files.remove(&p);
        }
        for (path, state) in files {
            changed |= self.take(path, state);
        }
        changed
    }

    /// Takes the new state of some files only (from [`read_changed`]: `None` is a file gone);
    /// the others stay as they are. Returns whether anything changed.
    #[allow(
        clippy::type_complexity,
        reason = "a list of (path, that file's state)"
    )]
    pub fn update_some(
        &mut self,
        files: Vec<(PathBuf, Option<Result<String, ManifestError>>)>,
    ) -> bool {
        let mut changed = false;
        for (path, state) in files {
            changed |= match state {
                Some(state) => self.take(path, state),
                None => self.files.remove(&path).is_some(),
            };
        }
        changed
    }

    /// One file's new state; whether it changed anything.
    fn take(&mut self, path: PathBuf, state: Result<String, ManifestError>) -> bool {
        let old = self.files.remove(&path);
        let (read, changed) = match (state, old) {
            (Ok(text), Some(old)) if old.text == text && old.unreadable.is_none() => (old, false),
            (Ok(text), old) => (read_file(&path, text, old.as_ref(), self.decode), true),
            (Err(e), old) => {
                let mut kept = old.unwrap_or_else(|| FileRead {
                    text: String::new(),
                    file: ManifestFile::split(&path, ""),
                    outcomes: vec![Outcome::Nothing],
                    unreadable: None,
                });
                let changed = kept.unreadable.as_ref() != Some(&e);
                kept.unreadable = Some(e);
                (kept, changed)
            }
        };
        self.files.insert(path, read);
        changed
    }

    /// Takes `text` as the content of `path` now (a file this process just wrote), without
    /// reading it back.
    pub fn put(&mut self, path: PathBuf, text: String) {
        self.take(path, Ok(text));
    }

    /// The merged view of every file.
    pub fn read(&self) -> DirRead<T> {
        let mut out = DirRead {
            files: Vec::with_capacity(self.files.len()),
            objects: Vec::new(),
            problems: Vec::new(),
        };
        let mut first: std::collections::HashMap<&ObjectId, (&Path, usize)> =
            std::collections::HashMap::new();
        for (f, read) in self.files.values().enumerate() {
            if let Some(e) = &read.unreadable {
                let mut e = e.clone();
                e.message.push_str("; its last content stays in force");
                out.problems.push(e);
            }
            for (d, outcome) in read.outcomes.iter().enumerate() {
                let line = read.file.documents[d].first_line;
                if let Outcome::Broken { error, kept, .. } = outcome {
                    let mut e = error.clone();
                    e.message.push_str(if !kept.is_empty() {
                        "; skipped, its last good content stays in force"
                    } else {
                        "; skipped"
                    });
                    out.problems.push(e);
                }
                for (id, object) in outcome.objects() {
                    if let Some(&(prior, pline)) = first.get(id) {
                        out.problems.push(ManifestError {
                            file: read.file.path.clone(),
                            line,
                            message: format!(
                                "duplicate {id}: first defined at {}:{pline}; this one is skipped",
                                prior.display()
                            ),
                        });
                        continue;
                    }
                    first.insert(id, (&read.file.path, line));
                    out.objects.push(Entry {
                        file: f,
                        document: d,
                        id: id.clone(),
                        object: object.clone(),
                        fresh: matches!(outcome, Outcome::Good(..)),
                    });
                }
            }
            out.files.push(read.file.clone());
        }
        out
    }
}

fn read_file<T: Clone>(
    path: &Path,
    text: String,
    old: Option<&FileRead<T>>,
    decode: Decoder<T>,
) -> FileRead<T> {
    let file = ManifestFile::split(path, &text);
    let mut outcomes: Vec<Outcome<T>> = file
        .documents
        .iter()
        .map(|doc| read_document(path, doc, decode))
        .collect();
    if let Some(old) = old {
        keep_last_good(&mut outcomes, old);
    }
    FileRead {
        text,
        file,
        outcomes,
        unreadable: None,
    }
}

/// Gives each broken document the last good content of what it stood for in `old`: the
/// object of the same identity; and where a document is too broken to say who it is, every
/// object the file held before and no longer shows (the first such document keeps them all,
/// so a file half-written or mangled withdraws nothing).
fn keep_last_good<T: Clone>(outcomes: &mut [Outcome<T>], old: &FileRead<T>) {
    let before: Vec<(&ObjectId, &T)> = old.outcomes.iter().flat_map(Outcome::objects).collect();
    let named: std::collections::HashSet<ObjectId> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Good(id, _) | Outcome::Broken { id: Some(id), .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    let mut orphans: Option<Vec<(ObjectId, T)>> = Some(
        before
            .iter()
            .filter(|(id, _)| !named.contains(*id))
            .map(|(id, o)| ((*id).clone(), (*o).clone()))
            .collect(),
    );
    for outcome in outcomes.iter_mut() {
        if let Outcome::Broken { id, kept, .. } = outcome {
            match id {
                Some(id) => kept.extend(
                    before
                        .iter()
                        .filter(|(i, _)| *i == id)
                        .map(|(i, o)| ((*i).clone(), (*o).clone()))
                        .take(1),
                ),
                None => kept.extend(orphans.take().unwrap_or_default()),
            }
        }
    }
}

fn read_document<T>(path: &Path, doc: &Document, decode: Decoder<T>) -> Outcome<T> {
    let broken = |line: usize, message: String, id: Option<ObjectId>| Outcome::Broken {
        error: ManifestError {
            file: path.to_path_buf(),
            line,
            message,
        },
        id,
        kept: Vec::new(),
    };
    let value: serde_yaml::Value = match serde_yaml::from_str(&doc.text) {
        Ok(v) => v,
        Err(e) => {
            let line = e.location().map_or(0, |l| l.line().saturating_sub(1));
            return broken(doc.first_line + line, e.to_string(), None);
        }
    };
    if value.is_null() {
        return Outcome::Nothing;
    }
    let Some(kind) = value
        .get("kind")
        .and_then(|k| k.as_str())
        .map(str::to_string)
    else {
        return broken(doc.first_line, "document has no `kind`".into(), None);
    };
    let meta = value.get("metadata");
    let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(|v| v.as_str());
    let id = ObjectId {
        namespace: namespaced(&kind).then(|| field("namespace").unwrap_or("default").to_string()),
        name: field("name").unwrap_or_default().to_string(),
        kind: kind.clone(),
    };
    let version = value
        .get("apiVersion")
        .map(|v| v.as_str().unwrap_or("").to_string());
    let Some(result) = decode(&kind, value, &doc.text) else {
        return Outcome::Nothing;
    };
    if let (Some(version), Some(accepted)) = (&version, accepted_api_versions(&kind))
        && !accepted.contains(&version.as_str())
    {
        return broken(
            doc.first_line,
            format!(
                "{id}: apiVersion {version:?} is not {}",
                accepted.join(" or ")
            ),
            Some(id),
        );
    }
    match result {
        Ok(object) => Outcome::Good(id, object),
        Err(e) => broken(
            doc.first_line + e.line.unwrap_or(0),
            format!("{id}: {}", e.message),
            Some(id),
        ),
    }
}

/// Reads the text of every manifest file of `dir` ([`manifest_paths`]), each with its own
/// result: one unreadable file (permissions, not UTF-8) does not hide the others. A file
/// removed between listing and reading (an atomic rename) is left out; the next read sees
/// the new one. Fails only when the directory cannot be listed.
#[allow(
    clippy::type_complexity,
    reason = "a list of (path, that file's result)"
)]
pub fn read_texts(
    dir: &Path,
) -> Result<Vec<(PathBuf, Result<String, ManifestError>)>, ManifestError> {
    let paths = manifest_paths(dir).map_err(|e| ManifestError {
        file: dir.to_path_buf(),
        line: 0,
        message: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => out.push((path, Ok(text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let error = ManifestError {
                    file: path.clone(),
                    line: 0,
                    message: e.to_string(),
                };
                out.push((path, Err(error)));
            }
        }
    }
    Ok(out)
}

/// Objects whose document vanished (the file moved away, or shrank in a rewrite), kept for a
/// grace period so that a file that comes back finds everything where it was.
#[derive(Debug, Clone)]
pub struct Vanished<K, V> {
    grace: std::time::Duration,
    present: std::collections::BTreeMap<K, V>,
    kept: std::collections::BTreeMap<K, (V, std::time::Instant)>,
}

impl<K: Ord + Clone, V: Clone> Vanished<K, V> {
    /// Nothing seen yet; vanished objects are kept for `grace` (zero: not at all).
    pub fn new(grace: std::time::Duration) -> Self {
        Self {
            grace,
            present: std::collections::BTreeMap::new(),
            kept: std::collections::BTreeMap::new(),
        }
    }

    /// Takes the objects present now: what was present before and is not now is kept from
    /// `now` for the grace period; what is present again, or past its grace, is dropped.
    pub fn observe(&mut self, present: std::collections::BTreeMap<K, V>, now: std::time::Instant) {
        for (k, v) in std::mem::take(&mut self.present) {
            if !present.contains_key(&k) && !self.grace.is_zero() {
                self.kept.entry(k).or_insert((v, now + self.grace));
            }
        }
        self.kept
            .retain(|k, (_, until)| *until > now && !present.contains_key(k));
        self.present = present;
    }

    /// The vanished objects still in their grace period, with when it ends.
    pub fn kept(&self) -> impl Iterator<Item = (&K, &V, std::time::Instant)> + '_ {
        self.kept.iter().map(|(k, (v, t))| (k, v, *t))
    }

    /// The object `key` as last observed present, to update what would be kept if it
    /// vanished.
    pub fn present_mut(&mut self, key: &K) -> Option<&mut V> {
        self.present.get_mut(key)
    }

    /// The vanished object `key`, if it is still kept.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.kept.get(key).map(|(v, _)| v)
    }

    /// When the next grace period ends.
    pub fn next_expiry(&self) -> Option<std::time::Instant> {
        self.kept.values().map(|(_, t)| *t).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder that reads `Thing`s: their `value` field must be a number.
    fn things(
        kind: &str,
        value: serde_yaml::Value,
        text: &str,
    ) -> Option<Result<u32, DecodeError>> {
        #[derive(serde::Deserialize)]
        struct Thing {
            value: u32,
        }
        (kind == "Service").then(|| typed::<Thing>(value, text).map(|t| t.value))
    }

    fn svc(name: &str, value: &str) -> String {
        format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nvalue: {value}\n")
    }

    fn objects(cache: &ManifestCache<u32>) -> Vec<(String, u32, bool)> {
        cache
            .read()
            .objects
            .into_iter()
            .map(|e| (e.id.name, e.object, e.fresh))
            .collect()
    }

    fn file(name: &str, text: String) -> (PathBuf, Result<String, ManifestError>) {
        (PathBuf::from(name), Ok(text))
    }

    #[test]
    fn a_mangled_file_keeps_every_object_it_held() {
        let mut cache = ManifestCache::new(things);
        assert!(cache.update(vec![file(
            "a.yaml",
            format!("{}---\n{}", svc("x", "1"), svc("y", "2"))
        )]));
        assert!(!cache.update(vec![file(
            "a.yaml",
            format!("{}---\n{}", svc("x", "1"), svc("y", "2"))
        )]));
        // Half a file, the rest garbage: nothing is lost.
        cache.update(vec![file(
            "a.yaml",
            "kind: Service\nmetadata: {name: [\n".into(),
        )]);
        assert_eq!(
            objects(&cache),
            [("x".into(), 1, false), ("y".into(), 2, false)]
        );
        let problems = cache.read().problems;
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("last good"), "{}", problems[0]);
        // One good document again, one still broken: the good one is read, the other kept.
        cache.update(vec![file(
            "a.yaml",
            format!("{}---\n{}", svc("x", "3"), svc("y", "z")),
        )]);
        assert_eq!(
            objects(&cache),
            [("x".into(), 3, true), ("y".into(), 2, false)]
        );
        // Fixed.
        cache.update(vec![file("a.yaml", svc("x", "3"))]);
        assert_eq!(objects(&cache), [("x".into(), 3, true)]);
        assert!(cache.read().problems.is_empty());
    }

    #[test]
    fn an_unreadable_file_keeps_its_content_and_is_reported() {
        let mut cache = ManifestCache::new(things);
        cache.update(vec![file("a.yaml", svc("x", "1"))]);
        let denied = ManifestError {
            file: PathBuf::from("a.yaml"),
            line: 0,
            message: "permission denied".into(),
        };
        assert!(cache.update(vec![(PathBuf::from("a.yaml"), Err(denied.clone()))]));
        assert!(!cache.update(vec![(PathBuf::from("a.yaml"), Err(denied))]));
        assert_eq!(objects(&cache), [("x".into(), 1, true)]);
        assert_eq!(cache.read().problems.len(), 1);
        assert!(cache.update(vec![file("a.yaml", svc("x", "1"))]));
        assert!(cache.read().problems.is_empty());
    }

    #[test]
    fn duplicates_first_by_file_order_wins_and_the_other_is_reported() {
        let mut cache = ManifestCache::new(things);
        cache.update(vec![
            file("b.yaml", svc("x", "2")),
            file("a.yaml", format!("{}---\n{}", svc("x", "1"), svc("x", "9"))),
        ]);
        assert_eq!(objects(&cache), [("x".into(), 1, true)]);
        let problems = cache.read().problems;
        let places: Vec<_> = problems.iter().map(|p| (p.file.clone(), p.line)).collect();
        assert_eq!(
            places,
            [(PathBuf::from("a.yaml"), 6), (PathBuf::from("b.yaml"), 1)]
        );
        assert!(
            problems
                .iter()
                .all(|p| p.message.contains("duplicate Service default/x"))
        );
    }

    #[test]
    fn a_wrong_api_version_is_skipped_for_every_kind_read() {
        for kind in [
            "Eip",
            "BgpConf",
            "BgpPeer",
            "Service",
            "Node",
            "Namespace",
            "Secret",
            "EndpointSlice",
        ] {
            let accepted = accepted_api_versions(kind).expect("a kind Berth reads");
            assert!(!accepted.is_empty());
            let any = |_: &str, _: serde_yaml::Value, _: &str| Some(Ok(()));
            let mut cache: ManifestCache<()> = ManifestCache::new(any);
            let text = format!(
                "apiVersion: metallb.io/v1beta1\nkind: {kind}\nmetadata: {{name: x}}\n---\napiVersion: {}\nkind: {kind}\nmetadata: {{name: y}}\n",
                accepted[0]
            );
            cache.update(vec![(PathBuf::from("a.yaml"), Ok(text))]);
            let read = cache.read();
            let names: Vec<_> = read.objects.iter().map(|e| e.id.name.as_str()).collect();
            assert_eq!(names, ["y"], "{kind}");
            assert_eq!(read.problems.len(), 1, "{kind}");
            assert!(read.problems[0].message.contains("metallb.io/v1beta1"));
        }
    }
}
