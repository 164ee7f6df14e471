//! The message header (RFC 4271 §4.1), framing of a byte stream into messages, and the
//! [`Message`] sum type with its decode and encode entry points.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                           Marker (16 octets, all ones)        +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length               |      Type     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use bytes::{BufMut, BytesMut};

use super::context::{Context, MAX_MESSAGE_LEN};
use super::error::{DecodeError, EncodeError, FrameError};
use super::iana::message_type as mt;
use super::notification::Notification;
use super::open::Open;
use super::route_refresh::RouteRefresh;
use super::update::Update;

/// Length of the message header.
pub const HEADER_LEN: usize = 19;
/// The header marker.
pub const MARKER: [u8; 16] = [0xff; 16];

const MIN_OPEN_LEN: usize = 29;
const MIN_UPDATE_LEN: usize = 23;
const MIN_NOTIFICATION_LEN: usize = 21;
const ROUTE_REFRESH_LEN: usize = 23;

/// Tells whether `buf` starts with a whole message, without copying.
///
/// Returns `Ok(Some(len))` when the first `len` bytes are one message, `Ok(None)` when more
/// bytes are needed, and an error when the stream cannot be BGP (RFC 4271 §6.1). `max_len`
/// is 4,096, or 65,535 once extended messages were negotiated ([`Context::max_message_len`]).
///
/// Everything the header alone can tell is checked as soon as the header is in: the
/// marker, the length against `max_len`, the type, and the length against the type. A
/// length the type cannot have is refused at once rather than waited for: a KEEPALIVE
/// header claiming 25 octets would otherwise wait for 6 octets that may never come.
pub fn frame(buf: &[u8], max_len: usize) -> Result<Option<usize>, FrameError> {
    let marker_seen = buf.len().min(MARKER.len());
    if buf[..marker_seen].iter().any(|&b| b != 0xff) {
        return Err(FrameError::ConnectionNotSynchronized);
    }
    // The whole header first, so that every error is judged on all of it, however the
    // stream was cut (a caller may treat errors in a NOTIFICATION's header apart).
    let Some(&[hi, lo, message_type]) = buf.get(16..HEADER_LEN) else {
        return Ok(None);
    };
    let length = u16::from_be_bytes([hi, lo]);
    let len = usize::from(length);
    if !(HEADER_LEN..=max_len).contains(&len) {
        return Err(FrameError::BadMessageLength { length });
    }
    match length_range(message_type, max_len) {
        None => return Err(FrameError::BadMessageType { message_type }),
        Some(range) if !range.contains(&len) => {
            return Err(FrameError::BadMessageLength { length });
        }
        Some(_) => {}
    }
    Ok((buf.len() >= len).then_some(len))
}

/// The lengths a message of `message_type` may announce in its header, or `None` for an
/// unknown type (RFC 4271 §6.1; RFC 8654 §4: OPEN and KEEPALIVE are never extended).
///
/// A ROUTE-REFRESH of any length is framed: RFC 7313 §5 answers a length other than 23
/// with its own error, whose data MUST be the complete message, so it has to be read
/// whole ([`Message::decode`] then refuses it).
fn length_range(message_type: u8, max_len: usize) -> Option<std::ops::RangeInclusive<usize>> {
    let unextended = max_len.min(MAX_MESSAGE_LEN);
    Some(match message_type {
        mt::OPEN => MIN_OPEN_LEN..=unextended,
        mt::UPDATE => MIN_UPDATE_LEN..=max_len,
        mt::NOTIFICATION => MIN_NOTIFICATION_LEN..=max_len,
        mt::KEEPALIVE => HEADER_LEN..=HEADER_LEN,
        mt::ROUTE_REFRESH => HEADER_LEN..=max_len,
        _ => return None,
    })
}

/// A BGP message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// OPEN (RFC 4271 §4.2).
    Open(Open),
    /// UPDATE (RFC 4271 §4.3).
    Update(Update),
    /// NOTIFICATION (RFC 4271 §4.5).
    Notification(Notification),
    /// KEEPALIVE (RFC 4271 §4.4).
    Keepalive,
    /// ROUTE-REFRESH (RFC 2918, RFC 7313).
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// The message type code.
    pub fn message_type(&self) -> u8 {
        match self {
            Message::Open(_) => mt::OPEN,
            Message::Update(_) => mt::UPDATE,
            Message::Notification(_) => mt::NOTIFICATION,
            Message::Keepalive => mt::KEEPALIVE,
            Message::RouteRefresh(_) => mt::ROUTE_REFRESH,
        }
    }

    /// Decodes one whole message, header included (as delimited by [`frame`]).
    ///
    /// `Err` means a NOTIFICATION and session reset ([`DecodeError::notification`]); an
    /// UPDATE with an RFC 7606 outcome that does not reset the session comes back as
    /// `Ok` with [`Update::error`] set.
    pub fn decode(bytes: &[u8], ctx: &Context) -> Result<Message, DecodeError> {
        let Some((header, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            // Fewer than 19 bytes cannot hold a length field that describes them.
            let length = bytes
                .get(16..18)
                .map_or(0, |l| u16::from_be_bytes([l[0], l[1]]));
            return Err(DecodeError::BadMessageLength { length });
        };
        if header[..16] != MARKER {
            return Err(DecodeError::ConnectionNotSynchronized);
        }
        let length = u16::from_be_bytes([header[16], header[17]]);
        let len = usize::from(length);
        if len != bytes.len() || len > ctx.max_message_len() {
            return Err(DecodeError::BadMessageLength { length });
        }
        let bad_len = DecodeError::BadMessageLength { length };
        match header[18] {
            mt::OPEN if !(MIN_OPEN_LEN..=MAX_MESSAGE_LEN).contains(&len) => Err(bad_len),
            mt::OPEN => Open::decode_body(body).map(Message::Open),
            mt::UPDATE if len < MIN_UPDATE_LEN => Err(bad_len),
            mt::UPDATE => Update::decode_body(body, ctx).map(Message::Update),
            mt::NOTIFICATION if len < MIN_NOTIFICATION_LEN => Err(bad_len),
            mt::NOTIFICATION => Notification::decode_body(body)
                .map(Message::Notification)
                .ok_or(bad_len),
            mt::KEEPALIVE if len != HEADER_LEN => Err(bad_len),
            mt::KEEPALIVE => Ok(Message::Keepalive),
            // RFC 7313 §5: any length other than 23 is its own error code.
            mt::ROUTE_REFRESH => RouteRefresh::decode_body(body)
                .filter(|_| len == ROUTE_REFRESH_LEN)
                .map(Message::RouteRefresh)
                .ok_or_else(|| DecodeError::RouteRefreshInvalidLength {
                    message: bytes.to_vec(),
                }),
            message_type => Err(DecodeError::BadMessageType { message_type }),
        }
    }

    /// Appends the whole message, header included. On error nothing is appended.
    pub fn encode(&self, ctx: &Context, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let start = buf.len();
        buf.extend_from_slice(&MARKER);
        buf.put_u16(0);
        buf.put_u8(self.message_type());
        let body = match self {
            Message::Open(o) => o.encode_body(buf),
            Message::Update(u) => {
                u.encode_body(ctx, buf);
                Ok(())
            }
            Message::Notification(n) => {
                n.encode_body(buf);
                Ok(())
            }
            Message::Keepalive => Ok(()),
            Message::RouteRefresh(r) => {
                r.encode_body(buf);
                Ok(())
            }
        };
        let result = body.and_then(|()| finish_message(buf, start, ctx.max_message_len()));
        if result.is_err() {
            buf.truncate(start);
        }
        result
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self, ctx: &Context) -> Result<BytesMut, EncodeError> {
        let mut buf = BytesMut::with_capacity(HEADER_LEN + 64);
        self.encode(ctx, &mut buf)?;
        Ok(buf)
    }
}

/// Fills in the length of the message that starts at `start` and checks it.
pub(crate) fn finish_message(
    buf: &mut BytesMut,
    start: usize,
    max_len: usize,
) -> Result<(), EncodeError> {
    let length = buf.len() - start;
    // `max_len` is at most 65,535, so a length within it fits the 16-bit field.
    let field = u16::try_from(length)
        .ok()
        .filter(|_| length <= max_len)
        .ok_or(EncodeError::MessageTooLong {
            length,
            max: max_len,
        })?;
    buf[start + 16..start + 18].copy_from_slice(&field.to_be_bytes());
    Ok(())
}
