//! The CRD schema's checks as pure functions, for the standalone mode (no API server) and for
//! defence in depth in the controller. Every message names the field and says what is allowed.

use std::fmt;
use std::net::IpAddr;

use crate::bgpconf::BgpConfSpec;
use crate::bgppeer::BgpPeerSpec;
use crate::eip::{Advertisement, EipSpec, Protocol};

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

/// Parses an `Eip`'s `spec.address`: one IP, `a.b.c.d/n`, or `first-last` (same family).
pub fn parse_eip_address(text: &str) -> Result<EipAddress, String> {
    let text = text.trim();
    if let Some((ip, len)) = text.split_once('/') {
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("{ip:?} is not an IP address"))?;
        let len: u8 = len
            .parse()
            .map_err(|_| format!("{len:?} is not a prefix length"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(format!("prefix length {len} is longer than {max}"));
        }
        return Ok(EipAddress::Cidr(mask(ip, len), len));
    }
    if let Some((a, b)) = text.split_once('-') {
        let first: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{a:?} is not an IP address"))?;
        let last: IpAddr = b
            .trim()
            .parse()
            .map_err(|_| format!("{b:?} is not an IP address"))?;
        if first.is_ipv4() != last.is_ipv4() {
            return Err("a range's two ends must be the same family".into());
        }
        if first > last {
            return Err(format!("range start {first} is after its end {last}"));
        }
        return Ok(EipAddress::Range(first, last));
    }
    text.parse::<IpAddr>().map(EipAddress::Single).map_err(|_| {
        format!("{text:?} is not an IP, a CIDR (a.b.c.d/n) or a range (a.b.c.d-e.f.g.h)")
    })
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

/// Checks an `Eip` spec as the CRD schema does.
pub fn validate_eip(spec: &EipSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Err(e) = parse_eip_address(&spec.address) {
        errors.push(FieldError::new("spec.address", e));
    }
    let has_interface = spec.interface.as_deref().is_some_and(|i| !i.is_empty());
    if has_interface && spec.protocol() == Protocol::Bgp {
        errors.push(FieldError::new(
            "spec.interface",
            "applies to protocol layer2 or vip only",
        ));
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
    if let Some(iface) = spec.interface.as_deref()
        && let Some(ip) = iface.strip_prefix("can_reach:")
        && ip.parse::<IpAddr>().is_err()
    {
        errors.push(FieldError::new(
            "spec.interface",
            format!("can_reach:{ip} does not name an IP address"),
        ));
    }
    if let Some(adv) = &spec.advertisement {
        validate_advertisement(adv, &mut errors);
    }
    errors
}

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

fn validate_advertisement(adv: &Advertisement, errors: &mut Vec<FieldError>) {
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
    let a: u16 = a.parse().ok()?;
    let b: u16 = b.parse().ok()?;
    Some((u32::from(a) << 16) | u32::from(b))
}

/// Parses a large community `GLOBAL:LOCAL1:LOCAL2`.
pub fn parse_large_community(text: &str) -> Option<(u32, u32, u32)> {
    let mut it = text.split(':');
    let a = it.next()?.parse().ok()?;
    let b = it.next()?.parse().ok()?;
    let c = it.next()?.parse().ok()?;
    it.next().is_none().then_some((a, b, c))
}

/// Checks a `BgpPeer` spec as the CRD schema does.
pub fn validate_bgp_peer(spec: &BgpPeerSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if spec.conf.peer_as == 0 {
        errors.push(FieldError::new("spec.conf.peerAs", "must be 1 or more"));
    }
    let neighbor = spec.conf.neighbor_address.parse::<IpAddr>();
    if neighbor.is_err() {
        errors.push(FieldError::new(
            "spec.conf.neighborAddress",
            format!("{:?} is not an IP address", spec.conf.neighbor_address),
        ));
    }
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
    if let Some(src) = spec.effective_source_address() {
        match src.parse::<IpAddr>() {
            Err(_) => errors.push(FieldError::new(
                "spec.sourceAddress",
                format!("{src:?} is not an IP address"),
            )),
            Ok(s) => {
                if let Ok(n) = neighbor
                    && n.is_ipv4() != s.is_ipv4()
                {
                    errors.push(FieldError::new(
                        "spec.sourceAddress",
                        "must be the same family as conf.neighborAddress",
                    ));
                }
            }
        }
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

/// Checks a `BgpConf` spec as the CRD schema does, and a little more: the schema takes an unset
/// `as` when `asPerRack` is set, but this reports it anyway, so a node whose rack is not mapped
/// learns it has no AS (callers drop the error for nodes whose rack is mapped).
pub fn validate_bgp_conf(spec: &BgpConfSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if spec.as_number == 0 {
        errors.push(FieldError::new(
            "spec.as",
            "must be 1 or more, unless spec.asPerRack maps the node's rack",
        ));
    }
    if !spec.router_id.is_empty() && spec.router_id.parse::<std::net::Ipv4Addr>().is_err() {
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
    for (i, a) in spec.listen_addresses.iter().enumerate() {
        if a.parse::<IpAddr>().is_err() {
            errors.push(FieldError::new(
                format!("spec.listenAddresses[{i}]"),
                format!("{a:?} is not an IP address"),
            ));
        }
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
        spec.interface = Some("eth0".into());
        assert_eq!(validate_eip(&spec)[0].field, "spec.interface");
        spec.protocol = Some(Protocol::Layer2);
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
        let spec = BgpConfSpec {
            as_number: 0,
            router_id: "fd00::1".into(),
            ..Default::default()
        };
        let fields: Vec<_> = validate_bgp_conf(&spec)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["spec.as", "spec.routerId"]);
    }
}
