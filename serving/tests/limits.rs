//! The server's limits, over real loopback sockets: a slow or silent client does not hold
//! the endpoint, an oversized request is refused and the next one served, the connection
//! cap holds, and a stop ends the server.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serving::{Limits, Response, get, serve};
use tokio_util::sync::CancellationToken;

fn route(path: &str) -> Response {
    match path {
        "/healthz" => Response::text("ok\n"),
        "/metrics" => Response::metrics("berth_up 1\n"),
        _ => Response::error(404, "not found\n"),
    }
}

/// A server with `limits` on a loopback port; stopped when the token is cancelled.
async fn start(limits: Limits) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve(listener, route, limits, stop.clone()));
    (addr, stop, task)
}

fn quick() -> Limits {
    Limits {
        head_timeout: Duration::from_millis(300),
        exchange_timeout: Duration::from_secs(5),
        ..Limits::default()
    }
}

/// Sends `bytes` as they are and reads the whole answer (the server closes after one
/// exchange); the status code, or `None` when the server closed without answering.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok())
}

/// Waits (bounded) until the server closes `s`; true when it did.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_get_and_head_and_refuses_other_methods() {
    let (addr, stop, task) = start(Limits::default()).await;
    let a = addr.to_string();
    tokio::task::spawn_blocking(move || {
        assert_eq!(
            get(&a, "/healthz?verbose=1", Duration::from_secs(5)).unwrap(),
            (200, "ok\n".to_string())
        );
        assert_eq!(get(&a, "/nope", Duration::from_secs(5)).unwrap().0, 404);
        assert_eq!(
            exchange(addr, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(200)
        );
        assert_eq!(
            exchange(addr, b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(405)
        );
    })
    .await
    .unwrap();
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_silent_client_neither_blocks_others_nor_stays() {
    let (addr, stop, task) = start(quick()).await;
    tokio::task::spawn_blocking(move || {
        // One client sends half a request head and stops; another connects and says nothing.
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let mut silent = TcpStream::connect(addr).unwrap();
        // Meanwhile a well-behaved client is served.
        let ok = get(&addr.to_string(), "/metrics", Duration::from_secs(5)).unwrap();
        assert_eq!(ok, (200, "berth_up 1\n".to_string()));
        // And the server lets go of both once their head deadline passes.
        assert!(
            closed_by_server(&mut slow),
            "a half-sent head kept its connection"
        );
        assert!(
            closed_by_server(&mut silent),
            "a silent client kept its connection"
        );
    })
    .await
    .unwrap();
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_is_refused_and_the_next_is_served() {
    let (addr, stop, task) = start(Limits::default()).await;
    tokio::task::spawn_blocking(move || {
        let big = format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
            "a".repeat(64 * 1024)
        );
        assert_eq!(exchange(addr, big.as_bytes()), Some(431));
        let body = b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(exchange(addr, body), Some(413));
        let chunked =
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(exchange(addr, chunked), Some(413));
        assert_eq!(
            exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(200)
        );
    })
    .await
    .unwrap();
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_until_a_slot_frees() {
    let limits = Limits {
        max_connections: 2,
        head_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let (addr, stop, task) = start(limits).await;
    tokio::task::spawn_blocking(move || {
        let first = TcpStream::connect(addr).unwrap();
        let _second = TcpStream::connect(addr).unwrap();
        // Both slots are held; the third waits in the backlog.
        let waiting = std::thread::spawn(move || {
            let status = exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            (status, Instant::now())
        });
        std::thread::sleep(Duration::from_millis(300));
        let freed = Instant::now();
        drop(first);
        let (status, answered) = waiting.join().unwrap();
        assert_eq!(status, Some(200));
        assert!(
            answered >= freed,
            "the third connection was served while both slots were held"
        );
    })
    .await
    .unwrap();
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_the_server_and_closes_the_port() {
    let (addr, stop, task) = start(Limits::default()).await;
    let a = addr.to_string();
    let served = tokio::task::spawn_blocking(move || get(&a, "/healthz", Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(served.0, 200);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("serve returns after a stop")
        .unwrap();
    assert!(
        TcpStream::connect(addr).is_err(),
        "the port still accepts after the stop"
    );
}
