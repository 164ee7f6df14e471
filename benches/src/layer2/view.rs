//! What a node's speaker says about layer 2 (`berthctl -o json layer2` in its namespace):
//! who it hears, and the owner of every address.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use super::lab::{FailoverLab, NODES};

/// One node's view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// The members it counts live.
    pub live: Vec<String>,
    /// Address → owner (addresses nobody live answers for are left out).
    pub owners: BTreeMap<IpAddr, String>,
}

/// `node`'s view, if its speaker answers.
pub fn of(lab: &FailoverLab, berthctl: &Path, node: &str) -> Option<View> {
    let out = lab
        .lab
        .netns(node)
        .ok()?
        .output(berthctl.to_str()?, &["-o", "json", "layer2"])
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    let live = v["live"]
        .as_array()?
        .iter()
        .filter_map(|n| Some(n.as_str()?.to_string()))
        .collect();
    let owners = v["addresses"]
        .as_array()?
        .iter()
        .filter_map(|a| {
            let ip: IpAddr = a["address"].as_str()?.parse().ok()?;
            Some((ip, a["owner"].as_str()?.to_string()))
        })
        .collect();
    Some(View { live, owners })
}

/// The owners once every node in `alive` hears all of `alive` and they agree.
pub fn agreed(
    lab: &FailoverLab,
    berthctl: &Path,
    alive: &[&str],
) -> Option<BTreeMap<IpAddr, String>> {
    let mut agreed: Option<BTreeMap<IpAddr, String>> = None;
    for node in alive {
        let v = of(lab, berthctl, node)?;
        if !alive.iter().all(|n| v.live.iter().any(|l| l == n)) {
            return None;
        }
        match &agreed {
            Some(a) if *a != v.owners => return None,
            Some(_) => {}
            None => agreed = Some(v.owners),
        }
    }
    agreed
}

/// Every node.
pub fn all() -> Vec<&'static str> {
    NODES.to_vec()
}
