//! In-cluster benchmark (issue 13 "Performance"): Berth on a real control plane (etcd,
//! kube-apiserver, kube-controller-manager) in the tor-pair lab (BIRD tor1, FRR tor2, three
//! nodes), measured from outside: the Service's status by a watch, the speakers' `synced` log
//! lines, the routers' kernel FIB prefix counts, and the daemons' `/proc` counters.
//!
//! It measures and records; it asserts nothing (the goals are compared in the README).

pub mod cluster;
pub mod fib_history;
pub mod objects;
pub mod proc_usage;
pub mod speaker_log;
pub mod stats;
pub mod status_watch;
