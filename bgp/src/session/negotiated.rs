//! What both ends agreed on once the OPENs were exchanged, as one value: the families,
//! 4-octet AS, ADD-PATH per family and direction, graceful restart, route refresh and
//! extended messages. The codec contexts for both directions come from it.

use std::net::Ipv4Addr;

use crate::wire::capability::{
    AddPathFamily, Capability, GracefulRestart as GrCap, GracefulRestartFamily,
};
use crate::wire::context::{AddPathFamilies, Context};
use crate::wire::iana::Family;
use crate::wire::open::Open;

use super::config::SessionConfig;

/// The peer's graceful restart capability, as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerGracefulRestart {
    /// Restart time the peer advertised, seconds.
    pub restart_time: u16,
    /// The peer's R bit: it has just restarted.
    pub restarting: bool,
    /// The peer's N bit (RFC 8538).
    pub notification: bool,
    /// Families for which the peer preserved forwarding state.
    pub forwarding: Vec<Family>,
}

/// The outcome of capability negotiation for one established session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer's AS (from its 4-octet AS capability when present).
    pub peer_as: u32,
    /// The peer is in another AS (eBGP).
    pub external: bool,
    /// The peer's BGP identifier.
    pub peer_id: Ipv4Addr,
    /// Negotiated hold time in seconds (0: no keepalives, no hold timer).
    pub hold_time: u16,
    /// Families both sides announced (IPv4 unicast when neither sent multiprotocol
    /// capabilities, RFC 4760 §8).
    pub families: Vec<Family>,
    /// Both sides support 4-octet AS numbers (RFC 6793).
    pub four_octet_as: bool,
    /// Both sides support extended messages (RFC 8654).
    pub extended_message: bool,
    /// The peer supports route refresh (RFC 2918, or the pre-standard code 128).
    pub route_refresh: bool,
    /// Both sides support enhanced route refresh (RFC 7313).
    pub enhanced_route_refresh: bool,
    /// Families in which we may send path identifiers (we send, they receive).
    pub add_path_send: AddPathFamilies,
    /// Families in which the peer sends us path identifiers.
    pub add_path_receive: AddPathFamilies,
    /// The peer's graceful restart capability, if any.
    pub peer_graceful_restart: Option<PeerGracefulRestart>,
    /// We advertised graceful restart.
    pub local_graceful_restart: bool,
    /// Every capability the peer sent, as received (for display).
    pub peer_capabilities: Vec<Capability>,
}

/// The capabilities our OPEN carries for this configuration.
pub fn local_capabilities(config: &SessionConfig) -> Vec<Capability> {
    let mut caps: Vec<Capability> = config
        .families
        .iter()
        .map(|f| Capability::Multiprotocol(*f))
        .collect();
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::EnhancedRouteRefresh);
    caps.push(Capability::FourOctetAs(config.local_as));
    if config.extended_message {
        caps.push(Capability::ExtendedMessage);
    }
    if let Some(gr) = config.graceful_restart {
        let mut flags = 0;
        if config.restarting {
            flags |= GrCap::RESTART_STATE;
        }
        if gr.notification {
            flags |= GrCap::NOTIFICATION;
        }
        let f_bit = if gr.forwarding_preserved { 0x80 } else { 0 };
        caps.push(Capability::GracefulRestart(GrCap {
            flags,
            restart_time: gr.restart_time.min(0x0FFF),
            families: config
                .families
                .iter()
                .map(|f| GracefulRestartFamily {
                    family: *f,
                    flags: f_bit,
                })
                .collect(),
        }));
    }
    caps
}

/// Whether ADD-PATH is on for `family` in the direction where `sender` sends and
/// `receiver` receives.
fn add_path(sender: &[AddPathFamily], receiver: &[AddPathFamily], family: Family) -> bool {
    sender.iter().any(|a| a.family == family && a.mode.send())
        && receiver
            .iter()
            .any(|a| a.family == family && a.mode.receive())
}

impl Negotiated {
    /// Negotiates from our configuration and the peer's OPEN; `hold_time` is already the
    /// agreed one.
    pub fn new(config: &SessionConfig, open: &Open, hold_time: u16) -> Negotiated {
        let ours = local_capabilities(config);
        let theirs: Vec<Capability> = open.capabilities().cloned().collect();
        let has = |caps: &[Capability], f: &dyn Fn(&Capability) -> bool| caps.iter().any(f);
        let mp = |caps: &[Capability]| -> Vec<Family> {
            let v: Vec<Family> = caps
                .iter()
                .filter_map(|c| {
                    if let Capability::Multiprotocol(f) = c {
                        Some(*f)
                    } else {
                        None
                    }
                })
                .collect();
            if v.is_empty() {
                vec![Family::IPV4_UNICAST]
            } else {
                v
            }
        };
        let their_families = mp(&theirs);
        let families: Vec<Family> = mp(&ours)
            .into_iter()
            .filter(|f| their_families.contains(f))
            .collect();
        let add_paths = |caps: &[Capability]| -> Vec<AddPathFamily> {
            caps.iter()
                .filter_map(|c| {
                    if let Capability::AddPath(v) = c {
                        Some(v.clone())
                    } else {
                        None
                    }
                })
                .flatten()
                .collect()
        };
        // We never offer ADD-PATH (next hop self needs one path per prefix), so both
        // directions stay off unless that changes; computed all the same so that it is
        // right the day we do.
        let (our_ap, their_ap) = (add_paths(&ours), add_paths(&theirs));
        let dir = |s: &[AddPathFamily], r: &[AddPathFamily]| AddPathFamilies {
            ipv4_unicast: add_path(s, r, Family::IPV4_UNICAST),
            ipv6_unicast: add_path(s, r, Family::IPV6_UNICAST),
        };
        let peer_graceful_restart = theirs.iter().find_map(|c| match c {
            Capability::GracefulRestart(gr) => Some(PeerGracefulRestart {
                restart_time: gr.restart_time,
                restarting: gr.flags & GrCap::RESTART_STATE != 0,
                notification: gr.flags & GrCap::NOTIFICATION != 0,
                forwarding: gr
                    .families
                    .iter()
                    .filter(|f| f.flags & 0x80 != 0)
                    .map(|f| f.family)
                    .collect(),
            }),
            _ => None,
        });
        Negotiated {
            peer_as: open.asn(),
            external: !config.is_ibgp(open.asn()),
            peer_id: open.bgp_id,
            hold_time,
            families,
            four_octet_as: has(&theirs, &|c| matches!(c, Capability::FourOctetAs(_))),
            extended_message: config.extended_message
                && has(&theirs, &|c| matches!(c, Capability::ExtendedMessage)),
            route_refresh: has(&theirs, &|c| {
                matches!(c, Capability::RouteRefresh | Capability::RouteRefreshCisco)
            }),
            enhanced_route_refresh: has(&theirs, &|c| {
                matches!(c, Capability::EnhancedRouteRefresh)
            }),
            add_path_send: dir(&our_ap, &their_ap),
            add_path_receive: dir(&their_ap, &our_ap),
            peer_graceful_restart,
            local_graceful_restart: config.graceful_restart.is_some(),
            peer_capabilities: theirs,
        }
    }

    /// The codec context for messages we send.
    pub fn send_context(&self) -> Context {
        Context {
            four_octet_as: self.four_octet_as,
            extended_message: self.extended_message,
            add_path: self.add_path_send,
            external_peer: self.external,
        }
    }

    /// The codec context for messages we receive.
    pub fn receive_context(&self) -> Context {
        Context {
            four_octet_as: self.four_octet_as,
            extended_message: self.extended_message,
            add_path: self.add_path_receive,
            external_peer: self.external,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::config::PeerAs;
    use crate::wire::capability::AddPathMode;

    fn config() -> SessionConfig {
        SessionConfig::new(65001, PeerAs::Exact(65000), Ipv4Addr::new(10, 0, 0, 1))
    }

    #[test]
    fn frr_like_open_negotiates_everything_both_support() {
        let open = Open::new(
            65000,
            180,
            Ipv4Addr::new(10, 0, 0, 2),
            vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::RouteRefresh,
                Capability::EnhancedRouteRefresh,
                Capability::FourOctetAs(65000),
                Capability::ExtendedMessage,
                Capability::AddPath(vec![AddPathFamily {
                    family: Family::IPV4_UNICAST,
                    mode: AddPathMode::RECEIVE,
                }]),
                Capability::GracefulRestart(GrCap {
                    flags: GrCap::NOTIFICATION,
                    restart_time: 120,
                    families: vec![GracefulRestartFamily {
                        family: Family::IPV4_UNICAST,
                        flags: 0x80,
                    }],
                }),
            ],
        );
        let n = Negotiated::new(&config(), &open, 90);
        assert_eq!(n.families, vec![Family::IPV4_UNICAST]);
        assert!(
            n.four_octet_as && n.extended_message && n.route_refresh && n.enhanced_route_refresh
        );
        assert!(
            !n.add_path_send.ipv4_unicast,
            "we do not offer to send paths"
        );
        assert!(!n.add_path_receive.ipv4_unicast);
        let gr = n.peer_graceful_restart.as_ref().expect("gr");
        assert!(gr.notification && !gr.restarting);
        assert_eq!(gr.forwarding, vec![Family::IPV4_UNICAST]);
        assert_eq!(n.send_context().max_message_len(), 65535);
    }

    #[test]
    fn a_bare_open_means_ipv4_unicast_with_2_octet_as() {
        let open = Open::new(65000, 90, Ipv4Addr::new(10, 0, 0, 2), vec![]);
        let n = Negotiated::new(&config(), &open, 90);
        assert_eq!(n.families, vec![Family::IPV4_UNICAST]);
        assert!(!n.four_octet_as && !n.extended_message && !n.route_refresh);
        assert_eq!(
            n.receive_context(),
            Context {
                external_peer: n.external,
                ..Context::default()
            }
        );
    }

    #[test]
    fn the_codec_knows_whether_the_peer_is_external() {
        // config(): local AS 65001.
        let internal = Open::new(65001, 90, Ipv4Addr::new(10, 0, 0, 2), vec![]);
        let n = Negotiated::new(&config(), &internal, 90);
        assert!(!n.external && !n.receive_context().external_peer);
        let external = Open::new(65000, 90, Ipv4Addr::new(10, 0, 0, 2), vec![]);
        let n = Negotiated::new(&config(), &external, 90);
        assert!(n.external && n.receive_context().external_peer);
    }

    #[test]
    fn our_open_advertises_gr_with_forwarding_and_n_bit() {
        let caps = local_capabilities(&config());
        let gr = caps
            .iter()
            .find_map(|c| {
                if let Capability::GracefulRestart(g) = c {
                    Some(g)
                } else {
                    None
                }
            })
            .expect("gr");
        assert_eq!(gr.flags & GrCap::NOTIFICATION, GrCap::NOTIFICATION);
        assert!(gr.families.iter().all(|f| f.flags == 0x80));
        assert_eq!(gr.families.len(), 2);
    }
}
