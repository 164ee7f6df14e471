//! The typed description every driver renders into its own configuration language.

use std::net::{IpAddr, Ipv4Addr};

use ipnetwork::IpNetwork;

/// A BGP speaker's configuration, small enough to render for any daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// Host name (FRR `hostname`); also names log files.
    pub hostname: String,
    /// BGP identifier.
    pub router_id: Ipv4Addr,
    /// Local AS number.
    pub local_as: u32,
    /// Configured neighbours.
    pub neighbors: Vec<Neighbor>,
    /// Dynamic neighbours: accept sessions from any address in a range (passive).
    pub listen_ranges: Vec<ListenRange>,
    /// Prefixes this router originates (next hop self).
    pub announce: Vec<IpNetwork>,
    /// Install several equal paths into the kernel (BIRD `merge paths`, FRR `maximum-paths`).
    pub ecmp: bool,
    /// Install BGP routes into the kernel FIB at all.
    pub install_routes: bool,
    /// Session timers.
    pub timers: Timers,
}

/// BGP timers in seconds. Short defaults keep labs fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Hold time (keepalive is a third of it).
    pub hold: u16,
    /// Connect-retry time.
    pub connect_retry: u16,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            hold: 9,
            connect_retry: 1,
        }
    }
}

/// One configured neighbour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// The peer's address (its session address).
    pub address: IpAddr,
    /// The peer's AS (equal to the local AS for iBGP).
    pub remote_as: u32,
    /// Only accept connections, never connect out.
    pub passive: bool,
    /// eBGP multihop TTL, if the peer is not directly connected.
    pub multihop: Option<u8>,
    /// TCP MD5 password (RFC 2385).
    pub password: Option<String>,
    /// Track the session with BFD.
    pub bfd: bool,
    /// The local session address, when it must be fixed (ExaBGP needs it; others use it as
    /// update source).
    pub local_address: Option<IpAddr>,
    /// Graceful-restart helper (RFC 4724 receiving speaker) for this neighbour, configured
    /// explicitly: keep its routes, marked stale, while it restarts, until its End-of-RIB
    /// (BIRD `graceful restart aware`, FRR `graceful-restart-helper`, GoBGP
    /// `graceful-restart` `helper-only`). BIRD and FRR are helpers by default; GoBGP is not.
    pub graceful_restart: bool,
}

impl Neighbor {
    /// A plain neighbour at `address` in `remote_as`.
    pub fn new(address: IpAddr, remote_as: u32) -> Self {
        Neighbor {
            address,
            remote_as,
            passive: false,
            multihop: None,
            password: None,
            bfd: false,
            local_address: None,
            graceful_restart: false,
        }
    }

    /// Same, with a fixed local address.
    pub fn local_address(mut self, address: IpAddr) -> Self {
        self.local_address = Some(address);
        self
    }

    /// Same, passive.
    pub fn passive(mut self) -> Self {
        self.passive = true;
        self
    }

    /// Same, with a TCP MD5 password.
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_string());
        self
    }

    /// Same, multihop with `ttl`.
    pub fn multihop(mut self, ttl: u8) -> Self {
        self.multihop = Some(ttl);
        self
    }

    /// Same, with BFD.
    pub fn bfd(mut self) -> Self {
        self.bfd = true;
        self
    }

    /// Same, graceful-restart helper configured (see [`Neighbor::graceful_restart`]).
    pub fn graceful_restart(mut self) -> Self {
        self.graceful_restart = true;
        self
    }
}

/// A range of addresses from which sessions are accepted, all in one AS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenRange {
    /// The range.
    pub prefix: IpNetwork,
    /// The AS of every peer in it.
    pub remote_as: u32,
}

impl RouterConfig {
    /// A router with no neighbours yet: ECMP on, routes installed, short timers.
    pub fn new(hostname: &str, router_id: Ipv4Addr, local_as: u32) -> Self {
        RouterConfig {
            hostname: hostname.to_string(),
            router_id,
            local_as,
            neighbors: Vec::new(),
            listen_ranges: Vec::new(),
            announce: Vec::new(),
            ecmp: true,
            install_routes: true,
            timers: Timers::default(),
        }
    }

    /// Adds a neighbour.
    pub fn neighbor(mut self, neighbor: Neighbor) -> Self {
        self.neighbors.push(neighbor);
        self
    }

    /// Adds a dynamic neighbour range.
    pub fn listen(mut self, prefix: IpNetwork, remote_as: u32) -> Self {
        self.listen_ranges.push(ListenRange { prefix, remote_as });
        self
    }

    /// Adds an originated prefix.
    pub fn announce(mut self, prefix: IpNetwork) -> Self {
        self.announce.push(prefix);
        self
    }

    /// Whether any neighbour or range is IPv6 (or an IPv6 prefix is announced).
    pub(crate) fn has_ipv6(&self) -> bool {
        self.neighbors.iter().any(|n| n.address.is_ipv6())
            || self.listen_ranges.iter().any(|r| r.prefix.is_ipv6())
            || self.announce.iter().any(IpNetwork::is_ipv6)
    }
}
