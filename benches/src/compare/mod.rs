//! Side-by-side benchmark (issue 19): Berth, MetalLB and kube-vip, each on a fresh copy of the
//! same lab (the tor-pair topology: BIRD tor1, FRR tor2, three node namespaces, a real control
//! plane), measured from outside with the same probes: the routers' kernel FIBs, the daemons'
//! `/proc` counters, faults injected on a node's uplinks.
//!
//! The peers are built outside this tree by `scripts/build-peers.sh` (MetalLB from the Go
//! module proxy, kube-vip from a read-only checkout); nothing of theirs is copied here. It
//! measures and records; it asserts nothing.

pub mod berth;
pub mod fault;
pub mod kubevip;
pub mod lab;
pub mod metallb;
pub mod objects;
pub mod peers;
pub mod product;
pub mod route_watch;
