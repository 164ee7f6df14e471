//! The BGP library: `wire` (the message codec); later `session` (RFC 4271 FSM, sans-IO), `rib` (Adj-RIB-Out) and `driver` (tokio sockets and timers).
pub mod driver;
pub mod rib;
pub mod session;
pub mod wire;
