//! Where `berth-controller` and `berth-speaker` write their logs and how: to stderr, as every
//! supervisor that keeps them expects (the testbed, the demo and Kubernetes read stderr), and
//! in text format without colour escapes when stderr is not a terminal (a file, a pipe).
//! Standalone mode, unprivileged: the log of each one's start is enough.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::workspace_bin;

/// Kills the child on drop (the test may panic).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// Runs `binary --state-dir <empty dir> args` with stdout and stderr to files until `needle`
/// shows in stderr; then checks that the log is there, without an ESC byte, and that stdout
/// is empty.
fn logs_go_to_stderr_without_colour(binary: &str, args: &[&str], needle: &str) {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("berth-logs-{binary}-{}", std::process::id()));
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let (stdout, stderr) = (dir.join("stdout"), dir.join("stderr"));
    let child = Command::new(workspace_bin(binary))
        .arg("--state-dir")
        .arg(&state)
        .args(args)
        // Colour must not depend on the environment saying "no colour".
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut child = Proc(child);
    let start = Instant::now();
    while !read(&stderr)
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
    {
        let out = String::from_utf8_lossy(&read(&stdout)).into_owned();
        assert!(!out.contains(needle), "the log went to stdout:\n{out}");
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!(
                "{binary} exited ({status}):\n{}",
                String::from_utf8_lossy(&read(&stderr))
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no start in the log on stderr:\n{}",
            String::from_utf8_lossy(&read(&stderr))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(child);
    let (log, out) = (read(&stderr), read(&stdout));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !log.contains(&0x1b),
        "colour escapes in a log written to a file:\n{}",
        String::from_utf8_lossy(&log)
    );
    assert!(
        out.is_empty(),
        "stdout is not the log's: {}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn controller_text_logs_go_to_stderr_without_colour_when_it_is_a_file() {
    logs_go_to_stderr_without_colour(
        "berth-controller",
        &["--metrics-addr", "127.0.0.1:0", "--log-format", "text"],
        "metrics on /metrics",
    );
}

#[test]
fn speaker_text_logs_go_to_stderr_without_colour_when_it_is_a_file() {
    let marker = std::env::temp_dir().join(format!("berth-logs-marker-{}", std::process::id()));
    logs_go_to_stderr_without_colour(
        "berth-speaker",
        &[
            "--node-name",
            "n1",
            "--router-id",
            "127.0.0.1",
            "--admin-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "text",
            "--restart-marker",
            &marker.to_string_lossy(),
        ],
        "standalone mode",
    );
}
