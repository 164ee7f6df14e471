//! The checks RFC 4271 §6.2 (and RFC 5492, 6286, 7607) make on a received OPEN, as one
//! pure function from configuration and message to the agreed hold time or the
//! NOTIFICATION to answer with. The codec already refuses a version other than 4, AS 0, a
//! zero identifier and hold times 1 and 2 while decoding; they are checked here again so
//! that the state machine is right whatever produced the `Open`.

use crate::wire::capability::Capability;
use crate::wire::error::DecodeError;
use crate::wire::notification::{ErrorCode, Notification, OpenSubcode};
use crate::wire::open::{Open, OptionalParam};

use super::config::{PeerAs, SessionConfig};
use super::timers::negotiate_hold_time;

/// Validates the peer's OPEN; `Ok` carries the negotiated hold time.
pub fn check_open(config: &SessionConfig, open: &Open) -> Result<u16, Notification> {
    let peer_as = open.asn();
    if peer_as == 0 {
        return Err(DecodeError::BadPeerAs { asn: 0 }.notification());
    }
    if let PeerAs::Exact(expected) = config.peer_as
        && expected != peer_as
    {
        return Err(DecodeError::BadPeerAs { asn: peer_as }.notification());
    }
    // RFC 6286 §2.2: the identifier must be non-zero, and (for an eBGP or iBGP peer alike,
    // since two speakers cannot share it) differ from ours.
    if open.bgp_id.is_unspecified() || open.bgp_id == config.router_id {
        return Err(DecodeError::BadBgpIdentifier.notification());
    }
    if let Some(param_type) = open.params.iter().find_map(|p| match p {
        OptionalParam::Unknown { param_type, .. } => Some(*param_type),
        OptionalParam::Capabilities(_) => None,
    }) {
        return Err(DecodeError::UnsupportedOptionalParameter { param_type }.notification());
    }
    let Some(hold_time) = negotiate_hold_time(config.hold_time, open.hold_time) else {
        return Err(DecodeError::UnacceptableHoldTime {
            hold_time: open.hold_time,
        }
        .notification());
    };
    // RFC 5492 §5: we need at least one family in common; a peer that offers
    // multiprotocol capabilities but none of ours gets Unsupported Capability listing
    // the ones we require.
    let theirs: Vec<_> = open
        .capabilities()
        .filter_map(|c| {
            if let Capability::Multiprotocol(f) = c {
                Some(*f)
            } else {
                None
            }
        })
        .collect();
    if !theirs.is_empty() && !config.families.iter().any(|f| theirs.contains(f)) {
        let mut data = Vec::new();
        for f in &config.families {
            data.extend_from_slice(&[1, 4]);
            data.extend_from_slice(&f.afi.0.to_be_bytes());
            data.extend_from_slice(&[0, f.safi.0]);
        }
        return Err(Notification::new(
            ErrorCode::Open(OpenSubcode::UnsupportedCapability),
            data,
        ));
    }
    Ok(hold_time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::iana::Family;
    use std::net::Ipv4Addr;

    fn config() -> SessionConfig {
        SessionConfig::new(65001, PeerAs::Exact(65000), Ipv4Addr::new(10, 0, 0, 1))
    }

    fn open(asn: u32, hold: u16, id: [u8; 4]) -> Open {
        Open::new(
            asn,
            hold,
            Ipv4Addr::from(id),
            vec![Capability::FourOctetAs(asn)],
        )
    }

    fn subcode(r: Result<u16, Notification>) -> ErrorCode {
        r.expect_err("must be refused").code
    }

    #[test]
    fn accepts_a_good_open_and_negotiates_hold_time() {
        assert_eq!(
            check_open(&config(), &open(65000, 30, [10, 0, 0, 2])),
            Ok(30)
        );
        assert_eq!(check_open(&config(), &open(65000, 0, [10, 0, 0, 2])), Ok(0));
    }

    #[test]
    fn bad_peer_as() {
        assert_eq!(
            subcode(check_open(&config(), &open(65002, 90, [10, 0, 0, 2]))),
            ErrorCode::Open(OpenSubcode::BadPeerAs)
        );
        let mut any = config();
        any.peer_as = PeerAs::Any;
        assert!(check_open(&any, &open(4_200_000_000, 90, [10, 0, 0, 2])).is_ok());
    }

    #[test]
    fn bad_bgp_identifier_zero_or_ours() {
        let c = config();
        assert_eq!(
            subcode(check_open(&c, &open(65000, 90, [0, 0, 0, 0]))),
            ErrorCode::Open(OpenSubcode::BadBgpIdentifier)
        );
        assert_eq!(
            subcode(check_open(&c, &open(65000, 90, [10, 0, 0, 1]))),
            ErrorCode::Open(OpenSubcode::BadBgpIdentifier)
        );
    }

    #[test]
    fn unacceptable_hold_time() {
        for hold in [1, 2] {
            let n = check_open(&config(), &open(65000, hold, [10, 0, 0, 2])).expect_err("refused");
            assert_eq!(n.code, ErrorCode::Open(OpenSubcode::UnacceptableHoldTime));
        }
    }

    #[test]
    fn unsupported_optional_parameter() {
        let mut o = open(65000, 90, [10, 0, 0, 2]);
        o.params.push(OptionalParam::Unknown {
            param_type: 1,
            data: vec![0],
        });
        assert_eq!(
            subcode(check_open(&config(), &o)),
            ErrorCode::Open(OpenSubcode::UnsupportedOptionalParameter)
        );
    }

    #[test]
    fn unsupported_capability_when_no_family_in_common() {
        let mut c = config();
        c.families = vec![Family::IPV6_UNICAST];
        let o = Open::new(
            65000,
            90,
            Ipv4Addr::new(10, 0, 0, 2),
            vec![Capability::Multiprotocol(Family::IPV4_UNICAST)],
        );
        let n = check_open(&c, &o).expect_err("refused");
        assert_eq!(n.code, ErrorCode::Open(OpenSubcode::UnsupportedCapability));
        assert_eq!(n.data, vec![1, 4, 0, 2, 0, 1]);
    }
}
