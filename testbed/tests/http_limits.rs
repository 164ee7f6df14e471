//! Every HTTP endpoint of both daemons holds its limits (issue 16 §4): a client that sends
//! half a request head, or nothing, neither blocks other clients nor keeps its connection,
//! and an oversized request is refused while the next one is served. Unprivileged: the real
//! binaries in standalone mode on loopback ports.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::workspace_bin;

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
}

/// A daemon that is killed when the test ends, however it ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(binary: &str, args: &[String]) -> Daemon {
    Daemon(
        Command::new(workspace_bin(binary))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// The status of one exchange of `bytes`, or `None` when the server closed without one.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(bytes).ok()?;
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok())
}

fn get(addr: SocketAddr, path: &str) -> Option<u16> {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
}

/// Waits until `addr` answers `path` with 200 (the daemon is up).
fn wait_up(addr: SocketAddr, path: &str, daemon: &mut Daemon) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(addr, path) != Some(200) {
        assert!(
            daemon.0.try_wait().unwrap().is_none(),
            "the daemon exited before serving {addr}{path}"
        );
        assert!(Instant::now() < deadline, "{addr}{path} never answered 200");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True when the server closes `s` (bounded wait, far above the 5 s head deadline).
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// The limits, checked against one endpoint.
fn holds_limits(addr: SocketAddr, path: &str) {
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n").as_bytes())
        .unwrap();
    let mut silent = TcpStream::connect(addr).unwrap();
    assert_eq!(
        get(addr, path),
        Some(200),
        "{addr}{path} blocked by a slow client"
    );
    let big = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert_eq!(exchange(addr, big.as_bytes()), Some(431), "{addr}{path}");
    assert_eq!(
        get(addr, path),
        Some(200),
        "{addr}{path} after an oversized request"
    );
    assert!(
        closed_by_server(&mut slow),
        "{addr}: a half-sent head kept its connection"
    );
    assert!(
        closed_by_server(&mut silent),
        "{addr}: a silent client kept its connection"
    );
}

#[test]
fn every_endpoint_of_both_daemons_holds_its_limits() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().display().to_string();
    let (speaker_metrics, admin, controller_metrics) = (free_addr(), free_addr(), free_addr());
    let mut speaker = start(
        "berth-speaker",
        &[
            "--node-name".into(),
            "n1".into(),
            "--state-dir".into(),
            state.clone(),
            "--listen-port".into(),
            free_addr().port().to_string(),
            "--metrics-addr".into(),
            speaker_metrics.to_string(),
            "--admin-addr".into(),
            admin.to_string(),
            "--layer2-port".into(),
            "0".into(),
        ],
    );
    let mut controller = start(
        "berth-controller",
        &[
            "--state-dir".into(),
            state,
            "--metrics-addr".into(),
            controller_metrics.to_string(),
        ],
    );
    wait_up(speaker_metrics, "/readyz", &mut speaker);
    wait_up(admin, "/api/v1/status", &mut speaker);
    wait_up(controller_metrics, "/metrics", &mut controller);
    let checks = [
        (speaker_metrics, "/metrics"),
        (speaker_metrics, "/readyz"),
        (admin, "/api/v1/peers"),
        (admin, "/api/v1/vips"),
        (controller_metrics, "/metrics"),
        (controller_metrics, "/healthz"),
    ];
    // In parallel: each check waits out a 5 s head deadline.
    std::thread::scope(|s| {
        for (addr, path) in checks {
            s.spawn(move || holds_limits(addr, path));
        }
    });
    for (name, daemon) in [("speaker", &mut speaker), ("controller", &mut controller)] {
        assert!(
            daemon.0.try_wait().unwrap().is_none(),
            "the {name} exited during the checks"
        );
    }
}
