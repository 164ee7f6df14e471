//! The BGP library: `wire` (the message codec), `session` (RFC 4271 FSM, sans-IO), `rib` (Adj-RIB-Out, UPDATE packing) and `driver` (tokio sockets and timers, the `Speaker` handle).
pub mod driver;
pub mod rib;
pub mod session;
pub mod wire;
