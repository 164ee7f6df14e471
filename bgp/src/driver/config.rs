//! The configuration a `Speaker` runs with: where it listens, and per peer the session
//! (BGP) and transport (TCP/IP) settings. Comparing an old and a new `PeerConfig` tells
//! whether a change needs a new session.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::sync::watch;

use crate::session::{ConnectMode, PeerAs, SessionConfig};

use super::transport::{BGP_PORT, Transport};

/// Speaker-wide settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpeakerConfig {
    /// Our AS (default for peers).
    pub local_as: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// Addresses to accept connections on; empty accepts none (active-only speaker).
    pub listen_addresses: Vec<IpAddr>,
    /// Port to listen on (179; OpenELB deployments use 17900).
    pub listen_port: u16,
}

impl SpeakerConfig {
    /// Listens on all IPv4 and IPv6 addresses, port 179.
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> Self {
        Self {
            local_as,
            router_id,
            listen_addresses: vec![Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()],
            listen_port: BGP_PORT,
        }
    }

    /// The socket addresses to listen on.
    pub fn listen_sockets(&self) -> Vec<SocketAddr> {
        self.listen_addresses
            .iter()
            .map(|a| SocketAddr::new(*a, self.listen_port))
            .collect()
    }
}

/// One configured peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// Free text for humans; changing it resets nothing.
    pub description: String,
    /// BGP-level settings.
    pub session: SessionConfig,
    /// TCP/IP-level settings (the peer's address is `transport.remote`).
    pub transport: Transport,
    /// Next hop self for IPv4 routes instead of the session's local address.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// Next hop self for IPv6 routes instead of the session's local address (e.g. when
    /// the session runs over IPv4).
    pub next_hop_v6: Option<Ipv6Addr>,
    /// Time between the last byte the peer read and tearing the session down, when it
    /// stops reading (RFC 9687 send hold timer); `None` uses the negotiated hold time
    /// (8 minutes when that is 0).
    pub send_hold_time: Option<Duration>,
    /// Follow a BFD session (RFC 5882 §4.3): the BGP session does not start while the
    /// gate is closed and is stopped at once when it closes. Changing it resets nothing.
    pub bfd_gate: Option<BfdGate>,
}

/// A BFD session's "is Up" flag, owned by whoever runs BFD (e.g. the `bfd` crate's
/// `SessionHandle::up()`); this crate only watches it. Two gates are equal when they
/// watch the same channel.
#[derive(Clone, Debug)]
pub struct BfdGate(pub watch::Receiver<bool>);

impl BfdGate {
    /// Whether the BFD session is Up.
    pub fn is_open(&self) -> bool {
        *self.0.borrow()
    }
}

impl PartialEq for BfdGate {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_channel(&other.0)
    }
}

impl Eq for BfdGate {}

impl PeerConfig {
    /// A peer at `address` in AS `peer_as` (eBGP or iBGP by comparison with `local_as`),
    /// on port 179, both connecting and accepting, with the session defaults.
    pub fn new(address: IpAddr, local_as: u32, peer_as: u32, router_id: Ipv4Addr) -> Self {
        let mut transport = Transport::new(address);
        if local_as != peer_as {
            // eBGP single hop (RFC 4271 §5.1.3 assumes directly connected peers).
            transport.ttl = Some(1);
        }
        Self {
            description: String::new(),
            session: SessionConfig::new(local_as, PeerAs::Exact(peer_as), router_id),
            transport,
            next_hop_v4: None,
            next_hop_v6: None,
            send_hold_time: None,
            bfd_gate: None,
        }
    }

    /// The peer's address.
    pub fn address(&self) -> IpAddr {
        self.transport.remote
    }

    /// Whether going from `self` to `new` needs a new session: the description, the BFD
    /// gate and the session's pacing (keepalive, connect retry, idle hold-down: see
    /// [`SessionConfig::needs_new_session`]) change without one; anything else (AS,
    /// address, password, port, hold time, families...) needs one.
    pub fn needs_reset(&self, new: &PeerConfig) -> bool {
        let rest = |c: &PeerConfig| PeerConfig {
            description: String::new(),
            bfd_gate: None,
            session: SessionConfig::new(0, PeerAs::Any, Ipv4Addr::UNSPECIFIED),
            ..c.clone()
        };
        self.session.needs_new_session(&new.session) || rest(self) != rest(new)
    }

    /// Whether this peer accepts incoming connections.
    pub fn accepts(&self) -> bool {
        self.session.mode != ConnectMode::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_description_bfd_and_pacing_change_without_a_reset() {
        let a = PeerConfig::new(
            "10.0.0.1".parse().expect("ip"),
            65001,
            65000,
            Ipv4Addr::new(1, 1, 1, 1),
        );
        let mut b = a.clone();
        b.description = "rack 7 top-of-rack".into();
        assert!(!a.needs_reset(&b));
        let mut c = a.clone();
        c.transport.md5_password = Some("secret".into());
        assert!(a.needs_reset(&c));
        let mut d = a.clone();
        d.session.peer_as = PeerAs::Exact(65002);
        assert!(a.needs_reset(&d));
        let mut e = a.clone();
        e.transport.remote_port = 17900;
        assert!(a.needs_reset(&e));
        let mut paced = a.clone();
        paced.session.keepalive = Some(7);
        paced.session.connect_retry = Duration::from_secs(2);
        paced.session.idle_hold = Duration::from_secs(3);
        assert!(
            !a.needs_reset(&paced),
            "pacing changes under a running session"
        );
        let mut hold = a.clone();
        hold.session.hold_time = 30;
        assert!(a.needs_reset(&hold), "the hold time is in the OPEN");
        assert_eq!(a.transport.ttl, Some(1), "eBGP is single hop by default");
        let mut f = a.clone();
        let (_tx, rx) = watch::channel(false);
        f.bfd_gate = Some(BfdGate(rx));
        assert!(!a.needs_reset(&f), "the task follows a new gate itself");
        assert_ne!(a, f);
    }
}
