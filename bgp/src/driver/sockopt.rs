//! The socket options socket2 does not wrap: TCP MD5 signatures (RFC 2385) and the
//! GTSM minimum TTL / hop count (RFC 5082). This is the only module of the crate with
//! `unsafe`: each call is one `setsockopt` on a file descriptor we own, with a
//! correctly sized, fully initialised option value.
#![allow(
    unsafe_code,
    reason = "setsockopt(2) for TCP_MD5SIG and IP_MINTTL has no safe wrapper"
)]

use std::io;
use std::mem::size_of;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

/// The longest TCP MD5 key Linux accepts (`TCP_MD5SIG_MAXKEYLEN`).
pub const MD5_MAX_KEY_LEN: usize = 80;

/// `struct tcp_md5sig` from `linux/tcp.h`; libc does not define it.
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; MD5_MAX_KEY_LEN],
}

/// The size of `T` as the kernel takes it.
#[expect(
    clippy::cast_possible_truncation,
    reason = "an option value is a few hundred bytes at most, far below socklen_t's 4 GiB"
)]
const fn socklen<T>() -> libc::socklen_t {
    size_of::<T>() as libc::socklen_t
}

/// `AF_INET` as a `sockaddr_in` holds it.
#[expect(clippy::cast_possible_truncation, reason = "AF_INET is 2")]
const FAMILY_INET: libc::sa_family_t = libc::AF_INET as libc::sa_family_t;

/// `AF_INET6` as a `sockaddr_in6` holds it.
#[expect(clippy::cast_possible_truncation, reason = "AF_INET6 is 10")]
const FAMILY_INET6: libc::sa_family_t = libc::AF_INET6 as libc::sa_family_t;

fn setsockopt<T>(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a valid, initialised `T` for the duration of the call and the
    // length passed is exactly its size; the kernel only reads from it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast::<libc::c_void>(),
            socklen::<T>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Installs (or, with an empty `key`, removes) the TCP MD5 key for segments to and from
/// `peer` on this socket. On a listening socket the key is inherited by accepted connections.
pub fn set_tcp_md5(fd: &impl AsRawFd, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    let keylen = match u16::try_from(key.len()) {
        Ok(keylen) if key.len() <= MD5_MAX_KEY_LEN => keylen,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TCP MD5 key longer than 80 bytes",
            ));
        }
    };
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match peer {
        IpAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe {
                &mut *(&mut addr as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = FAMILY_INET;
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.octets());
        }
        IpAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut addr as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = FAMILY_INET6;
            sin6.sin6_addr.s6_addr = v6.octets();
        }
    }
    let mut sig = TcpMd5Sig {
        addr,
        flags: 0,
        prefixlen: 0,
        keylen,
        ifindex: 0,
        key: [0; MD5_MAX_KEY_LEN],
    };
    sig.key[..key.len()].copy_from_slice(key);
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig)
}

/// GTSM (RFC 5082): drop received packets whose TTL (IPv4) or hop limit (IPv6) is below
/// `min`. For a directly connected peer sending with TTL 255, `min` is 255 − (hops − 1).
pub fn set_min_ttl(fd: &impl AsRawFd, ipv6: bool, min: u8) -> io::Result<()> {
    let value = libc::c_int::from(min);
    if ipv6 {
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, &value)
    } else {
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_MINTTL, &value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Protocol, Socket, Type};

    #[test]
    fn md5_struct_matches_the_kernel_layout() {
        // 128 (sockaddr_storage) + 1 + 1 + 2 + 4 + 80 in linux/tcp.h.
        assert_eq!(size_of::<TcpMd5Sig>(), 216);
    }

    #[test]
    fn options_are_accepted_by_the_kernel() {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
        set_min_ttl(&s, false, 254).expect("IP_MINTTL");
        set_tcp_md5(&s, "127.0.0.1".parse().expect("ip"), b"secret").expect("TCP_MD5SIG v4");
        set_tcp_md5(&s, "127.0.0.1".parse().expect("ip"), b"").expect("remove key");
        assert!(set_tcp_md5(&s, "127.0.0.1".parse().expect("ip"), &[b'x'; 81]).is_err());
        let s6 = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP)).expect("socket");
        set_min_ttl(&s6, true, 255).expect("IPV6_MINHOPCOUNT");
        set_tcp_md5(&s6, "::1".parse().expect("ip"), b"secret").expect("TCP_MD5SIG v6");
    }
}
