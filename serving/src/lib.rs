//! The HTTP surface both daemons share: Prometheus metrics, health probes and the speaker's
//! read-only admin API. One server, on `hyper`, with the limits an endpoint on a node's
//! network needs — a deadline for the request head, a cap on its size, a cap on open
//! connections, a deadline for the whole exchange — and a graceful stop.
//!
//! It knows nothing of what it serves: a route is a function from a path to a [`Response`].
//! It must not know BGP, Kubernetes or any Berth type.

mod client;
mod limits;
mod response;
mod server;

pub use client::get;
pub use limits::Limits;
pub use response::Response;
pub use server::serve;
