//! What one client may cost the server.

use std::time::Duration;

/// The bounds [`crate::serve`] holds every connection to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send its whole request head once it connects.
    pub head_timeout: Duration,
    /// Largest request head, in bytes (hyper's floor is 8 KiB); a larger one gets
    /// `431 Request Header Fields Too Large`.
    pub max_head: usize,
    /// Largest request body announced by `Content-Length`; a larger one gets
    /// `413 Content Too Large` without being read. The endpoints take no bodies.
    pub max_body: u64,
    /// Connections served at once; the next waits in the listen backlog until one ends.
    pub max_connections: usize,
    /// Time a whole exchange may take (a client that reads its response slowly is cut off).
    pub exchange_timeout: Duration,
    /// On stop, how long exchanges in flight get to finish.
    pub grace: Duration,
}

impl Default for Limits {
    /// Generous for Prometheus, kubelet probes and `berthctl`, tight for anything else.
    fn default() -> Self {
        Self {
            head_timeout: Duration::from_secs(5),
            max_head: 8 * 1024,
            max_body: 0,
            max_connections: 32,
            exchange_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(2),
        }
    }
}
