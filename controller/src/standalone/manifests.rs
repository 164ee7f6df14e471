//! Reading the directory for the controller: the kinds it reads (`Eip`, `Service`,
//! `Namespace` for pools' `namespaceSelector`), each with where it is, so statuses can be
//! written back into the same document.
//!
//! The rules for bad documents, versions and duplicates are [`api::manifest::ManifestCache`]'s,
//! the same as the speaker's: one bad document is skipped and reported, never the directory.
//! Every other kind (`BgpPeer`, `Node`, …, the speaker's) is skipped untouched.

use std::collections::BTreeMap;
use std::path::Path;

use api::Eip;
use api::manifest::{DecodeError, ManifestCache, typed};
use k8s_openapi::api::core::v1::{Namespace, Service};

pub use api::manifest::{Document, ManifestError, ManifestFile, manifest_paths};

/// One object the controller reads.
#[derive(Debug, Clone)]
pub enum Object {
    /// An address pool (valid: one failing validation is skipped).
    Eip(Box<Eip>),
    /// A Service.
    Service(Box<Service>),
    /// A Namespace's labels.
    Namespace(BTreeMap<String, String>),
    /// A Node's labels (for the Eips' `Selected` condition).
    Node(BTreeMap<String, String>),
    /// What the Eips' `Selected` condition needs of a BgpPeer.
    BgpPeer(Box<crate::selection::PeerFacts>),
}

/// The controller's [`api::manifest::Decoder`].
pub fn decode(
    kind: &str,
    value: serde_yaml::Value,
    text: &str,
) -> Option<Result<Object, DecodeError>> {
    Some(match kind {
        "Eip" => typed::<Eip>(value, text).and_then(|eip| {
            match api::validate::validate_eip(&eip.spec).first() {
                Some(p) => Err(DecodeError::object(p.to_string())),
                None => Ok(Object::Eip(Box::new(eip))),
            }
        }),
        "Service" => typed(value, text).map(|s| Object::Service(Box::new(s))),
        "Namespace" => typed::<Namespace>(value, text)
            .map(|ns| Object::Namespace(ns.metadata.labels.unwrap_or_default())),
        // Read for the `Selected` condition only: one that does not parse is the speakers' to
        // report, not skipped here.
        "Node" => {
            let node = typed::<k8s_openapi::api::core::v1::Node>(value, text).ok()?;
            Ok(Object::Node(node.metadata.labels.unwrap_or_default()))
        }
        "BgpPeer" => {
            let peer = typed::<api::BgpPeer>(value, text).ok()?;
            Ok(Object::BgpPeer(Box::new(crate::selection::PeerFacts {
                labels: peer.metadata.labels.unwrap_or_default(),
                node_selector: peer.spec.node_selector,
            })))
        }
        _ => return None,
    })
}

/// Where an object lives: file index and document index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// Index into [`Snapshot::files`].
    pub file: usize,
    /// Index into that file's documents.
    pub document: usize,
}

/// One object read, where it is, and whether its document can be written into.
#[derive(Debug, Clone)]
pub struct Placed<T> {
    /// Where it is.
    pub at: Location,
    /// `false` when its document is broken now and this is its last good content: its
    /// status is not written (the text is the user's, half-edited).
    pub fresh: bool,
    /// The object.
    pub object: T,
}

/// Everything read from the directory.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The files, sorted by name.
    pub files: Vec<ManifestFile>,
    /// Eips and where they are.
    pub eips: Vec<Placed<Eip>>,
    /// Services and where they are.
    pub services: Vec<Placed<Service>>,
    /// Namespace name → labels.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Every Node's labels.
    pub nodes: Vec<BTreeMap<String, String>>,
    /// Every BgpPeer, as the `Selected` condition reads it.
    pub peers: Vec<crate::selection::PeerFacts>,
    /// Documents skipped, by file and line.
    pub problems: Vec<ManifestError>,
}

impl Snapshot {
    /// The snapshot of what `cache` holds.
    pub fn of(cache: &ManifestCache<Object>) -> Snapshot {
        let read = cache.read();
        let mut snapshot = Snapshot {
            files: read.files,
            problems: read.problems,
            ..Snapshot::default()
        };
        for entry in read.objects {
            let at = Location {
                file: entry.file,
                document: entry.document,
            };
            let fresh = entry.fresh;
            match entry.object {
                Object::Eip(e) => snapshot.eips.push(Placed {
                    at,
                    fresh,
                    object: *e,
                }),
                Object::Service(s) => snapshot.services.push(Placed {
                    at,
                    fresh,
                    object: *s,
                }),
                Object::Namespace(labels) => {
                    snapshot.namespaces.insert(entry.id.name, labels);
                }
                Object::Node(labels) => snapshot.nodes.push(labels),
                Object::BgpPeer(peer) => snapshot.peers.push(*peer),
            }
        }
        snapshot
    }
}

/// Reads every manifest of `dir` once; fails only when the directory cannot be listed.
pub fn load_dir(dir: &Path) -> Result<Snapshot, ManifestError> {
    let mut cache = ManifestCache::new(decode);
    cache.update(api::manifest::read_texts(dir)?);
    Ok(Snapshot::of(&cache))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EIP: &str = "apiVersion: network.kubesphere.io/v1alpha2\nkind: Eip\nmetadata: {name: v4}\nspec: {address: 192.0.2.0/29}\n";

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
    fn a_broken_document_is_skipped_by_file_and_line_and_the_rest_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: a}}\n---\nkind: Service\nmetadata:\n  name: [oops\n---\n{EIP}"
        );
        std::fs::write(dir.path().join("m.yaml"), text).expect("write");
        let s = load_dir(dir.path()).expect("listed");
        assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
        assert!(s.problems[0].file.ends_with("m.yaml"));
        assert!((5..=8).contains(&s.problems[0].line), "{}", s.problems[0]);
        assert_eq!((s.eips.len(), s.namespaces.len()), (1, 1));
    }

    #[test]
    fn an_eip_of_another_group_or_failing_validation_is_no_pool() {
        let dir = tempfile::tempdir().expect("tempdir");
        let metallb = EIP
            .replace("network.kubesphere.io/v1alpha2", "metallb.io/v1beta1")
            .replace("v4}", "mlb}");
        let invalid = EIP
            .replace("192.0.2.0/29", "not-an-address")
            .replace("v4}", "bad}");
        std::fs::write(
            dir.path().join("p.yaml"),
            format!("{EIP}---\n{metallb}---\n{invalid}"),
        )
        .expect("write");
        let s = load_dir(dir.path()).expect("listed");
        let names: Vec<_> = s
            .eips
            .iter()
            .map(|e| e.object.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(names, ["v4"]);
        assert_eq!(s.problems.len(), 2, "{:?}", s.problems);
        assert!(s.problems[0].message.contains("metallb.io/v1beta1"));
        assert_eq!(s.problems[1].line, 11, "{}", s.problems[1]);
        assert!(s.problems[1].message.contains("spec.address"));
    }
}
