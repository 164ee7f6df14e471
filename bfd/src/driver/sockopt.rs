//! The socket calls socket2 does not wrap: asking for the received TTL / hop limit
//! (`IP_RECVTTL`, `IPV6_RECVHOPLIMIT`) and reading it back with `recvmsg(2)` control
//! messages. This is the only module of the crate with `unsafe`.
#![allow(
    unsafe_code,
    reason = "setsockopt(2) for IP_RECVTTL and recvmsg(2) with control messages have no safe wrapper"
)]

use std::io;
use std::mem::{size_of, size_of_val};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// The size of `T` as the kernel takes it.
#[expect(
    clippy::cast_possible_truncation,
    reason = "an option value or a sockaddr is a few hundred bytes at most, far below socklen_t's 4 GiB"
)]
const fn socklen<T>() -> libc::socklen_t {
    size_of::<T>() as libc::socklen_t
}

fn set_int(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` lives for the call and the length is exactly its size; the kernel
    // only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast::<libc::c_void>(),
            socklen::<libc::c_int>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks the kernel to attach each datagram's IPv4 TTL or IPv6 hop limit.
pub(crate) fn set_receive_ttl(fd: &impl AsRawFd, ipv6: bool) -> io::Result<()> {
    if ipv6 {
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)
    } else {
        set_int(fd, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)
    }
}

/// One received datagram: its length in the buffer, sender, and TTL / hop limit if the
/// kernel reported one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    /// Bytes written into the buffer.
    pub len: usize,
    /// The sender.
    pub source: SocketAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: Option<u8>,
}

/// Non-blocking `recvmsg(2)` into `buf` (`WouldBlock` when nothing is queued).
pub(crate) fn recv_with_ttl(fd: &impl AsRawFd, buf: &mut [u8]) -> io::Result<Received> {
    // SAFETY: every pointer in `msg` refers to a live local (`storage`, `iov` over `buf`,
    // `control`) whose size is the one passed; the kernel writes at most that much. The
    // control messages are walked with the libc CMSG macros within `msg_controllen`, and
    // their payload is read unaligned as the `int` both IP_TTL and IPV6_HOPLIMIT carry.
    unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 16];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = (&raw mut storage).cast();
        msg.msg_namelen = socklen::<libc::sockaddr_storage>();
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&control) as _;
        let n = libc::recvmsg(fd.as_raw_fd(), &raw mut msg, libc::MSG_DONTWAIT);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut ttl = None;
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            let (level, kind) = ((*cmsg).cmsg_level, (*cmsg).cmsg_type);
            if (level == libc::IPPROTO_IP && kind == libc::IP_TTL)
                || (level == libc::IPPROTO_IPV6 && kind == libc::IPV6_HOPLIMIT)
            {
                let value = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                ttl = u8::try_from(value).ok();
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
        let source = match libc::c_int::from(storage.ss_family) {
            libc::AF_INET => {
                let sin =
                    std::ptr::read_unaligned((&raw const storage).cast::<libc::sockaddr_in>());
                SocketAddr::new(
                    std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).into(),
                    u16::from_be(sin.sin_port),
                )
            }
            libc::AF_INET6 => {
                let sin6 =
                    std::ptr::read_unaligned((&raw const storage).cast::<libc::sockaddr_in6>());
                SocketAddr::new(
                    std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr).into(),
                    u16::from_be(sin6.sin6_port),
                )
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "sender is not an IP socket",
                ));
            }
        };
        Ok(Received {
            len: usize::try_from(n).unwrap_or(0).min(buf.len()),
            source,
            ttl,
        })
    }
}
