//! Errors of the codec, and their one total mapping to the NOTIFICATION that RFC 4271 §6
//! (with RFC 5492, RFC 7313, RFC 7607) requires. RFC 7606 outcomes that do not reset the
//! session are their own type, [`UpdateError`], carried inside a decoded UPDATE.
//!
//! This module knows nothing of sessions: whether to send the NOTIFICATION is the caller's
//! decision.

use super::notification::{
    ErrorCode, MessageHeaderSubcode, Notification, OpenSubcode, RouteRefreshSubcode, UpdateSubcode,
};

/// Framing failed: the byte stream is not a sequence of BGP messages (RFC 4271 §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FrameError {
    /// The 16-octet marker is not all ones.
    #[error("message header marker is not all ones")]
    ConnectionNotSynchronized,
    /// The length field is below 19, above the negotiated maximum, or wrong for the type.
    #[error("message length {length} out of range")]
    BadMessageLength {
        /// The erroneous length field.
        length: u16,
    },
    /// The type field is not a known message type.
    #[error("bad message type {message_type}")]
    BadMessageType {
        /// The erroneous type field.
        message_type: u8,
    },
}

impl FrameError {
    /// The NOTIFICATION RFC 4271 §6.1 requires.
    pub fn notification(&self) -> Notification {
        DecodeError::from(*self).notification()
    }
}

impl From<FrameError> for DecodeError {
    fn from(e: FrameError) -> DecodeError {
        match e {
            FrameError::ConnectionNotSynchronized => DecodeError::ConnectionNotSynchronized,
            FrameError::BadMessageLength { length } => DecodeError::BadMessageLength { length },
            FrameError::BadMessageType { message_type } => {
                DecodeError::BadMessageType { message_type }
            }
        }
    }
}

/// A message that must be answered with a NOTIFICATION and a session reset.
///
/// Every variant maps to exactly one NOTIFICATION through [`DecodeError::notification`].
/// Attribute variants carry the erroneous attribute (flags, type, length and value, as
/// received) because RFC 4271 §6.3 puts it in the NOTIFICATION data.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    // RFC 4271 §6.1
    /// The marker is not all ones.
    #[error("message header marker is not all ones")]
    ConnectionNotSynchronized,
    /// The length field is out of range, or wrong for the message type.
    #[error("bad message length {length}")]
    BadMessageLength {
        /// The erroneous length field.
        length: u16,
    },
    /// The type field is not a known message type.
    #[error("bad message type {message_type}")]
    BadMessageType {
        /// The erroneous type field.
        message_type: u8,
    },

    // RFC 4271 §6.2
    /// OPEN with a version other than 4.
    #[error("unsupported BGP version {version}")]
    UnsupportedVersionNumber {
        /// The version the peer sent.
        version: u8,
    },
    /// OPEN with My Autonomous System 0 (RFC 7607), or the wrong peer AS.
    #[error("bad peer AS {asn}")]
    BadPeerAs {
        /// The AS the peer claimed.
        asn: u32,
    },
    /// OPEN with BGP Identifier 0 (RFC 6286 §2.1).
    #[error("bad BGP identifier")]
    BadBgpIdentifier,
    /// OPEN with an optional parameter the receiver refuses.
    #[error("unsupported optional parameter {param_type}")]
    UnsupportedOptionalParameter {
        /// The parameter type.
        param_type: u8,
    },
    /// OPEN with a hold time of 1 or 2 seconds.
    #[error("unacceptable hold time {hold_time}")]
    UnacceptableHoldTime {
        /// The hold time the peer sent.
        hold_time: u16,
    },
    /// OPEN without a capability the receiver requires (RFC 5492 §5); data lists them.
    #[error("unsupported capability")]
    UnsupportedCapability {
        /// The required capabilities, encoded as in the OPEN.
        capabilities: Vec<u8>,
    },
    /// OPEN whose optional parameters overrun their length (no RFC 4271 subcode: 0).
    #[error("malformed OPEN optional parameters")]
    MalformedOptionalParameters,

    // RFC 4271 §6.3 (what RFC 7606 leaves as session reset, and the original errors behind
    // RFC 7606 outcomes)
    /// Withdrawn Routes Length or Total Attribute Length overruns the message, or
    /// MP_REACH_NLRI / MP_UNREACH_NLRI appears twice.
    #[error("malformed attribute list")]
    MalformedAttributeList,
    /// An attribute with the optional bit clear and an unknown type code.
    #[error("unrecognized well-known attribute")]
    UnrecognizedWellKnownAttribute {
        /// The attribute as received.
        attribute: Vec<u8>,
    },
    /// A mandatory well-known attribute is absent.
    #[error("missing well-known attribute {type_code}")]
    MissingWellKnownAttribute {
        /// Type code of the missing attribute.
        type_code: u8,
    },
    /// Attribute flags conflict with the type code.
    #[error("attribute flags error")]
    AttributeFlagsError {
        /// The attribute as received.
        attribute: Vec<u8>,
    },
    /// Attribute length conflicts with the type code.
    #[error("attribute length error")]
    AttributeLengthError {
        /// The attribute as received.
        attribute: Vec<u8>,
    },
    /// ORIGIN with an undefined value.
    #[error("invalid ORIGIN")]
    InvalidOriginAttribute {
        /// The attribute as received.
        attribute: Vec<u8>,
    },
    /// NEXT_HOP syntactically incorrect.
    #[error("invalid NEXT_HOP")]
    InvalidNextHopAttribute {
        /// The attribute as received.
        attribute: Vec<u8>,
    },
    /// A recognized optional attribute with a wrong value (including MP_REACH_NLRI /
    /// MP_UNREACH_NLRI whose NLRI cannot be located or parsed, RFC 4760 §7).
    #[error("optional attribute error")]
    OptionalAttributeError {
        /// The attribute as received.
        attribute: Vec<u8>,
    },
    /// The NLRI or withdrawn routes field cannot be parsed.
    #[error("invalid network field")]
    InvalidNetworkField,
    /// AS_PATH syntactically incorrect.
    #[error("malformed AS_PATH")]
    MalformedAsPath,

    // RFC 7313 §5
    /// ROUTE-REFRESH whose length is not 23.
    #[error("ROUTE-REFRESH with bad length")]
    RouteRefreshInvalidLength {
        /// The complete message as received.
        message: Vec<u8>,
    },
}

impl DecodeError {
    /// The NOTIFICATION (code, subcode, data) this error requires. Total: every error has
    /// exactly one.
    pub fn notification(&self) -> Notification {
        use DecodeError as E;
        let (code, data) = match self {
            E::ConnectionNotSynchronized => (
                ErrorCode::MessageHeader(MessageHeaderSubcode::ConnectionNotSynchronized),
                vec![],
            ),
            E::BadMessageLength { length } => (
                ErrorCode::MessageHeader(MessageHeaderSubcode::BadMessageLength),
                length.to_be_bytes().to_vec(),
            ),
            E::BadMessageType { message_type } => (
                ErrorCode::MessageHeader(MessageHeaderSubcode::BadMessageType),
                vec![*message_type],
            ),
            // RFC 4271 §6.2: data is the largest locally supported version, 2 octets.
            E::UnsupportedVersionNumber { .. } => (
                ErrorCode::Open(OpenSubcode::UnsupportedVersionNumber),
                vec![0, 4],
            ),
            E::BadPeerAs { .. } => (ErrorCode::Open(OpenSubcode::BadPeerAs), vec![]),
            E::BadBgpIdentifier => (ErrorCode::Open(OpenSubcode::BadBgpIdentifier), vec![]),
            E::UnsupportedOptionalParameter { .. } => (
                ErrorCode::Open(OpenSubcode::UnsupportedOptionalParameter),
                vec![],
            ),
            E::UnacceptableHoldTime { .. } => {
                (ErrorCode::Open(OpenSubcode::UnacceptableHoldTime), vec![])
            }
            E::UnsupportedCapability { capabilities } => (
                ErrorCode::Open(OpenSubcode::UnsupportedCapability),
                capabilities.clone(),
            ),
            E::MalformedOptionalParameters => (ErrorCode::Open(OpenSubcode::Unspecific), vec![]),
            E::MalformedAttributeList => (
                ErrorCode::Update(UpdateSubcode::MalformedAttributeList),
                vec![],
            ),
            E::UnrecognizedWellKnownAttribute { attribute } => (
                ErrorCode::Update(UpdateSubcode::UnrecognizedWellKnownAttribute),
                attribute.clone(),
            ),
            E::MissingWellKnownAttribute { type_code } => (
                ErrorCode::Update(UpdateSubcode::MissingWellKnownAttribute),
                vec![*type_code],
            ),
            E::AttributeFlagsError { attribute } => (
                ErrorCode::Update(UpdateSubcode::AttributeFlagsError),
                attribute.clone(),
            ),
            E::AttributeLengthError { attribute } => (
                ErrorCode::Update(UpdateSubcode::AttributeLengthError),
                attribute.clone(),
            ),
            E::InvalidOriginAttribute { attribute } => (
                ErrorCode::Update(UpdateSubcode::InvalidOriginAttribute),
                attribute.clone(),
            ),
            E::InvalidNextHopAttribute { attribute } => (
                ErrorCode::Update(UpdateSubcode::InvalidNextHopAttribute),
                attribute.clone(),
            ),
            E::OptionalAttributeError { attribute } => (
                ErrorCode::Update(UpdateSubcode::OptionalAttributeError),
                attribute.clone(),
            ),
            E::InvalidNetworkField => (
                ErrorCode::Update(UpdateSubcode::InvalidNetworkField),
                vec![],
            ),
            E::MalformedAsPath => (ErrorCode::Update(UpdateSubcode::MalformedAsPath), vec![]),
            E::RouteRefreshInvalidLength { message } => (
                ErrorCode::RouteRefresh(RouteRefreshSubcode::InvalidMessageLength),
                message.clone(),
            ),
        };
        Notification::new(code, data)
    }
}

/// An RFC 7606 outcome that does not reset the session, found while decoding an UPDATE.
///
/// The UPDATE is still returned. Each outcome keeps the RFC 4271 error that caused it, so
/// the caller can log it (or, if it insists on RFC 4271 behaviour, send its NOTIFICATION).
/// Errors that RFC 7606 answers with a session reset are returned as `Err(DecodeError)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UpdateError {
    /// RFC 7606 §2 "treat-as-withdraw": every prefix in the UPDATE's NLRI and MP_REACH_NLRI
    /// must be handled as if it were withdrawn. The attributes are not to be trusted.
    TreatAsWithdraw(DecodeError),
    /// RFC 7606 §2 "attribute discard": the offending attribute was left out of the decoded
    /// UPDATE; the routes are otherwise valid.
    AttributeDiscard(DecodeError),
}

impl UpdateError {
    /// The RFC 4271 error behind this outcome.
    pub fn cause(&self) -> &DecodeError {
        match self {
            UpdateError::TreatAsWithdraw(e) | UpdateError::AttributeDiscard(e) => e,
        }
    }
}

/// Encoding failed: the message does not fit the negotiated maximum size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EncodeError {
    /// The encoded message would exceed the maximum message length.
    #[error("message of {length} bytes exceeds the maximum of {max}")]
    MessageTooLong {
        /// Length the message would have.
        length: usize,
        /// The negotiated maximum.
        max: usize,
    },
    /// A field does not fit its length field (e.g. more than 255 capability bytes).
    #[error("{field} is too long for its length field")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
    },
}
