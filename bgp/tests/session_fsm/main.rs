//! The session state machine driven by scripted event sequences: the RFC 4271 §8
//! transitions, both §6.8 collision outcomes, each OPEN error, the ways a session is
//! stopped, and why a connection that never reached Established failed. One module a
//! topic; the sessions they start from and the readers of the actions are in
//! `common::session`.

#[path = "../common/mod.rs"]
mod common;

mod collision;
mod connect;
mod messages;
mod open;
mod open_errors;
mod stop;
mod timers;
