//! Where byte streams come from: real TCP (`TcpNetwork`) or, for tests on paused tokio
//! time, an in-memory network of duplex pipes (`MemoryNetwork`). The peer tasks only see
//! `Connection`s, so everything above this file runs the same on both.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::transport::Transport;

/// A bidirectional byte stream carrying one BGP session.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// An open connection and its endpoints.
pub struct Connection {
    /// The byte stream.
    pub stream: Box<dyn Stream>,
    /// Our end.
    pub local: SocketAddr,
    /// The peer's end.
    pub remote: SocketAddr,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .finish()
    }
}

/// A boxed future, as returned by [`Network::connect`].
pub type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<Connection>> + Send>>;

/// Opens outgoing connections.
pub trait Network: Send + Sync + 'static {
    /// Connects as `transport` says, giving up after `timeout`.
    fn connect(&self, transport: &Transport, timeout: Duration) -> ConnectFuture;
}

/// Real TCP with the socket options of [`Transport`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpNetwork;

impl Network for TcpNetwork {
    fn connect(&self, transport: &Transport, timeout: Duration) -> ConnectFuture {
        let transport = transport.clone();
        Box::pin(async move {
            let stream = transport.connect(timeout).await?;
            let local = stream.local_addr()?;
            let remote = stream.peer_addr()?;
            Ok(Connection {
                stream: Box::new(stream),
                local,
                remote,
            })
        })
    }
}

/// An in-memory network: speakers register the addresses they listen on, and connecting
/// to one hands the listener one end of a duplex pipe. No sockets, so it runs on paused
/// tokio time.
#[derive(Clone, Default)]
pub struct MemoryNetwork {
    listeners: Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Connection>>>>,
}

/// Pipe capacity of in-memory connections, in bytes.
const PIPE_CAPACITY: usize = 256 * 1024;

impl MemoryNetwork {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// Listens on `addr`: connections to it arrive on the returned receiver.
    pub fn listen(&self, addr: SocketAddr) -> mpsc::Receiver<Connection> {
        let (tx, rx) = mpsc::channel(16);
        self.lock().insert(addr, tx);
        rx
    }

    /// Stops listening on `addr`.
    pub fn unlisten(&self, addr: SocketAddr) {
        self.lock().remove(&addr);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, mpsc::Sender<Connection>>> {
        // A poisoned map is still a valid map: the panic was elsewhere.
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Network for MemoryNetwork {
    fn connect(&self, transport: &Transport, _timeout: Duration) -> ConnectFuture {
        let target = transport.remote_addr();
        let listener = self.lock().get(&target).cloned();
        let local_ip = transport.local.unwrap_or(if target.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
        Box::pin(async move {
            let refused =
                || io::Error::new(io::ErrorKind::ConnectionRefused, "nobody listens there");
            let listener = listener.ok_or_else(refused)?;
            let (ours, theirs) = tokio::io::duplex(PIPE_CAPACITY);
            let local = SocketAddr::new(local_ip, 40000);
            listener
                .send(Connection {
                    stream: Box::new(theirs),
                    local: target,
                    remote: local,
                })
                .await
                .map_err(|_| refused())?;
            Ok(Connection {
                stream: Box::new(ours),
                local,
                remote: target,
            })
        })
    }
}
