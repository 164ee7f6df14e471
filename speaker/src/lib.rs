//! The per-node speaker: from cluster state (Kubernetes or a directory of manifests) to BGP
//! announcements, with itself as next hop; plus `berth-speaker` and `berthctl`.
//!
//! Layers, from pure to I/O: `state` (the objects), `desired` (what this node should run),
//! `diff` (what must change against what runs), then the sources, the sync onto the BGP
//! driver, and the binaries' HTTP surfaces.

pub mod admin;
pub mod bfd_link;
pub mod daemon;
pub mod desired;
pub mod diff;
pub mod kube_status;
pub mod layer2;
pub mod metrics;
pub mod netlink;
pub mod restart_marker;
pub mod source;
pub mod state;
pub mod status;
pub mod sync;

pub use desired::{Desired, DesiredPeer, NodeContext, desired};
pub use state::{ClusterState, Object, ObjectKey};
