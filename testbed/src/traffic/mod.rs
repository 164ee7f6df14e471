//! Traffic that proves forwarding: responders on node namespaces answer with the node's name,
//! and a client in another namespace counts which node answered each connection. With ECMP and
//! L4 hashing, connections from different source ports spread over the nodes; the count is the
//! proof, not the routing table.

mod client;
pub mod neighbor;
mod responder;

pub use client::{Protocol, Spread, spread};
pub use responder::Responder;
