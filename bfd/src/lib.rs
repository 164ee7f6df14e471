//! Bidirectional Forwarding Detection (RFC 5880, 5881, 5883): a sans-IO state machine and a
//! tokio driver.
//!
//! - [`packet`]: the Control packet codec and the receive checks that need no session.
//! - [`session`]: one session's asynchronous-mode state machine; timers are data.
//! - [`driver`]: sockets (single-hop UDP 3784 with TTL 255 sent and required, multihop UDP
//!   4784), demultiplexing, per-session tasks, and the [`driver::Bfd`] handle whose sessions
//!   publish their state on tokio `watch` channels.
//!
//! Nothing here knows about BGP: a BGP peer that wants BFD holds a
//! [`driver::SessionHandle`] and follows [`driver::SessionHandle::gate`] (with the `bgp`
//! driver: `PeerConfig::bfd_gate = Some(BfdGate(handle.gate()))`).
//!
//! Not implemented: authentication (packets with the A bit are dropped and counted), Demand
//! mode, the Echo function, and IPv6 link-local peers (sessions are told apart by address
//! alone, not by interface).
#![warn(
    clippy::cast_possible_truncation,
    clippy::allow_attributes_without_reason,
    unreachable_pub
)]

pub mod driver;
pub mod packet;
pub mod session;

pub use driver::{
    Bfd, DropCounters, Hop, MemoryNetwork, SessionConfig, SessionHandle, SessionStatus,
};
pub use packet::{ControlPacket, Diag, PacketError, State};
pub use session::{Action, Event, Session, Timers};
