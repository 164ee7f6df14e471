//! The UDP side: one listening socket per (family, hop) on 3784 / 4784 that reads the TTL
//! of every datagram, and one sending socket per session from a source port in
//! 49152–65535 with TTL / hop limit 255 (RFC 5881 §4, RFC 5883 §5).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use super::dispatch::{Dispatcher, Hop};
use super::sockopt;

/// Lowest source port RFC 5881 §4 allows.
pub(crate) const SOURCE_PORT_MIN: u16 = 49152;

/// Binds the listener for `hop` and `ipv6` and spawns the task that feeds `dispatcher`.
pub(crate) fn listen(
    hop: Hop,
    ipv6: bool,
    dispatcher: Arc<Dispatcher>,
) -> io::Result<JoinHandle<()>> {
    let (domain, any) = if ipv6 {
        (Domain::IPV6, IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    } else {
        (Domain::IPV4, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if ipv6 {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    sockopt::set_receive_ttl(&socket, ipv6)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(any, hop.port()).into())?;
    let socket = UdpSocket::from_std(socket.into())?;
    Ok(tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let received = socket
                .async_io(Interest::READABLE, || {
                    sockopt::recv_with_ttl(&socket, &mut buf)
                })
                .await;
            match received {
                Ok(r) => dispatcher.deliver(&buf[..r.len], r.source.ip(), r.ttl, hop),
                Err(error) => {
                    tracing::warn!(%error, ?hop, "BFD receive failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

/// A socket for sending one session's packets: bound to `local` (or any address) and a
/// free source port in 49152–65535, TTL / hop limit 255.
pub(crate) fn sender(local: Option<IpAddr>, peer: IpAddr) -> io::Result<UdpSocket> {
    let ipv6 = peer.is_ipv6();
    let domain = if ipv6 { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if ipv6 {
        socket.set_unicast_hops_v6(255)?;
    } else {
        socket.set_ttl_v4(255)?;
    }
    socket.set_nonblocking(true)?;
    let address = local.unwrap_or(if ipv6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    let span = u32::from(u16::MAX - SOURCE_PORT_MIN) + 1;
    let start: u32 = rand::random::<u32>() % span;
    let mut last_error = None;
    for i in 0..256u32 {
        let port = SOURCE_PORT_MIN + u16::try_from((start + i * 7919) % span).unwrap_or(0);
        match socket.bind(&SocketAddr::new(address, port).into()) {
            Ok(()) => return UdpSocket::from_std(socket.into()),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free BFD source port")))
}
