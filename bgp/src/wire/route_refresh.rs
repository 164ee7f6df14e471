//! The ROUTE-REFRESH message (RFC 2918 §3) with the RFC 7313 §3.2 message subtypes.
//!
//! ```text
//!  0       7      15      23      31
//! +-------+-------+-------+-------+
//! |      AFI      | Subtyp|  SAFI |
//! +-------+-------+-------+-------+
//! ```

use std::fmt;

use bytes::{BufMut, BytesMut};

use super::iana::Family;

/// ROUTE-REFRESH message subtype (RFC 7313 §3.2; "Reserved" in RFC 2918).
///
/// Registry: <https://www.iana.org/assignments/bgp-parameters/bgp-parameters.xhtml#route-refresh-subcodes>
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRefreshSubtype(pub u8);

impl RouteRefreshSubtype {
    /// 0: a plain route refresh request.
    pub const NORMAL: RouteRefreshSubtype = RouteRefreshSubtype(0);
    /// 1: Beginning of Route Refresh (BoRR).
    pub const BORR: RouteRefreshSubtype = RouteRefreshSubtype(1);
    /// 2: End of Route Refresh (EoRR).
    pub const EORR: RouteRefreshSubtype = RouteRefreshSubtype(2);
}

impl fmt::Debug for RouteRefreshSubtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RouteRefreshSubtype::NORMAL => f.write_str("Normal"),
            RouteRefreshSubtype::BORR => f.write_str("BeginningOfRouteRefresh"),
            RouteRefreshSubtype::EORR => f.write_str("EndOfRouteRefresh"),
            RouteRefreshSubtype(other) => write!(f, "RouteRefreshSubtype({other})"),
        }
    }
}

/// A ROUTE-REFRESH message. An unknown subtype is kept: RFC 7313 §5 says to ignore the
/// message, which is the receiver's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    /// The family to refresh.
    pub family: Family,
    /// Normal request, BoRR or EoRR.
    pub subtype: RouteRefreshSubtype,
}

impl RouteRefresh {
    /// A plain request for `family`.
    pub fn request(family: Family) -> RouteRefresh {
        RouteRefresh {
            family,
            subtype: RouteRefreshSubtype::NORMAL,
        }
    }

    pub(crate) fn decode_body(body: &[u8]) -> Option<RouteRefresh> {
        let [a0, a1, subtype, safi] = *body else {
            return None;
        };
        Some(RouteRefresh {
            family: Family::new(u16::from_be_bytes([a0, a1]), safi),
            subtype: RouteRefreshSubtype(subtype),
        })
    }

    pub(crate) fn encode_body(&self, buf: &mut BytesMut) {
        buf.put_u16(self.family.afi.0);
        buf.put_u8(self.subtype.0);
        buf.put_u8(self.family.safi.0);
    }
}
