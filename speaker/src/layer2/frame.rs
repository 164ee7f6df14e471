//! The Ethernet frames layer 2 reads and writes, by hand and pure: ARP (RFC 826) requests
//! in, replies and gratuitous ARP out; ICMPv6 Neighbor Solicitations (RFC 4861 §4.3) in,
//! Neighbor Advertisements (§4.4) out, solicited and unsolicited.
//!
//! Small enough to write here (no packet crate): fixed layouts, one checksum. Decoders take
//! any bytes and never panic; they accept only what the responder answers (Ethernet II,
//! IPv6 without extension headers, hop limit 255, code 0) and ignore the rest.
//!
//! Must not know about sockets, owners or interfaces beyond a MAC address.

use std::net::{Ipv4Addr, Ipv6Addr};

/// An Ethernet MAC address.
pub type Mac = [u8; 6];

/// The Ethernet broadcast address.
pub const BROADCAST: Mac = [0xff; 6];
/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;

const ETH_HEADER: usize = 14;
const ARP_LEN: usize = 28;
const IPV6_HEADER: usize = 40;
const ICMPV6: u8 = 58;
const NEIGHBOR_SOLICITATION: u8 = 135;
const NEIGHBOR_ADVERTISEMENT: u8 = 136;
const OPT_SOURCE_LL: u8 = 1;
const OPT_TARGET_LL: u8 = 2;
/// NA flags: Solicited.
const NA_SOLICITED: u8 = 0x40;
/// NA flags: Override (the receiver replaces a cached link-layer address).
const NA_OVERRIDE: u8 = 0x20;

fn ethernet(dst: Mac, src: Mac, ethertype: u16, payload_len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HEADER + payload_len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// An ARP request asking who has `target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpRequest {
    /// Who asks (the ARP sender hardware address).
    pub sender_mac: Mac,
    /// Its address (`0.0.0.0` for an ARP probe, RFC 5227).
    pub sender_ip: Ipv4Addr,
    /// The address asked for.
    pub target_ip: Ipv4Addr,
}

/// Reads an ARP request for IPv4 over Ethernet; `None` for anything else.
pub fn parse_arp_request(frame: &[u8]) -> Option<ArpRequest> {
    let arp = frame.get(ETH_HEADER..ETH_HEADER + ARP_LEN)?;
    if frame[12..14] != ETH_P_ARP.to_be_bytes() || arp[0..8] != [0, 1, 0x08, 0x00, 6, 4, 0, 1] {
        return None;
    }
    let mut sender_mac = [0; 6];
    sender_mac.copy_from_slice(&arp[8..14]);
    let ip = |at: usize| Ipv4Addr::new(arp[at], arp[at + 1], arp[at + 2], arp[at + 3]);
    Some(ArpRequest {
        sender_mac,
        sender_ip: ip(14),
        target_ip: ip(24),
    })
}

fn arp(op: u16, eth_dst: Mac, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
    let mut f = ethernet(eth_dst, sha, ETH_P_ARP, ARP_LEN);
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa.octets());
    f
}

/// The reply to `request`: `vip` is at `mac`.
pub fn arp_reply(mac: Mac, vip: Ipv4Addr, request: &ArpRequest) -> Vec<u8> {
    arp(
        2,
        request.sender_mac,
        mac,
        vip,
        request.sender_mac,
        request.sender_ip,
    )
}

/// A gratuitous ARP: a broadcast ARP Announcement (RFC 5227 §2.3: a request whose sender
/// and target protocol address are both `vip`, target hardware address zero).
///
/// A request, not a reply: Linux counts a reply as gratuitous only when its target hardware
/// address equals its sender's (`arp_is_garp`), and an ARP that is not gratuitous is ignored
/// within `locktime` (1 s) of the entry's last change, so a takeover soon after another move
/// waited a second; a request with equal addresses always overrides, and updates an
/// existing entry without creating new ones (`arp_accept=0`).
pub fn gratuitous_arp(mac: Mac, vip: Ipv4Addr) -> Vec<u8> {
    arp(1, BROADCAST, mac, vip, [0; 6], vip)
}

/// A Neighbor Solicitation for `target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighborSolicitation {
    /// The Ethernet source.
    pub eth_src: Mac,
    /// The IPv6 source (`::` for duplicate address detection).
    pub src: Ipv6Addr,
    /// The address asked for.
    pub target: Ipv6Addr,
    /// The Source Link-Layer Address option, if present.
    pub source_ll: Option<Mac>,
}

fn ipv6(bytes: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&bytes[..16]);
    Ipv6Addr::from(a)
}

/// Reads a Neighbor Solicitation (Ethernet II, no IPv6 extension headers, hop limit 255,
/// valid checksum); `None` for anything else.
pub fn parse_neighbor_solicitation(frame: &[u8]) -> Option<NeighborSolicitation> {
    if frame.get(12..14)? != ETH_P_IPV6.to_be_bytes() {
        return None;
    }
    let ip = frame.get(ETH_HEADER..ETH_HEADER + IPV6_HEADER)?;
    let payload_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    if ip[0] >> 4 != 6 || ip[6] != ICMPV6 || ip[7] != 255 {
        return None;
    }
    let icmp = frame.get(ETH_HEADER + IPV6_HEADER..ETH_HEADER + IPV6_HEADER + payload_len)?;
    if icmp.len() < 24 || icmp[0] != NEIGHBOR_SOLICITATION || icmp[1] != 0 {
        return None;
    }
    let (src, dst) = (ipv6(&ip[8..24]), ipv6(&ip[24..40]));
    if checksum(src, dst, icmp) != 0 {
        return None;
    }
    let mut source_ll = None;
    let mut options = &icmp[24..];
    while options.len() >= 8 {
        let len = usize::from(options[1]) * 8;
        if len == 0 || len > options.len() {
            return None;
        }
        if options[0] == OPT_SOURCE_LL && len == 8 {
            let mut mac = [0; 6];
            mac.copy_from_slice(&options[2..8]);
            source_ll = Some(mac);
        }
        options = &options[len..];
    }
    let mut eth_src = [0; 6];
    eth_src.copy_from_slice(&frame[6..12]);
    Some(NeighborSolicitation {
        eth_src,
        src,
        target: ipv6(&icmp[8..24]),
        source_ll,
    })
}

/// The ICMPv6 checksum (RFC 4443 §2.3) over the pseudo-header and `message`: 0 when
/// `message` carries a correct one.
fn checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&u32::try_from(message.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes());
    add(&[0, 0, 0, ICMPV6]);
    add(message);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

/// The multicast MAC of an IPv6 multicast address (RFC 2464 §7).
pub fn multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// The solicited-node multicast address of `addr` (RFC 4291 §2.7.1): where its Neighbor
/// Solicitations are sent.
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

fn neighbor_advertisement(
    mac: Mac,
    vip: Ipv6Addr,
    (eth_dst, dst): (Mac, Ipv6Addr),
    flags: u8,
) -> Vec<u8> {
    let mut icmp = vec![NEIGHBOR_ADVERTISEMENT, 0, 0, 0, flags, 0, 0, 0];
    icmp.extend_from_slice(&vip.octets());
    icmp.extend_from_slice(&[OPT_TARGET_LL, 1]);
    icmp.extend_from_slice(&mac);
    let sum = checksum(vip, dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut f = ethernet(eth_dst, mac, ETH_P_IPV6, IPV6_HEADER + icmp.len());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&u16::try_from(icmp.len()).unwrap_or(0).to_be_bytes());
    f.extend_from_slice(&[ICMPV6, 255]);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

/// The solicited advertisement answering `ns` (Solicited and Override set; to the
/// all-nodes group when the solicitation came from `::`, RFC 4861 §7.2.4).
pub fn neighbor_advertisement_for(mac: Mac, ns: &NeighborSolicitation) -> Vec<u8> {
    if ns.src.is_unspecified() {
        return unsolicited_neighbor_advertisement(mac, ns.target);
    }
    let eth_dst = ns.source_ll.unwrap_or(ns.eth_src);
    neighbor_advertisement(
        mac,
        ns.target,
        (eth_dst, ns.src),
        NA_SOLICITED | NA_OVERRIDE,
    )
}

/// An unsolicited advertisement to all nodes (ff02::1) with Override set: the IPv6
/// gratuitous ARP.
pub fn unsolicited_neighbor_advertisement(mac: Mac, vip: Ipv6Addr) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    neighbor_advertisement(mac, vip, (multicast_mac(all_nodes), all_nodes), NA_OVERRIDE)
}

/// Builds a Neighbor Solicitation (tests and tools: what a client sends).
pub fn neighbor_solicitation(mac: Mac, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node(target);
    let mut icmp = vec![NEIGHBOR_SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[OPT_SOURCE_LL, 1]);
    icmp.extend_from_slice(&mac);
    let sum = checksum(src, group, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut f = ethernet(
        multicast_mac(group),
        mac,
        ETH_P_IPV6,
        IPV6_HEADER + icmp.len(),
    );
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&u16::try_from(icmp.len()).unwrap_or(0).to_be_bytes());
    f.extend_from_slice(&[ICMPV6, 255]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&group.octets());
    f.extend_from_slice(&icmp);
    f
}

/// Reads a Neighbor Advertisement's (target, flags, target link-layer address) — tests
/// and tools.
pub fn parse_neighbor_advertisement(frame: &[u8]) -> Option<(Ipv6Addr, u8, Option<Mac>)> {
    let ip = frame.get(ETH_HEADER..ETH_HEADER + IPV6_HEADER)?;
    let icmp = frame.get(ETH_HEADER + IPV6_HEADER..)?;
    if ip[6] != ICMPV6 || icmp.len() < 24 || icmp[0] != NEIGHBOR_ADVERTISEMENT {
        return None;
    }
    if checksum(ipv6(&ip[8..24]), ipv6(&ip[24..40]), icmp) != 0 {
        return None;
    }
    let mac = (icmp.len() >= 32 && icmp[24] == OPT_TARGET_LL).then(|| {
        let mut m = [0; 6];
        m.copy_from_slice(&icmp[26..32]);
        m
    });
    Some((ipv6(&icmp[8..24]), icmp[4], mac))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ME: Mac = [0x02, 0, 0, 0, 0, 0x01];
    const CLIENT: Mac = [0x02, 0, 0, 0, 0, 0x99];

    /// An ARP request as `arping -I eth0 192.0.2.10` from 192.0.2.99 sends it (captured
    /// layout: broadcast, EtherType 0806, Ethernet/IPv4, op 1, target MAC zero).
    fn request() -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&CLIENT);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&CLIENT);
        f.extend_from_slice(&[192, 0, 2, 99]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&[192, 0, 2, 10]);
        f
    }

    #[test]
    fn arp_request_in_reply_out() {
        let req = parse_arp_request(&request()).expect("a request");
        assert_eq!(req.target_ip, Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(req.sender_ip, Ipv4Addr::new(192, 0, 2, 99));
        let reply = arp_reply(ME, req.target_ip, &req);
        assert_eq!(reply.len(), 42);
        assert_eq!(&reply[0..6], &CLIENT, "unicast back to the asker");
        assert_eq!(&reply[6..12], &ME);
        assert_eq!(&reply[20..22], &[0, 2], "op reply");
        assert_eq!(&reply[22..28], &ME, "sender hardware address: us");
        assert_eq!(&reply[28..32], &[192, 0, 2, 10]);
        assert_eq!(&reply[38..42], &[192, 0, 2, 99]);
        assert_eq!(parse_arp_request(&reply), None, "a reply is not a request");
    }

    #[test]
    fn gratuitous_arp_is_a_broadcast_announcement() {
        let g = gratuitous_arp(ME, Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(&g[0..6], &BROADCAST);
        assert_eq!(
            &g[20..22],
            &[0, 1],
            "a request: Linux takes it inside locktime"
        );
        assert_eq!(&g[22..28], &ME);
        assert_eq!(&g[28..32], &g[38..42], "sender and target address: the VIP");
        assert_eq!(&g[32..38], &[0; 6]);
        // The responder must not answer its own announcement as if it were a question.
        let seen = parse_arp_request(&g).expect("parses as a request");
        assert_eq!(seen.sender_mac, ME);
    }

    #[test]
    fn solicited_node_group_and_mac() {
        let a: Ipv6Addr = "2001:db8::1:2345:6789".parse().expect("v6");
        assert_eq!(
            solicited_node(a),
            "ff02::1:ff45:6789".parse::<Ipv6Addr>().expect("v6")
        );
        assert_eq!(
            multicast_mac(solicited_node(a)),
            [0x33, 0x33, 0xff, 0x45, 0x67, 0x89]
        );
    }

    #[test]
    fn neighbor_solicitation_in_advertisement_out() {
        let client: Ipv6Addr = "2001:db8::99".parse().expect("v6");
        let vip: Ipv6Addr = "2001:db8::100".parse().expect("v6");
        let ns = parse_neighbor_solicitation(&neighbor_solicitation(CLIENT, client, vip))
            .expect("a solicitation");
        assert_eq!(
            (ns.src, ns.target, ns.source_ll),
            (client, vip, Some(CLIENT))
        );
        let na = neighbor_advertisement_for(ME, &ns);
        assert_eq!(&na[0..6], &CLIENT);
        assert_eq!(&na[38..54], &client.octets(), "to the asker");
        let (target, flags, mac) = parse_neighbor_advertisement(&na).expect("an advertisement");
        assert_eq!((target, mac), (vip, Some(ME)));
        assert_eq!(flags, NA_SOLICITED | NA_OVERRIDE);
        let (_, flags, _) =
            parse_neighbor_advertisement(&unsolicited_neighbor_advertisement(ME, vip))
                .expect("unsolicited");
        assert_eq!(flags, NA_OVERRIDE);
    }

    #[test]
    fn a_solicitation_with_a_bad_checksum_or_hop_limit_is_ignored() {
        let client: Ipv6Addr = "2001:db8::99".parse().expect("v6");
        let vip: Ipv6Addr = "2001:db8::100".parse().expect("v6");
        let good = neighbor_solicitation(CLIENT, client, vip);
        let mut bad_sum = good.clone();
        bad_sum[ETH_HEADER + IPV6_HEADER + 2] ^= 0xff;
        assert_eq!(parse_neighbor_solicitation(&bad_sum), None);
        let mut routed = good;
        routed[ETH_HEADER + 7] = 64;
        assert_eq!(parse_neighbor_solicitation(&routed), None);
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_arp_request(&bytes);
            let _ = parse_neighbor_solicitation(&bytes);
            let _ = parse_neighbor_advertisement(&bytes);
        }
    }
}
