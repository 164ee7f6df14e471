//! Address families and the address range of a pool, parsed from an Eip `spec.address`.
//!
//! An address is kept as a `u128` with its [`Family`] beside it, so IPv4 and IPv6 share one
//! arithmetic and an IPv6 /64 is two numbers, never 2^64 materialised addresses. This module
//! knows nothing about allocation or Kubernetes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Parses a Kubernetes `ipFamilies` entry (`IPv4` or `IPv6`).
    pub fn from_k8s(s: &str) -> Option<Family> {
        match s {
            "IPv4" => Some(Family::V4),
            "IPv6" => Some(Family::V6),
            _ => None,
        }
    }

    /// The other family.
    pub fn other(self) -> Family {
        match self {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        }
    }

    /// The largest address value of this family.
    fn max(self) -> u128 {
        match self {
            Family::V4 => u128::from(u32::MAX),
            Family::V6 => u128::MAX,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// An address as a number (IPv4 in the low 32 bits).
pub fn to_number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address of `family` with number `n`; IPv4 numbers are truncated to 32 bits.
pub fn from_number(family: Family, n: u128) -> IpAddr {
    match family {
        // Truncation is the documented contract: callers only pass numbers of this family.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(n as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

/// An inclusive range of addresses of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressRange {
    family: Family,
    first: u128,
    last: u128,
}

impl AddressRange {
    /// The range `first..=last`; `None` when the families differ or `first > last`.
    pub fn new(first: IpAddr, last: IpAddr) -> Option<AddressRange> {
        let family = Family::of(first);
        if Family::of(last) != family || to_number(first) > to_number(last) {
            return None;
        }
        Some(AddressRange {
            family,
            first: to_number(first),
            last: to_number(last),
        })
    }

    pub(crate) fn from_numbers(family: Family, first: u128, last: u128) -> AddressRange {
        AddressRange {
            family,
            first,
            last,
        }
    }

    /// The family of every address in the range.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The first address.
    pub fn first_ip(&self) -> IpAddr {
        from_number(self.family, self.first)
    }

    /// The last address.
    pub fn last_ip(&self) -> IpAddr {
        from_number(self.family, self.last)
    }

    pub(crate) fn first(&self) -> u128 {
        self.first
    }

    pub(crate) fn last(&self) -> u128 {
        self.last
    }

    /// Number of addresses, saturating at `u128::MAX` (only `::/0` saturates).
    pub fn size(&self) -> u128 {
        (self.last - self.first).saturating_add(1)
    }

    /// Whether `ip` lies in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        Family::of(ip) == self.family && self.contains_number(to_number(ip))
    }

    pub(crate) fn contains_number(&self, n: u128) -> bool {
        self.first <= n && n <= self.last
    }

    /// Whether the two ranges share an address.
    pub fn overlaps(&self, other: &AddressRange) -> bool {
        self.family == other.family && self.first <= other.last && other.first <= self.last
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first_ip())
        } else {
            write!(f, "{}-{}", self.first_ip(), self.last_ip())
        }
    }
}

/// The addresses of a pool: the whole range its spec names, and the part handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolAddresses {
    /// Everything `spec.address` names. An existing allocation anywhere in here is kept,
    /// even on a skipped network or broadcast address (OpenELB handed out `.0`).
    pub spec_range: AddressRange,
    /// What new allocations come from: `spec_range` minus the skipped network and broadcast.
    pub usable: AddressRange,
}

/// Why an Eip `spec.address` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid Eip address {spec:?}: {reason}; expected one IP, a CIDR a.b.c.d/n, or a range a.b.c.d-e.f.g.h"
)]
pub struct AddressSpecError {
    /// The text as given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses an Eip `spec.address`: one IP, a CIDR `a.b.c.d/n` (host bits are masked, as OpenELB
/// did, so that addresses held in such a pool are still found; the pool rules,
/// `api::validate::pool_address_problems`, then keep it from handing out anything new), or an
/// inclusive range `a-b`, IPv4 or IPv6.
///
/// With `skip_network_broadcast`, an IPv4 CIDR of prefix length 30 or shorter does not hand out
/// its network and broadcast addresses (/31 and /32 have none to skip).
pub fn parse_address_spec(
    spec: &str,
    skip_network_broadcast: bool,
) -> Result<PoolAddresses, AddressSpecError> {
    let err = |reason: String| AddressSpecError {
        spec: spec.to_string(),
        reason,
    };
    let text = spec.trim();
    if text.is_empty() {
        return Err(err("it is empty".into()));
    }
    let ip = |s: &str| -> Result<IpAddr, AddressSpecError> {
        s.trim()
            .parse::<IpAddr>()
            .map_err(|_| err(format!("{:?} is not an IP address", s.trim())))
    };
    if let Some((addr, len)) = text.split_once('/') {
        let addr = ip(addr)?;
        let family = Family::of(addr);
        let len: u8 = len
            .trim()
            .parse()
            .ok()
            .filter(|l| *l <= family.bits())
            .ok_or_else(|| {
                err(format!(
                    "prefix length {:?} is not a number from 0 to {}",
                    len.trim(),
                    family.bits()
                ))
            })?;
        let host_bits = u32::from(family.bits() - len);
        let host_mask = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let first = to_number(addr) & !host_mask & family.max();
        let last = first | (host_mask & family.max());
        let spec_range = AddressRange::from_numbers(family, first, last);
        let usable = if skip_network_broadcast && family == Family::V4 && len <= 30 {
            AddressRange::from_numbers(family, first + 1, last - 1)
        } else {
            spec_range
        };
        return Ok(PoolAddresses { spec_range, usable });
    }
    if let Some((a, b)) = text.split_once('-') {
        let (a, b) = (ip(a)?, ip(b)?);
        if Family::of(a) != Family::of(b) {
            return Err(err(format!("{a} and {b} are of different families")));
        }
        let range = AddressRange::new(a, b).ok_or_else(|| {
            err(format!(
                "{a} comes after {b}; write the lower address first"
            ))
        })?;
        return Ok(PoolAddresses {
            spec_range: range,
            usable: range,
        });
    }
    let one = ip(text)?;
    let range = AddressRange::from_numbers(Family::of(one), to_number(one), to_number(one));
    Ok(PoolAddresses {
        spec_range: range,
        usable: range,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn cidr_skips_network_and_broadcast_when_asked() {
        let p = parse_address_spec("192.168.0.0/24", true).expect("valid");
        assert_eq!(p.usable.first_ip(), ip("192.168.0.1"));
        assert_eq!(p.usable.last_ip(), ip("192.168.0.254"));
        assert_eq!(p.usable.size(), 254);
        assert_eq!(p.spec_range.size(), 256);
        let p = parse_address_spec("192.168.0.0/24", false).expect("valid");
        assert_eq!(p.usable.first_ip(), ip("192.168.0.0"));
        assert_eq!(p.usable.size(), 256);
    }

    #[test]
    fn slash_31_and_32_skip_nothing() {
        let p = parse_address_spec("10.0.0.0/31", true).expect("valid");
        assert_eq!(p.usable.size(), 2);
        let p = parse_address_spec("10.0.0.7/32", true).expect("valid");
        assert_eq!(p.usable.size(), 1);
        assert_eq!(p.usable.first_ip(), ip("10.0.0.7"));
    }

    #[test]
    fn cidr_host_bits_are_masked_like_openelb() {
        let p = parse_address_spec("10.1.2.77/30", false).expect("valid");
        assert_eq!(p.spec_range.first_ip(), ip("10.1.2.76"));
        assert_eq!(p.spec_range.last_ip(), ip("10.1.2.79"));
    }

    #[test]
    fn ipv6_slash_64_is_two_numbers() {
        let p = parse_address_spec("2001:db8::/64", true).expect("valid");
        assert_eq!(p.usable.size(), 1u128 << 64);
        assert_eq!(p.usable.first_ip(), ip("2001:db8::"));
        assert_eq!(p.usable.last_ip(), ip("2001:db8::ffff:ffff:ffff:ffff"));
        let all = parse_address_spec("::/0", false).expect("valid");
        assert_eq!(all.usable.size(), u128::MAX);
    }

    #[test]
    fn range_and_single_ip() {
        let p = parse_address_spec(" 10.0.0.10 - 10.0.0.20 ", true).expect("valid");
        assert_eq!(p.usable.size(), 11);
        let p = parse_address_spec("fd00::5", true).expect("valid");
        assert_eq!(p.usable.size(), 1);
        assert_eq!(p.usable.family(), Family::V6);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = parse_address_spec("10.0.0.20-10.0.0.10", true).expect_err("reversed");
        assert!(
            e.to_string().contains("write the lower address first"),
            "{e}"
        );
        let e = parse_address_spec("10.0.0.0/33", true).expect_err("too long");
        assert!(e.to_string().contains("prefix length"), "{e}");
        let e = parse_address_spec("10.0.0.1-fd00::1", true).expect_err("mixed");
        assert!(e.to_string().contains("different families"), "{e}");
        let e = parse_address_spec("banana", true).expect_err("garbage");
        assert!(e.to_string().contains("not an IP address"), "{e}");
        assert!(parse_address_spec("", true).is_err());
    }

    #[test]
    fn overlap_is_per_family() {
        let a = parse_address_spec("10.0.0.0/24", false)
            .expect("valid")
            .spec_range;
        let b = parse_address_spec("10.0.0.255-10.0.1.5", false)
            .expect("valid")
            .spec_range;
        let c = parse_address_spec("::a00:0/120", false)
            .expect("valid")
            .spec_range;
        assert!(a.overlaps(&b));
        assert!(!a.overlaps(&c));
    }
}
