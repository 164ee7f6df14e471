//! IP address management and the Service and Eip reconcilers behind `berth-controller`.
//!
//! Layers, inside out: [`ipam`] (the pure allocator), [`view`] (plain views of the objects),
//! [`engine`] and [`plan`] (pure decisions: views → statuses, finalizers, events), then two
//! thin edges calling the same decisions: [`cluster`] (kube-runtime controllers, leader
//! election) and [`standalone`] (a directory of manifests).

pub mod cluster;
pub mod decision;
pub mod engine;
pub mod ipam;
pub mod metrics;
pub mod plan;
pub mod standalone;
pub mod view;
