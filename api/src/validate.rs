//! One set of admission rules for both modes: the CRD's patterns and CEL rules are the
//! constants here (the types in this crate put them into the schema), and the functions apply
//! the same rules in Rust for the standalone mode (no API server) and for defence in depth, so
//! an object is valid in standalone mode exactly when the API server takes it
//! (`testbed/tests/kube_validation.rs` proves it on a table of objects). Beyond admission,
//! [`pool_address_problems`] holds the pool rules the controller applies in both modes, and
//! [`eip_warnings`] what is accepted and ignored. Every message names the field and says what
//! is allowed. Knows nothing of reconcilers, IPAM or BGP.

use std::fmt;
use std::net::IpAddr;

use crate::bgpconf::BgpConfSpec;
use crate::bgppeer::BgpPeerSpec;
use crate::eip::{Advertisement, EipSpec, Protocol};
use crate::number::Seconds;

/// A problem with one field of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `spec.address`.
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The shape of an `Eip`'s `spec.address`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EipAddress {
    /// One address.
    Single(IpAddr),
    /// A prefix; the address is normalised to the network address.
    Cidr(IpAddr, u8),
    /// An inclusive range, `first <= last`, same family.
    Range(IpAddr, IpAddr),
}

/// The CRD's `pattern` on `spec.address`; [`validate_eip`] applies the same one.
/// A range may have spaces around its `-` (`10.70.0.1 - 10.70.0.9`): standalone mode took
/// them before the two rule sets were one, and no pool that worked may stop working.
pub const EIP_ADDRESS_PATTERN: &str = r"^[0-9A-Fa-f:.]+(/[0-9]{1,3}| *- *[0-9A-Fa-f:.]+)?$";

/// The CRD's CEL rule on `spec.address` (syntax: every part is an address, as the API server's
/// `isIP()` / `isCIDR()` read it); [`eip_address_shape`] is the same rule in Rust.
pub const EIP_ADDRESS_RULE: &str = "self.contains('/') ? isCIDR(self) : (self.contains('-') ? (self.split('-').size() == 2 && isIP(self.split('-')[0].trim()) && isIP(self.split('-')[1].trim()) && ip(self.split('-')[0].trim()).family() == ip(self.split('-')[1].trim()).family()) : isIP(self))";

/// The message of [`EIP_ADDRESS_RULE`].
pub const EIP_ADDRESS_MESSAGE: &str =
    "spec.address must be one IP, a CIDR (a.b.c.d/n) or a range (first-last) of one family";

/// Parses one IP address as the API server's CEL `isIP()` does: no zone, no IPv4-mapped IPv6
/// address, no leading zeros in IPv4.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let ip: IpAddr = text.parse().ok()?;
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => None,
        _ => Some(ip),
    }
}

/// A prefix length as the API server's `isCIDR()` reads it: decimal, no leading zero.
fn parse_prefix_len(text: &str, max: u8) -> Option<u8> {
    if text.is_empty() || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse::<u8>().ok().filter(|l| *l <= max)
}

/// The admission rules of `spec.address` (the CRD's length, pattern and CEL rule), nothing
/// more: whether each part is an address. Order, host bits and special-purpose addresses are
/// pool rules ([`pool_address_problems`]), judged by the controller in both modes so that a
/// pool already holding addresses keeps them (see `docs/reference.md`).
pub fn eip_address_shape(text: &str) -> Result<(), String> {
    let chars = text.chars().count();
    if !(2..=100).contains(&chars) {
        return Err(format!("{text:?} must be 2-100 characters"));
    }
    static PATTERN: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(EIP_ADDRESS_PATTERN).ok());
    if !PATTERN.as_ref().is_some_and(|p| p.is_match(text)) {
        return Err(format!(
            "{text:?} must match {EIP_ADDRESS_PATTERN}: {EIP_ADDRESS_MESSAGE}"
        ));
    }
    let ok = if let Some((ip, len)) = text.split_once('/') {
        parse_ip(ip)
            .is_some_and(|ip| parse_prefix_len(len, if ip.is_ipv4() { 32 } else { 128 }).is_some())
    } else if let Some((a, b)) = text.split_once('-') {
        matches!((parse_ip(a.trim()), parse_ip(b.trim())), (Some(a), Some(b)) if a.is_ipv4() == b.is_ipv4())
    } else {
        parse_ip(text).is_some()
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{text:?}: {EIP_ADDRESS_MESSAGE}"))
    }
}

/// Parses an `Eip`'s `spec.address` that passed [`eip_address_shape`]: one IP, `a.b.c.d/n`
/// (normalised to the network address), or `first-last` (same family, `first <= last`).
pub fn parse_eip_address(text: &str) -> Result<EipAddress, String> {
    eip_address_shape(text)?;
    if let Some((ip, len)) = text.split_once('/') {
        let ip = parse_ip(ip).ok_or_else(|| format!("{ip:?} is not an IP address"))?;
        let len: u8 = len
            .parse()
            .map_err(|_| format!("{len:?} is not a prefix length"))?;
        return Ok(EipAddress::Cidr(mask(ip, len), len));
    }
    if let Some((a, b)) = text.split_once('-') {
        let first = parse_ip(a.trim()).ok_or_else(|| format!("{a:?} is not an IP address"))?;
        let last = parse_ip(b.trim()).ok_or_else(|| format!("{b:?} is not an IP address"))?;
        if first > last {
            return Err(format!("range start {first} is after its end {last}"));
        }
        return Ok(EipAddress::Range(first, last));
    }
    parse_ip(text)
        .map(EipAddress::Single)
        .ok_or_else(|| format!("{text:?} is not an IP address"))
}

/// Why `ip` may never be a load-balancer address: unspecified, loopback or multicast (the
/// addresses no router forwards to a node); `None` for any other address.
pub fn special_purpose(ip: IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("the unspecified address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

/// The special-purpose blocks as (first, last, what), for pool range checks.
fn special_blocks(v4: bool) -> Vec<(u128, u128, &'static str)> {
    if v4 {
        vec![
            (0, 0, "the unspecified address 0.0.0.0"),
            (0x7f00_0000, 0x7fff_ffff, "loopback addresses (127.0.0.0/8)"),
            (
                0xe000_0000,
                0xefff_ffff,
                "multicast addresses (224.0.0.0/4)",
            ),
        ]
    } else {
        vec![
            (0, 0, "the unspecified address ::"),
            (1, 1, "the loopback address ::1"),
            (0xff << 120, u128::MAX, "multicast addresses (ff00::/8)"),
        ]
    }
}

fn number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The pool rules of `spec.address`, beyond its syntax: a range is written low to high, a
/// prefix has no host bits set (`10.0.0.0/0` is not read as `0.0.0.0/0`), and no address of
/// the pool is unspecified, loopback or multicast. Empty when the pool is sound. The
/// controller applies them in both modes: a pool that breaks one hands out nothing and says
/// why in a condition and an event, and keeps addresses Services already hold in it.
pub fn pool_address_problems(text: &str) -> Vec<String> {
    if let Err(e) = eip_address_shape(text) {
        return vec![e];
    }
    let (first, last) = match parse_eip_address(text) {
        Err(e) => return vec![e],
        Ok(EipAddress::Single(ip)) => (ip, ip),
        Ok(EipAddress::Range(a, b)) => (a, b),
        Ok(EipAddress::Cidr(net, len)) => {
            let given = text.split_once('/').and_then(|(ip, _)| parse_ip(ip));
            if given.is_some_and(|g| g != net) {
                return vec![format!(
                    "{text:?} has host bits set: write {net}/{len} (or the range you mean)"
                )];
            }
            let host_bits = if net.is_ipv4() { 32 } else { 128 } - u32::from(len);
            let span = if host_bits >= 128 {
                u128::MAX
            } else {
                (1u128 << host_bits) - 1
            };
            let last = number(net) | span;
            let last = match net {
                IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(
                    u32::try_from(last).unwrap_or(u32::MAX),
                )),
                IpAddr::V6(_) => IpAddr::V6(last.into()),
            };
            (net, last)
        }
    };
    let (a, b) = (number(first), number(last));
    special_blocks(first.is_ipv4())
        .into_iter()
        .filter(|(lo, hi, _)| a <= *hi && *lo <= b)
        .map(|(_, _, what)| format!("{text:?} contains {what}, which no Service may use"))
        .collect()
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// Checks an `Eip` spec as the CRD schema does (the admission rules; see
/// [`pool_address_problems`] for the pool rules the controller adds).
pub fn validate_eip(spec: &EipSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Err(e) = eip_address_shape(&spec.address) {
        errors.push(FieldError::new("spec.address", e));
    }
    if spec
        .interface
        .as_deref()
        .is_some_and(|i| i.chars().count() > 64)
    {
        errors.push(FieldError::new(
            "spec.interface",
            "must be at most 64 characters",
        ));
    }
    if let Some(adv) = &spec.advertisement {
        validate_advertisement(adv, &mut errors);
    }
    errors
}

/// What an `Eip` spec sets that Berth accepts and ignores, one warning each (the controller
/// puts them on the Eip as a condition and an event, or in the log in standalone mode).
/// OpenELB accepts `interface` on a bgp pool and ignores it; so does Berth.
pub fn eip_warnings(spec: &EipSpec) -> Vec<FieldError> {
    let mut warnings = Vec::new();
    if let Some(iface) = spec.interface.as_deref().filter(|i| !i.is_empty())
        && spec.protocol() == Protocol::Bgp
    {
        warnings.push(FieldError::new(
            "spec.interface",
            format!(
                "{iface:?} is ignored: it applies to protocol layer2 or vip only, and this pool is bgp"
            ),
        ));
    }
    if spec.protocol() == Protocol::Vip {
        warnings.push(FieldError::new("spec.protocol", VIP_NOT_ANNOUNCED));
    }
    if let (Some(adv), Ok(range)) = (&spec.advertisement, parse_eip_address(&spec.address))
        && let Err(e) = aggregation(&range, adv)
    {
        warnings.push(FieldError::new("spec.advertisement", e));
    }
    if spec.peer_selector.is_some() && spec.protocol() != Protocol::Bgp {
        warnings.push(FieldError::new(
            "spec.peerSelector",
            "is ignored: it applies to protocol bgp only",
        ));
    }
    warnings
}

/// The aggregation length of a pool (`aggregationLength` or `aggregationLengthV6`, by its
/// family), `Ok(None)` when it does not aggregate, `Err` when the covering prefix would reach
/// outside the pool (a range pool, or a CIDR longer than the length).
pub fn aggregation(range: &EipAddress, adv: &Advertisement) -> Result<Option<u8>, String> {
    let v4 = match *range {
        EipAddress::Single(a) | EipAddress::Range(a, _) | EipAddress::Cidr(a, _) => a.is_ipv4(),
    };
    let (len, host, field) = if v4 {
        (adv.aggregation_length, 32, "aggregationLength")
    } else {
        (adv.aggregation_length_v6, 128, "aggregationLengthV6")
    };
    let Some(len) = len.filter(|l| *l < host) else {
        return Ok(None);
    };
    match *range {
        EipAddress::Cidr(_, pool) if pool <= len => Ok(Some(len)),
        EipAddress::Cidr(_, pool) => Err(format!(
            "advertisement.{field} {len} is shorter than the pool's /{pool}: the covering prefix would reach outside the pool; announcing one route per address"
        )),
        _ => Err(format!(
            "advertisement.{field} needs a CIDR pool (a.b.c.d/n): announcing one route per address"
        )),
    }
}

/// Why a `vip` pool's addresses reach nobody: Berth allocates them (so a migration from
/// OpenELB loses none) but runs no keepalived.
pub const VIP_NOT_ANNOUNCED: &str = "vip (OpenELB's keepalived mode) is not announced by Berth: \
     addresses are allocated from this pool, but no node answers for them; use protocol bgp or \
     layer2";

/// Checks an update of an `Eip`: `spec.address` is immutable.
pub fn validate_eip_update(old: &EipSpec, new: &EipSpec) -> Vec<FieldError> {
    let mut errors = validate_eip(new);
    if old.address != new.address {
        errors.push(FieldError::new(
            "spec.address",
            "spec.address is immutable: create a new Eip instead",
        ));
    }
    errors
}

const WELL_KNOWN_COMMUNITIES: [&str; 4] = [
    "no-export",
    "no-advertise",
    "no-export-subconfed",
    "blackhole",
];

/// At most this many entries in `spec.advertisement.communities` and `largeCommunities`
/// (the CRD's `maxItems`, which also bounds the cost of their CEL rules).
pub const MAX_COMMUNITIES: usize = 64;

/// The CRD's CEL rule on `spec.advertisement.communities`; [`parse_community`] in Rust.
pub const COMMUNITIES_RULE: &str = "self.all(c, c in ['no-export', 'no-advertise', 'no-export-subconfed', 'blackhole'] || (c.matches('^[0-9]{1,5}:[0-9]{1,5}$') && int(c.split(':')[0]) <= 65535 && int(c.split(':')[1]) <= 65535))";

/// The CRD's CEL rule on `spec.advertisement.largeCommunities`; [`parse_large_community`].
pub const LARGE_COMMUNITIES_RULE: &str = "self.all(c, c.matches('^[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$') && c.split(':').all(p, int(p) <= 4294967295))";

fn validate_advertisement(adv: &Advertisement, errors: &mut Vec<FieldError>) {
    for (field, n) in [
        ("communities", adv.communities.len()),
        ("largeCommunities", adv.large_communities.len()),
    ] {
        if n > MAX_COMMUNITIES {
            errors.push(FieldError::new(
                format!("spec.advertisement.{field}"),
                format!("must have at most {MAX_COMMUNITIES} items"),
            ));
        }
    }
    for (i, c) in adv.communities.iter().enumerate() {
        if parse_community(c).is_none() {
            errors.push(FieldError::new(
                format!("spec.advertisement.communities[{i}]"),
                format!(
                    "{c:?} is not ASN:VALUE (each 0-65535) nor one of {}",
                    WELL_KNOWN_COMMUNITIES.join(", ")
                ),
            ));
        }
    }
    for (i, c) in adv.large_communities.iter().enumerate() {
        if parse_large_community(c).is_none() {
            errors.push(FieldError::new(
                format!("spec.advertisement.largeCommunities[{i}]"),
                format!("{c:?} is not GLOBAL:LOCAL1:LOCAL2 (each 0-4294967295)"),
            ));
        }
    }
    if let Some(prepend) = &adv.as_path_prepend {
        if !(1..=MAX_PREPEND).contains(&prepend.count) {
            errors.push(FieldError::new(
                "spec.advertisement.asPathPrepend.count",
                format!("must be 1 to {MAX_PREPEND}"),
            ));
        }
        if prepend.asn == Some(0) {
            errors.push(FieldError::new(
                "spec.advertisement.asPathPrepend.asn",
                "must be 1 to 4294967295",
            ));
        }
    }
}

/// The most copies of an AS `asPathPrepend` (and the Service annotation) may add.
pub const MAX_PREPEND: u8 = 10;

/// A decimal of 1 to `digits` ASCII digits (no sign, no space), as the CRD's regexes take it.
fn decimal(text: &str, digits: usize) -> Option<u64> {
    if text.is_empty() || text.len() > digits || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses a standard community: `ASN:VALUE` or a well-known name, into its 32-bit value.
pub fn parse_community(text: &str) -> Option<u32> {
    match text {
        "no-export" => return Some(0xFFFF_FF01),
        "no-advertise" => return Some(0xFFFF_FF02),
        "no-export-subconfed" => return Some(0xFFFF_FF03),
        "blackhole" => return Some(0xFFFF_029A),
        _ => {}
    }
    let (a, b) = text.split_once(':')?;
    let a = u16::try_from(decimal(a, 5)?).ok()?;
    let b = u16::try_from(decimal(b, 5)?).ok()?;
    Some((u32::from(a) << 16) | u32::from(b))
}

/// Parses a large community `GLOBAL:LOCAL1:LOCAL2`.
pub fn parse_large_community(text: &str) -> Option<(u32, u32, u32)> {
    let mut it = text.split(':');
    let mut part = || u32::try_from(decimal(it.next()?, 10)?).ok();
    let (a, b, c) = (part()?, part()?, part()?);
    it.next().is_none().then_some((a, b, c))
}

/// The CRD's CEL rule on `spec.conf.neighborAddress`.
pub const IP_RULE: &str = "isIP(self)";

/// The CRD's CEL rule on optional address fields (`sourceAddress`, `transport.localAddress`,
/// `listenAddresses[]`, `routerId`): empty, or an IP address.
pub const OPTIONAL_IP_RULE: &str = "self == '' || isIP(self)";

/// The CRD's CEL rule on a `BgpPeer` spec: the session's source address (`sourceAddress`,
/// else `transport.localAddress`) is of the neighbour's family.
pub const SOURCE_FAMILY_RULE: &str = "!isIP(self.conf.neighborAddress) || ((has(self.sourceAddress) && self.sourceAddress != '') ? (!isIP(self.sourceAddress) || ip(self.sourceAddress).family() == ip(self.conf.neighborAddress).family()) : (!has(self.transport) || !has(self.transport.localAddress) || self.transport.localAddress == '' || !isIP(self.transport.localAddress) || ip(self.transport.localAddress).family() == ip(self.conf.neighborAddress).family()))";

/// Address fields are at most this long (the CRD's `maxLength`; an IPv6 address with an
/// embedded IPv4 one has 45 characters).
pub const MAX_ADDRESS_LENGTH: usize = 64;

fn check_ip(errors: &mut Vec<FieldError>, field: &str, text: &str, optional: bool) {
    if text.chars().count() > MAX_ADDRESS_LENGTH {
        errors.push(FieldError::new(
            field,
            format!("must be at most {MAX_ADDRESS_LENGTH} characters"),
        ));
    } else if !(optional && text.is_empty()) && parse_ip(text).is_none() {
        errors.push(FieldError::new(
            field,
            format!("{text:?} is not an IP address"),
        ));
    }
}

/// Checks a `BgpPeer` spec as the CRD schema does.
pub fn validate_bgp_peer(spec: &BgpPeerSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if spec.conf.peer_as == 0 {
        errors.push(FieldError::new("spec.conf.peerAs", "must be 1 or more"));
    }
    check_ip(
        &mut errors,
        "spec.conf.neighborAddress",
        &spec.conf.neighbor_address,
        false,
    );
    let neighbor = parse_ip(&spec.conf.neighbor_address);
    let has_plain = spec
        .conf
        .auth_password
        .as_deref()
        .is_some_and(|p| !p.is_empty());
    if spec
        .conf
        .auth_password
        .as_deref()
        .is_some_and(|p| p.chars().count() > 80)
    {
        errors.push(FieldError::new(
            "spec.conf.authPassword",
            "must be at most 80 characters (the TCP MD5 key limit)",
        ));
    }
    if has_plain && spec.auth_password_secret_ref.is_some() {
        errors.push(FieldError::new(
            "spec.authPasswordSecretRef",
            "set conf.authPassword or authPasswordSecretRef, not both",
        ));
    }
    if let Some(r) = &spec.auth_password_secret_ref
        && r.name.is_empty()
    {
        errors.push(FieldError::new(
            "spec.authPasswordSecretRef.name",
            "must not be empty",
        ));
    }
    if let Some(src) = &spec.source_address {
        check_ip(&mut errors, "spec.sourceAddress", src, true);
    }
    if let Some(t) = &spec.transport {
        if let Some(local) = &t.local_address {
            check_ip(&mut errors, "spec.transport.localAddress", local, true);
        }
        if let Some(port) = t.remote_port
            && !(1..=65535).contains(&port)
        {
            errors.push(FieldError::new(
                "spec.transport.remotePort",
                "must be 1-65535",
            ));
        }
    }
    if let Some(src) = spec.effective_source_address().and_then(parse_ip)
        && let Some(n) = neighbor
        && n.is_ipv4() != src.is_ipv4()
    {
        errors.push(FieldError::new(
            "spec.sourceAddress",
            "must be the same family as conf.neighborAddress",
        ));
    }
    if let Some(t) = spec.timers.as_ref().and_then(|t| t.config.as_ref()) {
        check_seconds(
            &mut errors,
            "spec.timers.config",
            [
                ("connectRetry", t.connect_retry),
                ("holdTime", t.hold_time),
                ("keepaliveInterval", t.keepalive_interval),
                (
                    "minimumAdvertisementInterval",
                    t.minimum_advertisement_interval,
                ),
            ],
        );
    }
    if let Some(gr) = &spec.graceful_restart {
        check_graceful_restart(&mut errors, gr);
    }
    if let Some(t) = spec.timers.as_ref().and_then(|t| t.config.as_ref())
        && let Some(h) = t.hold_time
        && (h.get() == 1 || h.get() == 2 || h.get() > 65535)
    {
        errors.push(FieldError::new(
            "spec.timers.config.holdTime",
            "must be 0 or 3-65535 seconds (RFC 4271)",
        ));
    }
    if let Some(m) = &spec.ebgp_multihop
        && let Some(ttl) = m.multihop_ttl
        && !(1..=255).contains(&ttl)
    {
        errors.push(FieldError::new(
            "spec.ebgpMultihop.multihopTtl",
            "must be 1-255",
        ));
    }
    if let Some(bfd) = &spec.bfd {
        for (name, v) in [("minRx", bfd.min_rx), ("minTx", bfd.min_tx)] {
            if let Some(v) = v
                && !(10..=60000).contains(&v)
            {
                errors.push(FieldError::new(
                    format!("spec.bfd.{name}"),
                    "must be 10-60000 milliseconds",
                ));
            }
        }
        if let Some(m) = bfd.multiplier
            && !(1..=255).contains(&m)
        {
            errors.push(FieldError::new("spec.bfd.multiplier", "must be 1-255"));
        }
    }
    if spec.max_prefix == Some(0) {
        errors.push(FieldError::new("spec.maxPrefix", "must be 1 or more"));
    }
    for (i, a) in spec.afi_safis.iter().enumerate() {
        if let Some(f) = a.config.as_ref().and_then(|c| c.family.as_ref()) {
            if f.afi != "AFI_IP" && f.afi != "AFI_IP6" {
                errors.push(FieldError::new(
                    format!("spec.afiSafis[{i}].config.family.afi"),
                    "must be AFI_IP or AFI_IP6",
                ));
            }
            if f.safi != "SAFI_UNICAST" {
                errors.push(FieldError::new(
                    format!("spec.afiSafis[{i}].config.family.safi"),
                    "must be SAFI_UNICAST",
                ));
            }
        }
    }
    errors
}

/// The CRD's CEL rule on `spec.timers.config`: each timer is a whole number of seconds (a
/// number, or a string of digits with optional spaces around and an optional `.0`, as
/// [`Seconds::is_canonical`] reads it), and `holdTime` is 0 or 3-65535 (RFC 4271).
pub const TIMERS_RULE: &str = "(!has(self.connectRetry) || (type(self.connectRetry) == string ? (self.connectRetry.matches('^ *[0-9]+([.]0+)? *$') && double(self.connectRetry.trim()) <= 18446744073709551615.0) : self.connectRetry >= 0)) && (!has(self.holdTime) || (type(self.holdTime) == string ? (self.holdTime.matches('^ *[0-9]+([.]0+)? *$') && double(self.holdTime.trim()) <= 18446744073709551615.0) : self.holdTime >= 0)) && (!has(self.keepaliveInterval) || (type(self.keepaliveInterval) == string ? (self.keepaliveInterval.matches('^ *[0-9]+([.]0+)? *$') && double(self.keepaliveInterval.trim()) <= 18446744073709551615.0) : self.keepaliveInterval >= 0)) && (!has(self.minimumAdvertisementInterval) || (type(self.minimumAdvertisementInterval) == string ? (self.minimumAdvertisementInterval.matches('^ *[0-9]+([.]0+)? *$') && double(self.minimumAdvertisementInterval.trim()) <= 18446744073709551615.0) : self.minimumAdvertisementInterval >= 0)) && (!has(self.holdTime) || (type(self.holdTime) == string ? (!self.holdTime.matches('^ *[0-9]+([.]0+)? *$') || double(self.holdTime.trim()) == 0.0 || (double(self.holdTime.trim()) >= 3.0 && double(self.holdTime.trim()) <= 65535.0)) : (self.holdTime == 0 || (self.holdTime >= 3 && self.holdTime <= 65535))))";

/// The CRD's CEL rule on `gracefulRestart` (of `BgpConf` and `BgpPeer`): each time is a whole
/// number of seconds (a number, or a string of digits).
pub const GRACEFUL_RESTART_RULE: &str = "(!has(self.restartTime) || (type(self.restartTime) == string ? (self.restartTime.matches('^ *[0-9]+([.]0+)? *$') && double(self.restartTime.trim()) <= 18446744073709551615.0) : self.restartTime >= 0)) && (!has(self.deferralTime) || (type(self.deferralTime) == string ? (self.deferralTime.matches('^ *[0-9]+([.]0+)? *$') && double(self.deferralTime.trim()) <= 18446744073709551615.0) : self.deferralTime >= 0)) && (!has(self.staleRoutesTime) || (type(self.staleRoutesTime) == string ? (self.staleRoutesTime.matches('^ *[0-9]+([.]0+)? *$') && double(self.staleRoutesTime.trim()) <= 18446744073709551615.0) : self.staleRoutesTime >= 0)) && (!has(self.peerRestartTime) || (type(self.peerRestartTime) == string ? (self.peerRestartTime.matches('^ *[0-9]+([.]0+)? *$') && double(self.peerRestartTime.trim()) <= 18446744073709551615.0) : self.peerRestartTime >= 0))";

/// Each [`Seconds`] of `fields` must be spelled as the CRD's rules take it.
fn check_seconds<const N: usize>(
    errors: &mut Vec<FieldError>,
    at: &str,
    fields: [(&str, Option<Seconds>); N],
) {
    for (name, value) in fields {
        if value.is_some_and(|v| !v.is_canonical()) {
            errors.push(FieldError::new(
                format!("{at}.{name}"),
                "must be a whole number of seconds: a number, or a string of digits",
            ));
        }
    }
}

fn check_graceful_restart(errors: &mut Vec<FieldError>, gr: &crate::bgpconf::GracefulRestart) {
    check_seconds(
        errors,
        "spec.gracefulRestart",
        [
            ("restartTime", gr.restart_time),
            ("deferralTime", gr.deferral_time),
            ("staleRoutesTime", gr.stale_routes_time),
            ("peerRestartTime", gr.peer_restart_time),
        ],
    );
}

/// The CRD's CEL rule on a `BgpConf` spec.
pub const CONF_AS_RULE: &str =
    "(has(self.__as__) && self.__as__ != 0) || (has(self.asPerRack) && size(self.asPerRack) > 0)";

/// At most this many `spec.listenAddresses` (the CRD's `maxItems`).
pub const MAX_LISTEN_ADDRESSES: usize = 16;

/// Checks a `BgpConf` spec as the CRD schema does. An unset `as` with a non-empty
/// `asPerRack` passes; a node whose rack it does not map learns that from its speaker.
pub fn validate_bgp_conf(spec: &BgpConfSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if spec.as_number == 0 && spec.as_per_rack.is_empty() {
        errors.push(FieldError::new(
            "spec.as",
            "set spec.as (1-4294967295) or a non-empty spec.asPerRack",
        ));
    }
    if !spec.router_id.is_empty() && !parse_ip(&spec.router_id).is_some_and(|ip| ip.is_ipv4()) {
        errors.push(FieldError::new(
            "spec.routerId",
            format!("{:?} is not an IPv4 address", spec.router_id),
        ));
    }
    if let Some(p) = spec.listen_port
        && !(-1..=65535).contains(&p)
    {
        errors.push(FieldError::new("spec.listenPort", "must be -1-65535"));
    }
    if spec.listen_addresses.len() > MAX_LISTEN_ADDRESSES {
        errors.push(FieldError::new(
            "spec.listenAddresses",
            format!("must have at most {MAX_LISTEN_ADDRESSES} items"),
        ));
    }
    for (i, a) in spec.listen_addresses.iter().enumerate() {
        check_ip(&mut errors, &format!("spec.listenAddresses[{i}]"), a, false);
    }
    if let Some(gr) = &spec.graceful_restart {
        check_graceful_restart(&mut errors, gr);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_address_shapes() {
        assert_eq!(
            parse_eip_address("10.0.0.5"),
            Ok(EipAddress::Single("10.0.0.5".parse().expect("ip")))
        );
        assert_eq!(
            parse_eip_address("10.0.0.7/24"),
            Ok(EipAddress::Cidr("10.0.0.0".parse().expect("ip"), 24))
        );
        assert_eq!(
            parse_eip_address("fd00::1-fd00::ff"),
            Ok(EipAddress::Range(
                "fd00::1".parse().expect("ip"),
                "fd00::ff".parse().expect("ip")
            ))
        );
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-fd00::1",
            "x",
            " 10.0.0.1",
            "::ffff:10.0.0.1",
            "10.0.0.0/08",
        ] {
            assert!(parse_eip_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn communities() {
        assert_eq!(parse_community("65000:100"), Some(0xFDE8_0064));
        assert_eq!(parse_community("no-export"), Some(0xFFFF_FF01));
        assert_eq!(parse_community("65536:1"), None);
        assert_eq!(parse_large_community("1:2:3"), Some((1, 2, 3)));
        assert_eq!(parse_large_community("1:2"), None);
        assert_eq!(parse_large_community("1:2:3:4"), None);
    }

    #[test]
    fn eip_rules() {
        let mut spec = EipSpec {
            address: "10.0.0.0/24".into(),
            ..Default::default()
        };
        assert!(validate_eip(&spec).is_empty());
        let mut changed = spec.clone();
        changed.address = "10.0.1.0/24".into();
        let errs = validate_eip_update(&spec, &changed);
        assert!(errs.iter().any(|e| e.message.contains("immutable")));
        spec.advertisement = Some(Advertisement {
            communities: vec!["65000:1".into(), "bad".into()],
            large_communities: vec!["1:2:3".into()],
            ..Default::default()
        });
        let errs = validate_eip(&spec);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.advertisement.communities[1]");
    }

    /// Regression (issue 14 item 3): OpenELB accepts `interface` on a bgp pool; so does Berth,
    /// with a warning instead of a refusal.
    #[test]
    fn an_aggregation_reaching_outside_the_pool_is_a_warning() {
        let mut spec = EipSpec {
            address: "10.0.0.10-10.0.0.20".into(),
            advertisement: Some(Advertisement {
                aggregation_length: Some(28),
                ..Default::default()
            }),
            ..Default::default()
        };
        let warnings = eip_warnings(&spec);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].message.contains("needs a CIDR pool"),
            "{warnings:?}"
        );
        spec.address = "10.0.0.0/24".into();
        assert!(eip_warnings(&spec).is_empty());
        if let Some(adv) = spec.advertisement.as_mut() {
            adv.aggregation_length = Some(16);
        }
        let warnings = eip_warnings(&spec);
        assert!(
            warnings[0]
                .message
                .contains("16 is shorter than the pool's /24"),
            "{warnings:?}"
        );
    }

    #[test]
    fn an_interface_on_a_bgp_pool_is_a_warning_not_an_error() {
        let mut spec = EipSpec {
            address: "10.0.0.0/24".into(),
            interface: Some("eth0".into()),
            ..Default::default()
        };
        for protocol in [None, Some(Protocol::Bgp)] {
            spec.protocol = protocol;
            assert!(validate_eip(&spec).is_empty(), "{protocol:?}");
            let warnings = eip_warnings(&spec);
            assert_eq!(warnings.len(), 1, "{protocol:?}");
            assert_eq!(warnings[0].field, "spec.interface");
            assert!(warnings[0].message.contains("ignored"), "{}", warnings[0]);
        }
        spec.protocol = Some(Protocol::Layer2);
        assert!(validate_eip(&spec).is_empty() && eip_warnings(&spec).is_empty());
    }

    /// Issue 14 item 5: a vip pool is valid (its addresses are allocated) but warned about:
    /// nothing announces it.
    #[test]
    fn a_vip_pool_is_valid_and_warned_about() {
        let spec = EipSpec {
            address: "10.0.0.0/24".into(),
            protocol: Some(Protocol::Vip),
            interface: Some("eth0".into()),
            ..Default::default()
        };
        assert!(validate_eip(&spec).is_empty());
        let warnings = eip_warnings(&spec);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].field, "spec.protocol");
        assert_eq!(warnings[0].message, VIP_NOT_ANNOUNCED);
    }

    /// Regression (issue 14 item 13): standalone took a range with spaces and a remote port
    /// of 0, the CRD neither. Now both take the spaces (a standalone pool that worked keeps
    /// working) and both refuse port 0.
    #[test]
    fn spaces_and_port_zero_get_the_crds_verdict() {
        let mut spec = EipSpec {
            address: "10.70.0.1 - 10.70.0.9".into(),
            ..Default::default()
        };
        assert!(validate_eip(&spec).is_empty());
        assert_eq!(
            parse_eip_address(&spec.address),
            Ok(EipAddress::Range(
                "10.70.0.1".parse().expect("ip"),
                "10.70.0.9".parse().expect("ip")
            ))
        );
        spec.address = " 10.70.0.1-10.70.0.9".into();
        assert_eq!(validate_eip(&spec)[0].field, "spec.address");
        let mut peer = BgpPeerSpec::default();
        peer.conf.peer_as = 65000;
        peer.conf.neighbor_address = "10.0.0.1".into();
        peer.transport = Some(crate::bgppeer::Transport {
            remote_port: Some(0),
            ..Default::default()
        });
        assert_eq!(
            validate_bgp_peer(&peer)[0].field,
            "spec.transport.remotePort"
        );
    }

    /// Regression (issue 14 item 14): special-purpose addresses and host bits are pool
    /// problems; `10.0.0.0/0` is not read as `0.0.0.0/0`.
    #[test]
    fn pool_rules_refuse_special_addresses_host_bits_and_reversed_ranges() {
        for bad in [
            "0.0.0.0/0",
            "::/0",
            "10.0.0.0/0",
            "10.0.0.5/24",
            "127.0.0.1",
            "126.255.255.250-128.0.0.5",
            "::1",
            "ff02::1",
            "224.0.0.0/4",
            "239.1.1.1",
            "10.0.0.9-10.0.0.1",
            "fd00::1/64",
        ] {
            assert!(!pool_address_problems(bad).is_empty(), "{bad}");
        }
        for good in [
            "10.0.0.0/24",
            "0.0.0.1-10.0.0.0",
            "fd00::/64",
            "2001:db8::1",
            "1.0.0.0/8",
        ] {
            assert_eq!(pool_address_problems(good), Vec::<String>::new(), "{good}");
        }
        let host_bits = pool_address_problems("10.0.0.0/0");
        assert!(host_bits[0].contains("host bits"), "{host_bits:?}");
        assert_eq!(
            special_purpose("::".parse().expect("ip")),
            Some("the unspecified address")
        );
        assert_eq!(special_purpose("10.0.0.1".parse().expect("ip")), None);
    }

    #[test]
    fn peer_rules() {
        let mut spec = BgpPeerSpec::default();
        spec.conf.peer_as = 65000;
        spec.conf.neighbor_address = "10.0.0.1".into();
        assert!(validate_bgp_peer(&spec).is_empty());
        spec.source_address = Some("fd00::1".into());
        spec.conf.auth_password = Some("x".into());
        spec.auth_password_secret_ref = Some(crate::bgppeer::SecretKeyRef {
            name: "s".into(),
            ..Default::default()
        });
        let fields: Vec<_> = validate_bgp_peer(&spec)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["spec.authPasswordSecretRef", "spec.sourceAddress"]);
    }

    #[test]
    fn length_limits_mirror_the_schema() {
        let mut eip = EipSpec {
            address: "10.0.0.1".into(),
            protocol: Some(Protocol::Layer2),
            interface: Some("e".repeat(64)),
            ..Default::default()
        };
        assert!(validate_eip(&eip).is_empty());
        eip.interface = Some("e".repeat(65));
        assert_eq!(validate_eip(&eip)[0].field, "spec.interface");
        let mut peer = BgpPeerSpec::default();
        peer.conf.peer_as = 65000;
        peer.conf.neighbor_address = "10.0.0.1".into();
        peer.conf.auth_password = Some("p".repeat(80));
        assert!(validate_bgp_peer(&peer).is_empty());
        peer.conf.auth_password = Some("p".repeat(81));
        assert_eq!(validate_bgp_peer(&peer)[0].field, "spec.conf.authPassword");
    }

    #[test]
    fn conf_rules() {
        let mut spec = BgpConfSpec {
            as_number: 0,
            router_id: "fd00::1".into(),
            ..Default::default()
        };
        let fields: Vec<_> = validate_bgp_conf(&spec)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["spec.as", "spec.routerId"]);
        spec.as_per_rack.insert("r1".into(), 64513);
        spec.router_id.clear();
        assert!(
            validate_bgp_conf(&spec).is_empty(),
            "asPerRack stands in for as"
        );
    }
}
