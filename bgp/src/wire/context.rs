//! What the session negotiated, as far as the byte layout of messages depends on it.
//!
//! One `Context` describes one direction: decode with what the peer may send us, encode with
//! what we may send the peer. Knows nothing of how it was negotiated.

use super::iana::Family;

/// Maximum message size without RFC 8654 extended messages (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Maximum message size once RFC 8654 extended messages were negotiated.
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;

/// Per-family ADD-PATH (RFC 7911) state for one direction: whether NLRI carry a path identifier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AddPathFamilies {
    /// IPv4 unicast NLRI carry a 4-octet path identifier.
    pub ipv4_unicast: bool,
    /// IPv6 unicast NLRI carry a 4-octet path identifier.
    pub ipv6_unicast: bool,
}

/// The negotiated session parameters that change the wire encoding, for one direction.
///
/// `Context::default()` is the state before OPEN messages were exchanged: 2-octet AS
/// numbers, no ADD-PATH, 4,096-byte messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Context {
    /// Both sides announced the 4-octet AS capability (RFC 6793): AS_PATH and AGGREGATOR
    /// carry 4-octet AS numbers.
    pub four_octet_as: bool,
    /// Both sides announced the extended message capability (RFC 8654).
    pub extended_message: bool,
    /// Which families carry ADD-PATH path identifiers in this direction (RFC 7911).
    pub add_path: AddPathFamilies,
    /// The sender is in another AS (eBGP). Decoding then discards LOCAL_PREF (RFC 4271
    /// §5.1.5), ORIGINATOR_ID and CLUSTER_LIST (RFC 4456 §8), well-formed or not, as RFC 7606
    /// §7.5, §7.9 and §7.10 say, instead of judging their contents.
    pub external_peer: bool,
}

impl Context {
    /// The largest message this direction allows (RFC 4271 §4.1, RFC 8654 §4).
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }

    /// Whether NLRI of `family` carry a path identifier.
    pub fn add_path_for(&self, family: Family) -> bool {
        match family {
            Family::IPV4_UNICAST => self.add_path.ipv4_unicast,
            Family::IPV6_UNICAST => self.add_path.ipv6_unicast,
            _ => false,
        }
    }
}
