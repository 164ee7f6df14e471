//! The NOTIFICATION message (RFC 4271 §4.5) with typed error codes and subcodes
//! (RFC 4271 §6, RFC 4486, RFC 5492, RFC 6608, RFC 7313, RFC 8538, RFC 9234) and the
//! RFC 9003 shutdown communication.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Error code    | Error subcode |   Data (variable)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Registry: <https://www.iana.org/assignments/bgp-parameters/bgp-parameters.xhtml#bgp-parameters-3>

use std::fmt;

use bytes::{BufMut, BytesMut};

macro_rules! subcodes {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $value:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            /// Subcode 0: no specific subcode.
            Unspecific,
            $($(#[$vdoc])* $variant,)*
            /// A subcode this implementation does not know.
            Unknown(u8),
        }

        impl $name {
            /// Maps a wire subcode to its variant.
            pub fn from_u8(value: u8) -> $name {
                match value {
                    0 => $name::Unspecific,
                    $($value => $name::$variant,)*
                    other => $name::Unknown(other),
                }
            }

            /// The wire subcode.
            pub fn to_u8(self) -> u8 {
                match self {
                    $name::Unspecific => 0,
                    $($name::$variant => $value,)*
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

subcodes!(
    /// Message Header Error subcodes (RFC 4271 §4.5).
    MessageHeaderSubcode {
        /// The marker is not all ones.
        ConnectionNotSynchronized = 1,
        /// The length field is out of range for the message type.
        BadMessageLength = 2,
        /// The type field is not a known message type.
        BadMessageType = 3,
    }
);

subcodes!(
    /// OPEN Message Error subcodes (RFC 4271 §4.5, RFC 5492, RFC 9234).
    OpenSubcode {
        /// Version other than 4.
        UnsupportedVersionNumber = 1,
        /// The peer AS is not the expected one (or is 0, RFC 7607).
        BadPeerAs = 2,
        /// The BGP Identifier is not acceptable.
        BadBgpIdentifier = 3,
        /// An optional parameter is not supported.
        UnsupportedOptionalParameter = 4,
        /// Hold time of 1 or 2 seconds, or refused by local policy.
        UnacceptableHoldTime = 6,
        /// A required capability is missing (RFC 5492 §5).
        UnsupportedCapability = 7,
        /// BGP Role mismatch (RFC 9234).
        RoleMismatch = 11,
    }
);

subcodes!(
    /// UPDATE Message Error subcodes (RFC 4271 §4.5).
    UpdateSubcode {
        /// The attribute list cannot be parsed.
        MalformedAttributeList = 1,
        /// A well-known attribute that is not recognized.
        UnrecognizedWellKnownAttribute = 2,
        /// A mandatory well-known attribute is absent.
        MissingWellKnownAttribute = 3,
        /// Attribute flags conflict with the attribute type.
        AttributeFlagsError = 4,
        /// Attribute length conflicts with the attribute type.
        AttributeLengthError = 5,
        /// ORIGIN with an undefined value.
        InvalidOriginAttribute = 6,
        /// NEXT_HOP that is syntactically incorrect.
        InvalidNextHopAttribute = 8,
        /// A recognized optional attribute whose value is wrong.
        OptionalAttributeError = 9,
        /// The NLRI field is syntactically incorrect.
        InvalidNetworkField = 10,
        /// AS_PATH that is syntactically incorrect.
        MalformedAsPath = 11,
    }
);

subcodes!(
    /// Finite State Machine Error subcodes (RFC 6608).
    FsmSubcode {
        /// Unexpected message in OpenSent.
        UnexpectedMessageInOpenSent = 1,
        /// Unexpected message in OpenConfirm.
        UnexpectedMessageInOpenConfirm = 2,
        /// Unexpected message in Established.
        UnexpectedMessageInEstablished = 3,
    }
);

subcodes!(
    /// Cease subcodes (RFC 4486, RFC 8538, RFC 9384).
    CeaseSubcode {
        /// Prefix limit reached; data is AFI, SAFI and the limit.
        MaximumNumberOfPrefixesReached = 1,
        /// Administrative shutdown; data may carry an RFC 9003 shutdown communication.
        AdministrativeShutdown = 2,
        /// The peer was deconfigured.
        PeerDeconfigured = 3,
        /// Administrative reset; data may carry an RFC 9003 shutdown communication.
        AdministrativeReset = 4,
        /// Connection rejected.
        ConnectionRejected = 5,
        /// Other configuration change.
        OtherConfigurationChange = 6,
        /// Connection collision resolution.
        ConnectionCollisionResolution = 7,
        /// Out of resources.
        OutOfResources = 8,
        /// Hard reset (RFC 8538).
        HardReset = 9,
        /// BFD down (RFC 9384).
        BfdDown = 10,
    }
);

subcodes!(
    /// ROUTE-REFRESH Message Error subcodes (RFC 7313 §5).
    RouteRefreshSubcode {
        /// The ROUTE-REFRESH length is not 23.
        InvalidMessageLength = 1,
    }
);

/// A NOTIFICATION error code with its subcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 1: Message Header Error.
    MessageHeader(MessageHeaderSubcode),
    /// 2: OPEN Message Error.
    Open(OpenSubcode),
    /// 3: UPDATE Message Error.
    Update(UpdateSubcode),
    /// 4: Hold Timer Expired (subcode 0).
    HoldTimerExpired,
    /// 5: Finite State Machine Error.
    Fsm(FsmSubcode),
    /// 6: Cease.
    Cease(CeaseSubcode),
    /// 7: ROUTE-REFRESH Message Error (RFC 7313).
    RouteRefresh(RouteRefreshSubcode),
    /// Any other code (or Hold Timer Expired with a non-zero subcode).
    Unknown {
        /// Error code.
        code: u8,
        /// Error subcode.
        subcode: u8,
    },
}

impl ErrorCode {
    /// Maps wire code and subcode to the typed form.
    pub fn from_wire(code: u8, subcode: u8) -> ErrorCode {
        match (code, subcode) {
            (1, s) => ErrorCode::MessageHeader(MessageHeaderSubcode::from_u8(s)),
            (2, s) => ErrorCode::Open(OpenSubcode::from_u8(s)),
            (3, s) => ErrorCode::Update(UpdateSubcode::from_u8(s)),
            (4, 0) => ErrorCode::HoldTimerExpired,
            (5, s) => ErrorCode::Fsm(FsmSubcode::from_u8(s)),
            (6, s) => ErrorCode::Cease(CeaseSubcode::from_u8(s)),
            (7, s) => ErrorCode::RouteRefresh(RouteRefreshSubcode::from_u8(s)),
            (code, subcode) => ErrorCode::Unknown { code, subcode },
        }
    }

    /// The wire (code, subcode).
    pub fn to_wire(self) -> (u8, u8) {
        match self {
            ErrorCode::MessageHeader(s) => (1, s.to_u8()),
            ErrorCode::Open(s) => (2, s.to_u8()),
            ErrorCode::Update(s) => (3, s.to_u8()),
            ErrorCode::HoldTimerExpired => (4, 0),
            ErrorCode::Fsm(s) => (5, s.to_u8()),
            ErrorCode::Cease(s) => (6, s.to_u8()),
            ErrorCode::RouteRefresh(s) => (7, s.to_u8()),
            ErrorCode::Unknown { code, subcode } => (code, subcode),
        }
    }
}

/// Longest RFC 9003 shutdown communication, in octets.
pub const MAX_SHUTDOWN_COMMUNICATION: usize = 255;

/// A NOTIFICATION message (RFC 4271 §4.5).
///
/// `Debug` shows the data as an RFC 9003 shutdown communication when it is one, else in hex.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    /// Error code and subcode.
    pub code: ErrorCode,
    /// Diagnostic data, as sent; its meaning depends on the code.
    pub data: Vec<u8>,
}

impl fmt::Debug for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Notification");
        d.field("code", &self.code);
        match self.shutdown_communication() {
            Some(text) if usize::from(self.data[0]) + 1 == self.data.len() => {
                d.field("shutdown_communication", &text)
            }
            _ => d.field("data", &format_args!("{}", Hex(&self.data))),
        };
        d.finish()
    }
}

/// For logs: the code and subcode by name and number, then the shutdown communication or
/// the data in hex, if any: `Open(BadPeerAs) (2/2) data "fde9"`.
impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, subcode) = self.code.to_wire();
        write!(f, "{:?} ({code}/{subcode})", self.code)?;
        match self.shutdown_communication() {
            Some(text) if usize::from(self.data[0]) + 1 == self.data.len() => {
                write!(f, " {text:?}")
            }
            _ if self.data.is_empty() => Ok(()),
            _ => write!(f, " data {}", Hex(&self.data)),
        }
    }
}

/// Bytes shown as lowercase hex.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str("\"")
    }
}

impl Notification {
    /// A notification with the given code and data.
    pub fn new(code: ErrorCode, data: Vec<u8>) -> Notification {
        Notification { code, data }
    }

    /// A Cease with an RFC 9003 shutdown communication. `subcode` should be
    /// `AdministrativeShutdown` or `AdministrativeReset`; the text is cut at a character
    /// boundary to 255 octets.
    pub fn cease_with_communication(subcode: CeaseSubcode, text: &str) -> Notification {
        let mut end = text.len().min(MAX_SHUTDOWN_COMMUNICATION);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut data = Vec::with_capacity(end + 1);
        #[expect(
            clippy::cast_possible_truncation,
            reason = "`end` is at most MAX_SHUTDOWN_COMMUNICATION (255), so it fits the length octet"
        )]
        data.push(end as u8);
        data.extend_from_slice(&text.as_bytes()[..end]);
        Notification {
            code: ErrorCode::Cease(subcode),
            data,
        }
    }

    /// The RFC 9003 shutdown communication of a Cease/Administrative Shutdown or Reset,
    /// if the data holds a well-formed one.
    pub fn shutdown_communication(&self) -> Option<&str> {
        match self.code {
            ErrorCode::Cease(CeaseSubcode::AdministrativeShutdown)
            | ErrorCode::Cease(CeaseSubcode::AdministrativeReset) => {
                let (&len, rest) = self.data.split_first()?;
                let text = rest.get(..usize::from(len))?;
                std::str::from_utf8(text).ok()
            }
            _ => None,
        }
    }

    /// Decodes a NOTIFICATION body (after the header). Never fails for a body of two or
    /// more bytes; the header check guarantees that.
    pub(crate) fn decode_body(body: &[u8]) -> Option<Notification> {
        let [code, subcode, data @ ..] = body else {
            return None;
        };
        Some(Notification {
            code: ErrorCode::from_wire(*code, *subcode),
            data: data.to_vec(),
        })
    }

    pub(crate) fn encode_body(&self, buf: &mut BytesMut) {
        let (code, subcode) = self.code.to_wire();
        buf.put_u8(code);
        buf.put_u8(subcode);
        buf.extend_from_slice(&self.data);
    }
}
