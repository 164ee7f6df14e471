//! Containerlab topology files realised without containers: each node becomes a namespace,
//! each link a veth pair, `bridge` nodes a bridge in a namespace of their own, and router kinds
//! (`bird`, `frr`, `gobgp`, `exabgp`, or `linux` with a known router image) the router package
//! started by its driver with the node's `startup-config`.
//!
//! `exec` lines run in the node's namespace after the links exist; the common `ip address`,
//! `ip route`, `ip link set up` and `sysctl -w` lines are carried out through netlink, anything
//! else through `sh -c`.

mod exec;
mod realise;
mod topology;

pub use exec::{ExecAction, parse_exec};
pub use realise::ClabLab;
pub use topology::{Endpoint, LinkDefinition, NodeDefinition, NodeKind, Topology};
