//! The OPEN message (RFC 4271 §4.2) with optional parameters (RFC 5492) and the extended
//! optional parameters length (RFC 9072).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+
//! |    Version    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     My Autonomous System      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Hold Time           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         BGP Identifier                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Opt Parm Len  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |             Optional Parameters (variable)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! With RFC 9072, `Opt Parm Len` is 255 followed by a parameter type of 255 and a two-octet
//! length, and each parameter then has a two-octet length.

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};
use nom::Parser;
use nom::bytes::complete::take;
use nom::number::complete::{be_u8, be_u16, be_u32};

use super::capability::{Capability, decode_capabilities};
use super::error::{DecodeError, EncodeError};
use super::iana::parameter_type;

type Res<'a, T> = nom::IResult<&'a [u8], T, ()>;

/// The AS number a 4-octet-AS speaker puts in `My Autonomous System` when its AS does not
/// fit two octets (RFC 6793 §9).
pub const AS_TRANS: u16 = 23456;

/// BGP version this codec speaks.
pub const BGP_VERSION: u8 = 4;

/// An OPEN message. The version is always 4: any other is a decode error.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Open {
    /// My Autonomous System (AS_TRANS when the real AS needs 4 octets).
    pub my_as: u16,
    /// Proposed hold time in seconds (0, or at least 3).
    pub hold_time: u16,
    /// BGP Identifier.
    pub bgp_id: Ipv4Addr,
    /// Optional parameters, in the order received.
    pub params: Vec<OptionalParam>,
    /// Whether the RFC 9072 extended optional parameters length encoding is used. The
    /// encoder also uses it whenever the parameters exceed 255 octets.
    pub extended_params: bool,
}

/// One optional parameter of an OPEN (RFC 4271 §4.2, RFC 5492 §4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OptionalParam {
    /// Parameter type 2: a list of capabilities.
    Capabilities(Vec<Capability>),
    /// Any other parameter type, kept as received.
    Unknown {
        /// Parameter type.
        param_type: u8,
        /// Parameter value.
        data: Vec<u8>,
    },
}

impl Open {
    /// An OPEN for `asn` carrying `capabilities` in one Capabilities parameter. `my_as`
    /// becomes AS_TRANS when `asn` needs 4 octets; include [`Capability::FourOctetAs`] in
    /// `capabilities` to tell the peer the real AS.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, capabilities: Vec<Capability>) -> Open {
        Open {
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            params: vec![OptionalParam::Capabilities(capabilities)],
            extended_params: false,
        }
    }

    /// Every capability, across all Capabilities parameters.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.params.iter().flat_map(|p| match p {
            OptionalParam::Capabilities(c) => c.as_slice(),
            OptionalParam::Unknown { .. } => &[],
        })
    }

    /// The speaker's AS: from the 4-octet AS capability if present, else `my_as`.
    pub fn asn(&self) -> u32 {
        self.capabilities()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    /// Decodes an OPEN body (after the header).
    pub(crate) fn decode_body(body: &[u8]) -> Result<Open, DecodeError> {
        let r: Res<'_, _> = (be_u8, be_u16, be_u16, be_u32, be_u8).parse(body);
        let (rest, (version, my_as, hold_time, bgp_id, opt_len)) =
            r.map_err(|_| DecodeError::MalformedOptionalParameters)?;
        if version != BGP_VERSION {
            return Err(DecodeError::UnsupportedVersionNumber { version });
        }
        if my_as == 0 {
            return Err(DecodeError::BadPeerAs { asn: 0 });
        }
        if hold_time == 1 || hold_time == 2 {
            return Err(DecodeError::UnacceptableHoldTime { hold_time });
        }
        if bgp_id == 0 {
            return Err(DecodeError::BadBgpIdentifier);
        }
        // RFC 9072 §2: a non-extended parameter can never have type 255, so 255/255 marks
        // the extended encoding unambiguously.
        let extended = opt_len == 255 && rest.first() == Some(&parameter_type::EXTENDED_LENGTH);
        let params_bytes = if extended {
            let r: Res<'_, _> = (be_u8, be_u16.flat_map(take)).parse(rest);
            let (after, (_, bytes)) = r.map_err(|_| DecodeError::MalformedOptionalParameters)?;
            if !after.is_empty() {
                return Err(DecodeError::MalformedOptionalParameters);
            }
            bytes
        } else {
            if rest.len() != usize::from(opt_len) {
                return Err(DecodeError::MalformedOptionalParameters);
            }
            rest
        };
        let params = decode_params(params_bytes, extended)?;
        Ok(Open {
            my_as,
            hold_time,
            bgp_id: Ipv4Addr::from(bgp_id),
            params,
            extended_params: extended,
        })
    }

    /// Appends the OPEN body.
    pub(crate) fn encode_body(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        buf.put_u8(BGP_VERSION);
        buf.put_u16(self.my_as);
        buf.put_u16(self.hold_time);
        buf.put_u32(u32::from(self.bgp_id));
        let mut params = BytesMut::new();
        let mut extended = self.extended_params;
        let fits = encode_params(&self.params, extended, &mut params).is_ok();
        if !extended && (!fits || params.len() > 255) {
            // RFC 9072 §2: too long for the classic encoding, switch to the extended one.
            extended = true;
            params.clear();
            encode_params(&self.params, extended, &mut params)?;
        } else if !fits {
            return Err(EncodeError::FieldTooLong {
                field: "optional parameter",
            });
        }
        if extended {
            buf.put_u8(255);
            buf.put_u8(parameter_type::EXTENDED_LENGTH);
            let len = u16::try_from(params.len()).map_err(|_| EncodeError::FieldTooLong {
                field: "optional parameters",
            })?;
            buf.put_u16(len);
        } else {
            // Checked above: without the extended encoding the parameters fit 255 octets.
            let len = u8::try_from(params.len()).map_err(|_| EncodeError::FieldTooLong {
                field: "optional parameters",
            })?;
            buf.put_u8(len);
        }
        buf.extend_from_slice(&params);
        Ok(())
    }
}

fn decode_params(mut v: &[u8], extended: bool) -> Result<Vec<OptionalParam>, DecodeError> {
    let mut out = Vec::new();
    while !v.is_empty() {
        let r: Res<'_, (u8, &[u8])> = if extended {
            (be_u8, be_u16.flat_map(take)).parse(v)
        } else {
            (be_u8, be_u8.flat_map(take)).parse(v)
        };
        let (rest, (param_type, value)) =
            r.map_err(|_| DecodeError::MalformedOptionalParameters)?;
        let param = match param_type {
            parameter_type::CAPABILITIES => OptionalParam::Capabilities(
                decode_capabilities(value).ok_or(DecodeError::MalformedOptionalParameters)?,
            ),
            _ => OptionalParam::Unknown {
                param_type,
                data: value.to_vec(),
            },
        };
        out.push(param);
        v = rest;
    }
    Ok(out)
}

fn encode_param(p: &OptionalParam, extended: bool, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let param_type = match p {
        OptionalParam::Capabilities(_) => parameter_type::CAPABILITIES,
        OptionalParam::Unknown { param_type, .. } => *param_type,
    };
    buf.put_u8(param_type);
    let len_at = buf.len();
    if extended {
        buf.put_u16(0)
    } else {
        buf.put_u8(0)
    }
    match p {
        OptionalParam::Capabilities(caps) => {
            for c in caps {
                c.encode(buf)?;
            }
        }
        OptionalParam::Unknown { data, .. } => buf.extend_from_slice(data),
    }
    let len = buf.len() - len_at - if extended { 2 } else { 1 };
    if extended {
        let len = u16::try_from(len).map_err(|_| EncodeError::FieldTooLong {
            field: "optional parameter",
        })?;
        buf[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    } else {
        buf[len_at] = u8::try_from(len).map_err(|_| EncodeError::FieldTooLong {
            field: "optional parameter",
        })?;
    }
    Ok(())
}

fn encode_params(
    params: &[OptionalParam],
    extended: bool,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    for p in params {
        encode_param(p, extended, buf)?;
    }
    Ok(())
}
