//! IPv4 and IPv6 prefixes and NLRI entries in their wire form (RFC 4271 §4.3, RFC 4760 §5,
//! RFC 7911 §3).
//!
//! ```text
//! +---------------------------+
//! |   Path Identifier (4 octets, only with ADD-PATH)
//! +---------------------------+
//! |   Length (1 octet)        |
//! +---------------------------+
//! |   Prefix (variable)       |
//! +---------------------------+
//! ```
//!
//! Decoding is a hand-written loop rather than nom combinators: it is the hot path of the
//! codec (hundreds of prefixes per UPDATE) and must not allocate per prefix.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};

/// An IPv4 prefix: address with host bits cleared, and a length of 0..=32.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Prefix {
    addr: Ipv4Addr,
    len: u8,
}

impl Ipv4Prefix {
    /// Builds a prefix, clearing host bits; `None` if `len > 32`.
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Ipv4Prefix> {
        (len <= 32).then(|| Ipv4Prefix {
            addr: Ipv4Addr::from(mask_v4(u32::from(addr), len)),
            len,
        })
    }

    /// A /32 host route.
    pub fn host(addr: Ipv4Addr) -> Ipv4Prefix {
        Ipv4Prefix { addr, len: 32 }
    }

    /// The network address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether this is the default route (length 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An IPv6 prefix: address with host bits cleared, and a length of 0..=128.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv6Prefix {
    addr: Ipv6Addr,
    len: u8,
}

impl Ipv6Prefix {
    /// Builds a prefix, clearing host bits; `None` if `len > 128`.
    pub fn new(addr: Ipv6Addr, len: u8) -> Option<Ipv6Prefix> {
        (len <= 128).then(|| Ipv6Prefix {
            addr: Ipv6Addr::from(mask_v6(u128::from(addr), len)),
            len,
        })
    }

    /// A /128 host route.
    pub fn host(addr: Ipv6Addr) -> Ipv6Prefix {
        Ipv6Prefix { addr, len: 128 }
    }

    /// The network address.
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// The prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether this is the default route (length 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One NLRI entry: a prefix and, when ADD-PATH is negotiated for its family, a path
/// identifier (RFC 7911 §3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri<P> {
    /// The ADD-PATH path identifier; `None` when ADD-PATH is not in use.
    pub path_id: Option<u32>,
    /// The prefix.
    pub prefix: P,
}

impl<P> Nlri<P> {
    /// An entry without path identifier.
    pub fn new(prefix: P) -> Nlri<P> {
        Nlri {
            path_id: None,
            prefix,
        }
    }
}

impl<P: fmt::Debug> fmt::Debug for Nlri<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path_id {
            Some(id) => write!(f, "{:?} path-id {id}", self.prefix),
            None => write!(f, "{:?}", self.prefix),
        }
    }
}

fn mask_v4(addr: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - u32::from(len.min(32))))
    }
}

fn mask_v6(addr: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        addr & (u128::MAX << (128 - u32::from(len.min(128))))
    }
}

/// A prefix NLRI lists are made of: the wire encoding differs only in address width.
pub trait WirePrefix: Copy + fmt::Debug + Eq + private::Sealed {
    /// Maximum prefix length in bits.
    const MAX_LEN: u8;
    /// Smallest number of bytes one entry can take, without path identifier.
    #[doc(hidden)]
    const TYPICAL_ENTRY: usize;
    /// Decodes one prefix from the front of `bytes`; returns the prefix and bytes used.
    #[doc(hidden)]
    fn decode(bytes: &[u8]) -> Option<(Self, usize)>;
    /// Appends the wire form (length octet and significant address octets).
    #[doc(hidden)]
    fn encode(&self, buf: &mut BytesMut);
    /// Bytes of the wire form, without path identifier.
    #[doc(hidden)]
    fn wire_len(&self) -> usize;
    /// Longest wire form: length octet plus the whole address.
    #[doc(hidden)]
    const MAX_WIRE: usize;
    /// Writes the wire form to the front of `out`, which must be at least `MAX_WIRE` long
    /// (a fixed-size store is much faster than a variable-length copy); returns the bytes
    /// that belong to the entry. Bytes past that are scratch for the caller to overwrite.
    #[doc(hidden)]
    fn write(&self, out: &mut [u8]) -> usize;
}

mod private {
    pub trait Sealed {}
    impl Sealed for super::Ipv4Prefix {}
    impl Sealed for super::Ipv6Prefix {}
}

impl WirePrefix for Ipv4Prefix {
    const MAX_LEN: u8 = 32;
    const TYPICAL_ENTRY: usize = 4;
    const MAX_WIRE: usize = 5;

    #[inline]
    fn decode(bytes: &[u8]) -> Option<(Self, usize)> {
        let (&len, rest) = bytes.split_first()?;
        if len > 32 {
            return None;
        }
        let n = usize::from(len).div_ceil(8);
        if rest.len() < n {
            return None;
        }
        // Fast path: load four octets at once; the mask clears whatever follows the prefix.
        let octets = match rest.first_chunk::<4>() {
            Some(four) => *four,
            None => tail_octets::<4>(rest, n),
        };
        let addr = mask_v4(u32::from_be_bytes(octets), len);
        Some((
            Ipv4Prefix {
                addr: Ipv4Addr::from(addr),
                len,
            },
            n + 1,
        ))
    }

    #[inline]
    fn encode(&self, buf: &mut BytesMut) {
        let o = self.addr.octets();
        let wire = [self.len, o[0], o[1], o[2], o[3]];
        buf.extend_from_slice(&wire[..self.wire_len()]);
    }

    #[inline]
    fn wire_len(&self) -> usize {
        1 + usize::from(self.len).div_ceil(8)
    }

    #[inline(always)]
    fn write(&self, out: &mut [u8]) -> usize {
        let o = self.addr.octets();
        let wire = [self.len, o[0], o[1], o[2], o[3]];
        let n = self.wire_len();
        out[..5].copy_from_slice(&wire);
        n
    }
}

impl WirePrefix for Ipv6Prefix {
    const MAX_LEN: u8 = 128;
    const TYPICAL_ENTRY: usize = 8;
    const MAX_WIRE: usize = 17;

    #[inline]
    fn decode(bytes: &[u8]) -> Option<(Self, usize)> {
        let (&len, rest) = bytes.split_first()?;
        if len > 128 {
            return None;
        }
        let n = usize::from(len).div_ceil(8);
        if rest.len() < n {
            return None;
        }
        // Fast path as for IPv4: a fixed-size load, then the mask.
        let octets = match rest.first_chunk::<16>() {
            Some(all) => *all,
            None => tail_octets::<16>(rest, n),
        };
        let addr = mask_v6(u128::from_be_bytes(octets), len);
        Some((
            Ipv6Prefix {
                addr: Ipv6Addr::from(addr),
                len,
            },
            n + 1,
        ))
    }

    #[inline]
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(self.len);
        buf.extend_from_slice(&self.addr.octets()[..self.wire_len() - 1]);
    }

    #[inline]
    fn wire_len(&self) -> usize {
        1 + usize::from(self.len).div_ceil(8)
    }

    #[inline(always)]
    fn write(&self, out: &mut [u8]) -> usize {
        let n = self.wire_len();
        out[0] = self.len;
        out[1..17].copy_from_slice(&self.addr.octets());
        n
    }
}

/// The first `n` octets of `rest` (checked by the caller: `n <= rest.len()`, `n <= N`),
/// zero-padded. Kept out of line so the compiler cannot merge it with the fixed-size load of
/// the fast path into one variable-length copy.
#[cold]
#[inline(never)]
fn tail_octets<const N: usize>(rest: &[u8], n: usize) -> [u8; N] {
    let mut octets = [0u8; N];
    let n = n.min(N).min(rest.len());
    octets[..n].copy_from_slice(&rest[..n]);
    octets
}

/// Decodes a whole NLRI field; `None` if any entry is malformed (RFC 7606 §5.3: the field
/// cannot be parsed, which only a session reset can answer).
pub(crate) fn decode_nlri<P: WirePrefix>(mut bytes: &[u8], add_path: bool) -> Option<Vec<Nlri<P>>> {
    // Bounded by the input: an entry takes at least one byte, so this never reserves more
    // entries than there are input bytes.
    let mut out = Vec::with_capacity(bytes.len() / P::TYPICAL_ENTRY + 1);
    if add_path {
        while !bytes.is_empty() {
            let (id, rest) = bytes.split_first_chunk::<4>()?;
            let (prefix, used) = P::decode(rest)?;
            out.push(Nlri {
                path_id: Some(u32::from_be_bytes(*id)),
                prefix,
            });
            bytes = &rest[used..];
        }
    } else {
        while !bytes.is_empty() {
            let (prefix, used) = P::decode(bytes)?;
            out.push(Nlri {
                path_id: None,
                prefix,
            });
            bytes = &bytes[used..];
        }
    }
    Some(out)
}

/// Appends one NLRI entry; the path identifier is written only when `add_path` (a missing
/// one is written as 0, an unwanted one is left out).
#[inline]
pub(crate) fn encode_nlri<P: WirePrefix>(nlri: &Nlri<P>, add_path: bool, buf: &mut BytesMut) {
    if add_path {
        buf.put_u32(nlri.path_id.unwrap_or(0));
    }
    nlri.prefix.encode(buf);
}

/// Bytes one NLRI entry takes on the wire.
#[inline]
pub(crate) fn nlri_len<P: WirePrefix>(nlri: &Nlri<P>, add_path: bool) -> usize {
    nlri.prefix.wire_len() + if add_path { 4 } else { 0 }
}

/// Appends a whole NLRI list. Sizes the buffer once (with `MAX_WIRE` bytes of scratch for
/// the fixed-size stores) and writes into it, rather than growing it per prefix: this is the
/// encoder's hot loop.
pub(crate) fn encode_nlri_list<P: WirePrefix>(
    list: &[Nlri<P>],
    add_path: bool,
    buf: &mut BytesMut,
) {
    let total: usize = list.iter().map(|n| nlri_len(n, add_path)).sum();
    let start = buf.len();
    buf.resize(start + total + P::MAX_WIRE, 0);
    let mut pos = start;
    for n in list {
        pos += write_nlri(n, add_path, &mut buf[pos..]);
    }
    buf.truncate(start + total);
}

/// Writes one NLRI entry to the front of `out`, which must hold `nlri_len` plus
/// `MAX_WIRE` bytes; returns the bytes that belong to the entry.
#[inline(always)]
pub(crate) fn write_nlri<P: WirePrefix>(n: &Nlri<P>, add_path: bool, out: &mut [u8]) -> usize {
    if add_path {
        out[..4].copy_from_slice(&n.path_id.unwrap_or(0).to_be_bytes());
        4 + n.prefix.write(&mut out[4..])
    } else {
        n.prefix.write(out)
    }
}
