//! Reading a directory of multi-document YAML manifests, remembering where each document
//! starts so a broken manifest is reported by file and line.
//!
//! Kinds read: `Eip`, `Service`, `Namespace` (for pools' `namespaceSelector`); every other
//! kind (`BgpPeer`, `Node`, …, the speaker's) is skipped untouched.

use std::collections::BTreeMap;
use std::path::Path;

use api::Eip;
use k8s_openapi::api::core::v1::{Namespace, Service};

pub use api::manifest::{Document, ManifestError, ManifestFile, manifest_paths};

/// Where an object lives: file index and document index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// Index into [`Snapshot::files`].
    pub file: usize,
    /// Index into that file's documents.
    pub document: usize,
}

/// Everything read from the directory.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The files, sorted by name.
    pub files: Vec<ManifestFile>,
    /// Eips and where they are.
    pub eips: Vec<(Location, Eip)>,
    /// Services and where they are.
    pub services: Vec<(Location, Service)>,
    /// Namespace name → labels.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

/// Reads every manifest of `dir`. The first broken document fails the whole read, so a
/// half-edited file never changes any decision.
pub fn load_dir(dir: &Path) -> Result<Snapshot, ManifestError> {
    let paths = manifest_paths(dir).map_err(|e| ManifestError {
        file: dir.to_path_buf(),
        line: 0,
        message: e.to_string(),
    })?;
    let mut snapshot = Snapshot::default();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| ManifestError {
            file: path.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        let file = ManifestFile::split(&path, &text);
        let index = snapshot.files.len();
        for (d, doc) in file.documents.iter().enumerate() {
            let at = Location {
                file: index,
                document: d,
            };
            read_document(&path, doc, at, &mut snapshot)?;
        }
        snapshot.files.push(file);
    }
    Ok(snapshot)
}

fn read_document(
    path: &Path,
    doc: &Document,
    at: Location,
    snapshot: &mut Snapshot,
) -> Result<(), ManifestError> {
    let error = |line: usize, message: String| ManifestError {
        file: path.to_path_buf(),
        line,
        message,
    };
    let value: serde_yaml::Value = serde_yaml::from_str(&doc.text).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line().saturating_sub(1));
        error(doc.first_line + line, e.to_string())
    })?;
    if value.is_null() {
        return Ok(());
    }
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .ok_or_else(|| error(doc.first_line, "document has no `kind`".into()))?
        .to_string();
    let typed = |e: serde_yaml::Error| error(doc.first_line, format!("{kind}: {e}"));
    match kind.as_str() {
        "Eip" => {
            let eip: Eip = serde_yaml::from_value(value).map_err(typed)?;
            let problems = api::validate::validate_eip(&eip.spec);
            if let Some(p) = problems.first() {
                return Err(error(
                    doc.first_line,
                    format!("Eip {}: {p}", eip.metadata.name.as_deref().unwrap_or("")),
                ));
            }
            snapshot.eips.push((at, eip));
        }
        "Service" => {
            let svc: Service = serde_yaml::from_value(value).map_err(typed)?;
            snapshot.services.push((at, svc));
        }
        "Namespace" => {
            let ns: Namespace = serde_yaml::from_value(value).map_err(typed)?;
            snapshot.namespaces.insert(
                ns.metadata.name.unwrap_or_default(),
                ns.metadata.labels.unwrap_or_default(),
            );
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_text_and_lines() {
        let text = "# head\na: 1\n---\nb: 2\n--- # c\nc: 3\n";
        let f = ManifestFile::split(Path::new("x.yaml"), text);
        assert_eq!(f.documents.len(), 3);
        assert_eq!(f.documents[1].first_line, 4);
        assert_eq!(f.documents[2].first_line, 6);
        assert_eq!(f.join(), text);
    }

    #[test]
    fn broken_yaml_names_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkind: Service\nmetadata:\n  name: [oops\n";
        std::fs::write(dir.path().join("m.yaml"), text).expect("write");
        let e = load_dir(dir.path()).expect_err("broken");
        assert!(e.file.ends_with("m.yaml"));
        assert!((5..=8).contains(&e.line), "line {}", e.line);
    }
}
