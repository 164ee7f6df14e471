//! Whole-system benchmark: one receiving BIRD 2 in a namespace lab and one sender at a time
//! (Berth through the `bgp` library in a child process, gobgpd, BIRD 2, FRR), measured from
//! the receiver's kernel FIB, the sender's `/proc` counters and a capture of the wire.

pub mod addressing;
pub mod probe;
pub mod receiver;
pub mod report;
pub mod run;
pub mod scenario;
pub mod senders;
pub mod stats;
pub mod wire;
