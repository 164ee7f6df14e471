//! The restart marker: how a new `berth-speaker` knows by itself that it follows a restart.
//!
//! A speaker stopped for a restart (`--on-sigterm restart`, a rolling update) closes its
//! sessions without a NOTIFICATION, so routers keep its routes as stale for the graceful
//! restart time it advertised (RFC 4724 §4.2). Its successor must then set the Restart
//! State (R) bit in its OPENs (§3), which `bird -R` or our `--restarting` do when an init
//! script passes them; in Kubernetes nobody does. So the stopping speaker leaves a small
//! file (on a hostPath directory, so it outlives the pod) saying when it stopped and the
//! longest restart time it advertised, and the next start on that node reads it once: a
//! marker younger than that restart time means routers may still hold our routes, so this
//! start is a restart.
//!
//! [`decide`] is the pure decision (marker text + node + now → [`Decision`]); [`take`] and
//! [`leave`] are the file I/O at the edge. Nothing here panics on a corrupt file: an
//! unreadable marker is a [`Decision`] like any other, and only ever costs the R bit, which
//! is optional after a crash anyway.

use std::fmt;
use std::io::{self, Read as _};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Where `berth-speaker` keeps its marker unless told otherwise (`--restart-marker`); the
/// DaemonSet mounts the host's `/run/berth` there, so the marker survives pod replacement
/// and, being on tmpfs, not a reboot (after which no router holds our routes anyway).
pub const DEFAULT_PATH: &str = "/run/berth/restart";

/// How far the marker may be in the future (a wall clock stepped back by NTP between stop
/// and start) and still count as just written. Beyond it the age is unknown.
pub const CLOCK_SLACK: Duration = Duration::from_secs(1);

/// Markers larger than this are not ours (a real one is under 100 bytes).
const MAX_LEN: u64 = 4096;

/// What a speaker stopped for a restart leaves behind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Marker {
    /// The node the speaker spoke for: a marker from another node (a shared directory by
    /// mistake) says nothing about this one's routers.
    pub node: String,
    /// When its sessions were closed (wall clock, milliseconds since the Unix epoch): the
    /// routers' restart timers started then. Wall clock because the monotonic one does not
    /// survive the process.
    pub stopped_at_unix_ms: u64,
    /// The longest graceful-restart time it advertised, in seconds: how long the routers
    /// keep its routes stale at most.
    pub restart_time_secs: u16,
}

impl Marker {
    /// The marker of a speaker for `node` stopping at `stopped_at`, having advertised at
    /// most `restart_time_secs` of graceful-restart time.
    pub fn new(node: &str, stopped_at: SystemTime, restart_time_secs: u16) -> Self {
        let ms = stopped_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            node: node.to_string(),
            stopped_at_unix_ms: ms,
            restart_time_secs,
        }
    }

    /// The file's text: one JSON line.
    pub fn encode(&self) -> String {
        // A struct of a string and two integers always serializes.
        let mut text = serde_json::to_string(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads a marker's text.
    pub fn decode(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// `None` past the end of the platform's clock.
    fn stopped_at(&self) -> Option<SystemTime> {
        UNIX_EPOCH.checked_add(Duration::from_millis(self.stopped_at_unix_ms))
    }
}

/// What a marker found at start says, with the reason (its `Display` is the log line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Routers may still hold our routes as stale: start as `--restarting`.
    Restarted {
        /// Since the old speaker closed its sessions.
        age: Duration,
        /// The longest restart time it advertised.
        restart_time: Duration,
    },
    /// Older than the restart time it advertised: every router has dropped our stale
    /// routes, this is a fresh start.
    Stale {
        /// Since the old speaker closed its sessions.
        age: Duration,
        /// The longest restart time it advertised.
        restart_time: Duration,
    },
    /// Written later than now by more than [`CLOCK_SLACK`]: the clock moved, its age is
    /// unknown.
    FromTheFuture {
        /// How far ahead of now it claims to be.
        ahead: Duration,
    },
    /// Left by the speaker of another node.
    OtherNode {
        /// The node it names.
        node: String,
    },
    /// Not a marker (truncated, garbage, unreadable): ignored.
    Unreadable {
        /// Why.
        error: String,
    },
}

impl Decision {
    /// Whether this start is a restart (sessions send the R bit).
    pub fn restarting(&self) -> bool {
        matches!(self, Decision::Restarted { .. })
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Restarted { age, restart_time } => write!(
                f,
                "restart marker from {:.1}s ago, within the {}s restart time: starting as a restart (graceful-restart R bit)",
                age.as_secs_f64(),
                restart_time.as_secs()
            ),
            Decision::Stale { age, restart_time } => write!(
                f,
                "restart marker from {:.1}s ago is past the {}s restart time: ignored, fresh start",
                age.as_secs_f64(),
                restart_time.as_secs()
            ),
            Decision::FromTheFuture { ahead } => write!(
                f,
                "restart marker is {:.1}s in the future (the clock moved): ignored, fresh start",
                ahead.as_secs_f64()
            ),
            Decision::OtherNode { node } => write!(
                f,
                "restart marker was left by node {node:?}: ignored, fresh start"
            ),
            Decision::Unreadable { error } => {
                write!(
                    f,
                    "restart marker unreadable ({error}): ignored, fresh start"
                )
            }
        }
    }
}

/// Whether the start of `node`'s speaker at `now`, finding a marker with `text`, is a
/// restart: the marker must be this node's and younger than the restart time it records.
pub fn decide(text: &str, node: &str, now: SystemTime) -> Decision {
    let marker = match Marker::decode(text) {
        Ok(m) => m,
        Err(error) => return Decision::Unreadable { error },
    };
    if marker.node != node {
        return Decision::OtherNode { node: marker.node };
    }
    let restart_time = Duration::from_secs(u64::from(marker.restart_time_secs));
    let Some(stopped_at) = marker.stopped_at() else {
        return Decision::Unreadable {
            error: format!("stop time {} ms is out of range", marker.stopped_at_unix_ms),
        };
    };
    let age = match now.duration_since(stopped_at) {
        Ok(age) => age,
        Err(e) if e.duration() <= CLOCK_SLACK => Duration::ZERO,
        Err(e) => {
            return Decision::FromTheFuture {
                ahead: e.duration(),
            };
        }
    };
    if age < restart_time {
        Decision::Restarted { age, restart_time }
    } else {
        Decision::Stale { age, restart_time }
    }
}

/// Reads the marker at `path` and removes it (it speaks for one start only); `None` when
/// there is none. A file that cannot be read is a [`Decision::Unreadable`]; one that cannot
/// be removed is still used, its error returned beside the decision for the log.
pub fn take(path: &Path, node: &str, now: SystemTime) -> Option<(Decision, Option<io::Error>)> {
    let text = match read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            let decision = Decision::Unreadable {
                error: e.to_string(),
            };
            return Some((decision, std::fs::remove_file(path).err()));
        }
    };
    Some((decide(&text, node, now), std::fs::remove_file(path).err()))
}

fn read(path: &Path) -> io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_LEN + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_LEN {
        return Err(io::Error::other(format!("longer than {MAX_LEN} bytes")));
    }
    Ok(text)
}

/// Writes `marker` at `path` (its directory created if missing), whole or not at all: a
/// temporary file renamed over it, so a start never reads half a marker.
pub fn leave(path: &Path, marker: &Marker) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, marker.encode())?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    const STOP: u64 = 1_764_000_000_000;

    fn marker_text(node: &str, restart: u16) -> String {
        Marker::new(node, at(STOP), restart).encode()
    }

    #[test]
    fn a_marker_younger_than_the_restart_time_is_a_restart() {
        let d = decide(&marker_text("node1", 120), "node1", at(STOP + 3_500));
        assert_eq!(
            d,
            Decision::Restarted {
                age: Duration::from_millis(3_500),
                restart_time: Duration::from_secs(120)
            }
        );
        assert!(d.restarting());
        assert!(d.to_string().contains("R bit"), "{d}");
    }

    #[test]
    fn a_marker_as_old_as_the_restart_time_is_stale() {
        for age_ms in [120_000, 120_001, 86_400_000] {
            let d = decide(&marker_text("node1", 120), "node1", at(STOP + age_ms));
            assert!(matches!(d, Decision::Stale { .. }), "{age_ms}: {d:?}");
            assert!(!d.restarting());
        }
        let just_before = decide(&marker_text("node1", 120), "node1", at(STOP + 119_999));
        assert!(just_before.restarting(), "{just_before:?}");
    }

    #[test]
    fn a_zero_restart_time_never_makes_a_restart() {
        let d = decide(&marker_text("node1", 0), "node1", at(STOP));
        assert!(matches!(d, Decision::Stale { .. }), "{d:?}");
    }

    #[test]
    fn a_marker_slightly_in_the_future_counts_as_just_written_and_further_is_ignored() {
        let d = decide(&marker_text("node1", 120), "node1", at(STOP - 800));
        assert_eq!(
            d,
            Decision::Restarted {
                age: Duration::ZERO,
                restart_time: Duration::from_secs(120)
            }
        );
        let d = decide(&marker_text("node1", 120), "node1", at(STOP - 60_000));
        assert_eq!(
            d,
            Decision::FromTheFuture {
                ahead: Duration::from_secs(60)
            }
        );
        assert!(!d.restarting());
    }

    #[test]
    fn another_nodes_marker_is_ignored() {
        let d = decide(&marker_text("node2", 120), "node1", at(STOP + 1_000));
        assert_eq!(
            d,
            Decision::OtherNode {
                node: "node2".into()
            }
        );
        assert!(!d.restarting());
    }

    #[test]
    fn garbage_truncated_or_foreign_markers_are_unreadable_not_fatal() {
        let whole = marker_text("node1", 120);
        let cases = [
            String::new(),
            "\0\u{1}garbage".to_string(),
            whole[..whole.len() / 2].to_string(),
            r#"{"node":"node1","stoppedAtUnixMs":-5,"restartTimeSecs":120}"#.to_string(),
            r#"{"node":"node1","stoppedAtUnixMs":1,"restartTimeSecs":70000}"#.to_string(),
            r#"{"node":"node1","stoppedAtUnixMs":1,"restartTimeSecs":1,"extra":true}"#.to_string(),
        ];
        for text in cases {
            let d = decide(&text, "node1", at(STOP));
            assert!(matches!(d, Decision::Unreadable { .. }), "{text:?}: {d:?}");
            assert!(!d.restarting());
        }
    }

    #[test]
    fn the_largest_timestamps_do_not_overflow() {
        let text = r#"{"node":"n","stoppedAtUnixMs":18446744073709551615,"restartTimeSecs":4095}"#;
        let d = decide(text, "n", at(STOP));
        assert!(matches!(d, Decision::FromTheFuture { .. }), "{d:?}");
    }

    #[test]
    fn encode_and_decode_round_trip() {
        let m = Marker::new("node-a", at(STOP + 7), 4095);
        assert_eq!(Marker::decode(&m.encode()).unwrap(), m);
        assert_eq!(m.stopped_at_unix_ms, STOP + 7);
    }

    #[test]
    fn take_reads_once_and_removes_the_marker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("restart");
        assert!(take(&path, "node1", at(STOP)).is_none(), "no marker yet");
        leave(&path, &Marker::new("node1", at(STOP), 120)).unwrap();
        let (d, removal) = take(&path, "node1", at(STOP + 2_000)).unwrap();
        assert!(d.restarting(), "{d:?}");
        assert!(removal.is_none(), "{removal:?}");
        assert!(!path.exists());
        assert!(
            take(&path, "node1", at(STOP + 2_000)).is_none(),
            "used once"
        );
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn take_ignores_and_removes_an_oversized_or_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("restart");
        std::fs::write(&path, vec![b'x'; 10_000]).unwrap();
        let (d, _) = take(&path, "node1", at(STOP)).unwrap();
        assert!(matches!(d, Decision::Unreadable { .. }), "{d:?}");
        assert!(!path.exists());
        std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        let (d, _) = take(&path, "node1", at(STOP)).unwrap();
        assert!(matches!(d, Decision::Unreadable { .. }), "{d:?}");
        assert!(!path.exists());
    }

    #[test]
    fn take_on_a_directory_is_unreadable_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let (d, removal) = take(dir.path(), "node1", at(STOP)).unwrap();
        assert!(matches!(d, Decision::Unreadable { .. }), "{d:?}");
        assert!(removal.is_some(), "a directory is not removed as a marker");
        assert!(dir.path().exists());
    }
}
