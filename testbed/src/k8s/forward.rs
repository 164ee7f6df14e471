//! A TCP forwarder from the root namespace into a lab namespace: it listens on `127.0.0.1:0`
//! where the test runs and, for each connection, connects to a target address from inside the
//! namespace (a socket keeps the namespace it was created in) and copies bytes both ways.
//! Dropping it closes the listener and every connection. Knows nothing about what it carries.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::debug;

use crate::lab::Netns;
use crate::{Error, Result};

/// How long a connection to the target may take before the client's connection is closed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Open connections by id: both sockets of each, so a drop can shut them down.
type Connections = Arc<Mutex<HashMap<u64, [TcpStream; 2]>>>;

/// A running forwarder; see the module docs.
#[derive(Debug)]
pub(crate) struct Forwarder {
    netns: Netns,
    target: SocketAddr,
    local: SocketAddr,
    connections: Connections,
    acceptor: Option<Acceptor>,
}

/// The listener's thread, while the forwarder listens.
#[derive(Debug)]
struct Acceptor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Forwarder {
    /// Listens on `127.0.0.1:0` in the caller's namespace and forwards to `target` as seen
    /// from inside `netns`.
    pub(crate) fn start(netns: &Netns, target: SocketAddr) -> Result<Forwarder> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| Error::io("bind the forwarder on 127.0.0.1", e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("forwarder address", e))?;
        let mut forwarder = Forwarder {
            netns: netns.clone(),
            target,
            local,
            connections: Arc::default(),
            acceptor: None,
        };
        forwarder.accept(listener)?;
        debug!(%local, %target, node = netns.node(), "forwarder started");
        Ok(forwarder)
    }

    /// Where clients in the caller's namespace connect.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Closes the listener (open connections stay), so new connections are refused, as they
    /// are by a stopped server. Accepting and closing them instead would look like a server
    /// that hangs up, which clients such as kubectl retry for many seconds.
    pub(crate) fn stop_listening(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.stop.store(true, Ordering::SeqCst);
            // Wakes the accepting thread, which then sees `stop`. If the wake-up cannot
            // connect (called from another namespace), the thread is left blocked rather
            // than joined.
            if TcpStream::connect_timeout(&self.local, Duration::from_secs(1)).is_ok() {
                let _ = acceptor.thread.join();
            }
        }
    }

    /// Listens again on the same address after [`Forwarder::stop_listening`].
    pub(crate) fn listen_again(&mut self) -> Result<()> {
        if self.acceptor.is_some() {
            return Ok(());
        }
        // std sets SO_REUSEADDR, so the port is free again at once.
        let listener = TcpListener::bind(self.local)
            .map_err(|e| Error::io(format!("bind the forwarder on {} again", self.local), e))?;
        self.accept(listener)
    }

    fn accept(&mut self, listener: TcpListener) -> Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        let (target, connections) = (self.target, self.connections.clone());
        // The accepting thread lives in the target's namespace, so the sockets it connects
        // are there; the listener, made by the caller, stays in the caller's namespace.
        let thread = {
            let stop = stop.clone();
            self.netns
                .spawn_thread(move || accept_loop(&listener, target, &stop, &connections))?
        };
        self.acceptor = Some(Acceptor { stop, thread });
        Ok(())
    }
}

fn accept_loop(
    listener: &TcpListener,
    target: SocketAddr,
    stop: &AtomicBool,
    connections: &Connections,
) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    for client in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        // A refused or timed-out connect (the API server is stopped) closes the client's
        // connection at once: the client sees the outage as a reset, as it would directly.
        let Ok(server) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else {
            continue;
        };
        let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let registered = client
            .try_clone()
            .and_then(|c| Ok([c, server.try_clone()?]));
        if let Ok(pair) = registered {
            lock(connections).insert(id, pair);
        }
        let registry = connections.clone();
        let spawned = std::thread::Builder::new()
            .name("forward".into())
            .spawn(move || {
                let upstream = std::thread::spawn(move || pipe(&client2, &server2));
                pipe(&server, &client);
                let _ = upstream.join();
                lock(&registry).remove(&id);
            });
        if spawned.is_err() {
            lock(connections).remove(&id);
        }
    }
}

/// Copies `from` to `to` until `from` ends, then passes the end on; on an error both sockets
/// are shut down so the other direction ends too.
fn pipe(from: &TcpStream, to: &TcpStream) {
    match io::copy(&mut &*from, &mut &*to) {
        Ok(_) => {
            let _ = to.shutdown(Shutdown::Write);
        }
        Err(_) => {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        }
    }
}

fn lock(connections: &Connections) -> std::sync::MutexGuard<'_, HashMap<u64, [TcpStream; 2]>> {
    connections.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop_listening();
        for pair in lock(&self.connections).values() {
            for stream in pair {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}
