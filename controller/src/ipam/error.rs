//! Why an allocation was refused, worded so the Service owner knows what to change.
//!
//! The `Display` text goes into Service events; [`AllocationError::reason`] is a short stable
//! word for metrics labels and event reasons.

use std::net::IpAddr;

use super::range::Family;
use super::sharing::SharingRefusal;

/// Why a Service got no address (or not the one it asked for).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    /// A field or annotation of the Service cannot be understood.
    #[error("{field} = {value:?} is invalid: {reason}")]
    InvalidRequest {
        /// The field path or annotation key.
        field: String,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// Two fields or annotations of the Service ask for different things.
    #[error("conflicting request: {0}")]
    ConflictingRequest(String),
    /// The Service names a pool that does not exist.
    #[error(
        "pool {pool:?} does not exist; check the eip.openelb.kubesphere.io/v1alpha2 or metallb.io/address-pool annotation"
    )]
    PoolNotFound {
        /// The named pool.
        pool: String,
    },
    /// The chosen pool has `spec.disable: true`.
    #[error("pool {pool:?} is disabled (spec.disable) and hands out no new address")]
    PoolDisabled {
        /// The pool.
        pool: String,
    },
    /// The chosen pool breaks a pool rule (host bits, special-purpose addresses): it keeps the
    /// addresses Services hold in it and hands out none.
    #[error(
        "pool {pool:?} is invalid and hands out no new address: {problems}; see its Valid condition"
    )]
    PoolInvalid {
        /// The pool.
        pool: String,
        /// What is wrong with it.
        problems: String,
    },
    /// The chosen pool has no free address.
    #[error("pool {pool:?} is exhausted: every address is in use; enlarge it or add a pool")]
    PoolExhausted {
        /// The pool.
        pool: String,
    },
    /// None of the named pools holds addresses of a family the Service needs.
    #[error("the Service needs an {family} address but pool(s) {pools:?} hold none")]
    PoolFamilyMismatch {
        /// The named pools.
        pools: Vec<String>,
        /// The family needed.
        family: Family,
    },
    /// The requested address lies in no pool.
    #[error(
        "address {address} is not in any pool; request an address inside an Eip's spec.address"
    )]
    AddressNotInAnyPool {
        /// The requested address.
        address: IpAddr,
    },
    /// The requested address lies outside the named pool.
    #[error("address {address} is not in pool {pool:?}")]
    AddressNotInPool {
        /// The requested address.
        address: IpAddr,
        /// The named pool.
        pool: String,
    },
    /// The requested address is the network or broadcast address the pool skips.
    #[error(
        "address {address} is the network or broadcast address of pool {pool:?}, which it does not hand out"
    )]
    AddressReserved {
        /// The requested address.
        address: IpAddr,
        /// The pool.
        pool: String,
    },
    /// The requested address is held by Services it may not be shared with.
    #[error("address {address} is taken by {}: {refusal}", holders.join(", "))]
    AddressTaken {
        /// The requested address.
        address: IpAddr,
        /// Who holds it, as `namespace/name`.
        holders: Vec<String>,
        /// Why sharing is refused.
        refusal: SharingRefusal,
    },
    /// No named, address-bound, namespace-bound or default pool of the family.
    #[error(
        "no {family} pool serves namespace {namespace:?}: no Eip lists it in spec.namespaces or selects it by spec.namespaceSelector, and no {family} Eip is annotated eip.openelb.kubesphere.io/is-default-eip: \"true\""
    )]
    NoPoolMatches {
        /// The family needed.
        family: Family,
        /// The Service's namespace.
        namespace: String,
    },
    /// `RequireDualStack` and one family could not be served.
    #[error("RequireDualStack: no {family} address: {cause}")]
    FamilyUnavailable {
        /// The family that failed.
        family: Family,
        /// Why.
        cause: Box<AllocationError>,
    },
}

impl AllocationError {
    /// A short stable word for metrics labels and event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            AllocationError::InvalidRequest { .. } => "InvalidRequest",
            AllocationError::ConflictingRequest(_) => "ConflictingRequest",
            AllocationError::PoolNotFound { .. } => "PoolNotFound",
            AllocationError::PoolDisabled { .. } => "PoolDisabled",
            AllocationError::PoolInvalid { .. } => "PoolInvalid",
            AllocationError::PoolExhausted { .. } => "PoolExhausted",
            AllocationError::PoolFamilyMismatch { .. } => "PoolFamilyMismatch",
            AllocationError::AddressNotInAnyPool { .. } => "AddressNotInAnyPool",
            AllocationError::AddressNotInPool { .. } => "AddressNotInPool",
            AllocationError::AddressReserved { .. } => "AddressReserved",
            AllocationError::AddressTaken { .. } => "AddressTaken",
            AllocationError::NoPoolMatches { .. } => "NoPoolMatches",
            AllocationError::FamilyUnavailable { cause, .. } => cause.reason(),
        }
    }
}
