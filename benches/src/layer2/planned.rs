//! Planned moves under probing: while the client probes both VIPs over UDP and ARP/NDP
//! every millisecond, each cycle cordons and uncordons every node in turn (a drain, then
//! the node back: a join) and restarts every speaker in turn (SIGTERM, start again: a
//! rolling restart). Make-before-break means no probe lost and no request unanswered.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use testbed::traffic::neighbor::{self, NeighborProbes};

use super::lab::{FailoverLab, NODES, PORT};
use super::{prober, view};

/// How long a move may take before the run gives up.
const CONVERGE: Duration = Duration::from_secs(30);

/// What one VIP saw over the run.
#[derive(Debug, Serialize)]
pub struct VipFigures {
    /// The VIP.
    pub vip: IpAddr,
    /// UDP probes sent.
    pub udp_sent: u64,
    /// UDP probes not answered.
    pub udp_lost: u64,
    /// ARP requests / Neighbor Solicitations sent.
    pub neighbor_sent: usize,
    /// Of them, answered by nobody.
    pub neighbor_unanswered: usize,
    /// Of them, answered by two nodes (the handover overlap).
    pub neighbor_answered_twice: usize,
    /// Frames the client's socket dropped (nonzero: `neighbor_unanswered` is an upper bound).
    pub client_socket_dropped: u32,
}

/// The run's figures.
#[derive(Debug, Serialize)]
pub struct Figures {
    /// Cycles run.
    pub cycles: usize,
    /// Drains (cordon) done.
    pub drains: usize,
    /// Nodes back (uncordon) done.
    pub joins: usize,
    /// Speaker restarts (SIGTERM, start) done.
    pub restarts: usize,
    /// Address moves seen (owner changes between settled states).
    pub moves: usize,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// Per VIP.
    pub vips: Vec<VipFigures>,
}

fn mac_bytes(text: &str) -> [u8; 6] {
    let v: Vec<u8> = text
        .split(':')
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect();
    v.try_into().unwrap_or([0; 6])
}

fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + CONVERGE;
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn moved(a: &BTreeMap<IpAddr, String>, b: &BTreeMap<IpAddr, String>) -> usize {
    a.iter().filter(|(ip, o)| b.get(*ip) != Some(*o)).count()
}

type Probes = (
    std::thread::JoinHandle<std::io::Result<(u64, Vec<prober::Reply>)>>,
    std::thread::JoinHandle<std::io::Result<NeighborProbes>>,
);

/// Runs `cycles` cycles; `client_mac` is the client's `eth0` MAC (`aa:bb:…`).
pub fn run(
    lab: &mut FailoverLab,
    berthctl: &Path,
    vips: &[IpAddr],
    client_mac: &str,
    cycles: usize,
) -> Figures {
    let all = view::all();
    let mut owners = wait("the owners", || view::agreed(lab, berthctl, &all));
    let client = lab
        .lab
        .netns("client")
        .unwrap_or_else(|e| panic!("client: {e}"));
    let stop = Arc::new(AtomicBool::new(false));
    let mac = mac_bytes(client_mac);
    let probes: Vec<Probes> = vips
        .iter()
        .map(|vip| {
            let (vip, s1, s2) = (*vip, stop.clone(), stop.clone());
            let udp = client
                .spawn_thread(move || {
                    prober::probe(SocketAddr::new(vip, PORT), Duration::from_millis(1), &s1)
                })
                .unwrap_or_else(|e| panic!("prober: {e}"));
            let asking = client
                .spawn_thread(move || {
                    neighbor::probe("eth0", mac, vip, Duration::from_millis(1), &s2)
                })
                .unwrap_or_else(|e| panic!("neighbour prober: {e}"));
            (udp, asking)
        })
        .collect();
    let start = Instant::now();
    let (mut drains, mut joins, mut restarts, mut moves) = (0, 0, 0, 0);
    for cycle in 0..cycles {
        for node in NODES {
            lab.cordon(&[node])
                .unwrap_or_else(|e| panic!("cordon: {e}"));
            let after = wait("a drained node's addresses to move", || {
                view::agreed(lab, berthctl, &all).filter(|o| o.values().all(|n| n != node))
            });
            moves += moved(&owners, &after);
            drains += 1;
            lab.cordon(&[]).unwrap_or_else(|e| panic!("uncordon: {e}"));
            // The owners are a function of the live candidates: the same as before.
            let back = wait("the node back to take its share", || {
                view::agreed(lab, berthctl, &all).filter(|o| *o == owners)
            });
            moves += moved(&after, &back);
            joins += 1;
            owners = back;
        }
        for node in NODES {
            if let Some(p) = lab.daemons.get_mut(node) {
                p.stop(Duration::from_secs(10));
            }
            let rest: Vec<&str> = NODES.iter().copied().filter(|n| *n != node).collect();
            let after = wait("a stopped speaker's addresses to move", || {
                view::agreed(lab, berthctl, &rest).filter(|o| o.values().all(|n| n != node))
            });
            moves += moved(&owners, &after);
            lab.start(node).unwrap_or_else(|e| panic!("start: {e}"));
            let back = wait("the restarted speaker to take its share", || {
                view::agreed(lab, berthctl, &all).filter(|o| *o == owners)
            });
            moves += moved(&after, &back);
            restarts += 1;
            owners = back;
        }
        eprintln!("cycle {cycle}: {moves} moves so far");
    }
    // The last handover's overlap and burst are over before the probes stop.
    std::thread::sleep(Duration::from_millis(500));
    let seconds = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let vips = vips
        .iter()
        .zip(probes)
        .map(|(vip, (udp, asking))| {
            let (sent, replies) = udp
                .join()
                .unwrap_or_else(|_| panic!("prober panicked"))
                .unwrap_or_else(|e| panic!("prober: {e}"));
            let n = asking
                .join()
                .unwrap_or_else(|_| panic!("neighbour prober panicked"))
                .unwrap_or_else(|e| panic!("neighbour prober: {e}"));
            VipFigures {
                vip: *vip,
                udp_sent: sent,
                udp_lost: sent.saturating_sub(replies.len() as u64),
                neighbor_sent: n.sent.len(),
                neighbor_unanswered: n.unanswered(Duration::from_millis(100)).len(),
                neighbor_answered_twice: n.answered_twice(),
                client_socket_dropped: n.dropped,
            }
        })
        .collect();
    Figures {
        cycles,
        drains,
        joins,
        restarts,
        moves,
        seconds,
        vips,
    }
}
