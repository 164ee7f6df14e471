//! The tokio driver: the only code of the crate that touches sockets and the clock. It
//! carries out what the sans-IO session asks for, feeds back what happened, and sends
//! each peer's Adj-RIB-Out as fast as the peer reads. Everything is behind [`Speaker`].
//!
//! One task per peer (`peer`), two per connection (`conn`: reader and writer), one per
//! listening socket. Queues between them are bounded.
#![warn(
    clippy::cast_possible_truncation,
    clippy::allow_attributes_without_reason,
    unreachable_pub
)]

pub mod config;
pub mod conn;
pub mod failures;
pub mod link_local;
pub mod network;
pub mod peer;
pub mod snapshot;
pub mod sockopt;
pub mod speaker;
pub mod transport;

pub use config::{BfdGate, PeerConfig, SpeakerConfig};
pub use network::{MemoryNetwork, Network, TcpNetwork};
pub use peer::ReceivedRoute;
pub use snapshot::{MessageCounts, PeerSnapshot, StateChange};
pub use speaker::{Speaker, SpeakerError, Target};
pub use transport::{BGP_PORT, Transport};
