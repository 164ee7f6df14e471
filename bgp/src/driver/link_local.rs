//! The IPv6 next hop self of a session: its global address, plus the link-local address of
//! the same interface when the peer is on that link (RFC 2545 §3: a 32-byte next hop).
//! Read from `/proc/thread-self/net/if_inet6`, which shows the network namespace of the
//! calling thread, so that a speaker running in a namespace sees that namespace.

use std::net::Ipv6Addr;

/// One line of `if_inet6`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IfAddr {
    addr: Ipv6Addr,
    prefix_len: u8,
    link_scope: bool,
    interface: String,
}

fn parse(text: &str) -> Vec<IfAddr> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [hex, _index, plen, scope, _flags, name] = f.as_slice() else {
                return None;
            };
            let addr = Ipv6Addr::from(u128::from_str_radix(hex, 16).ok()?);
            Some(IfAddr {
                addr,
                prefix_len: u8::from_str_radix(plen, 16).ok()?,
                link_scope: u8::from_str_radix(scope, 16).ok()? == 0x20,
                interface: (*name).to_string(),
            })
        })
        .collect()
}

fn in_prefix(addr: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    };
    u128::from(addr) & mask == u128::from(net) & mask
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// From the interface table, the (global, link-local) next hop for a session from
/// `local` to `peer`: the link-local address is added when the peer is on the same link
/// (inside the local address's prefix, or itself link-local); when the session runs over
/// link-local addresses, the interface's global address is the global next hop.
fn next_hop_from(
    table: &[IfAddr],
    local: Ipv6Addr,
    peer: Ipv6Addr,
) -> Option<(Ipv6Addr, Option<Ipv6Addr>)> {
    let Some(mine) = table.iter().find(|a| a.addr == local) else {
        return (!is_link_local(local)).then_some((local, None));
    };
    let same_link = |a: &&IfAddr| a.interface == mine.interface;
    if mine.link_scope {
        let global = table.iter().filter(same_link).find(|a| !a.link_scope)?;
        return Some((global.addr, Some(local)));
    }
    let on_link = is_link_local(peer) || in_prefix(peer, mine.addr, mine.prefix_len);
    let link_local = on_link
        .then(|| {
            table
                .iter()
                .filter(same_link)
                .find(|a| a.link_scope)
                .map(|a| a.addr)
        })
        .flatten();
    Some((local, link_local))
}

/// The IPv6 next hop self for a session from `local` to `peer`, per the module doc.
pub fn ipv6_next_hop(local: Ipv6Addr, peer: Ipv6Addr) -> Option<(Ipv6Addr, Option<Ipv6Addr>)> {
    let text = std::fs::read_to_string("/proc/thread-self/net/if_inet6")
        .or_else(|_| std::fs::read_to_string("/proc/net/if_inet6"))
        .unwrap_or_default();
    next_hop_from(&parse(&text), local, peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
20010db8000000010000000000000002 04 40 00 80     eth0
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
20010db8000000090000000000000002 05 40 00 80     eth1
00000000000000000000000000000001 01 80 10 80       lo
";

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().expect("ip")
    }

    #[test]
    fn on_link_peer_gets_global_and_link_local() {
        let t = parse(TABLE);
        assert_eq!(t.len(), 4);
        assert_eq!(
            next_hop_from(&t, ip("2001:db8:0:1::2"), ip("2001:db8:0:1::1")),
            Some((ip("2001:db8:0:1::2"), Some(ip("fe80::fc:ff:fe00:1"))))
        );
    }

    #[test]
    fn multihop_peer_gets_the_global_address_only() {
        let t = parse(TABLE);
        assert_eq!(
            next_hop_from(&t, ip("2001:db8:0:1::2"), ip("2001:db8:ff::1")),
            Some((ip("2001:db8:0:1::2"), None))
        );
        // No link-local on eth1: global only even on link.
        assert_eq!(
            next_hop_from(&t, ip("2001:db8:0:9::2"), ip("2001:db8:0:9::1")),
            Some((ip("2001:db8:0:9::2"), None))
        );
    }

    #[test]
    fn a_link_local_session_uses_the_interfaces_global_address() {
        let t = parse(TABLE);
        assert_eq!(
            next_hop_from(&t, ip("fe80::fc:ff:fe00:1"), ip("fe80::1")),
            Some((ip("2001:db8:0:1::2"), Some(ip("fe80::fc:ff:fe00:1"))))
        );
    }

    #[test]
    fn unknown_local_address_is_used_as_is() {
        assert_eq!(
            next_hop_from(&[], ip("2001:db8::5"), ip("2001:db8::6")),
            Some((ip("2001:db8::5"), None))
        );
        assert_eq!(next_hop_from(&[], ip("fe80::5"), ip("fe80::6")), None);
    }
}
