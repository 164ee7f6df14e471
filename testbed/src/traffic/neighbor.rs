//! A client that asks "who has this address?" every millisecond and records every answer:
//! ARP requests (IPv4) and Neighbor Solicitations (IPv6) for a VIP, each one numbered so
//! its answer is matched to it. A request no node answers is the evidence of a moment when
//! nobody answered for the address — what a new client, or one whose neighbour entry is
//! being revalidated, would lose. Layer-2 labs use it to show planned moves are
//! make-before-break; it sends from an `AF_PACKET` socket, so the client's kernel
//! neighbour table is left alone.
//!
//! Numbering: the request's sender address carries the number — `169.254.x.y` for ARP,
//! `fe80::ffff:0:n` for NDP (the answer goes back to it, at the client's MAC); the client's
//! kernel ignores answers to addresses it does not hold, the packet socket sees them.
//!
//! Run it on a thread inside the client's namespace ([`crate::lab::Netns::spawn_thread`]).
#![allow(
    unsafe_code,
    reason = "an AF_PACKET socket has no safe std wrapper (as in `sys.rs`)"
)]

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ETH_P_ALL: u16 = 0x0003;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
/// Numbers wrap here: 65 s of requests at one a millisecond.
const SEQ_SPACE: u32 = 1 << 16;

/// Answers by request number: when each came, and the MAC it announced.
pub type Answers = BTreeMap<u32, Vec<(u64, [u8; 6])>>;

/// What one probing run saw.
#[derive(Clone, Debug, Default)]
pub struct NeighborProbes {
    /// When each request went out (ns since the epoch), by number.
    pub sent: Vec<u64>,
    /// Answers: request number → (when, the MAC announced) for each answer.
    pub answers: Answers,
    /// Frames the client's own socket dropped (its buffer full): nonzero makes the
    /// unanswered count an upper bound.
    pub dropped: u32,
}

impl NeighborProbes {
    /// The requests nobody answered (by number), leaving out the last `grace` of the run
    /// (answers to them may still have been on their way).
    pub fn unanswered(&self, grace: Duration) -> Vec<u32> {
        let Some(last) = self.sent.last() else {
            return Vec::new();
        };
        let cutoff = last.saturating_sub(u64::try_from(grace.as_nanos()).unwrap_or(u64::MAX));
        self.sent
            .iter()
            .enumerate()
            .filter(|(_, at)| **at <= cutoff)
            .map(|(i, _)| u32::try_from(i).unwrap_or(u32::MAX))
            .filter(|i| !self.answers.contains_key(&(i % SEQ_SPACE)))
            .collect()
    }

    /// How many requests two or more different MACs answered (two nodes answering at once:
    /// the overlap of a make-before-break handover, or a split brain).
    pub fn answered_twice(&self) -> usize {
        self.answers
            .values()
            .filter(|a| {
                let first = a[0].1;
                a.iter().any(|(_, m)| *m != first)
            })
            .count()
    }

    /// Every MAC that answered, with how many requests it answered.
    pub fn by_mac(&self) -> BTreeMap<[u8; 6], usize> {
        let mut out = BTreeMap::new();
        for a in self.answers.values() {
            let mut macs: Vec<[u8; 6]> = a.iter().map(|(_, m)| *m).collect();
            macs.dedup();
            for m in macs {
                *out.entry(m).or_default() += 1;
            }
        }
        out
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn numbered_v4(seq: u32) -> Ipv4Addr {
    let s = seq % SEQ_SPACE;
    Ipv4Addr::new(169, 254, (s >> 8) as u8, (s & 0xff) as u8)
}

fn numbered_v6(seq: u32) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0xffff, 0, 0, (seq % SEQ_SPACE) as u16)
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(86);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// An ARP request for `target` from the numbered sender address.
pub fn arp_request(mac: [u8; 6], target: Ipv4Addr, seq: u32) -> Vec<u8> {
    let mut f = ethernet([0xff; 6], mac, ETH_P_ARP);
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&numbered_v4(seq).octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f
}

fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&u32::try_from(icmp.len()).unwrap_or(0).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A Neighbor Solicitation for `target` to its solicited-node group, from the numbered
/// source address, with the client's MAC as source link-layer address.
pub fn neighbor_solicitation(mac: [u8; 6], target: Ipv6Addr, seq: u32) -> Vec<u8> {
    let t = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let g = group.octets();
    let src = numbered_v6(seq);
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&t);
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&mac);
    let sum = icmpv6_checksum(src, group, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut f = ethernet([0x33, 0x33, g[12], g[13], g[14], g[15]], mac, ETH_P_IPV6);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&u16::try_from(icmp.len()).unwrap_or(0).to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&g);
    f.extend_from_slice(&icmp);
    f
}

/// The answer `frame` carries to a numbered request for `vip`: (number, MAC announced).
pub fn answer(frame: &[u8], vip: IpAddr) -> Option<(u32, [u8; 6])> {
    let mac = |b: &[u8]| -> Option<[u8; 6]> { b.get(..6)?.try_into().ok() };
    match (vip, frame.get(12..14)?) {
        (IpAddr::V4(v4), [0x08, 0x06]) => {
            let arp = frame.get(14..42)?;
            if arp[6..8] != [0, 2] || arp[14..18] != v4.octets() || arp[24..26] != [169, 254] {
                return None;
            }
            let seq = u32::from(u16::from_be_bytes([arp[26], arp[27]]));
            Some((seq, mac(&arp[8..14])?))
        }
        (IpAddr::V6(v6), [0x86, 0xdd]) => {
            let ip = frame.get(14..54)?;
            let icmp = frame.get(54..)?;
            if ip[6] != 58 || *icmp.first()? != 136 || icmp.get(8..24)? != v6.octets() {
                return None;
            }
            let dst: [u8; 16] = ip[24..40].try_into().ok()?;
            let dst = Ipv6Addr::from(dst);
            let seg = dst.segments();
            if seg[..7] != numbered_v6(0).segments()[..7] {
                return None;
            }
            // The target link-layer address option, else the Ethernet source.
            let ll = match icmp.get(24..32) {
                Some(o) if o[0] == 2 && o[1] == 1 => mac(&o[2..8])?,
                _ => mac(&frame[6..12])?,
            };
            Some((u32::from(seg[7]), ll))
        }
        _ => None,
    }
}

/// A raw socket bound to interface `ifindex`, every EtherType.
struct RawSocket {
    fd: libc::c_int,
    ifindex: i32,
}

impl Drop for RawSocket {
    fn drop(&mut self) {
        // SAFETY: `fd` is a socket this value owns, closed once.
        unsafe { libc::close(self.fd) };
    }
}

fn sockaddr(ifindex: i32, protocol: u16) -> libc::sockaddr_ll {
    // SAFETY: all-zero is a valid `sockaddr_ll`.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = protocol.to_be();
    sa.sll_ifindex = ifindex;
    sa
}

impl RawSocket {
    fn open(ifname: &str) -> io::Result<RawSocket> {
        let name = std::ffi::CString::new(ifname).map_err(io::Error::other)?;
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: plain socket(2).
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW,
                i32::from(ETH_P_ALL.to_be()),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let socket = RawSocket {
            fd,
            ifindex: i32::try_from(ifindex).map_err(io::Error::other)?,
        };
        let sa = sockaddr(socket.ifindex, ETH_P_ALL);
        // SAFETY: `sa` is a valid `sockaddr_ll` of the size given.
        let bound = unsafe {
            libc::bind(
                fd,
                (&raw const sa).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if bound < 0 {
            return Err(io::Error::last_os_error());
        }
        // Every frame on the segment comes through (UDP probes, other labs' requests): a
        // large buffer keeps a briefly starved reader from dropping answers.
        let size: libc::c_int = 16 << 20;
        // SAFETY: an int of the size given.
        let sized = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const size).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        if sized < 0 {
            return Err(io::Error::last_os_error());
        }
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 20_000,
        };
        // SAFETY: a `timeval` of the size given.
        let set = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        if set < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(socket)
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        let sa = sockaddr(self.ifindex, ETH_P_ALL);
        // SAFETY: `frame` and `sa` are valid for the sizes given.
        let n = unsafe {
            libc::sendto(
                self.fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const sa).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Frames dropped since the socket opened (`PACKET_STATISTICS`).
    fn dropped(&self) -> io::Result<u32> {
        // SAFETY: all-zero is a valid `tpacket_stats`.
        let mut stats: libc::tpacket_stats = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `stats` is valid for `len` bytes.
        let got = unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut stats).cast(),
                &raw mut len,
            )
        };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stats.tp_drops)
    }

    /// One frame, or `None` after the read timeout.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: `buf` is valid for its length.
        let n = unsafe { libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some(usize::try_from(n).unwrap_or(0)))
    }
}

/// Asks for `vip` on `ifname` (whose MAC is `mac`) every `every` until `stop`, and records
/// the answers; answers still arriving 100 ms after the last request count.
pub fn probe(
    ifname: &str,
    mac: [u8; 6],
    vip: IpAddr,
    every: Duration,
    stop: &Arc<AtomicBool>,
) -> io::Result<NeighborProbes> {
    let socket = Arc::new(RawSocket::open(ifname)?);
    let done = Arc::new(AtomicBool::new(false));
    let (rx, d) = (socket.clone(), done.clone());
    let receiver = std::thread::spawn(move || -> io::Result<Answers> {
        let mut answers = Answers::new();
        let mut buf = [0u8; 2048];
        while !d.load(Ordering::Relaxed) {
            if let Some(n) = rx.recv(&mut buf)?
                && let Some((seq, m)) = answer(&buf[..n], vip)
            {
                answers.entry(seq).or_default().push((now_ns(), m));
            }
        }
        Ok(answers)
    });
    let mut sent = Vec::new();
    let mut seq = 0u32;
    let start = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let frame = match vip {
            IpAddr::V4(v4) => arp_request(mac, v4, seq),
            IpAddr::V6(v6) => neighbor_solicitation(mac, v6, seq),
        };
        sent.push(now_ns());
        socket.send(&frame)?;
        seq += 1;
        // Paced against the start, so a late wake-up does not stretch the schedule.
        let next = start + every * seq;
        std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
    }
    std::thread::sleep(Duration::from_millis(100));
    done.store(true, Ordering::Relaxed);
    let answers = receiver
        .join()
        .map_err(|_| io::Error::other("the receiving thread panicked"))??;
    let dropped = socket.dropped()?;
    Ok(NeighborProbes {
        sent,
        answers,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_matched_to_their_numbered_requests() {
        let client = [2, 0, 0, 0, 0, 1];
        let node = [2, 0, 0, 0, 0, 9];
        let vip = Ipv4Addr::new(10, 9, 0, 200);
        let req = arp_request(client, vip, 258);
        assert_eq!(&req[28..32], &[169, 254, 1, 2]);
        // The reply a responder builds: sender the VIP at its MAC, target the requester.
        let mut reply = ethernet(client, node, ETH_P_ARP);
        reply.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 2]);
        reply.extend_from_slice(&node);
        reply.extend_from_slice(&vip.octets());
        reply.extend_from_slice(&client);
        reply.extend_from_slice(&req[28..32]);
        assert_eq!(answer(&reply, IpAddr::V4(vip)), Some((258, node)));
        assert_eq!(
            answer(&reply, IpAddr::V4(Ipv4Addr::new(10, 9, 0, 201))),
            None
        );
        assert_eq!(
            answer(&req, IpAddr::V4(vip)),
            None,
            "a request is no answer"
        );
    }

    #[test]
    fn the_solicitation_checksum_verifies() {
        let ns = neighbor_solicitation(
            [2, 0, 0, 0, 0, 1],
            "fd09::200".parse().unwrap_or(Ipv6Addr::LOCALHOST),
            7,
        );
        let src: [u8; 16] = ns[22..38].try_into().unwrap_or([0; 16]);
        let dst: [u8; 16] = ns[38..54].try_into().unwrap_or([0; 16]);
        assert_eq!(
            icmpv6_checksum(Ipv6Addr::from(src), Ipv6Addr::from(dst), &ns[54..]),
            0
        );
        assert_eq!(&ns[0..2], &[0x33, 0x33]);
    }

    #[test]
    fn unanswered_requests_are_counted() {
        let p = NeighborProbes {
            sent: vec![0, 1_000_000, 2_000_000, 3_000_000],
            answers: [(0, vec![(1, [1; 6])]), (2, vec![(1, [1; 6]), (2, [2; 6])])].into(),
            dropped: 0,
        };
        assert_eq!(p.unanswered(Duration::from_millis(1)), vec![1]);
        assert_eq!(p.answered_twice(), 1);
        assert_eq!(p.by_mac()[&[1; 6]], 2);
    }
}
