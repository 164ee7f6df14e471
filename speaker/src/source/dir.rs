//! The standalone state source: a directory of multi-document YAML manifests (`*.yaml`,
//! `*.yml`, not hidden), the same objects a cluster would hold. The controller's
//! standalone mode writes Service allocations into the same files.
//!
//! A document that does not parse fails the whole read with its file and line, and the
//! last good state stays in force until the file is fixed: a half-written edit never
//! withdraws anything.

use std::path::{Path, PathBuf};

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

fn typed<T: serde::de::DeserializeOwned>(
    value: serde_yaml::Value,
    kind: &str,
    at: impl Fn(String) -> ManifestError,
) -> Result<Box<T>, ManifestError> {
    serde_yaml::from_value(value)
        .map(Box::new)
        .map_err(|e| at(format!("{kind}: {e}")))
}

/// Parses one document into an object; `Ok(None)` for empty documents and kinds the
/// speaker does not read.
pub fn parse_document(
    file: &Path,
    first_line: usize,
    text: &str,
) -> Result<Option<Object>, ManifestError> {
    let error = |line: usize, message: String| ManifestError {
        file: file.to_path_buf(),
        line,
        message,
    };
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line().saturating_sub(1));
        error(first_line + line, e.to_string())
    })?;
    if value.is_null() {
        return Ok(None);
    }
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .ok_or_else(|| error(first_line, "document has no `kind`".into()))?
        .to_string();
    let at = |m: String| error(first_line, m);
    Ok(Some(match kind.as_str() {
        "Node" => Object::Node(typed(value, &kind, at)?),
        "Service" => Object::Service(typed(value, &kind, at)?),
        "EndpointSlice" => Object::EndpointSlice(typed(value, &kind, at)?),
        "Eip" => Object::Eip(typed(value, &kind, at)?),
        "BgpConf" => Object::BgpConf(typed(value, &kind, at)?),
        "BgpPeer" => Object::BgpPeer(typed(value, &kind, at)?),
        "Secret" => Object::Secret(typed(value, &kind, at)?),
        _ => return Ok(None),
    }))
}

/// Parses a set of files (path, text) into one state; the first broken document fails all.
pub fn parse_files(files: &[(PathBuf, String)]) -> Result<ClusterState, ManifestError> {
    let mut state = ClusterState::default();
    for (path, text) in files {
        for (first_line, doc) in split_documents(text) {
            if let Some(object) = parse_document(path, first_line, &doc)? {
                state.insert(object);
            }
        }
    }
    Ok(state)
}

fn read_files(dir: &Path) -> Result<Vec<(PathBuf, String)>, ManifestError> {
    let paths = manifest_paths(dir).map_err(|e| ManifestError {
        file: dir.to_path_buf(),
        line: 0,
        message: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => out.push((path, text)),
            // Deleted between listing and reading (e.g. an atomic rename): skip it, the
            // next poll sees the new file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ManifestError {
                    file: path,
                    line: 0,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// Reads every manifest of `dir` into one state.
pub fn load_dir(dir: &Path) -> Result<ClusterState, ManifestError> {
    parse_files(&read_files(dir)?)
}

/// What one poll of the directory found.
#[derive(Debug, Clone, PartialEq)]
pub enum Poll {
    /// Nothing changed since the last poll.
    Unchanged,
    /// The files changed and parse: the new state.
    Changed(ClusterState),
    /// The files changed and one does not parse (reported once per distinct error).
    Broken(ManifestError),
}

/// Polls a directory, remembering the text last read so that only a change is reported.
#[derive(Debug)]
pub struct DirWatcher {
    dir: PathBuf,
    last: Option<Vec<(PathBuf, String)>>,
    last_error: Option<ManifestError>,
}

impl DirWatcher {
    /// A watcher of `dir` that has read nothing yet.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            last: None,
            last_error: None,
        }
    }

    /// The directory watched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the directory and says what changed.
    pub fn poll(&mut self) -> Poll {
        let files = match read_files(&self.dir) {
            Ok(f) => f,
            Err(e) => return self.broken(e),
        };
        if self.last.as_ref() == Some(&files) {
            return Poll::Unchanged;
        }
        match parse_files(&files) {
            Ok(state) => {
                self.last = Some(files);
                self.last_error = None;
                Poll::Changed(state)
            }
            Err(e) => {
                // Forget the text so that undoing the broken edit counts as a change.
                self.last = Some(files);
                self.broken(e)
            }
        }
    }

    fn broken(&mut self, e: ManifestError) -> Poll {
        if self.last_error.as_ref() == Some(&e) {
            return Poll::Unchanged;
        }
        self.last_error = Some(e.clone());
        Poll::Broken(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "kind: Node\nmetadata: {name: n1}\n";

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
        let state = parse_files(&[(PathBuf::from("m.yaml"), text)]).expect("parses");
        assert_eq!(state.nodes.len(), 1);
        assert_eq!(state.bgp_confs["default"].spec.as_number, 65001);
        assert_eq!(state.len(), 2);
    }

    #[test]
    fn broken_document_is_reported_by_file_and_line() {
        let text = format!("{NODE}---\nkind: Service\nmetadata:\n  name: [oops\n");
        let e = parse_files(&[(PathBuf::from("svc.yaml"), text)]).expect_err("broken");
        assert_eq!(e.file, PathBuf::from("svc.yaml"));
        assert!((4..=7).contains(&e.line), "line {}", e.line);
        let text = format!(
            "{NODE}---\nkind: BgpPeer\nmetadata: {{name: p}}\nspec: {{conf: {{peerAs: x}}}}\n"
        );
        let e = parse_files(&[(PathBuf::from("p.yaml"), text)]).expect_err("bad type");
        assert_eq!(e.line, 4);
        assert!(e.message.starts_with("BgpPeer"), "{}", e.message);
        let e = parse_files(&[(PathBuf::from("k.yaml"), "metadata: {}\n".into())])
            .expect_err("no kind");
        assert!(e.message.contains("kind"));
    }

    #[test]
    fn watcher_reports_changes_once_and_keeps_state_while_broken() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, NODE).expect("write");
        std::fs::write(dir.path().join(".hidden.yaml"), "garbage: [").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "garbage: [").expect("write");
        let mut w = DirWatcher::new(dir.path());
        assert!(matches!(w.poll(), Poll::Changed(s) if s.nodes.len() == 1));
        assert_eq!(w.poll(), Poll::Unchanged);
        std::fs::write(&path, "kind: Node\nmetadata: {name: [\n").expect("write");
        assert!(matches!(w.poll(), Poll::Broken(e) if e.file == path && e.line >= 1));
        assert_eq!(w.poll(), Poll::Unchanged, "the same error is reported once");
        std::fs::write(
            &path,
            format!("{NODE}---\nkind: Node\nmetadata: {{name: n2}}\n"),
        )
        .expect("write");
        assert!(matches!(w.poll(), Poll::Changed(s) if s.nodes.len() == 2));
    }
}
