//! Where the peers' binaries are: `scripts/build-peers.sh` builds them into a cache outside the
//! tree (or finds them there) and prints one `name path` line per product it has. kube-vip is
//! built only when `BERTH_KUBEVIP_SRC` names a read-only checkout of its repository (it is not
//! on the Go module proxy); without it the benchmark skips kube-vip and says why.

use std::path::PathBuf;

/// The peers found or built.
#[derive(Debug, Clone)]
pub struct Peers {
    /// MetalLB's cache directory (`speaker`, `controller`, `crd-dir`, `version`), or why not.
    pub metallb: Result<PathBuf, String>,
    /// kube-vip's binary, or why not.
    pub kubevip: Result<PathBuf, String>,
}

impl Default for Peers {
    fn default() -> Self {
        Peers {
            metallb: Err("not looked for".into()),
            kubevip: Err("not looked for".into()),
        }
    }
}

/// Runs `scripts/build-peers.sh` (cached builds are instant) and reads its answer.
pub fn locate() -> Peers {
    let script = testbed::incluster::repository().join("scripts/build-peers.sh");
    let output = std::process::Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output();
    let mut peers = Peers::default();
    let kubevip_wanted = std::env::var_os("BERTH_KUBEVIP_SRC").is_some();
    if !kubevip_wanted {
        peers.kubevip = Err(
            "BERTH_KUBEVIP_SRC is not set: kube-vip is not on the Go module \
                             proxy, so it needs a read-only checkout of \
                             github.com/kube-vip/kube-vip"
                .into(),
        );
    }
    match output {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            for (name, path) in parse(&text) {
                match name.as_str() {
                    "metallb" => peers.metallb = Ok(path),
                    "kube-vip" => peers.kubevip = Ok(path),
                    _ => {}
                }
            }
            if peers.metallb.is_err() {
                peers.metallb = Err(format!("{} printed no metallb line", script.display()));
            }
        }
        Ok(o) => {
            let why = format!("{} failed ({})", script.display(), o.status);
            peers.metallb = Err(why.clone());
            if kubevip_wanted {
                peers.kubevip = Err(why);
            }
        }
        Err(e) => {
            peers.metallb = Err(format!("{}: {e}", script.display()));
        }
    }
    peers
}

/// The `name path` lines of the script's output.
pub fn parse(text: &str) -> Vec<(String, PathBuf)> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, p)| (n.trim().to_string(), PathBuf::from(p.trim())))
        .collect()
}

/// The first line of `file` (a version recorded next to a cached build), or "".
pub fn read_line(file: &std::path::Path) -> String {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_lines_are_name_and_path() {
        let found = parse("metallb /c/metallb-v0.15.3-x\nkube-vip /c/kv/kube-vip\n");
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].0, "kube-vip");
        assert_eq!(found[1].1, PathBuf::from("/c/kv/kube-vip"));
        assert!(parse("nothing").is_empty());
    }
}
