//! The BFD Control packet (RFC 5880 §4.1): encoding, decoding and the reception checks of
//! §6.8.6 that need no session. Knows nothing of sockets, sessions or time.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       My Discriminator                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Your Discriminator                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Desired Min TX Interval                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   Required Min RX Interval                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Required Min Echo RX Interval                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::fmt;

/// Length of a Control packet without authentication (RFC 5880 §4.1).
pub const PACKET_LEN: usize = LENGTH_FIELD as usize;
/// [`PACKET_LEN`] as the packet's Length field carries it.
const LENGTH_FIELD: u8 = 24;
/// The only protocol version (RFC 5880 §4.1).
pub const VERSION: u8 = 1;

/// Session state as carried in the `Sta` field (RFC 5880 §4.1, §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Administratively held down.
    AdminDown,
    /// Down (or just created).
    Down,
    /// Heard the remote, which has not yet heard us.
    Init,
    /// Both ends hear each other.
    Up,
}

impl State {
    fn from_bits(bits: u8) -> State {
        match bits & 0b11 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    fn bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        })
    }
}

/// Diagnostic code: why the local system last left Up
/// ([IANA "BFD Diagnostic Codes"](https://www.iana.org/assignments/bfd-parameters/bfd-parameters.xhtml#bfd-parameters-1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diag {
    /// 0: No Diagnostic.
    None,
    /// 1: Control Detection Time Expired.
    DetectionTimeExpired,
    /// 2: Echo Function Failed.
    EchoFailed,
    /// 3: Neighbor Signaled Session Down.
    NeighborSignaledDown,
    /// 4: Forwarding Plane Reset.
    ForwardingPlaneReset,
    /// 5: Path Down.
    PathDown,
    /// 6: Concatenated Path Down.
    ConcatenatedPathDown,
    /// 7: Administratively Down.
    AdminDown,
    /// 8: Reverse Concatenated Path Down.
    ReverseConcatenatedPathDown,
    /// 9–31: not assigned; kept as received.
    Unknown(u8),
}

impl Diag {
    fn from_bits(bits: u8) -> Diag {
        match bits & 0x1f {
            0 => Diag::None,
            1 => Diag::DetectionTimeExpired,
            2 => Diag::EchoFailed,
            3 => Diag::NeighborSignaledDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdminDown,
            8 => Diag::ReverseConcatenatedPathDown,
            other => Diag::Unknown(other),
        }
    }

    fn bits(self) -> u8 {
        match self {
            Diag::None => 0,
            Diag::DetectionTimeExpired => 1,
            Diag::EchoFailed => 2,
            Diag::NeighborSignaledDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdminDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Unknown(code) => code & 0x1f,
        }
    }
}

/// A BFD Control packet. Intervals are in microseconds, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlPacket {
    /// Why the sender last left Up.
    pub diag: Diag,
    /// The sender's session state.
    pub state: State,
    /// Poll (P): the sender asks for a packet with Final set.
    pub poll: bool,
    /// Final (F): the answer to a Poll.
    pub final_: bool,
    /// Control Plane Independent (C).
    pub control_plane_independent: bool,
    /// Authentication Present (A). Berth configures no authentication, so a packet with it
    /// set never passes [`ControlPacket::decode`]; encoding keeps whatever is set.
    pub auth_present: bool,
    /// Demand (D).
    pub demand: bool,
    /// Multipoint (M): reserved, must be zero.
    pub multipoint: bool,
    /// Detect multiplier.
    pub detect_mult: u8,
    /// The sender's discriminator.
    pub my_discriminator: u32,
    /// The receiver's discriminator as the sender knows it (0 while unknown).
    pub your_discriminator: u32,
    /// Desired Min TX Interval, µs.
    pub desired_min_tx: u32,
    /// Required Min RX Interval, µs.
    pub required_min_rx: u32,
    /// Required Min Echo RX Interval, µs (Berth does not do Echo and always sends 0).
    pub required_min_echo_rx: u32,
}

/// Why a received packet was dropped before reaching any session (RFC 5880 §6.8.6, first
/// steps). Every variant is counted by the driver; none is acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PacketError {
    /// Fewer bytes than the 24 of a Control packet.
    #[error("datagram of {0} bytes is shorter than a control packet")]
    Truncated(usize),
    /// The version field is not 1.
    #[error("version {0} (only 1 exists)")]
    Version(u8),
    /// The Length field is below the minimum (24, or 26 with authentication) or exceeds
    /// the datagram.
    #[error("length field {field} does not fit a datagram of {datagram} bytes")]
    Length {
        /// The Length field.
        field: u8,
        /// Bytes actually received.
        datagram: usize,
    },
    /// Detect Mult is zero.
    #[error("detect multiplier 0")]
    DetectMultZero,
    /// The Multipoint bit is set.
    #[error("multipoint bit set")]
    Multipoint,
    /// My Discriminator is zero.
    #[error("my discriminator 0")]
    MyDiscriminatorZero,
    /// Your Discriminator is zero while the state is neither Down nor AdminDown.
    #[error("your discriminator 0 in state {0}")]
    YourDiscriminatorZero(State),
    /// The A bit is set but no authentication is configured.
    #[error("authentication present but none configured")]
    Authentication,
}

impl ControlPacket {
    /// Encodes into the 24-byte wire form (the Length field is always 24: Berth never
    /// authenticates).
    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut out = [0u8; PACKET_LEN];
        out[0] = (VERSION << 5) | self.diag.bits();
        out[1] = (self.state.bits() << 6)
            | (u8::from(self.poll) << 5)
            | (u8::from(self.final_) << 4)
            | (u8::from(self.control_plane_independent) << 3)
            | (u8::from(self.auth_present) << 2)
            | (u8::from(self.demand) << 1)
            | u8::from(self.multipoint);
        out[2] = self.detect_mult;
        out[3] = LENGTH_FIELD;
        out[4..8].copy_from_slice(&self.my_discriminator.to_be_bytes());
        out[8..12].copy_from_slice(&self.your_discriminator.to_be_bytes());
        out[12..16].copy_from_slice(&self.desired_min_tx.to_be_bytes());
        out[16..20].copy_from_slice(&self.required_min_rx.to_be_bytes());
        out[20..24].copy_from_slice(&self.required_min_echo_rx.to_be_bytes());
        out
    }

    /// Decodes a received datagram and applies every check of RFC 5880 §6.8.6 that does
    /// not need the session (version, length, detect multiplier, multipoint, both
    /// discriminator rules, authentication without configuration). Never panics.
    pub fn decode(datagram: &[u8]) -> Result<ControlPacket, PacketError> {
        let Some(header) = datagram.first_chunk::<PACKET_LEN>() else {
            return Err(PacketError::Truncated(datagram.len()));
        };
        let version = header[0] >> 5;
        if version != VERSION {
            return Err(PacketError::Version(version));
        }
        let flags = header[1];
        let auth_present = flags & 0b100 != 0;
        let length = header[3];
        let minimum = if auth_present { 26 } else { PACKET_LEN };
        if usize::from(length) < minimum || usize::from(length) > datagram.len() {
            return Err(PacketError::Length {
                field: length,
                datagram: datagram.len(),
            });
        }
        let word = |at: usize| {
            u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let packet = ControlPacket {
            diag: Diag::from_bits(header[0]),
            state: State::from_bits(flags >> 6),
            poll: flags & 0b10_0000 != 0,
            final_: flags & 0b1_0000 != 0,
            control_plane_independent: flags & 0b1000 != 0,
            auth_present,
            demand: flags & 0b10 != 0,
            multipoint: flags & 0b1 != 0,
            detect_mult: header[2],
            my_discriminator: word(4),
            your_discriminator: word(8),
            desired_min_tx: word(12),
            required_min_rx: word(16),
            required_min_echo_rx: word(20),
        };
        if packet.detect_mult == 0 {
            return Err(PacketError::DetectMultZero);
        }
        if packet.multipoint {
            return Err(PacketError::Multipoint);
        }
        if packet.my_discriminator == 0 {
            return Err(PacketError::MyDiscriminatorZero);
        }
        if packet.your_discriminator == 0 && !matches!(packet.state, State::Down | State::AdminDown)
        {
            return Err(PacketError::YourDiscriminatorZero(packet.state));
        }
        if packet.auth_present {
            return Err(PacketError::Authentication);
        }
        Ok(packet)
    }
}

#[cfg(test)]
impl ControlPacket {
    /// The packet the unit tests start from: `state` with these discriminators, no diag
    /// and no flags, multiplier 3, TX and RX 300 ms, no echo.
    pub(crate) fn for_tests(state: State, my_discriminator: u32, your_discriminator: u32) -> Self {
        ControlPacket {
            diag: Diag::None,
            state,
            poll: false,
            final_: false,
            control_plane_independent: false,
            auth_present: false,
            demand: false,
            multipoint: false,
            detect_mult: 3,
            my_discriminator,
            your_discriminator,
            desired_min_tx: 300_000,
            required_min_rx: 300_000,
            required_min_echo_rx: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;

    /// A Down packet FRR 8.4 bfdd sent to a Berth node in the testbed (tcpdump on the
    /// router's veth, UDP 10.1.1.1:49154 → 10.1.1.2:3784, TTL 255): diag 0, Down, mult 3,
    /// my disc 0x4aebc15d, your 0, TX 1 s, RX 1 s, echo 50 ms.
    const FRR_DOWN: [u8; 24] = [
        0x20, 0x40, 0x03, 0x18, 0x4a, 0xeb, 0xc1, 0x5d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x42,
        0x40, 0x00, 0x0f, 0x42, 0x40, 0x00, 0x00, 0xc3, 0x50,
    ];

    /// The Up packet with Poll set that started FRR's Poll sequence in the same capture
    /// (UDP 10.1.1.1:49152 → 10.1.1.2:3784): my disc 0x2413664c, your 0xfb8128e5 (Berth's),
    /// TX and RX 300 ms.
    const FRR_UP_POLL: [u8; 24] = [
        0x20, 0xe0, 0x03, 0x18, 0x24, 0x13, 0x66, 0x4c, 0xfb, 0x81, 0x28, 0xe5, 0x00, 0x04, 0x93,
        0xe0, 0x00, 0x04, 0x93, 0xe0, 0x00, 0x00, 0xc3, 0x50,
    ];

    /// Up with Poll set, discriminators 7 and 9.
    fn up() -> ControlPacket {
        ControlPacket {
            poll: true,
            ..ControlPacket::for_tests(State::Up, 7, 9)
        }
    }

    #[test]
    fn frr_packets_decode_and_reencode() {
        let down = ControlPacket::decode(&FRR_DOWN).unwrap();
        assert_eq!(down.state, State::Down);
        assert_eq!(down.diag, Diag::None);
        assert_eq!(down.detect_mult, 3);
        assert_eq!(down.my_discriminator, 0x4aeb_c15d);
        assert_eq!(down.your_discriminator, 0);
        assert_eq!(down.desired_min_tx, 1_000_000);
        assert_eq!(down.required_min_rx, 1_000_000);
        assert_eq!(down.required_min_echo_rx, 50_000);
        assert_eq!(down.encode(), FRR_DOWN);

        let up = ControlPacket::decode(&FRR_UP_POLL).unwrap();
        assert_eq!(up.state, State::Up);
        assert!(up.poll && !up.final_);
        assert_eq!(up.my_discriminator, 0x2413_664c);
        assert_eq!(up.your_discriminator, 0xfb81_28e5);
        assert_eq!(up.desired_min_tx, 300_000);
        assert_eq!(up.required_min_rx, 300_000);
        assert_eq!(up.encode(), FRR_UP_POLL);
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let mut packet = up();
        packet.diag = Diag::Unknown(17);
        packet.final_ = true;
        packet.control_plane_independent = true;
        packet.demand = true;
        assert_eq!(ControlPacket::decode(&packet.encode()).unwrap(), packet);
    }

    #[test]
    fn trailing_bytes_beyond_length_are_ignored() {
        let mut bytes = up().encode().to_vec();
        bytes.extend_from_slice(&[0xff; 8]);
        assert_eq!(ControlPacket::decode(&bytes).unwrap(), up());
    }

    fn mangled(f: impl FnOnce(&mut [u8; 24])) -> Result<ControlPacket, PacketError> {
        let mut bytes = up().encode();
        f(&mut bytes);
        ControlPacket::decode(&bytes)
    }

    #[test]
    fn malformed_packets_are_rejected_with_their_reason() {
        assert_eq!(
            ControlPacket::decode(&[0x20; 23]),
            Err(PacketError::Truncated(23))
        );
        assert_eq!(mangled(|b| b[0] = 0x40), Err(PacketError::Version(2)));
        assert_eq!(mangled(|b| b[0] = 0x00), Err(PacketError::Version(0)));
        assert_eq!(
            mangled(|b| b[3] = 23),
            Err(PacketError::Length {
                field: 23,
                datagram: 24
            })
        );
        assert_eq!(
            mangled(|b| b[3] = 25),
            Err(PacketError::Length {
                field: 25,
                datagram: 24
            })
        );
        assert_eq!(mangled(|b| b[2] = 0), Err(PacketError::DetectMultZero));
        assert_eq!(mangled(|b| b[1] |= 1), Err(PacketError::Multipoint));
        assert_eq!(
            mangled(|b| b[4..8].fill(0)),
            Err(PacketError::MyDiscriminatorZero)
        );
        assert_eq!(
            mangled(|b| b[8..12].fill(0)),
            Err(PacketError::YourDiscriminatorZero(State::Up))
        );
        // Authentication bit: the minimum length becomes 26, then the packet is refused
        // because no authentication is configured.
        assert!(matches!(
            mangled(|b| b[1] |= 0b100),
            Err(PacketError::Length { field: 24, .. })
        ));
        let mut long = up().encode().to_vec();
        long[1] |= 0b100;
        long[3] = 28;
        long.extend_from_slice(&[1, 4, 0, 0]);
        assert_eq!(
            ControlPacket::decode(&long),
            Err(PacketError::Authentication)
        );
    }

    #[test]
    fn down_and_admin_down_may_carry_your_discriminator_zero() {
        for state in [State::Down, State::AdminDown] {
            let mut packet = up();
            packet.state = state;
            packet.your_discriminator = 0;
            assert!(ControlPacket::decode(&packet.encode()).is_ok());
        }
        let mut init = up();
        init.state = State::Init;
        init.your_discriminator = 0;
        assert_eq!(
            ControlPacket::decode(&init.encode()),
            Err(PacketError::YourDiscriminatorZero(State::Init))
        );
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = ControlPacket::decode(&bytes);
        }

        #[test]
        fn valid_packets_round_trip(diag in 0u8..32, state in 0u8..4, flags in 0u8..64, mult in 1u8..,
                                    my in 1u32.., your in proptest::prelude::any::<u32>(),
                                    tx in proptest::prelude::any::<u32>(), rx in proptest::prelude::any::<u32>()) {
            let packet = ControlPacket {
                diag: Diag::from_bits(diag),
                state: State::from_bits(state),
                poll: flags & 0b10_0000 != 0,
                final_: flags & 0b1_0000 != 0,
                control_plane_independent: flags & 0b1000 != 0,
                auth_present: false,
                demand: flags & 0b10 != 0,
                multipoint: false,
                detect_mult: mult,
                my_discriminator: my,
                your_discriminator: if your == 0 { 0 } else { your },
                desired_min_tx: tx,
                required_min_rx: rx,
                required_min_echo_rx: 0,
            };
            let decoded = ControlPacket::decode(&packet.encode());
            if your == 0 && matches!(packet.state, State::Init | State::Up) {
                proptest::prop_assert!(decoded.is_err());
            } else {
                proptest::prop_assert_eq!(decoded.unwrap(), packet);
            }
        }
    }
}
