//! Layer-2 failover benchmark (issue 17 "Performance"): the owner of a VIP loses its cable
//! (its bridge port goes down: no FIN, no goodbye) while the client probes the VIP over UDP
//! every millisecond; measured per trial, from the client's point of view:
//!
//! - **gap**: last reply from the old owner → first reply from the new one;
//! - **detection**: cable pulled → the new owner logs that it owns the address (Berth only:
//!   keepalived logs no such line with sub-second time);
//! - **takeover**: that decision → the first gratuitous ARP / unsolicited NA of the new owner
//!   seen on the client's link (for keepalived: cable pulled → that announcement);
//! - **client switch**: that announcement → the first reply from the new owner.
//!
//! Then the cable is plugged back and the lab settles before the next trial. IPv4 and IPv6
//! in turn. `--announcer keepalived --advert-int S` runs the same lab with keepalived (VRRPv3,
//! the Debian package) instead of `berth-speaker`, as the anchor.
//!
//! Raw trials and the summary go to `--out` (JSON). Needs root; uses `berth-speaker` and
//! `berthctl` from `--bins DIR`, else `target/release` when built there, else next to this
//! binary.
//!
//! ```text
//! cargo build --release -p speaker --bins -p benches --bin layer2
//! sudo target/release/layer2 --trials 30 --out benches/results/layer2-berth.json
//! sudo target/release/layer2 --announcer keepalived --advert-int 1 --out benches/results/layer2-keepalived-1s.json
//! ```
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark run fails loudly on any error"
)]

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use benches::incluster::stats::{Summary, summary};
use benches::layer2::capture::{self, Announcement};
use benches::layer2::lab::{Announcer, FailoverLab, NODES, PORT, VIP4, VIP6};
use benches::layer2::log;
use benches::layer2::prober::{self, Reply};
use benches::whole::probe::{load_average, now_ns};
use serde::Serialize;
use testbed::traffic::{Protocol, spread};

struct Args {
    trials: usize,
    announcer: Announcer,
    window: Duration,
    out: Option<PathBuf>,
    bins: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        trials: 30,
        announcer: Announcer::Berth {
            interval_ms: 50,
            multiplier: 3,
        },
        window: Duration::from_secs(2),
        out: None,
        bins: None,
    };
    let (mut kind, mut interval, mut mult, mut advert) = ("berth".to_string(), 50, 3, 1.0);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--trials" => a.trials = value().parse().unwrap(),
            "--announcer" => kind = value(),
            "--interval-ms" => interval = value().parse().unwrap(),
            "--multiplier" => mult = value().parse().unwrap(),
            "--advert-int" => advert = value().parse().unwrap(),
            "--window-ms" => a.window = Duration::from_millis(value().parse().unwrap()),
            "--out" => a.out = Some(PathBuf::from(value())),
            "--bins" => a.bins = Some(PathBuf::from(value())),
            other => panic!(
                "unknown flag {other}: --trials N --announcer berth|keepalived --interval-ms MS --multiplier N --advert-int S --window-ms MS --out FILE --bins DIR"
            ),
        }
    }
    a.announcer = match kind.as_str() {
        "keepalived" => {
            a.window = a.window.max(Duration::from_secs_f64(advert * 4.0 + 2.0));
            Announcer::Keepalived { advert_int: advert }
        }
        _ => Announcer::Berth {
            interval_ms: interval,
            multiplier: mult,
        },
    };
    a
}

fn bin_dir() -> PathBuf {
    benches::daemon_dir(&["berth-speaker", "berthctl"])
}

/// One trial.
#[derive(Debug, Serialize)]
struct Trial {
    family: &'static str,
    trial: usize,
    old_owner: String,
    new_owner: Option<String>,
    probes_sent: u64,
    gap_ms: Option<f64>,
    detection_ms: Option<f64>,
    takeover_ms: Option<f64>,
    announce_after_fault_ms: Option<f64>,
    client_switch_ms: Option<f64>,
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

/// The node answering every one of a few probes of `vip`, if one does.
fn owner_of(lab: &FailoverLab, vip: IpAddr) -> Option<String> {
    let client = lab.lab.netns("client").ok()?;
    let s = spread(
        client,
        Protocol::Udp,
        SocketAddr::new(vip, PORT),
        5,
        Duration::from_millis(200),
    )
    .ok()?;
    (s.failures == 0 && s.answers.len() == 1).then(|| s.answers.keys().next().cloned())?
}

/// Waits until every Berth node hears all three (after a cable comes back).
fn berth_settled(lab: &FailoverLab, berthctl: &std::path::Path) -> bool {
    NODES.iter().all(|n| {
        lab.lab
            .netns(n)
            .and_then(|ns| {
                ns.output(
                    berthctl.to_str().unwrap_or_default(),
                    &["-o", "json", "layer2"],
                )
            })
            .ok()
            .and_then(|o| serde_json::from_str::<serde_json::Value>(&o).ok())
            .and_then(|v| v["live"].as_array().map(Vec::len))
            == Some(NODES.len())
    })
}

fn run_trial(
    lab: &FailoverLab,
    args: &Args,
    family: &'static str,
    vip: IpAddr,
    trial: usize,
) -> Trial {
    let old = testbed::wait::until("a stable owner", Duration::from_secs(30), || {
        let a = owner_of(lab, vip);
        Ok(a.clone().filter(|a| owner_of(lab, vip).as_ref() == Some(a)))
    })
    .unwrap();
    let client = lab.lab.netns("client").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (s1, s2) = (stop.clone(), stop.clone());
    let capture = client.spawn_thread(move || capture::record(&s1)).unwrap();
    let probe = client
        .spawn_thread(move || {
            prober::probe(SocketAddr::new(vip, PORT), Duration::from_millis(1), &s2)
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let fault = now_ns();
    lab.set_cable(&old, false).unwrap();
    std::thread::sleep(args.window);
    stop.store(true, Ordering::Relaxed);
    let announcements: Vec<Announcement> = capture.join().unwrap().unwrap();
    let (sent, replies): (u64, Vec<Reply>) = probe.join().unwrap().unwrap();
    lab.set_cable(&old, true).unwrap();

    let first_new = replies.iter().find(|r| r.at_ns > fault && r.node != old);
    let new_owner = first_new.map(|r| r.node.clone());
    let last_old = replies
        .iter()
        .filter(|r| r.node == old && first_new.is_none_or(|f| r.at_ns < f.at_ns))
        .map(|r| r.at_ns)
        .max();
    let new_mac = new_owner.as_ref().and_then(|n| lab.macs.get(n)).cloned();
    let announce = announcements
        .iter()
        .find(|a| a.at_ns > fault && a.vip == vip && Some(mac_text(a.mac)) == new_mac)
        .map(|a| a.at_ns);
    let decided = match (&args.announcer, &new_owner) {
        (Announcer::Berth { .. }, Some(n)) => {
            log::decided_at(&lab.logs[n], &vip.to_string(), n, fault)
        }
        _ => None,
    };
    let t = Trial {
        family,
        trial,
        old_owner: old,
        new_owner,
        probes_sent: sent,
        gap_ms: last_old.zip(first_new).map(|(l, f)| ms(l, f.at_ns)),
        detection_ms: decided.map(|d| ms(fault, d)),
        takeover_ms: decided.zip(announce).map(|(d, a)| ms(d, a)),
        announce_after_fault_ms: announce.map(|a| ms(fault, a)),
        client_switch_ms: announce.zip(first_new).map(|(a, f)| ms(a, f.at_ns)),
    };
    eprintln!(
        "{family} #{trial}: {} → {:?}: gap {:?} ms, detection {:?}, takeover {:?}, switch {:?}",
        t.old_owner, t.new_owner, t.gap_ms, t.detection_ms, t.takeover_ms, t.client_switch_ms
    );
    t
}

#[derive(Serialize)]
struct FamilySummary {
    family: &'static str,
    gap: Option<Summary>,
    detection: Option<Summary>,
    takeover: Option<Summary>,
    announce_after_fault: Option<Summary>,
    client_switch: Option<Summary>,
    failed_trials: usize,
}

fn main() {
    let args = args();
    let load_before = load_average();
    let bins = args.bins.clone().unwrap_or_else(bin_dir);
    let berthctl = bins.join("berthctl");
    let lab = FailoverLab::up(&args.announcer, &bins).unwrap();
    let mut trials = Vec::new();
    for (family, vip) in [("ipv4", VIP4), ("ipv6", VIP6)] {
        let vip: IpAddr = vip.parse().unwrap();
        for i in 0..args.trials {
            trials.push(run_trial(&lab, &args, family, vip, i));
            // Settle: the cable is back; the old owner is heard again (Berth) or has had
            // time to preempt (keepalived) before the next trial picks the owner.
            match &args.announcer {
                Announcer::Berth { .. } => {
                    testbed::wait::until("all members heard", Duration::from_secs(30), || {
                        Ok(berth_settled(&lab, &berthctl).then_some(()))
                    })
                    .unwrap();
                    // The address moves back (a planned move); its burst ends in 2.1 s.
                    std::thread::sleep(Duration::from_millis(2500));
                }
                Announcer::Keepalived { advert_int } => {
                    std::thread::sleep(Duration::from_secs_f64(advert_int * 3.0 + 1.5));
                }
            }
        }
    }
    let pick = |family: &str, f: fn(&Trial) -> Option<f64>| -> Vec<f64> {
        trials
            .iter()
            .filter(|t| t.family == family)
            .filter_map(f)
            .collect()
    };
    let summaries: Vec<FamilySummary> = ["ipv4", "ipv6"]
        .iter()
        .map(|family| FamilySummary {
            family,
            gap: summary(&pick(family, |t| t.gap_ms)),
            detection: summary(&pick(family, |t| t.detection_ms)),
            takeover: summary(&pick(family, |t| t.takeover_ms)),
            announce_after_fault: summary(&pick(family, |t| t.announce_after_fault_ms)),
            client_switch: summary(&pick(family, |t| t.client_switch_ms)),
            failed_trials: trials
                .iter()
                .filter(|t| t.family == *family && t.gap_ms.is_none())
                .count(),
        })
        .collect();
    for s in &summaries {
        println!(
            "{}: gap {:?}\n  detection {:?}\n  takeover {:?}\n  announce after fault {:?}\n  client switch {:?}\n  failed trials {}",
            s.family,
            s.gap,
            s.detection,
            s.takeover,
            s.announce_after_fault,
            s.client_switch,
            s.failed_trials
        );
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let report = serde_json::json!({
        "benchmark": "layer2-failover",
        "announcer": format!("{:?}", args.announcer),
        "fault": "the owner's bridge port set down (cable pulled)",
        "probe": "UDP, one every 1 ms from the client",
        "trials_per_family": args.trials,
        "kernel": kernel.trim(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "load_average_1m": {"before": load_before, "after": load_average()},
        // The profile directory only: no path of the machine in the results.
        "binaries": bins.file_name().map(|n| n.to_string_lossy().into_owned()),
        "summary": summaries,
        "trials": trials,
    });
    let text = serde_json::to_string_pretty(&report).unwrap();
    match &args.out {
        Some(path) => std::fs::write(path, text + "\n").unwrap(),
        None => println!("{text}"),
    }
}
