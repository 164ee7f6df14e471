//! The 1,000-address failover: the node owning 10.9.0.200 — about a third of every
//! family's addresses — loses its cable; the capture times the first announcement of
//! **every** address it owned by its new owner, and the client probes a sample of them
//! (every [`super::lab::SAMPLE_EVERY`]th extra address) over UDP, one datagram per address
//! per millisecond, to time when each answers from its new owner.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::capture::{self, Announcement};
use super::lab::{FailoverLab, PORT, SAMPLE_EVERY, VIP4, extra_vip};
use super::view;
use crate::whole::probe::now_ns;

/// One trial.
#[derive(Debug, Serialize)]
pub struct ManyTrial {
    /// Trial number.
    pub trial: usize,
    /// The node whose cable was pulled.
    pub old_owner: String,
    /// Addresses it owned (both families).
    pub addresses: usize,
    /// Of them IPv4 / IPv6.
    pub addresses_v4: usize,
    /// IPv6.
    pub addresses_v6: usize,
    /// Fault → the first announcement by another node of the last of its addresses
    /// (`None`: some were never announced in the window).
    pub all_announced_ms: Option<f64>,
    /// Fault → the median address's first announcement.
    pub median_announced_ms: Option<f64>,
    /// Addresses never announced by another node in the window.
    pub never_announced: usize,
    /// Fault → the last of its addresses decided by its new owner (the speakers' logs).
    pub all_decided_ms: Option<f64>,
    /// Fault → the median address decided.
    pub median_decided_ms: Option<f64>,
    /// Sampled addresses probed.
    pub sampled: usize,
    /// Fault → the last sampled address answered from its new owner (`None`: one never was).
    pub sample_switched_ms: Option<f64>,
    /// Per sampled address: the last reply from the old owner → the first from the new one.
    pub sample_gaps_ms: Vec<f64>,
}

fn ms(from: u64, to: u64) -> f64 {
    (to as f64 - from as f64) / 1e6
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// (when, address, node) of every reply.
type Replies = Vec<(u64, IpAddr, String)>;

/// Probes every address of `targets` once per `every` until `stop`.
fn probe_many(
    targets: &[IpAddr],
    every: Duration,
    stop: &Arc<AtomicBool>,
) -> std::io::Result<Replies> {
    let v6 = UdpSocket::bind(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)))?;
    v6.set_read_timeout(Some(Duration::from_millis(20)))?;
    let receiver = v6.try_clone()?;
    let replies = Arc::new(Mutex::new(Replies::new()));
    let done = Arc::new(AtomicBool::new(false));
    let (r, d) = (replies.clone(), done.clone());
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while !d.load(Ordering::Relaxed) {
            if let Ok((n, from)) = receiver.recv_from(&mut buf) {
                let ip = match from.ip() {
                    IpAddr::V6(a) => a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4),
                    v4 => v4,
                };
                let node = String::from_utf8_lossy(&buf[..n]).into_owned();
                r.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((now_ns(), ip, node));
            }
        }
    });
    let start = Instant::now();
    let mut round = 0u32;
    while !stop.load(Ordering::Relaxed) {
        for t in targets {
            let to = match t {
                IpAddr::V4(a) => SocketAddr::from((a.to_ipv6_mapped(), PORT)),
                IpAddr::V6(a) => SocketAddr::from((*a, PORT)),
            };
            let _ = v6.send_to(b"?", to);
        }
        round += 1;
        std::thread::sleep((start + every * round).saturating_duration_since(Instant::now()));
    }
    std::thread::sleep(Duration::from_millis(50));
    done.store(true, Ordering::Relaxed);
    let _ = thread.join();
    let out = std::mem::take(&mut *replies.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(out)
}

/// One trial: `extra` extra addresses per family; `settle` after the cable is back.
pub fn trial(
    lab: &FailoverLab,
    berthctl: &Path,
    extra: u32,
    window: Duration,
    trial: usize,
) -> ManyTrial {
    let all = view::all();
    let deadline = Instant::now() + Duration::from_secs(60);
    let owners = loop {
        if let Some(o) = view::agreed(lab, berthctl, &all) {
            break o;
        }
        if Instant::now() >= deadline {
            for node in &all {
                let v = view::of(lab, berthctl, node);
                eprintln!(
                    "{node}: {:?}",
                    v.map(|v| (
                        v.live,
                        v.owners.len(),
                        v.owners.values().filter(|o| *o == node).count()
                    ))
                );
            }
            for (node, log) in &lab.logs {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                eprintln!("--- {node}: {} lines, last:", lines.len());
                let other: Vec<&&str> = lines
                    .iter()
                    .filter(|l| !l.contains("layer-2 owner") && !l.contains("layer-2 handover"))
                    .collect();
                for l in other.iter().take(30) {
                    eprintln!("{}", &l[..l.len().min(300)]);
                }
                for l in lines.iter().rev().take(4).rev() {
                    eprintln!("{}", &l[..l.len().min(400)]);
                }
            }
            panic!("the nodes never agreed on the owners");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let vip4: IpAddr = VIP4.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let old = owners.get(&vip4).cloned().unwrap_or_default();
    let theirs: BTreeSet<IpAddr> = owners
        .iter()
        .filter(|(_, o)| **o == old)
        .map(|(ip, _)| *ip)
        .collect();
    let sample: Vec<IpAddr> = (0..extra)
        .step_by(SAMPLE_EVERY)
        .flat_map(|n| [extra_vip(false, n), extra_vip(true, n)])
        .filter(|ip| theirs.contains(ip))
        .collect();
    let client = lab
        .lab
        .netns("client")
        .unwrap_or_else(|e| panic!("client: {e}"));
    let stop = Arc::new(AtomicBool::new(false));
    let (s1, s2) = (stop.clone(), stop.clone());
    let capture = client
        .spawn_thread(move || capture::record(&s1))
        .unwrap_or_else(|e| panic!("capture: {e}"));
    let targets = sample.clone();
    let probe = client
        .spawn_thread(move || probe_many(&targets, Duration::from_millis(1), &s2))
        .unwrap_or_else(|e| panic!("probe: {e}"));
    std::thread::sleep(Duration::from_millis(300));
    let fault = now_ns();
    lab.set_cable(&old, false)
        .unwrap_or_else(|e| panic!("cable: {e}"));
    std::thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    let announcements: Vec<Announcement> = capture
        .join()
        .unwrap_or_else(|_| panic!("capture panicked"))
        .unwrap_or_else(|e| panic!("capture: {e}"));
    let replies = probe
        .join()
        .unwrap_or_else(|_| panic!("probe panicked"))
        .unwrap_or_else(|e| panic!("probe: {e}"));
    lab.set_cable(&old, true)
        .unwrap_or_else(|e| panic!("cable: {e}"));

    // When each of them was decided by the node that took it (one pass over each log).
    let mut decided: BTreeMap<IpAddr, u64> = BTreeMap::new();
    for (node, path) in &lab.logs {
        if *node == old {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.lines() {
            if !line.contains("layer-2 owner") {
                continue;
            }
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let f = &v["fields"];
            let (Some(vip), Some(at)) = (
                f["vip"].as_str().and_then(|s| s.parse::<IpAddr>().ok()),
                v["timestamp"]
                    .as_str()
                    .and_then(super::log::parse_timestamp),
            ) else {
                continue;
            };
            if at > fault && f["owner"] == node.as_str() && theirs.contains(&vip) {
                decided.entry(vip).or_insert(at);
            }
        }
    }
    let mut decided_ms: Vec<f64> = decided.values().map(|t| ms(fault, *t)).collect();
    decided_ms.sort_by(f64::total_cmp);
    let old_mac = lab.macs.get(&old).cloned().unwrap_or_default();
    let mut first: BTreeMap<IpAddr, u64> = BTreeMap::new();
    for a in &announcements {
        if a.at_ns > fault && theirs.contains(&a.vip) && mac_text(a.mac) != old_mac {
            first.entry(a.vip).or_insert(a.at_ns);
        }
    }
    let mut announced: Vec<f64> = first.values().map(|t| ms(fault, *t)).collect();
    announced.sort_by(f64::total_cmp);
    let never = theirs.len() - first.len();
    let mut switched = Vec::new();
    let mut gaps = Vec::new();
    for ip in &sample {
        let mine: Vec<&(u64, IpAddr, String)> = replies.iter().filter(|r| r.1 == *ip).collect();
        // Only addresses the client reached on the failed node up to the fault say when
        // it switched (one still on a previous owner's MAC keeps working there).
        let before = mine
            .iter()
            .filter(|r| r.0 <= fault)
            .map(|r| &r.2)
            .next_back();
        if before != Some(&old) {
            continue;
        }
        let first_new = mine.iter().find(|r| r.0 > fault && r.2 != old).map(|r| r.0);
        let last_old = mine
            .iter()
            .filter(|r| r.2 == old && first_new.is_none_or(|f| r.0 < f))
            .map(|r| r.0)
            .max();
        switched.push(first_new.map(|f| ms(fault, f)));
        if let (Some(l), Some(f)) = (last_old, first_new) {
            gaps.push(ms(l, f));
        }
    }
    let t = ManyTrial {
        trial,
        addresses: theirs.len(),
        addresses_v4: theirs.iter().filter(|a| a.is_ipv4()).count(),
        addresses_v6: theirs.iter().filter(|a| a.is_ipv6()).count(),
        all_announced_ms: (never == 0).then(|| announced.last().copied()).flatten(),
        median_announced_ms: announced.get(announced.len() / 2).copied(),
        never_announced: never,
        all_decided_ms: (decided.len() == theirs.len())
            .then(|| decided_ms.last().copied())
            .flatten(),
        median_decided_ms: decided_ms.get(decided_ms.len() / 2).copied(),
        sampled: switched.len(),
        sample_switched_ms: switched
            .iter()
            .copied()
            .collect::<Option<Vec<f64>>>()
            .and_then(|v| v.into_iter().max_by(f64::total_cmp)),
        sample_gaps_ms: gaps,
        old_owner: old,
    };
    eprintln!(
        "#{trial}: {} lost its cable with {} addresses ({} v4, {} v6): all decided {:?} ms (median {:?}), all announced {:?} ms (median {:?}), never {}; sample of {} switched by {:?} ms, gaps max {:?}",
        t.old_owner,
        t.addresses,
        t.addresses_v4,
        t.addresses_v6,
        t.all_decided_ms,
        t.median_decided_ms,
        t.all_announced_ms,
        t.median_announced_ms,
        t.never_announced,
        t.sampled,
        t.sample_switched_ms,
        t.sample_gaps_ms.iter().copied().max_by(f64::total_cmp)
    );
    t
}
