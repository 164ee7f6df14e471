//! Watches the client's link for announcements: gratuitous ARP replies and Neighbor
//! Advertisements for the VIPs, with the time each arrived — "takeover on the wire".
//!
//! An `AF_PACKET` socket for every EtherType, opened in the client's namespace (where only
//! `eth0` carries Ethernet), read with a short timeout so the thread notices `stop`.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::whole::probe::now_ns;

/// An announcement seen on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    /// When it arrived (ns since the epoch).
    pub at_ns: u64,
    /// The address announced.
    pub vip: IpAddr,
    /// The MAC it is announced at.
    pub mac: [u8; 6],
}

/// The announcement `frame` carries, if any: an ARP request or reply whose sender and
/// target address are the same (gratuitous), or an ICMPv6 Neighbor Advertisement.
pub fn announcement(frame: &[u8]) -> Option<(IpAddr, [u8; 6])> {
    let mac = |b: &[u8]| -> Option<[u8; 6]> { b.get(..6)?.try_into().ok() };
    match frame.get(12..14)? {
        [0x08, 0x06] => {
            let arp = frame.get(14..42)?;
            // Gratuitous: sender and target address the same, as a reply (Berth) or a
            // request (keepalived, arping -U).
            if !matches!(arp[6..8], [0, 1] | [0, 2]) || arp[14..18] != arp[24..28] {
                return None;
            }
            let spa: [u8; 4] = arp[14..18].try_into().ok()?;
            Some((IpAddr::from(spa), mac(&arp[8..14])?))
        }
        [0x86, 0xdd] => {
            if *frame.get(20)? != 58 || *frame.get(54)? != 136 {
                return None;
            }
            let target: [u8; 16] = frame.get(62..78)?.try_into().ok()?;
            // Target link-layer address option, else the Ethernet source.
            let opt = frame.get(78..86);
            let ll = match opt {
                Some(o) if o[0] == 2 && o[1] == 1 => mac(&o[2..8])?,
                _ => mac(&frame[6..12])?,
            };
            Some((IpAddr::from(target), ll))
        }
        _ => None,
    }
}

/// Records announcements until `stop` is set; call on a thread inside the client's
/// namespace.
pub fn record(stop: &Arc<AtomicBool>) -> std::io::Result<Vec<Announcement>> {
    const ETH_P_ALL: u16 = 0x0003;
    let socket = Socket::new(
        Domain::PACKET,
        Type::RAW,
        Some(Protocol::from(i32::from(ETH_P_ALL.to_be()))),
    )?;
    socket.set_read_timeout(Some(Duration::from_millis(20)))?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let n = match std::io::Read::read(&mut &socket, &mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Some((vip, mac)) = announcement(&buf[..n]) {
            seen.push(Announcement {
                at_ns: now_ns(),
                vip,
                mac,
            });
        }
    }
    Ok(seen)
}
