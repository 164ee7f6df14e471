//! A real Kubernetes control plane as a lab part: etcd, kube-apiserver and (optionally)
//! kube-controller-manager from the testbed's `berth-controlplane` binary, running inside a lab
//! namespace the caller provides, with their own CA and client certificates.
//!
//! Lab namespaces reach the API server at [`ControlPlane::server_url`] (the namespace's own
//! address); the test process in the root namespace reaches it through a forwarder at
//! [`ControlPlane::local_url`]. Each control plane lives in its own namespace, so parallel
//! tests never collide on ports.
//!
//! This is test infrastructure only: nothing here is part of what Berth's users run, and it
//! knows nothing about Berth's own resources or components — tests bring those.

mod binary;
mod config;
mod controlplane;
mod flags;
mod forward;
mod https;
mod kubeconfig;
mod pki;

pub use binary::{BINARY_ENV, binary};
pub use config::ControlPlaneConfig;
pub use controlplane::{Component, ControlPlane};
pub use flags::DEFAULT_CONTROLLERS;
