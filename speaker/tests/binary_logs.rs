//! Where `berth-speaker` writes its log and how: to stderr, as every supervisor that
//! keeps it expects (the testbed, the demo and Kubernetes read stderr), and in text
//! format without colour escapes when stderr is not a terminal (a file, a pipe).
//! Standalone mode, unprivileged: the log of its start is enough.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

#[test]
fn text_logs_go_to_stderr_without_colour_when_it_is_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("state dir");
    let (stdout, stderr) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let child = Command::new(env!("CARGO_BIN_EXE_berth-speaker"))
        .args(["--node-name", "n1", "--state-dir"])
        .arg(&state)
        .args(["--router-id", "127.0.0.1"])
        .args([
            "--admin-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .args(["--log-format", "text", "--restart-marker"])
        .arg(dir.path().join("restart-marker"))
        // Colour must not depend on the environment saying "no colour".
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("run berth-speaker");
    let mut child = Proc(child);
    let start = Instant::now();
    let needle = b"standalone mode";
    while !read(&stderr).windows(needle.len()).any(|w| w == needle) {
        let out = String::from_utf8_lossy(&read(&stdout)).into_owned();
        assert!(
            !out.contains("standalone mode"),
            "the log went to stdout:\n{out}"
        );
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!(
                "berth-speaker exited ({status}):\n{}",
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
    let log = read(&stderr);
    assert!(
        !log.contains(&0x1b),
        "colour escapes in a log written to a file:\n{}",
        String::from_utf8_lossy(&log)
    );
    assert!(
        read(&stdout).is_empty(),
        "stdout is not the log's: {}",
        String::from_utf8_lossy(&read(&stdout))
    );
}
