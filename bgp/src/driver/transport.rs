//! TCP transport for one BGP session: listening sockets, outgoing connections with a
//! bound source address, eBGP multihop TTL, GTSM and TCP MD5. It knows sockets only; it
//! knows nothing of BGP messages or of the session state machine.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::sockopt;

/// The well-known BGP port.
pub const BGP_PORT: u16 = 179;

/// How packets of one session are sent and checked at the IP layer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Transport {
    /// The peer's address.
    pub remote: IpAddr,
    /// The peer's TCP port (179 unless configured).
    pub remote_port: u16,
    /// Source address to bind outgoing connections to; `None` lets the kernel choose.
    pub local: Option<IpAddr>,
    /// TTL / hop limit of sent packets; `None` keeps the kernel default (64). eBGP
    /// single-hop peers use 1, multihop peers their configured hop count.
    pub ttl: Option<u8>,
    /// GTSM (RFC 5082): the peer is at most this many hops away; we send with TTL 255
    /// and drop anything that arrives with a TTL below 256 − hops.
    pub gtsm_hops: Option<u8>,
    /// TCP MD5 (RFC 2385) password.
    pub md5_password: Option<String>,
}

impl Transport {
    /// A transport to `remote` on port 179 with kernel defaults.
    pub fn new(remote: IpAddr) -> Self {
        Self {
            remote,
            remote_port: BGP_PORT,
            local: None,
            ttl: None,
            gtsm_hops: None,
            md5_password: None,
        }
    }

    /// The peer's socket address.
    pub fn remote_addr(&self) -> SocketAddr {
        SocketAddr::new(self.remote, self.remote_port)
    }

    /// The TTL we send with: 255 under GTSM, else the configured one.
    pub fn send_ttl(&self) -> Option<u8> {
        if self.gtsm_hops.is_some() {
            Some(255)
        } else {
            self.ttl
        }
    }

    /// The minimum TTL accepted under GTSM.
    pub fn min_ttl(&self) -> Option<u8> {
        self.gtsm_hops
            .map(|hops| 255u8.saturating_sub(hops.saturating_sub(1)))
    }

    /// Applies TTL, GTSM and MD5 to a socket of this session.
    fn apply(&self, socket: SockRef<'_>) -> io::Result<()> {
        let v6 = self.remote.is_ipv6();
        if let Some(ttl) = self.send_ttl() {
            if v6 {
                socket.set_unicast_hops_v6(u32::from(ttl))?;
            } else {
                socket.set_ttl_v4(u32::from(ttl))?;
            }
        }
        if let Some(min) = self.min_ttl() {
            sockopt::set_min_ttl(&*socket, v6, min)?;
        }
        if let Some(password) = &self.md5_password {
            sockopt::set_tcp_md5(&*socket, self.remote, password.as_bytes())?;
        }
        socket.set_tcp_nodelay(true)
    }

    /// Opens a connection to the peer, giving up after `timeout`.
    pub async fn connect(&self, timeout: Duration) -> io::Result<TcpStream> {
        let domain = if self.remote.is_ipv6() {
            Domain::IPV6
        } else {
            Domain::IPV4
        };
        let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        self.apply(SockRef::from(&socket))?;
        if let Some(local) = self.local {
            socket.bind(&SocketAddr::new(local, 0).into())?;
        }
        let socket = TcpSocket::from_std_stream(socket.into());
        match tokio::time::timeout(timeout, socket.connect(self.remote_addr())).await {
            Ok(stream) => stream,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "BGP connect timed out",
            )),
        }
    }

    /// Applies this session's TTL and GTSM to a connection accepted by a listener (MD5 is
    /// inherited from the listening socket).
    pub fn configure_accepted(&self, stream: &TcpStream) -> io::Result<()> {
        let without_md5 = Self {
            md5_password: None,
            ..self.clone()
        };
        without_md5.apply(SockRef::from(stream))
    }
}

/// Binds a listening socket on `addr` (IPv6 sockets accept IPv6 only, so a v4 and a v6
/// listener can share a port).
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    // The SYN-ACK leaves with the listener's TTL, before we know which peer connected:
    // 255 lets GTSM peers (whose minimum is 255) complete the handshake; the accepted
    // socket then gets the peer's own TTL.
    if addr.is_ipv6() {
        socket.set_unicast_hops_v6(255)?;
    } else {
        socket.set_ttl_v4(255)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    TcpListener::from_std(socket.into())
}

/// Installs (or with `None`, removes) the MD5 key for `peer` on a listening socket, so
/// that the kernel accepts that peer's signed SYNs.
pub fn set_listener_md5(
    listener: &TcpListener,
    peer: IpAddr,
    password: Option<&str>,
) -> io::Result<()> {
    let sock = SockRef::from(listener);
    if sock.local_addr()?.is_ipv6() != peer.is_ipv6() {
        return Ok(());
    }
    sockopt::set_tcp_md5(&*sock, peer, password.unwrap_or("").as_bytes())
}

/// Sets the GTSM minimum TTL of a listening socket (0 disables it). The listener is
/// shared by all peers of its family, so the caller passes the least strict minimum among
/// them; each accepted connection then gets its own peer's.
pub fn set_listener_min_ttl(listener: &TcpListener, min: u8) -> io::Result<()> {
    let sock = SockRef::from(listener);
    let v6 = sock.local_addr()?.is_ipv6();
    sockopt::set_min_ttl(&*sock, v6, min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtsm_sends_255_and_accepts_from_the_configured_hops() {
        let mut t = Transport::new("10.0.0.1".parse().expect("ip"));
        t.ttl = Some(1);
        assert_eq!(t.send_ttl(), Some(1));
        assert_eq!(t.min_ttl(), None);
        t.gtsm_hops = Some(1);
        assert_eq!(t.send_ttl(), Some(255));
        assert_eq!(t.min_ttl(), Some(255));
        t.gtsm_hops = Some(3);
        assert_eq!(t.min_ttl(), Some(253));
    }

    #[tokio::test]
    async fn connects_with_source_address_ttl_and_md5() {
        let listener = listen("127.0.0.1:0".parse().expect("addr")).expect("listen");
        let port = listener.local_addr().expect("addr").port();
        set_listener_md5(&listener, "127.0.0.2".parse().expect("ip"), Some("pw")).expect("md5");
        let mut t = Transport::new("127.0.0.1".parse().expect("ip"));
        t.remote_port = port;
        t.local = Some("127.0.0.2".parse().expect("ip"));
        t.ttl = Some(2);
        t.md5_password = Some("pw".into());
        let stream = t.connect(Duration::from_secs(5)).await.expect("connect");
        let (accepted, from) = listener.accept().await.expect("accept");
        assert_eq!(from.ip(), t.local.expect("local"));
        assert_eq!(stream.local_addr().expect("addr").ip(), from.ip());
        assert_eq!(SockRef::from(&stream).ttl_v4().expect("ttl"), 2);
        t.configure_accepted(&accepted).expect("configure");
    }

    #[tokio::test]
    async fn md5_mismatch_prevents_the_connection() {
        let listener = listen("127.0.0.1:0".parse().expect("addr")).expect("listen");
        let port = listener.local_addr().expect("addr").port();
        set_listener_md5(&listener, "127.0.0.3".parse().expect("ip"), Some("right")).expect("md5");
        let mut t = Transport::new("127.0.0.1".parse().expect("ip"));
        t.remote_port = port;
        t.local = Some("127.0.0.3".parse().expect("ip"));
        t.md5_password = Some("wrong".into());
        // The listener drops the unsigned-as-expected SYN; the connect times out.
        assert!(t.connect(Duration::from_millis(300)).await.is_err());
    }
}
