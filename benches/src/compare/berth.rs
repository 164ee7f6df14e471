//! Berth in a comparison lab, installed the way a user installs it (`deploy/` CRDs, namespace
//! and RBAC, the daemons with their ServiceAccounts' tokens) with the in-cluster benchmark's
//! cluster objects: one BgpPeer per node and router (hold time 9 s, connect retry 1 s), one
//! default Eip, one controller replica, a speaker per node with `--drain-seconds 0`.

use std::path::Path;

use serde_json::json;
use testbed::incluster::{self, Daemon};

use super::lab::CompareLab;
use super::product::{Product, Running};
use crate::incluster::objects::{NODES, POOL, berth_objects};

/// Installs Berth and starts its daemons from `bin_dir`; with `bfd`, every BgpPeer has BFD
/// at that interval (ms) × 3.
pub fn start(lab: &CompareLab, bin_dir: &Path, bfd: Option<u32>) -> testbed::Result<Running> {
    let install = incluster::install(&lab.cp)?;
    lab.add_nodes()?;
    lab.cp.apply(&objects(bfd))?;
    let controller = Daemon::controller(
        lab.netns("cp")?,
        &bin_dir.join("berth-controller"),
        &install,
        1,
        &[],
    )?;
    let speakers = NODES
        .iter()
        .map(|node| {
            Daemon::speaker(
                lab.netns(node)?,
                &bin_dir.join("berth-speaker"),
                &install,
                node,
                0,
                &[],
            )
        })
        .collect::<testbed::Result<Vec<_>>>()?;
    Ok(Running {
        product: Product::Berth,
        version: env!("CARGO_PKG_VERSION").to_string(),
        settings: json!({
            "mode": "BGP (Berth's own implementation), ECMP from every node with a ready endpoint",
            "objects": "BgpConf as 65001; BgpPeer per node and router: holdTime 9 s, connectRetry 1 s; \
                        default Eip (is-default-eip) ".to_string() + POOL,
            "bfd": bfd.map(|ms| format!("every BgpPeer: bfd {{enabled: true, minRx: {ms}, minTx: {ms}, multiplier: 3}}")),
            "controller": "berth-controller, 1 replica, leader election on",
            "speaker": "berth-speaker --drain-seconds 0 per node",
            "credentials": "the shipped RBAC (ServiceAccount tokens)",
            "binaries": bin_dir.display().to_string(),
            "speaker_binary_modified": modified(&bin_dir.join("berth-speaker")),
            "controller_binary_modified": modified(&bin_dir.join("berth-controller")),
        }),
        controller: Some(controller),
        speakers,
    })
}

/// The in-cluster benchmark's cluster objects, with BFD on every BgpPeer when `bfd` is given.
pub fn objects(bfd: Option<u32>) -> String {
    let plain = berth_objects();
    match bfd {
        None => plain,
        Some(ms) => plain.replace(
            "timers: {config: {holdTime: \"9\", connectRetry: \"1\"}}\n",
            &format!(
                "timers: {{config: {{holdTime: \"9\", connectRetry: \"1\"}}}}\n  \
                 bfd: {{enabled: true, minRx: {ms}, minTx: {ms}, multiplier: 3}}\n"
            ),
        ),
    }
}

/// When `path` was last written (seconds since the epoch), to tell which build ran.
fn modified(path: &Path) -> Option<u64> {
    std::fs::metadata(path)
        .ok()?
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfd_reaches_every_peer() {
        assert_eq!(
            objects(Some(50))
                .matches("bfd: {enabled: true, minRx: 50")
                .count(),
            6
        );
        assert!(!objects(None).contains("bfd"));
    }
}
