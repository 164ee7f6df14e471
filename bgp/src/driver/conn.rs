//! The two tasks of one connection: the reader frames the byte stream into messages
//! (decoding is left to the peer task, which knows the negotiated context), the writer
//! writes queued chunks and enforces the RFC 9687 send hold timer. Both report to the
//! peer task on its input channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::session::ConnId;
use crate::wire::{FrameError, MAX_MESSAGE_LEN, frame};

use super::network::{Connection, Stream};

/// Chunks (UPDATE batches or single messages) queued per connection before the peer task
/// stops producing: the bound on what a slow peer can make us hold.
pub const WRITE_QUEUE: usize = 4;

/// What connection tasks report.
#[derive(Debug)]
pub enum ConnInput {
    /// Whole messages, as framed (header included), in order.
    Frames(ConnId, Vec<Bytes>),
    /// The byte stream is not BGP.
    FrameError(ConnId, FrameError),
    /// The peer closed the connection or it failed.
    Closed(ConnId),
    /// A write did not complete within the send hold time.
    SendHoldExpired(ConnId),
}

/// Handle on one connection's tasks.
#[derive(Debug)]
pub struct ConnHandle {
    /// Queue of bytes to write.
    pub writer: mpsc::Sender<Bytes>,
    /// Send hold time in milliseconds, read by the writer before each write.
    pub send_hold_ms: Arc<AtomicU64>,
    /// The largest message the reader frames: 4,096 until the peer task sees both OPENs
    /// carry the extended message capability (RFC 8654), so a header claiming more is
    /// refused as soon as it arrives (RFC 4271 §6.1) rather than waited for.
    pub max_message_len: Arc<AtomicUsize>,
    reader: JoinHandle<()>,
    writer_task: JoinHandle<()>,
    /// Our end.
    pub local: std::net::SocketAddr,
    /// The peer's end.
    pub remote: std::net::SocketAddr,
}

impl ConnHandle {
    /// Starts the reader and writer of `conn`.
    pub fn spawn(
        id: ConnId,
        conn: Connection,
        inputs: mpsc::Sender<ConnInput>,
        send_hold: Duration,
    ) -> ConnHandle {
        let (rd, wr) = tokio::io::split(conn.stream);
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let send_hold_ms = Arc::new(AtomicU64::new(send_hold.as_millis() as u64));
        let max_message_len = Arc::new(AtomicUsize::new(MAX_MESSAGE_LEN));
        let reader = tokio::spawn(read_loop(id, rd, inputs.clone(), max_message_len.clone()));
        let writer_task = tokio::spawn(write_loop(id, wr, rx, send_hold_ms.clone(), inputs));
        ConnHandle {
            writer: tx,
            send_hold_ms,
            max_message_len,
            reader,
            writer_task,
            local: conn.local,
            remote: conn.remote,
        }
    }

    /// Closes the connection once queued bytes are written; returns the writer task to
    /// await if the caller wants to know when that happened.
    pub fn close(self) -> JoinHandle<()> {
        self.reader.abort();
        drop(self.writer);
        self.writer_task
    }
}

async fn read_loop(
    id: ConnId,
    mut rd: ReadHalf<Box<dyn Stream>>,
    inputs: mpsc::Sender<ConnInput>,
    max_message_len: Arc<AtomicUsize>,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = inputs.send(ConnInput::Closed(id)).await;
                return;
            }
            Ok(_) => {}
        }
        let mut frames = Vec::new();
        loop {
            match frame(&buf, max_message_len.load(Ordering::Acquire)) {
                Ok(Some(len)) => frames.push(buf.split_to(len).freeze()),
                Ok(None) => break,
                Err(e) => {
                    if !frames.is_empty() {
                        let _ = inputs.send(ConnInput::Frames(id, frames)).await;
                    }
                    let _ = inputs.send(ConnInput::FrameError(id, e)).await;
                    return;
                }
            }
        }
        if !frames.is_empty() && inputs.send(ConnInput::Frames(id, frames)).await.is_err() {
            return;
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
    }
}

async fn write_loop(
    id: ConnId,
    mut wr: WriteHalf<Box<dyn Stream>>,
    mut rx: mpsc::Receiver<Bytes>,
    send_hold_ms: Arc<AtomicU64>,
    inputs: mpsc::Sender<ConnInput>,
) {
    while let Some(chunk) = rx.recv().await {
        let hold = Duration::from_millis(send_hold_ms.load(Ordering::Relaxed));
        match tokio::time::timeout(hold, wr.write_all(&chunk)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                let _ = inputs.send(ConnInput::Closed(id)).await;
                return;
            }
            Err(_) => {
                let _ = inputs.send(ConnInput::SendHoldExpired(id)).await;
                return;
            }
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}
