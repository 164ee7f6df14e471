//! The BGP-4 message codec: framing, decoding and encoding of OPEN, UPDATE, NOTIFICATION,
//! KEEPALIVE and ROUTE-REFRESH (RFC 4271, RFC 4760, RFC 2918, RFC 7313 and the extensions
//! named on each type), strict about malformed input per RFC 4271 §6 and RFC 7606.
//!
//! Sans-IO: no sockets, no clock, no session state beyond the negotiated [`Context`].
//! `nom` is used inside this module for decoding and never appears in a public signature;
//! encoding writes into [`bytes::BytesMut`].
//!
//! Bad input never panics and is never read past: every length field is checked against the
//! bytes actually present, and every allocation is sized from the input that is present
//! (at most one entry per input byte, never from a length field alone). Errors map to the
//! NOTIFICATION RFC 4271 §6 requires through [`DecodeError::notification`]; the UPDATE
//! errors RFC 7606 softens come back inside the decoded [`Update`] as an [`UpdateError`].
//!
//! Typical receive path:
//!
//! ```
//! use bgp::wire::{Context, Message, frame};
//!
//! let ctx = Context::default();
//! let mut stream = vec![0xff; 16];
//! stream.extend_from_slice(&[0, 19, 4]); // a KEEPALIVE
//! let len = frame(&stream, ctx.max_message_len()).unwrap().unwrap();
//! assert_eq!(Message::decode(&stream[..len], &ctx).unwrap(), Message::Keepalive);
//! ```
#![warn(
    clippy::cast_possible_truncation,
    clippy::allow_attributes_without_reason,
    unreachable_pub
)]

pub mod attribute;
mod attribute_decode;
pub mod capability;
pub mod context;
pub mod error;
pub mod iana;
pub mod message;
pub mod mp;
pub mod notification;
pub mod open;
pub mod pack;
pub mod prefix;
pub mod route_refresh;
pub mod update;

pub use attribute::{
    Aggregator, AsPath, AsSegment, AttributeValue, Community, ExtendedCommunity,
    FLAG_EXTENDED_LENGTH, FLAG_OPTIONAL, FLAG_PARTIAL, FLAG_TRANSITIVE, LargeCommunity, Origin,
    PathAttribute, SegmentType,
};
pub use capability::{
    AddPathFamily, AddPathMode, Capability, ExtendedNextHopEntry, GracefulRestart,
    GracefulRestartFamily, LlgrFamily,
};
pub use context::{AddPathFamilies, Context, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN};
pub use error::{DecodeError, EncodeError, FrameError, UpdateError};
pub use iana::{Afi, Family, Safi};
pub use message::{HEADER_LEN, MARKER, Message, frame};
pub use mp::{MpNextHop, MpReach, MpUnreach};
pub use notification::{
    CeaseSubcode, ErrorCode, FsmSubcode, MAX_SHUTDOWN_COMMUNICATION, MessageHeaderSubcode,
    Notification, OpenSubcode, RouteRefreshSubcode, UpdateSubcode,
};
pub use open::{AS_TRANS, BGP_VERSION, Open, OptionalParam};
pub use pack::{
    pack_ipv4_announcements, pack_ipv4_withdrawals, pack_ipv6_announcements, pack_ipv6_withdrawals,
};
pub use prefix::{Ipv4Prefix, Ipv6Prefix, Nlri, WirePrefix};
pub use route_refresh::{RouteRefresh, RouteRefreshSubtype};
pub use update::Update;
