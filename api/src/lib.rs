//! Berth's Kubernetes API: the OpenELB-compatible CRD types (`Eip`, `BgpConf`, `BgpPeer` in
//! `network.kubesphere.io/v1alpha2`), annotation, label and finalizer keys, pure validation
//! mirroring the CRD schema, and the generated CRDs (see the `crdgen` binary).
//!
//! This crate knows nothing of reconcilers, IPAM or BGP: it is the shared vocabulary.

pub mod bgp_overrides;
pub mod bgpconf;
pub mod bgppeer;
pub mod class;
pub mod condition;
pub mod crd;
pub mod dir_watch;
pub mod eip;
pub mod keys;
pub mod label_selector;
pub mod manifest;
pub mod number;
pub mod reference;
pub mod validate;
#[cfg(feature = "watch")]
pub mod watch;

pub use bgpconf::{BgpConf, BgpConfSpec, BgpConfStatus, GracefulRestart};
pub use bgppeer::{BgpPeer, BgpPeerSpec, BgpPeerStatus, PeerConf};
pub use condition::Condition;
pub use eip::{Advertisement, AsPathPrepend, Eip, EipSpec, EipStatus, Protocol};
pub use number::Number;
