//! Standalone speakers in lab nodes, shared by the suites that drive a manifest directory
//! against real routers (`pool_routing`, `zero_flap_soak`, `layer2`, `speaker_standalone`):
//! writing a manifest as the controller does, starting `berth-speaker` on a node, and
//! reading its sessions back through `berthctl`.

use std::path::Path;
use std::process::Stdio;

use testbed::Lab;
use testbed::lab::Process;

/// Writes a manifest file atomically (write, then rename), as the controller does.
pub fn write(dir: &Path, file: &str, text: &str) {
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(file)).unwrap();
}

/// `berth-speaker` on `node` reading `state`, with `extra` arguments; its log is
/// `<node>-speaker.log` in the lab's directory.
pub fn start_speaker(lab: &Lab, state: &Path, bin: &Path, node: &str, extra: &[&str]) -> Process {
    let netns = lab.netns(node).unwrap();
    let log = std::fs::File::create(lab.dir().join(format!("{node}-speaker.log"))).unwrap();
    let mut command = netns.command(bin);
    command
        .args(["--node-name", node, "--state-dir"])
        .arg(state)
        .args(extra)
        .args(["--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    Process::spawn(format!("berth-speaker on {node}"), command).unwrap()
}

/// One session as a speaker reports it (`berthctl peers`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSeen {
    /// The neighbour's address.
    pub address: String,
    /// `Established`, `Active`, ...
    pub state: String,
    /// Times it left Established.
    pub flaps: u64,
    /// Seconds in Established.
    pub uptime: u64,
}

/// Every session of the speaker on `node`.
pub fn sessions(lab: &Lab, berthctl: &Path, node: &str) -> Vec<SessionSeen> {
    let out = lab
        .netns(node)
        .unwrap()
        .output(berthctl.to_str().unwrap(), &["peers", "-o", "json"])
        .unwrap();
    let peers: serde_json::Value = serde_json::from_str(&out).unwrap();
    peers
        .as_array()
        .unwrap()
        .iter()
        .map(|p| SessionSeen {
            address: p["address"].as_str().unwrap().to_string(),
            state: p["state"].as_str().unwrap_or_default().to_string(),
            flaps: p["flaps"].as_u64().unwrap(),
            uptime: p["uptimeSecs"].as_u64().unwrap_or(0),
        })
        .collect()
}
