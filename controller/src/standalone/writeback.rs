//! Writing statuses back into the manifests: the `status:` block of one document is replaced
//! in place (comments and the rest of the document are kept as written), and files are
//! replaced atomically (write a temporary file beside it, then rename).

use std::io::Write as _;
use std::path::Path;

/// Replaces (or appends) the top-level `status:` block of a YAML mapping document.
///
/// `status` is the YAML of the new status value (a mapping), without the `status:` key.
pub fn replace_status(
    document: &str,
    status: &serde_yaml::Value,
) -> Result<String, serde_yaml::Error> {
    let mut kept = String::new();
    let mut in_status = false;
    for line in document.split_inclusive('\n') {
        let top_level = !line.starts_with([' ', '\t', '\n', '\r', '#']);
        if top_level {
            in_status = line.starts_with("status:");
        }
        if !in_status {
            kept.push_str(line);
        }
    }
    // Trailing blank lines and comments stay at the end, after the new block.
    let body_end = kept.trim_end_matches(|c: char| c.is_whitespace()).len();
    let (body, _) = kept.split_at(body_end);
    let mut block = serde_yaml::to_string(&serde_yaml::Value::Mapping(
        [(serde_yaml::Value::from("status"), status.clone())]
            .into_iter()
            .collect(),
    ))?;
    if !block.ends_with('\n') {
        block.push('\n');
    }
    let mut out = String::with_capacity(body.len() + block.len() + 1);
    out.push_str(body);
    if !body.is_empty() {
        out.push('\n');
    }
    out.push_str(&block);
    Ok(out)
}

/// Replaces `path`'s content atomically: readers see the old file or the new one, never half.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("manifest");
    let tmp = dir.join(format!(".{name}.berth-tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(yaml: &str) -> serde_yaml::Value {
        serde_yaml::from_str(yaml).expect("yaml")
    }

    #[test]
    fn appends_when_absent_and_keeps_comments() {
        let doc = "# a Service\nkind: Service\nspec:\n  type: LoadBalancer # here\n";
        let out = replace_status(doc, &status("loadBalancer: {ingress: [{ip: 10.0.0.1}]}"))
            .expect("replace");
        assert!(
            out.starts_with("# a Service\nkind: Service\nspec:\n  type: LoadBalancer # here\n")
        );
        let v: serde_yaml::Value = serde_yaml::from_str(&out).expect("parses");
        assert_eq!(v["status"]["loadBalancer"]["ingress"][0]["ip"], "10.0.0.1");
    }

    #[test]
    fn replaces_existing_block_only() {
        let doc = "kind: Service\nstatus:\n  loadBalancer:\n    ingress:\n    - ip: 10.0.0.9\nspec:\n  type: LoadBalancer\n";
        let out = replace_status(doc, &status("loadBalancer: {}")).expect("replace");
        assert!(!out.contains("10.0.0.9"), "{out}");
        let v: serde_yaml::Value = serde_yaml::from_str(&out).expect("parses");
        assert_eq!(v["spec"]["type"], "LoadBalancer");
        assert!(v["status"]["loadBalancer"].is_mapping());
        // Idempotent.
        assert_eq!(
            replace_status(&out, &status("loadBalancer: {}")).expect("again"),
            out
        );
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
}
