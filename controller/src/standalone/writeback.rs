//! Writing statuses back into the manifests, never breaking one.
//!
//! A document's new text is checked by parsing it back: it must be exactly the object
//! intended (the document as read, with the new `status` and annotations), or it is not
//! written. The text is edited in place where it can be (a block mapping: the `status:`
//! block replaced, an annotation line replaced or added; comments and layout of the rest stay
//! as written); where it cannot (JSON, flow style, anything the in-place edit gets wrong) the
//! document is written again whole, JSON as JSON. Files are replaced atomically (a temporary
//! file beside it, then a rename); temporaries left by a crash are removed at start.
//!
//! This module knows nothing of what the statuses mean.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

/// What to change in one document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Edit {
    /// The new `status` (a mapping), if it changes.
    pub status: Option<Value>,
    /// Annotations to set (`metadata.annotations[key] = value`).
    pub annotations: BTreeMap<String, String>,
}

impl Edit {
    /// Whether the edit changes nothing.
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.annotations.is_empty()
    }
}

/// Why a document was not rewritten.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// The document as read does not parse (it is left as it is).
    #[error("the document does not parse: {0}")]
    Unreadable(serde_yaml::Error),
    /// The document is not a mapping with a mapping `metadata`, so the edit has no place.
    #[error("the document is not a mapping (with a mapping metadata)")]
    NotAMapping,
    /// Even written again whole, the text did not parse back to the object intended.
    #[error("the rewritten document would not parse back to the intended object")]
    NoFaithfulText,
    /// Serializing failed.
    #[error("serializing: {0}")]
    Serialize(String),
}

/// The object `document` stands for after `edit`.
fn intended(document: &Value, edit: &Edit) -> Result<Value, RewriteError> {
    let mut v = document.clone();
    let map = v.as_mapping_mut().ok_or(RewriteError::NotAMapping)?;
    if let Some(status) = &edit.status {
        map.insert(Value::from("status"), status.clone());
    }
    if !edit.annotations.is_empty() {
        let meta = map
            .entry(Value::from("metadata"))
            .or_insert_with(|| Value::Mapping(Default::default()));
        if meta.is_null() {
            *meta = Value::Mapping(Default::default());
        }
        let meta = meta.as_mapping_mut().ok_or(RewriteError::NotAMapping)?;
        let ann = meta
            .entry(Value::from("annotations"))
            .or_insert_with(|| Value::Mapping(Default::default()));
        if ann.is_null() {
            *ann = Value::Mapping(Default::default());
        }
        let ann = ann.as_mapping_mut().ok_or(RewriteError::NotAMapping)?;
        for (k, val) in &edit.annotations {
            ann.insert(Value::from(k.as_str()), Value::from(val.as_str()));
        }
    }
    Ok(v)
}

fn parses_to(text: &str, wanted: &Value) -> bool {
    serde_yaml::from_str::<Value>(text).is_ok_and(|v| v == *wanted)
}

/// The new text of `document` after `edit`, guaranteed to parse back to the intended object.
pub fn rewrite_document(document: &str, edit: &Edit) -> Result<String, RewriteError> {
    let read: Value = serde_yaml::from_str(document).map_err(RewriteError::Unreadable)?;
    let wanted = intended(&read, edit)?;
    if wanted == read {
        return Ok(document.to_string());
    }
    if let Some(text) = edit_in_place(document, edit)
        && parses_to(&text, &wanted)
    {
        return Ok(text);
    }
    let text = write_whole(document, &wanted)?;
    if parses_to(&text, &wanted) {
        Ok(text)
    } else {
        Err(RewriteError::NoFaithfulText)
    }
}

/// The leading comment and blank lines of a document.
fn leading_comments(document: &str) -> &str {
    let mut end = 0;
    for line in document.split_inclusive('\n') {
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') {
            break;
        }
        end += line.len();
    }
    &document[..end]
}

/// The document written again from `wanted`: JSON if it was JSON, YAML otherwise; its
/// leading comments kept.
fn write_whole(document: &str, wanted: &Value) -> Result<String, RewriteError> {
    let head = leading_comments(document);
    let body = &document[head.len()..];
    let mut text = if body.trim_start().starts_with('{') {
        serde_json::to_string_pretty(wanted).map_err(|e| RewriteError::Serialize(e.to_string()))?
    } else {
        serde_yaml::to_string(wanted).map_err(|e| RewriteError::Serialize(e.to_string()))?
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(format!("{head}{text}"))
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// The key of a `key: value` / `key:` line (plain keys only).
fn key_of(line: &str) -> Option<&str> {
    let t = line.trim_start_matches(' ');
    let colon = t.find(':')?;
    let key = &t[..colon];
    let after = &t[colon + 1..];
    let plain = !key.is_empty()
        && !key.starts_with([
            '{', '[', '"', '\'', '-', '?', '!', '&', '*', '#', '%', '|', '>',
        ]);
    (plain && (after.is_empty() || after.starts_with([' ', '\n', '\r']))).then_some(key)
}

/// The value part of a `key: value` line, without a trailing comment.
fn inline_value(line: &str) -> &str {
    let t = line.trim_start_matches(' ');
    let rest = t.find(':').map_or("", |c| &t[c + 1..]);
    let rest = rest.split(" #").next().unwrap_or("");
    rest.trim()
}

/// The line range `[start, end)` of the entries under the key line at `at`: every following
/// line more indented than it (comments and blank lines inside included, trailing ones not).
fn children(lines: &[&str], at: usize) -> (usize, usize) {
    let indent = indent_of(lines[at]);
    let mut end = at + 1;
    let mut last_content = at + 1;
    while end < lines.len() {
        let l = lines[end];
        if is_content(l) {
            if indent_of(l) <= indent {
                break;
            }
            last_content = end + 1;
        }
        end += 1;
    }
    (at + 1, last_content)
}

/// The block-style edit; `None` where the layout is not one it handles (the caller then
/// writes the document whole). Its result is still checked by the caller.
fn edit_in_place(document: &str, edit: &Edit) -> Option<String> {
    let mut lines: Vec<String> = document.split_inclusive('\n').map(str::to_string).collect();
    if lines.last().is_some_and(|l| !l.ends_with('\n')) {
        lines.last_mut()?.push('\n');
    }
    if lines.iter().any(|l| l.starts_with('\t')) {
        return None;
    }
    let first = lines.iter().position(|l| is_content(l))?;
    let top = indent_of(&lines[first]);
    // Every top-level line must be a plain `key:` line at one indentation.
    for l in lines.iter().filter(|l| is_content(l)) {
        let i = indent_of(l);
        if i < top || (i == top && key_of(l).is_none()) {
            return None;
        }
    }
    let pad = |n: usize| " ".repeat(n);

    if !edit.annotations.is_empty() {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let meta = (first..refs.len())
            .find(|&i| indent_of(refs[i]) == top && key_of(refs[i]) == Some("metadata"))?;
        if !inline_value(refs[meta]).is_empty() {
            return None;
        }
        let (m_start, m_end) = children(&refs, meta);
        let child = (m_start..m_end)
            .find(|&i| is_content(refs[i]))
            .map(|i| indent_of(refs[i]))?;
        let ann = (m_start..m_end)
            .find(|&i| indent_of(refs[i]) == child && key_of(refs[i]) == Some("annotations"));
        let mut inserts: Vec<(usize, String)> = Vec::new();
        let mut replaces: Vec<(usize, String)> = Vec::new();
        match ann {
            None => {
                let mut block = format!("{}annotations:\n", pad(child));
                for (k, v) in &edit.annotations {
                    block.push_str(&format!("{}{k}: {}\n", pad(child + 2), quoted(v)));
                }
                inserts.push((m_end, block));
            }
            Some(a) => {
                if !inline_value(refs[a]).is_empty() {
                    return None;
                }
                let (a_start, a_end) = children(&refs, a);
                let grand = (a_start..a_end)
                    .find(|&i| is_content(refs[i]))
                    .map_or(child + 2, |i| indent_of(refs[i]));
                for (k, v) in &edit.annotations {
                    let line = format!("{}{k}: {}\n", pad(grand), quoted(v));
                    match (a_start..a_end)
                        .find(|&i| indent_of(refs[i]) == grand && key_of(refs[i]) == Some(k))
                    {
                        Some(i) => replaces.push((i, line)),
                        None => inserts.push((a_end, line)),
                    }
                }
            }
        }
        for (i, line) in replaces {
            lines[i] = line;
        }
        inserts.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
        for (i, text) in inserts {
            lines.insert(i, text);
        }
    }

    if let Some(status) = &edit.status {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut kept: Vec<&str> = Vec::with_capacity(refs.len());
        let mut i = 0;
        while i < refs.len() {
            if indent_of(refs[i]) == top && is_content(refs[i]) && key_of(refs[i]) == Some("status")
            {
                i = children(&refs, i).1;
                continue;
            }
            kept.push(refs[i]);
            i += 1;
        }
        // Trailing blank lines and comments stay at the end, after the new block.
        let body_end = kept
            .iter()
            .rposition(|l| is_content(l))
            .map_or(0, |p| p + 1);
        let block = serde_yaml::to_string(&Value::Mapping(
            [(Value::from("status"), status.clone())]
                .into_iter()
                .collect(),
        ))
        .ok()?;
        let mut out = String::new();
        for l in &kept[..body_end] {
            out.push_str(l);
        }
        for l in block.lines() {
            out.push_str(&pad(top));
            out.push_str(l);
            out.push('\n');
        }
        for l in &kept[body_end..] {
            out.push_str(l);
        }
        return Some(out);
    }
    Some(lines.concat())
}

fn quoted(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| format!("{v:?}"))
}

/// The prefix of temporary files [`write_atomically`] writes beside a manifest (hidden, so
/// never read as one).
const TEMPORARY_MARK: &str = ".berth-tmp-";

/// Replaces `path`'s content atomically: readers see the old file or the new one, never half.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("manifest");
    let tmp = dir.join(format!(".{name}{TEMPORARY_MARK}{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Removes the temporary files [`write_atomically`] left in `dir` when a controller was
/// killed mid-write (their process is gone); returns them.
pub fn remove_stale_temporaries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some((_, pid)) = name.rsplit_once(TEMPORARY_MARK) else {
            continue;
        };
        let alive = pid.parse::<u32>().is_ok_and(|pid| {
            pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()
        });
        if name.starts_with('.') && !alive && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(yaml: &str) -> Value {
        serde_yaml::from_str(yaml).expect("yaml")
    }

    fn edit(s: &str, at: Option<&str>) -> Edit {
        Edit {
            status: Some(status(s)),
            annotations: at
                .map(|t| [("berth.io/allocated-at".to_string(), t.to_string())].into())
                .unwrap_or_default(),
        }
    }

    fn value(text: &str) -> Value {
        serde_yaml::from_str(text).expect("parses")
    }

    #[test]
    fn appends_when_absent_and_keeps_comments() {
        let doc = "# a Service\nkind: Service\nmetadata:\n  name: web # the name\nspec:\n  type: LoadBalancer # here\n";
        let out = rewrite_document(
            doc,
            &edit("loadBalancer: {ingress: [{ip: 10.0.0.1}]}", Some("T1")),
        )
        .expect("rewrite");
        assert!(out.contains("name: web # the name\n"), "{out}");
        assert!(out.contains("type: LoadBalancer # here\n"), "{out}");
        let v = value(&out);
        assert_eq!(v["status"]["loadBalancer"]["ingress"][0]["ip"], "10.0.0.1");
        assert_eq!(v["metadata"]["annotations"]["berth.io/allocated-at"], "T1");
    }

    #[test]
    fn replaces_existing_block_and_annotation_only() {
        let doc = "kind: Service\nmetadata:\n  name: web\n  annotations:\n    a: b # keep\n    berth.io/allocated-at: \"T0\"\nstatus:\n  loadBalancer:\n    ingress:\n    - ip: 10.0.0.9\nspec:\n  type: LoadBalancer\n";
        let e = edit("loadBalancer: {}", Some("T1"));
        let out = rewrite_document(doc, &e).expect("rewrite");
        assert!(!out.contains("10.0.0.9") && !out.contains("T0"), "{out}");
        assert!(out.contains("    a: b # keep\n"), "{out}");
        let v = value(&out);
        assert_eq!(v["spec"]["type"], "LoadBalancer");
        assert!(v["status"]["loadBalancer"].is_mapping());
        assert_eq!(v["metadata"]["annotations"]["berth.io/allocated-at"], "T1");
        assert_eq!(
            rewrite_document(&out, &e).expect("again"),
            out,
            "idempotent"
        );
    }

    /// Issue 14 item 12: every layout a user may write stays valid and means what was meant.
    #[test]
    fn json_flow_and_indented_documents_parse_back_to_the_intended_object() {
        let docs = [
            // JSON.
            "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"web\", \"namespace\": \"demo\"}, \"spec\": {\"type\": \"LoadBalancer\"}}\n",
            "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Service\",\n  \"metadata\": {\"name\": \"web\"},\n  \"spec\": {\"type\": \"LoadBalancer\"}\n}\n",
            // Flow style.
            "{apiVersion: v1, kind: Service, metadata: {name: web}, spec: {type: LoadBalancer}}\n",
            "apiVersion: v1\nkind: Service\nmetadata: {name: web, annotations: {a: b}}\nspec: {type: LoadBalancer}\nstatus: {loadBalancer: {}}\n",
            // Indented top-level keys.
            "  apiVersion: v1\n  kind: Service\n  metadata:\n    name: web\n  spec:\n    type: LoadBalancer\n",
            "  apiVersion: v1\n  kind: Service\n  metadata:\n    name: web\n    annotations:\n      a: b\n  status:\n    loadBalancer: {}\n",
            // Quoted keys, no trailing newline, a status that is not last.
            "\"apiVersion\": v1\nkind: Service\n\"metadata\":\n  name: web\nstatus:\n  loadBalancer: {}\nspec:\n  type: LoadBalancer",
            // A metadata with an empty annotations key, comments between blocks.
            "kind: Service\nmetadata:\n  name: web\n  annotations:\n# comment\nspec:\n  type: LoadBalancer\n\n# trailing\n",
        ];
        let e = edit(
            "loadBalancer: {ingress: [{ip: 10.0.0.1, ipMode: VIP}]}",
            Some("T1"),
        );
        for doc in docs {
            let out = rewrite_document(doc, &e).expect("rewrite");
            let v = value(&out);
            let want = intended(&value(doc), &e).expect("intended");
            assert_eq!(v, want, "{doc:?} became {out:?}");
            assert_eq!(v["metadata"]["name"], "web");
            assert_eq!(v["status"]["loadBalancer"]["ingress"][0]["ip"], "10.0.0.1");
            if doc.starts_with("{\"") || doc.starts_with("{\n") {
                assert!(
                    serde_json::from_str::<serde_json::Value>(&out).is_ok(),
                    "JSON stays JSON: {out}"
                );
            }
        }
    }

    #[test]
    fn a_document_that_does_not_parse_is_not_rewritten() {
        assert!(matches!(
            rewrite_document("kind: [\n", &edit("a: 1", None)),
            Err(RewriteError::Unreadable(_))
        ));
        assert!(matches!(
            rewrite_document("- a\n- b\n", &edit("a: 1", None)),
            Err(RewriteError::NotAMapping)
        ));
    }

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.yaml");
        std::fs::write(&p, "old").expect("write");
        write_atomically(&p, "new").expect("atomic");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "new");
        let leftovers = std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(leftovers, 1);
    }

    #[test]
    fn temporaries_of_dead_writers_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A pid no process has (pid_max is at most 2^22).
        let stale = dir.path().join(".a.yaml.berth-tmp-99999999");
        let ours = dir
            .path()
            .join(format!(".b.yaml.berth-tmp-{}", std::process::id()));
        let user = dir.path().join(".c.yaml.tmp");
        for p in [&stale, &ours, &user] {
            std::fs::write(p, "half a manifest: [").expect("write");
        }
        let removed = remove_stale_temporaries(dir.path());
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(!stale.exists() && !ours.exists() && user.exists());
    }
}
