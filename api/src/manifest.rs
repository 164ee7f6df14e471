//! A directory of multi-document YAML manifests, as the controller and the speaker read it in
//! standalone mode: which files count, how a file splits into documents (keeping the `---`
//! separators so it can be written back unchanged), and a broken manifest's file and line.

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
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.')
                && (name.ends_with(".yaml") || name.ends_with(".yml"))
                && p.is_file()
        })
        .collect();
    paths.sort();
    Ok(paths)
}
