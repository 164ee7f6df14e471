//! The announcing edge on one interface: answers ARP requests and Neighbor Solicitations
//! for the addresses this node owns there (and only those), sends the takeover burst of
//! gratuitous ARP and unsolicited Neighbor Advertisements, and keeps the solicited-node
//! multicast groups of its addresses joined (so NICs and MLD-snooping switches deliver
//! their solicitations).
//!
//! What is owned is decided elsewhere ([`super::edge`]); this only reads the shared set.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::frame::{self, ETH_P_ARP, ETH_P_IPV6, Mac};
use super::packet_socket::PacketSocket;

/// When a takeover announces, from the moment of taking over: at once, again 50 ms later
/// (a lost first frame), then after Linux's 1 s neighbour `locktime` (updates within it
/// are ignored when an entry changed recently), and once more a second later.
pub const TAKEOVER_BURST: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_millis(50),
    Duration::from_millis(1100),
    Duration::from_millis(2100),
];

/// The addresses this node answers for on one interface.
pub type Owned = Arc<RwLock<BTreeSet<IpAddr>>>;

fn owns(owned: &Owned, ip: IpAddr) -> bool {
    owned
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&ip)
}

/// The responder of one interface: its sockets and tasks (stopped on drop).
pub struct Responder {
    ifindex: u32,
    mac: Mac,
    arp: Arc<PacketSocket>,
    ndp: Arc<PacketSocket>,
    owned: Owned,
    groups: Socket,
    joined: BTreeSet<Ipv6Addr>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Responder {
    /// Opens the sockets of interface `ifindex` (Ethernet address `mac`) and starts
    /// answering for what `owned` holds.
    pub fn start(ifindex: u32, mac: Mac, owned: Owned) -> std::io::Result<Responder> {
        let arp = Arc::new(PacketSocket::open(ifindex, ETH_P_ARP)?);
        let ndp = Arc::new(PacketSocket::open(ifindex, ETH_P_IPV6)?);
        ndp.only_neighbor_solicitations()?;
        let groups = Socket::new(Domain::IPV6, Type::DGRAM, None)?;
        let tasks = vec![
            tokio::spawn(answer_arp(arp.clone(), mac, owned.clone())),
            tokio::spawn(answer_ndp(ndp.clone(), mac, owned.clone())),
        ];
        Ok(Responder {
            ifindex,
            mac,
            arp,
            ndp,
            owned,
            groups,
            joined: BTreeSet::new(),
            tasks,
        })
    }

    /// The interface's MAC address.
    pub fn mac(&self) -> Mac {
        self.mac
    }

    /// Sets what is owned here; the addresses newly owned get the takeover burst.
    pub fn set_owned(&mut self, now_owned: BTreeSet<IpAddr>) {
        let gained: Vec<IpAddr> = {
            let mut owned = self.owned.write().unwrap_or_else(|e| e.into_inner());
            let gained = now_owned.difference(&owned).copied().collect();
            *owned = now_owned;
            gained
        };
        if !gained.is_empty() {
            self.tasks.retain(|t| !t.is_finished());
            self.tasks.push(tokio::spawn(announce(
                self.arp.clone(),
                self.ndp.clone(),
                self.mac,
                self.owned.clone(),
                gained,
            )));
        }
    }

    /// Keeps the solicited-node groups of `addresses` (the IPv6 ones this node may answer
    /// for here) joined, and leaves the others.
    pub fn set_groups(&mut self, addresses: &BTreeSet<IpAddr>) {
        let want: BTreeSet<Ipv6Addr> = addresses
            .iter()
            .filter_map(|a| match a {
                IpAddr::V6(v6) => Some(frame::solicited_node(*v6)),
                IpAddr::V4(_) => None,
            })
            .collect();
        for g in self.joined.difference(&want) {
            if let Err(e) = self.groups.leave_multicast_v6(g, self.ifindex) {
                debug!(group = %g, "leaving the solicited-node group: {e}");
            }
        }
        let mut joined = BTreeSet::new();
        for g in &want {
            if self.joined.contains(g) {
                joined.insert(*g);
                continue;
            }
            match self.groups.join_multicast_v6(g, self.ifindex) {
                Ok(()) => {
                    joined.insert(*g);
                }
                Err(e) => {
                    warn!(group = %g, ifindex = self.ifindex, "joining the solicited-node group: {e}")
                }
            }
        }
        self.joined = joined;
    }
}

async fn answer_arp(socket: Arc<PacketSocket>, mac: Mac, owned: Owned) {
    let mut buf = [0u8; 1600];
    loop {
        let n = match socket.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                warn!("ARP socket: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(req) = frame::parse_arp_request(&buf[..n]) else {
            continue;
        };
        // Announcements (ours come back on some links, a previous owner's may cross) are
        // not questions: never answer them.
        let announcement = req.sender_ip == req.target_ip;
        if announcement || req.sender_mac == mac || !owns(&owned, IpAddr::V4(req.target_ip)) {
            continue;
        }
        if let Err(e) = socket.send(&frame::arp_reply(mac, req.target_ip, &req)) {
            warn!(vip = %req.target_ip, "ARP reply: {e}");
        }
    }
}

async fn answer_ndp(socket: Arc<PacketSocket>, mac: Mac, owned: Owned) {
    let mut buf = [0u8; 1600];
    loop {
        let n = match socket.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                warn!("NDP socket: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(ns) = frame::parse_neighbor_solicitation(&buf[..n]) else {
            continue;
        };
        if ns.eth_src == mac || !owns(&owned, IpAddr::V6(ns.target)) {
            continue;
        }
        if let Err(e) = socket.send(&frame::neighbor_advertisement_for(mac, &ns)) {
            warn!(vip = %ns.target, "Neighbor Advertisement: {e}");
        }
    }
}

/// Sends the takeover burst for `gained`, each frame only while the address is still owned.
async fn announce(
    arp: Arc<PacketSocket>,
    ndp: Arc<PacketSocket>,
    mac: Mac,
    owned: Owned,
    gained: Vec<IpAddr>,
) {
    let start = tokio::time::Instant::now();
    for at in TAKEOVER_BURST {
        tokio::time::sleep_until(start + at).await;
        for ip in &gained {
            if !owns(&owned, *ip) {
                continue;
            }
            let sent = match ip {
                IpAddr::V4(v4) => arp.send(&frame::gratuitous_arp(mac, *v4)),
                IpAddr::V6(v6) => ndp.send(&frame::unsolicited_neighbor_advertisement(mac, *v6)),
            };
            if let Err(e) = sent {
                warn!(vip = %ip, "announcing: {e}");
            }
        }
    }
}
