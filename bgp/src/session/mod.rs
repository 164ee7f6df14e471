//! The RFC 4271 session state machine, sans-IO: `Session::handle(&mut self, Event) ->
//! Actions`. No sockets and no clock: timers are data (`timers`), the driver owns both.
//! Knows messages (`wire`) and what was received (`rib::adj_in`), nothing of tokio.
//!
//! ```text
//!                      ManualStart / IdleHold expired
//!   +------+  -----------------------------------------------> +---------+
//!   | Idle |                                                   | Connect | (dialling)
//!   +------+ <--+                   ConnectRetry expired  +--> +---------+
//!      ^        |                                         |     |   |
//!      |        |  any error, NOTIFICATION,   dial failed |     |   | TCP up: send OPEN
//!      |        |  hold timer, TCP closed     (passive:   |     |   |
//!      |        |  (IdleHold back-off)         start here)v     v   |
//!      |        |                                    +--------+     |
//!      |        +------------------------------------| Active |     |
//!      |        |                                    +--------+     |
//!      |        |                        peer connected: send OPEN  |
//!      |        |                                         v         v
//!      |        |                                     +----------------+
//!      |        +-------------------------------------|    OpenSent    |
//!      |        |    OPEN checked, collision resolved +----------------+
//!      |        |    (§6.8): send KEEPALIVE                   |
//!      |        |                                             v
//!      |        |                                     +----------------+
//!      |        +-------------------------------------|  OpenConfirm   |
//!      |        |        KEEPALIVE received           +----------------+
//!      |        |                                             |
//!      |        |                                             v
//!      |        |                                     +----------------+
//!      |        +-------------------------------------|  Established   |
//!      |                                              +----------------+
//!      +-------- ManualStop: Cease / Administrative Shutdown (RFC 9003) from any state
//! ```
#![warn(
    clippy::cast_possible_truncation,
    clippy::allow_attributes_without_reason,
    unreachable_pub
)]

pub mod config;
pub mod event;
pub mod fsm;
pub mod negotiated;
pub mod open_check;
pub mod timers;

pub use config::{ConnectMode, GracefulRestart, MaxPrefix, PeerAs, SessionConfig};
pub use event::{Action, Actions, Direction, DownReason, Event, State};
pub use fsm::Session;
pub use negotiated::Negotiated;
pub use timers::{ConnId, Timer};
