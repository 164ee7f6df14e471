//! The two tasks of one connection: the reader frames the byte stream into messages
//! (decoding is left to the peer task, which knows the negotiated context), the writer
//! writes queued chunks and enforces the RFC 9687 send hold timer. Both report to the
//! peer task on its input channel.
//!
//! Closing is a lingering close, as routers do: the queued bytes (typically a
//! NOTIFICATION) are written, the write side is shut down (FIN), and the input is read
//! and discarded until the peer closes its side too, for at most [`LINGER`]. Closing the
//! socket with the peer's UPDATEs still unread would make the kernel answer with a RST,
//! and a RST can make the peer lose the NOTIFICATION it has not read yet.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::session::ConnId;
use crate::wire::{FrameError, MAX_MESSAGE_LEN, frame};

use super::network::{Connection, Stream};

/// Chunks (UPDATE batches or single messages) queued per connection before the peer task
/// stops producing: the bound on what a slow peer can make us hold.
pub const WRITE_QUEUE: usize = 4;

/// How long a closed connection keeps reading (and discarding) after its FIN, waiting for
/// the peer's: long enough for a peer to read our NOTIFICATION and close, short enough that
/// a peer that never closes does not hold the socket for long.
pub const LINGER: Duration = Duration::from_secs(2);

/// `send_hold` in whole milliseconds, as [`ConnHandle::send_hold_ms`] holds it; saturated at
/// `u64::MAX` (585 million years) rather than wrapped.
pub(crate) fn millis(send_hold: Duration) -> u64 {
    u64::try_from(send_hold.as_millis()).unwrap_or(u64::MAX)
}

/// What connection tasks report.
#[derive(Debug)]
pub enum ConnInput {
    /// Whole messages, as framed (header included), in order.
    Frames(ConnId, Vec<Bytes>),
    /// The byte stream is not BGP; with the type field of the header that says so (none
    /// when the marker is wrong before the header is whole).
    FrameError(ConnId, FrameError, Option<u8>),
    /// The peer closed the connection (`None`: its FIN) or it failed (the error, e.g. a
    /// reset).
    Closed(ConnId, Option<std::io::Error>),
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
    /// Tells the reader to stop forwarding and hand back its half (dropped: the same).
    stop_reading: oneshot::Sender<()>,
    reader: JoinHandle<Option<ReadSide>>,
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
        let send_hold_ms = Arc::new(AtomicU64::new(millis(send_hold)));
        let max_message_len = Arc::new(AtomicUsize::new(MAX_MESSAGE_LEN));
        let (stop_reading, stop) = oneshot::channel();
        let reader = tokio::spawn(read_loop(
            id,
            rd,
            inputs.clone(),
            max_message_len.clone(),
            stop,
        ));
        let writer_task = tokio::spawn(write_loop(id, wr, rx, send_hold_ms.clone(), inputs));
        ConnHandle {
            writer: tx,
            send_hold_ms,
            max_message_len,
            stop_reading,
            reader,
            writer_task,
            local: conn.local,
            remote: conn.remote,
        }
    }

    /// Closes the connection: nothing more is forwarded; queued bytes are written, then
    /// the FIN; input is discarded until the peer's FIN or [`LINGER`] after ours (see the
    /// module doc). The returned task ends when the socket is closed.
    pub fn close(self) -> JoinHandle<()> {
        let _ = self.stop_reading.send(());
        drop(self.writer);
        tokio::spawn(linger(self.reader, self.writer_task))
    }
}

/// The end of a lingering close: keeps reading (and discarding) while the writer finishes
/// and, after its FIN, until the peer's FIN or [`LINGER`]; then drops the read half, which
/// closes the socket.
async fn linger(reader: JoinHandle<Option<ReadSide>>, mut writer: JoinHandle<()>) {
    let Ok(Some(ReadSide(mut rd))) = reader.await else {
        // The peer already closed (or the connection failed): nothing left to read.
        let _ = writer.await;
        return;
    };
    let mut scratch = vec![0u8; 16 * 1024];
    let mut deadline: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = &mut writer, if deadline.is_none() => {
                deadline = Some(Instant::now() + LINGER);
            }
            read = rd.read(&mut scratch) => {
                if matches!(read, Ok(0) | Err(_)) {
                    break;
                }
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                break;
            }
        }
    }
    if deadline.is_none() {
        // The peer closed first: our NOTIFICATION and FIN still go out.
        let _ = writer.await;
    }
}

/// Forwards framed messages until the peer closes, the stream is not BGP, or `stop`:
/// returns the read half when the connection is being closed by us and may still carry
/// unread input (see [`linger`]), `None` when the peer closed or the connection failed.
async fn read_loop(
    id: ConnId,
    mut rd: ReadHalf<Box<dyn Stream>>,
    inputs: mpsc::Sender<ConnInput>,
    max_message_len: Arc<AtomicUsize>,
    mut stop: oneshot::Receiver<()>,
) -> Option<ReadSide> {
    let ended = tokio::select! {
        biased;
        _ = &mut stop => Ended::Stopped,
        ended = forward(id, &mut rd, &inputs, &max_message_len) => ended,
    };
    match ended {
        Ended::PeerClosed => None,
        Ended::Stopped => Some(ReadSide(rd)),
        Ended::NotBgp => {
            // The peer task answers with a NOTIFICATION and closes; wait for that.
            let _ = stop.await;
            Some(ReadSide(rd))
        }
    }
}

/// The read half of a connection we are closing.
struct ReadSide(ReadHalf<Box<dyn Stream>>);

impl std::fmt::Debug for ReadSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadSide")
    }
}

/// Why [`forward`] returned.
enum Ended {
    /// End of stream or a failed read: the peer sends nothing more.
    PeerClosed,
    /// Told to stop.
    Stopped,
    /// A framing error was reported; more input may follow, unread.
    NotBgp,
}

async fn forward(
    id: ConnId,
    rd: &mut ReadHalf<Box<dyn Stream>>,
    inputs: &mpsc::Sender<ConnInput>,
    max_message_len: &AtomicUsize,
) -> Ended {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        match rd.read_buf(&mut buf).await {
            Ok(0) => {
                let _ = inputs.send(ConnInput::Closed(id, None)).await;
                return Ended::PeerClosed;
            }
            Err(e) => {
                let _ = inputs.send(ConnInput::Closed(id, Some(e))).await;
                return Ended::PeerClosed;
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
                    let message_type = buf.get(18).copied();
                    let _ = inputs
                        .send(ConnInput::FrameError(id, e, message_type))
                        .await;
                    return Ended::NotBgp;
                }
            }
        }
        if !frames.is_empty() && inputs.send(ConnInput::Frames(id, frames)).await.is_err() {
            // The peer task is gone; it dropped the stop sender too.
            return Ended::Stopped;
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
            Ok(Err(e)) => {
                let _ = inputs.send(ConnInput::Closed(id, Some(e))).await;
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
