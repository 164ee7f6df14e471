//! Network-namespace labs of real routers (BIRD 2, FRR, GoBGP, ExaBGP), traffic probes and the
//! interop suite.
//!
//! A [`Lab`] is a set of network namespaces joined by veth pairs and bridges, built through
//! rtnetlink and torn down on drop. Router drivers in [`router`] render a configuration, run the
//! daemon inside a lab namespace and read back sessions, BGP table and kernel FIB in structured
//! form. [`traffic`] proves forwarding with real connections; [`clab`] realises containerlab
//! topology files without containers. [`k8s`] runs a real Kubernetes control plane (etcd,
//! kube-apiserver, kube-controller-manager) inside a lab namespace.

pub mod clab;
mod error;
pub mod incluster;
pub mod k8s;
pub mod lab;
pub mod router;
mod sys;
pub mod traffic;
pub mod wait;

pub use error::{Error, Result};
pub use lab::{Fib, FibNextHop, FibRoute, Lab, Netns};
