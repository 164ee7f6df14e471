//! IP address management: which Service gets which address from which pool.
//!
//! Pure and synchronous: plain inputs ([`PoolSpec`], [`ServiceFacts`] / [`AllocationRequest`],
//! [`ExistingClaim`]) in, decisions and errors out. It knows neither Kubernetes nor the `api`
//! crate's types, so the reconcilers and the standalone mode feed it alike.
//!
//! Typical use by a reconciler:
//! 1. at start, [`Allocator::rebuild`] from every Eip ([`PoolSpec`]) and every Service's status
//!    ([`ExistingClaim`]), and emit an event for each [`Rebuilt::refused`];
//! 2. on a Service: [`request_for_service`] then [`Allocator::allocate`]; on delete
//!    [`Allocator::release`];
//! 3. on an Eip: [`Allocator::upsert_pool`] (re-allocate [`PoolUpdate::evicted`]); on delete
//!    [`Allocator::pool_in_use`] / [`Allocator::remove_pool`]; status from [`Pool::status`].

mod allocator;
mod dual_stack;
mod error;
mod free_set;
mod pool;
mod range;
mod rebuild;
mod request;
mod selection;
mod sharing;
mod status;

pub use allocator::{Allocation, Allocator, AssignedAddress, PoolError, PoolUpdate};
pub use error::AllocationError;
pub use free_set::FreeRanges;
pub use pool::{Pool, PoolSpec};
pub use range::{AddressRange, AddressSpecError, Family, PoolAddresses, parse_address_spec};
pub use rebuild::{ExistingClaim, Rebuilt, Refusal};
pub use request::{
    AllocationRequest, FamilyPolicy, METALLB_IPS_ANNOTATION, METALLB_POOL_ANNOTATION,
    METALLB_SHARING_ANNOTATION, OPENELB_IP_ANNOTATION, OPENELB_POOL_ANNOTATION, ServiceFacts,
    ServicePortFacts, ServiceRef, request_for_service,
};
pub use sharing::{PortClaim, Protocol, SharingRefusal, SharingTerms, TrafficPolicy, may_share};
pub use status::PoolStatus;
