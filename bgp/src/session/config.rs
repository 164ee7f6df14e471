//! What one session is configured to be: the BGP-level settings the state machine and the
//! OPEN it sends depend on. No addresses or sockets here (those are the driver's
//! `Transport`), so a change to this value is exactly a change that needs a new session.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::wire::iana::Family;

/// Which AS the peer must announce in its OPEN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerAs {
    /// Exactly this AS (RFC 4271 §6.2, Bad Peer AS otherwise).
    Exact(u32),
    /// Any AS: whatever the peer sends is accepted (e.g. a route server or dynamic peers).
    Any,
}

/// Who opens the TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ConnectMode {
    /// Connect out and accept incoming connections (collision detection picks one).
    #[default]
    Both,
    /// Only connect out; incoming connections from this peer are refused.
    Active,
    /// Only accept; never connect out (RFC 4271 PassiveTcpEstablishment).
    Passive,
}

/// Graceful restart (RFC 4724) as the restarting speaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// Restart time advertised to the peer, in seconds (12 bits, at most 4095).
    pub restart_time: u16,
    /// Whether we say forwarding state was preserved (the F bit) for our families: true
    /// for a load-balancer speaker, whose data plane (the node) keeps forwarding while the
    /// speaker restarts.
    pub forwarding_preserved: bool,
    /// RFC 8538 N bit: graceful restart also applies to NOTIFICATION-triggered resets.
    pub notification: bool,
}

impl Default for GracefulRestart {
    fn default() -> Self {
        Self {
            restart_time: 120,
            forwarding_preserved: true,
            notification: true,
        }
    }
}

/// The max-prefix limit on received routes (RFC 4486 Cease subcode 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MaxPrefix {
    /// More routes than this (all families together) ends the session.
    pub limit: u64,
    /// How long to stay Idle before reconnecting; `None` stays down until restarted.
    pub restart_after: Option<Duration>,
}

/// The BGP-level configuration of one session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionConfig {
    /// Our AS.
    pub local_as: u32,
    /// The AS the peer must have.
    pub peer_as: PeerAs,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// Hold time we propose, in seconds (0, or at least 3).
    pub hold_time: u16,
    /// Keepalive interval, seconds; `None` is a third of the negotiated hold time.
    pub keepalive: Option<u16>,
    /// Time between connection attempts (jittered).
    pub connect_retry: Duration,
    /// Idle time after the first failure; doubles for each further consecutive one.
    pub idle_hold: Duration,
    /// Upper bound of the idle hold back-off.
    pub max_idle_hold: Duration,
    /// Who connects.
    pub mode: ConnectMode,
    /// Address families we offer (multiprotocol capability).
    pub families: Vec<Family>,
    /// Offer RFC 8654 extended messages.
    pub extended_message: bool,
    /// Graceful restart as the restarting speaker; `None` does not advertise it.
    pub graceful_restart: Option<GracefulRestart>,
    /// Set in the GR capability's R bit: we are coming back from a restart.
    pub restarting: bool,
    /// Limit on received routes. Setting one makes the session keep a key per received
    /// path to count them exactly; memory is then bounded by the limit, since exceeding it
    /// ends the session (RFC 4486). Without one (and without `keep_received`) the session
    /// keeps nothing per path: NLRI counters only, O(1) memory (`rib::Tracking`).
    pub max_prefix: Option<MaxPrefix>,
    /// Keep received routes (attributes too) for inspection; bounded only by `max_prefix`.
    pub keep_received: bool,
}

impl SessionConfig {
    /// A configuration with the usual defaults: hold time 90 s, connect retry 30 s,
    /// IPv4 and IPv6 unicast, graceful restart advertised, route refresh, no limits.
    pub fn new(local_as: u32, peer_as: PeerAs, router_id: Ipv4Addr) -> Self {
        Self {
            local_as,
            peer_as,
            router_id,
            hold_time: 90,
            keepalive: None,
            connect_retry: Duration::from_secs(30),
            idle_hold: Duration::from_secs(1),
            max_idle_hold: Duration::from_secs(120),
            mode: ConnectMode::Both,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            extended_message: true,
            graceful_restart: Some(GracefulRestart::default()),
            restarting: false,
            max_prefix: None,
            keep_received: false,
        }
    }

    /// Whether going from `self` to `new` needs a new session. Only this side's pacing —
    /// the keepalive interval, the connect-retry time and the idle hold-down back-off — can
    /// change under a running session ([`Event::Retime`](super::Event::Retime)): RFC 4271
    /// negotiates none of them. Everything else is in the OPEN (AS, identifier, hold time,
    /// families, capabilities), decides who connects, or shapes what the session keeps.
    pub fn needs_new_session(&self, new: &SessionConfig) -> bool {
        let unpaced = |c: &SessionConfig| SessionConfig {
            keepalive: None,
            connect_retry: Duration::ZERO,
            idle_hold: Duration::ZERO,
            max_idle_hold: Duration::ZERO,
            ..c.clone()
        };
        unpaced(self) != unpaced(new)
    }

    /// Why this configuration cannot make a valid OPEN, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.local_as == 0 {
            return Err("local AS 0 is reserved (RFC 7607)".into());
        }
        if self.peer_as == PeerAs::Exact(0) {
            return Err("peer AS 0 is reserved (RFC 7607)".into());
        }
        if self.router_id.is_unspecified() {
            return Err("router id 0.0.0.0 is not a valid BGP identifier".into());
        }
        if self.hold_time == 1 || self.hold_time == 2 {
            return Err(format!(
                "hold time {} s: must be 0 or at least 3 (RFC 4271 §4.2)",
                self.hold_time
            ));
        }
        if self.families.is_empty() {
            return Err("no address family".into());
        }
        if self
            .graceful_restart
            .is_some_and(|g| g.restart_time > 0x0FFF)
        {
            return Err("graceful restart time above 4095 s (RFC 4724 §3)".into());
        }
        Ok(())
    }

    /// Whether the session is internal BGP (same AS on both ends).
    pub fn is_ibgp(&self, peer_as: u32) -> bool {
        self.local_as == peer_as
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_catches_what_would_make_a_bad_open() {
        let good = SessionConfig::new(65001, PeerAs::Exact(65000), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(good.validate(), Ok(()));
        let mut c = good.clone();
        c.hold_time = 2;
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.router_id = Ipv4Addr::UNSPECIFIED;
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.peer_as = PeerAs::Exact(0);
        assert!(c.validate().is_err());
        let mut c = good;
        c.families.clear();
        assert!(c.validate().is_err());
    }
}
