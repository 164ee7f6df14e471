//! Dual-stack requests: which families a Service gets, and what happens when one fails.
//!
//! `SingleStack` gets the first `ipFamilies` entry (or the requested address's family, or
//! IPv4); `PreferDualStack` and `RequireDualStack` get one address per family. `Require` fails
//! when either family fails; `Prefer` keeps what it could get, unless the failing family had an
//! explicitly requested address (a user who names an address wants to hear it failed).

use super::error::AllocationError;
use super::range::Family;
use super::request::{AllocationRequest, FamilyPolicy, join};

impl AllocationRequest {
    /// The families to allocate, in order, after checking the requested addresses fit them.
    pub fn wanted_families(&self) -> Result<Vec<Family>, AllocationError> {
        let mut requested: Vec<Family> = Vec::new();
        for ip in &self.addresses {
            let family = Family::of(*ip);
            if requested.contains(&family) {
                return Err(AllocationError::ConflictingRequest(format!(
                    "more than one {family} address requested ({}); ask for at most one per family",
                    join(&self.addresses)
                )));
            }
            requested.push(family);
        }
        // Order of preference: ipFamilies, then the requested addresses' families, then IPv4.
        let mut order: Vec<Family> = Vec::new();
        for f in self.families.iter().chain(&requested) {
            if !order.contains(f) {
                order.push(*f);
            }
        }
        let wanted = match self.policy {
            FamilyPolicy::SingleStack => vec![order.first().copied().unwrap_or(Family::V4)],
            FamilyPolicy::PreferDualStack | FamilyPolicy::RequireDualStack => {
                let first = order.first().copied().unwrap_or(Family::V4);
                vec![first, first.other()]
            }
        };
        if let Some(ip) = self
            .addresses
            .iter()
            .find(|ip| !wanted.contains(&Family::of(**ip)))
        {
            return Err(AllocationError::ConflictingRequest(format!(
                "address {ip} is {} but the Service is single-stack {}; set spec.ipFamilies or spec.ipFamilyPolicy to match",
                Family::of(*ip),
                wanted[0]
            )));
        }
        Ok(wanted)
    }
}

/// Families served and families skipped (`PreferDualStack` only), from per-family outcomes.
pub(crate) type Combined<T> = (Vec<(Family, T)>, Vec<(Family, AllocationError)>);

/// Combines per-family outcomes (in wanted order) under `policy`.
///
/// `explicit(family)` says whether the request named an address of that family.
pub(crate) fn combine<T>(
    policy: FamilyPolicy,
    outcomes: Vec<(Family, Result<T, AllocationError>)>,
    explicit: impl Fn(Family) -> bool,
) -> Result<Combined<T>, AllocationError> {
    let mut served = Vec::new();
    let mut skipped = Vec::new();
    for (family, outcome) in outcomes {
        match outcome {
            Ok(t) => served.push((family, t)),
            Err(e) => skipped.push((family, e)),
        }
    }
    let Some((family, _)) = skipped.first() else {
        return Ok((served, skipped));
    };
    let family = *family;
    match policy {
        FamilyPolicy::SingleStack => Err(skipped.swap_remove(0).1),
        FamilyPolicy::RequireDualStack => Err(AllocationError::FamilyUnavailable {
            family,
            cause: Box::new(skipped.swap_remove(0).1),
        }),
        FamilyPolicy::PreferDualStack => {
            let hard = skipped
                .iter()
                .position(|(f, e)| explicit(*f) || !is_unavailability(e));
            if served.is_empty() || hard.is_some() {
                return Err(skipped.swap_remove(hard.unwrap_or(0)).1);
            }
            Ok((served, skipped))
        }
    }
}

/// Errors meaning "no address of this family to be had here", which `PreferDualStack` tolerates.
fn is_unavailability(e: &AllocationError) -> bool {
    matches!(
        e,
        AllocationError::NoPoolMatches { .. }
            | AllocationError::PoolExhausted { .. }
            | AllocationError::PoolDisabled { .. }
            | AllocationError::PoolInvalid { .. }
            | AllocationError::PoolFamilyMismatch { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::super::request::ServiceRef;
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn exhausted() -> AllocationError {
        AllocationError::PoolExhausted { pool: "p".into() }
    }

    #[test]
    fn families_follow_policy() {
        let mut r = AllocationRequest::new(ServiceRef::new("ns", "a"));
        assert_eq!(r.wanted_families(), Ok(vec![Family::V4]));
        r.families = vec![Family::V6, Family::V4];
        assert_eq!(r.wanted_families(), Ok(vec![Family::V6]));
        r.policy = FamilyPolicy::PreferDualStack;
        assert_eq!(r.wanted_families(), Ok(vec![Family::V6, Family::V4]));
        // No ipFamilies (standalone manifests): the requested address decides.
        let mut r = AllocationRequest::new(ServiceRef::new("ns", "a"));
        r.addresses = vec![ip("fd00::1")];
        assert_eq!(r.wanted_families(), Ok(vec![Family::V6]));
        r.families = vec![Family::V4];
        let e = r.wanted_families().expect_err("v6 address, v4 service");
        assert!(e.to_string().contains("single-stack IPv4"), "{e}");
    }

    #[test]
    fn require_fails_when_a_family_fails() {
        let out = vec![(Family::V4, Ok(1)), (Family::V6, Err(exhausted()))];
        let e = combine(FamilyPolicy::RequireDualStack, out, |_| false).expect_err("v6 missing");
        assert!(
            e.to_string()
                .starts_with("RequireDualStack: no IPv6 address"),
            "{e}"
        );
        assert_eq!(e.reason(), "PoolExhausted");
    }

    #[test]
    fn prefer_keeps_what_exists() {
        let out = vec![(Family::V4, Ok(1)), (Family::V6, Err(exhausted()))];
        let (served, skipped) =
            combine(FamilyPolicy::PreferDualStack, out, |_| false).expect("v4 is enough");
        assert_eq!(served, vec![(Family::V4, 1)]);
        assert_eq!(skipped.len(), 1);
        // Nothing at all is still a failure.
        let out: Vec<(Family, Result<i32, _>)> = vec![
            (Family::V4, Err(exhausted())),
            (Family::V6, Err(exhausted())),
        ];
        assert!(combine(FamilyPolicy::PreferDualStack, out, |_| false).is_err());
        // An explicitly requested address that fails is reported, not skipped.
        let out = vec![(Family::V4, Ok(1)), (Family::V6, Err(exhausted()))];
        assert!(combine(FamilyPolicy::PreferDualStack, out, |f| f == Family::V6).is_err());
    }
}
