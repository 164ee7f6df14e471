//! IP address management and the Service and Eip reconcilers behind `berth-controller`.
//!
//! Layers, inside out: [`ipam`] (the pure allocator), [`view`] (plain views of the objects),
//! [`engine`] and [`plan`] (pure decisions: views → statuses, finalizers, events), then two
//! thin edges calling the same decisions: [`cluster`] (kube-runtime controllers, leader
//! election) and [`standalone`] (a directory of manifests).
//!
//! # Which Services are handled
//!
//! A Service of type LoadBalancer is Berth's when `spec.loadBalancerClass` is `berth.io/lb`
//! ([`api::keys::LOAD_BALANCER_CLASS`], changeable with `--class`), or when it has no class
//! and carries OpenELB's opt-in annotation `lb.kubesphere.io/v1alpha1: openelb`, or when it
//! has no class and the controller runs with `--default-class`. A Service with any other class
//! is never touched. A Service that stops qualifying (type or class changed) has its address
//! released, its status cleared and Berth's finalizer removed.

pub mod cluster;
pub mod decision;
pub mod engine;
pub mod ipam;
pub mod metrics;
pub mod plan;
pub mod selection;
pub mod standalone;
pub mod view;
