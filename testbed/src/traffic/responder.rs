//! A TCP and UDP responder living in a node namespace: every TCP connection receives the
//! node's name and is closed; every UDP datagram is answered with the name.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::oneshot;

use crate::lab::Netns;
use crate::{Error, Result};

/// A running responder; dropping it stops it.
#[derive(Debug)]
pub struct Responder {
    name: String,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    /// Starts answering with `name` on TCP and UDP at each of `addresses`, inside `netns`.
    /// The addresses must already exist there (a VIP on `lo`, say); binding fails otherwise.
    pub fn start(netns: &Netns, name: &str, addresses: &[SocketAddr]) -> Result<Responder> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let answer: Arc<[u8]> = Arc::from(name.as_bytes());
        let addresses = addresses.to_vec();
        let thread = netns.spawn_thread(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(Error::io("tokio runtime", e)));
                    return;
                }
            };
            runtime.block_on(serve(addresses, answer, ready_tx, shutdown_rx));
        })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Responder {
                name: name.to_string(),
                shutdown: Some(shutdown_tx),
                thread: Some(thread),
            }),
            Ok(Err(err)) => {
                let _ = thread.join();
                Err(err)
            }
            Err(_) => Err(Error::Daemon(format!("responder {name} died"))),
        }
    }

    /// The name it answers with.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    addresses: Vec<SocketAddr>,
    answer: Arc<[u8]>,
    ready: std::sync::mpsc::Sender<Result<()>>,
    shutdown: oneshot::Receiver<()>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for address in addresses {
        let tcp = match TcpListener::bind(address).await {
            Ok(listener) => listener,
            Err(e) => {
                let _ = ready.send(Err(Error::io(format!("bind tcp {address}"), e)));
                return;
            }
        };
        let udp = match UdpSocket::bind(address).await {
            Ok(socket) => socket,
            Err(e) => {
                let _ = ready.send(Err(Error::io(format!("bind udp {address}"), e)));
                return;
            }
        };
        let tcp_answer = answer.clone();
        tasks.spawn(async move {
            while let Ok((mut stream, _)) = tcp.accept().await {
                let answer = tcp_answer.clone();
                tokio::spawn(async move {
                    let _ = stream.write_all(&answer).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        let udp_answer = answer.clone();
        tasks.spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((_, peer)) = udp.recv_from(&mut buf).await {
                let _ = udp.send_to(&udp_answer, peer).await;
            }
        });
    }
    let _ = ready.send(Ok(()));
    let _ = shutdown.await;
    tasks.abort_all();
}
