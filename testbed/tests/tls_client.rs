//! Both daemons open a TLS session to the API server in Kubernetes mode (issue 22 item 1):
//! before, rustls had no process-level crypto provider and `berth-controller` and
//! `berth-speaker` panicked before their first request, which no test noticed because
//! nothing opened a TLS connection. Unprivileged: a listener on loopback stands in for the
//! API server and checks that a TLS handshake (a ClientHello record) arrives and that the
//! process is still running. The full session against a real kube-apiserver is proven by
//! the in-cluster suite (`kube_*.rs`, root).
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::workspace_bin;

/// A kubeconfig for `server` with a bearer token (the certificate is not checked: only the
/// handshake's start is looked at).
fn kubeconfig(dir: &std::path::Path, server: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    \
         insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: not-a-real-token\n\
         contexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `binary args` against a loopback listener and returns the first bytes it sends.
fn first_bytes_from(binary: &str, args: &[&str]) -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("berth-tls-{binary}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = kubeconfig(&dir, &format!("https://127.0.0.1:{port}"));
    let log = dir.join("stderr.log");
    let mut child = Command::new(workspace_bin(binary))
        .args(args)
        .env("KUBECONFIG", &config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{binary} never connected to the API server:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut bytes = vec![0u8; 6];
    let read = stream.read_exact(&mut bytes);
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    read.unwrap_or_else(|e| panic!("{binary} sent no handshake: {e}\n{stderr}"));
    assert!(alive, "{binary} exited after connecting:\n{stderr}");
    assert!(
        !stderr.contains("CryptoProvider") && !stderr.contains("panicked"),
        "{binary} panicked:\n{stderr}"
    );
    bytes
}

/// A TLS record of type handshake (22), version 3.x, carrying a ClientHello (1).
fn assert_client_hello(binary: &str, bytes: &[u8]) {
    assert_eq!(
        (bytes[0], bytes[1], bytes[5]),
        (22, 3, 1),
        "{binary} did not start a TLS handshake: {bytes:?}"
    );
}

#[test]
fn controller_opens_a_tls_session_to_the_api_server() {
    let bytes = first_bytes_from(
        "berth-controller",
        &["--no-leader-election", "--metrics-addr", ""],
    );
    assert_client_hello("berth-controller", &bytes);
}

#[test]
fn speaker_opens_a_tls_session_to_the_api_server() {
    let bytes = first_bytes_from(
        "berth-speaker",
        &[
            "--node-name",
            "tls-check",
            "--metrics-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--restart-marker",
            "",
            "--listen-port",
            "0",
        ],
    );
    assert_client_hello("berth-speaker", &bytes);
}
