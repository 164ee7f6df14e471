//! The client's probe: one UDP datagram to the VIP every millisecond; each node's responder
//! answers with its name, so every reply says which node the client's neighbour entry led
//! to. Runs on threads inside the client's namespace.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::whole::probe::now_ns;

/// One reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// When it arrived (ns since the epoch).
    pub at_ns: u64,
    /// The node that answered.
    pub node: String,
}

/// Probes `target` every `every` until `stop`; returns (probes sent, replies).
pub fn probe(
    target: SocketAddr,
    every: Duration,
    stop: &Arc<AtomicBool>,
) -> std::io::Result<(u64, Vec<Reply>)> {
    let local: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)?;
    socket.set_read_timeout(Some(Duration::from_millis(20)))?;
    let receiver = socket.try_clone()?;
    let replies = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let (r, d) = (replies.clone(), done.clone());
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while !d.load(Ordering::Relaxed) {
            if let Ok((n, _)) = receiver.recv_from(&mut buf) {
                let node = String::from_utf8_lossy(&buf[..n]).into_owned();
                r.lock().unwrap_or_else(|e| e.into_inner()).push(Reply {
                    at_ns: now_ns(),
                    node,
                });
            }
        }
    });
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // A refused or unroutable probe is a lost probe, not an error.
        if socket.send_to(b"?", target).is_ok() {
            sent += 1;
        }
        std::thread::sleep(every);
    }
    // Late replies to the last probes still count.
    std::thread::sleep(Duration::from_millis(50));
    done.store(true, Ordering::Relaxed);
    let _ = thread.join();
    let replies = std::mem::take(&mut *replies.lock().unwrap_or_else(|e| e.into_inner()));
    Ok((sent, replies))
}
