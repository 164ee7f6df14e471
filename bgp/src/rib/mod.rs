//! Routes: what a speaker announces (`route`), per peer what it owes the peer
//! (`adj_out`), how a route looks to one session (`export`), how changes become UPDATE
//! bytes (`pack`), and what the peer sent us (`adj_in`). No I/O, no clock.

pub mod adj_in;
pub mod adj_out;
pub mod export;
pub mod pack;
pub mod prefix_hash;
pub mod route;

pub use adj_in::{AdjRibIn, NlriCounts, Tracking};
pub use adj_out::{AdjRibOut, Batch};
pub use export::Export;
pub use route::{NextHop, Prefix, RouteAttrs};
