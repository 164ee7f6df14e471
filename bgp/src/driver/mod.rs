//! The tokio driver: the only code of the crate that touches sockets and the clock. It
//! carries out what the sans-IO session asks for and feeds back what happened.

pub mod sockopt;
pub mod transport;
