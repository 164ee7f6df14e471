//! Layer-2 mode (`Eip.spec.protocol: layer2`): one node per address answers ARP (IPv4) and
//! Neighbor Solicitations (IPv6) for it on the pool's interface, and another takes over
//! within milliseconds when it goes.
//!
//! Pure parts first: [`owner`] (who answers for each address, the same on every node),
//! [`candidates`] (who may, from the cluster state). The edges carry the decision out.
//!
//! The API server is never on the failover path: candidates learn about each other from
//! their heartbeats, and the owner of every address follows from the live set alone.

pub mod candidates;
pub mod edge;
pub mod frame;
pub mod handover;
pub mod link;
pub mod liveness;
pub mod owner;
pub mod packet_socket;
pub mod responder;
