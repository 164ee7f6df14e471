//! An `AF_PACKET` socket bound to one interface and one EtherType, read and written as
//! whole Ethernet frames from tokio: how the responder sees ARP requests and Neighbor
//! Solicitations and sends its answers, without the kernel's own neighbour code (which
//! must not answer for the VIPs: `arp_ignore`/`strictARP`).
//!
//! The one place in the speaker with `unsafe`: binding needs a `sockaddr_ll`, which no safe
//! wrapper among the workspace's dependencies builds, and tokio's registration of a raw
//! descriptor is `unsafe` (the descriptor must stay the socket's). Everything else goes through
//! socket2's safe API. Needs `CAP_NET_RAW`.

#![allow(
    unsafe_code,
    reason = "bind(2) with a sockaddr_ll: no safe wrapper in the workspace's dependencies builds one"
)]

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, SockFilter, Socket, Type};
use tokio::io::unix::AsyncFd;

/// A bound packet socket.
pub struct PacketSocket {
    fd: AsyncFd<Socket>,
}

impl PacketSocket {
    /// Opens a socket receiving frames of `ethertype` arriving on interface `ifindex` (not
    /// the ones this host sends) and sending on it.
    pub fn open(ifindex: u32, ethertype: u16) -> io::Result<PacketSocket> {
        let proto = ethertype.to_be();
        let socket = Socket::new(
            Domain::PACKET,
            Type::RAW,
            Some(Protocol::from(i32::from(proto))),
        )?;
        socket.set_nonblocking(true)?;
        let index = i32::try_from(ifindex)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index"))?;
        // SAFETY: sockaddr_ll is plain old data; zeroed is a valid value, and the pointer
        // and length passed to bind(2) describe exactly that local value.
        let rc = unsafe {
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = proto;
            addr.sll_ifindex = index;
            libc::bind(
                socket.as_raw_fd(),
                std::ptr::addr_of!(addr).cast::<libc::sockaddr>(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `socket` owns an open descriptor, and the AsyncFd owns `socket` (and so
        // that descriptor, unchanged) for its whole life.
        let fd = unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)?;
        Ok(PacketSocket { fd })
    }

    /// Keeps only IPv6 frames carrying ICMPv6 Neighbor Solicitations (a classic BPF filter),
    /// so a busy node does not copy all its IPv6 traffic to the responder.
    pub fn only_neighbor_solicitations(&self) -> io::Result<()> {
        const LD_B_ABS: u16 = 0x30;
        const JEQ_K: u16 = 0x15;
        const RET_K: u16 = 0x06;
        self.fd.get_ref().attach_filter(&[
            SockFilter::new(LD_B_ABS, 0, 0, 20), // IPv6 next header
            SockFilter::new(JEQ_K, 0, 3, 58),    // ICMPv6?
            SockFilter::new(LD_B_ABS, 0, 0, 54), // ICMPv6 type
            SockFilter::new(JEQ_K, 0, 1, 135),   // Neighbor Solicitation?
            SockFilter::new(RET_K, 0, 0, 0xffff),
            SockFilter::new(RET_K, 0, 0, 0),
        ])
    }

    /// Receives one frame into `buf`; its length.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| fd.get_ref().read(buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one frame.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let sent = self.fd.get_ref().write(frame)?;
        if sent == frame.len() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "sent {sent} of {} bytes",
                frame.len()
            )))
        }
    }
}
