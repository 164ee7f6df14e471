//! The layer-2 failover benchmark's parts (issue 17 "Performance"): the lab (a bridge, three
//! node namespaces with `berth-speaker` or keepalived, a client), the client's probe and
//! capture threads, and the readers of the speakers' logs. The binary is
//! `src/bin/layer2.rs`.

pub mod capture;
pub mod lab;
pub mod log;
pub mod many;
pub mod planned;
pub mod prober;
pub mod view;
