//! IP address management and the Service and Eip reconcilers behind `berth-controller`. Built by the controller issue.

pub mod ipam;
