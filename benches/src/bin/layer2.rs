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
//! `--fault` picks the fault: `cable` (above), `loss` (every frame to and from the owner
//! dropped, its carrier up: power loss), `kill` (SIGKILL of the owner's speaker, started
//! again after the trial) or `partition` (the owner cut off from the other candidates'
//! heartbeats, still on the client's segment). Every trial also asks for the VIP by ARP /
//! NDP every millisecond (numbered requests, [`testbed::traffic::neighbor`]): the **split
//! brain** is how long old and new owner both answered (the last answer of the old owner
//! after the first of the new one), the **unanswered** count the requests nobody answered.
//!
//! `--addresses N` adds N VIPs per family (the 1,000-address run): the fault takes the
//! owner of 10.9.0.200 down (about a third of all addresses), the client probes a sample
//! (every 50th) of that node's addresses over UDP, and the capture times the first
//! announcement of **every** address the node owned: **all announced** is the fault → the
//! last of them, **sample switched** the fault → the last sampled address answered by its
//! new owner.
//!
//! `--planned CYCLES` measures planned moves instead: while the client probes both VIPs
//! over UDP and ARP/NDP every millisecond, each cycle cordons and uncordons every node in
//! turn (drain; the node back, as a join) and restarts every speaker in turn (SIGTERM, start
//! again: a rolling restart); the figures are the probes lost and the requests unanswered.
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
use benches::layer2::lab::SAMPLE_EVERY;
use benches::layer2::lab::{Announcer, FailoverLab, NODES, PORT, VIP4, VIP6};
use benches::layer2::log;
use benches::layer2::prober::{self, Reply};
use benches::layer2::{many, planned};
use benches::whole::probe::{load_average, now_ns};
use serde::Serialize;
use testbed::traffic::{Protocol, spread};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Fault {
    Cable,
    Loss,
    Kill,
    Partition,
}

impl Fault {
    fn describe(self) -> &'static str {
        match self {
            Fault::Cable => "the owner's bridge port set down (cable pulled)",
            Fault::Loss => {
                "every frame to and from the owner dropped, carrier up (blackhole qdiscs on its eth0 and its bridge port)"
            }
            Fault::Kill => "SIGKILL of the owner's speaker",
            Fault::Partition => {
                "the owner cut off from the other candidates' heartbeats (UDP 7474 dropped both ways), still on the segment"
            }
        }
    }
}

struct Args {
    trials: usize,
    announcer: Announcer,
    window: Duration,
    out: Option<PathBuf>,
    bins: Option<PathBuf>,
    fault: Fault,
    addresses: u32,
    planned: usize,
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
        fault: Fault::Cable,
        addresses: 0,
        planned: 0,
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
            "--fault" => {
                a.fault = match value().as_str() {
                    "cable" => Fault::Cable,
                    "loss" => Fault::Loss,
                    "kill" => Fault::Kill,
                    "partition" => Fault::Partition,
                    other => panic!("unknown fault {other}: cable|loss|kill|partition"),
                }
            }
            "--addresses" => a.addresses = value().parse().unwrap(),
            "--planned" => a.planned = value().parse().unwrap(),
            other => panic!(
                "unknown flag {other}: --trials N --announcer berth|keepalived --interval-ms MS --multiplier N --advert-int S --window-ms MS --fault cable|loss|kill|partition --addresses N --planned CYCLES --out FILE --bins DIR"
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

/// Writes `report` (plus the machine's facts) to `--out`, or prints it.
fn write_report(
    args: &Args,
    mut report: serde_json::Value,
    load_before: f64,
    bins: &std::path::Path,
) {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    report["announcer"] = format!("{:?}", args.announcer).into();
    report["kernel"] = kernel.trim().into();
    report["cpus"] = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0)
        .into();
    report["load_average_1m"] = serde_json::json!({"before": load_before, "after": load_average()});
    // The profile directory only: no path of the machine in the results.
    report["binaries"] = bins
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .into();
    let text = serde_json::to_string_pretty(&report).unwrap();
    match &args.out {
        Some(path) => std::fs::write(path, text + "\n").unwrap(),
        None => println!("{text}"),
    }
}

/// `--planned CYCLES`.
fn planned(
    lab: &mut FailoverLab,
    args: &Args,
    berthctl: &std::path::Path,
    load_before: f64,
    bins: &std::path::Path,
) {
    let vips: Vec<IpAddr> = [VIP4, VIP6].iter().map(|v| v.parse().unwrap()).collect();
    let out = lab
        .lab
        .netns("client")
        .unwrap()
        .output("ip", &["-j", "link", "show", "eth0"])
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mac = v[0]["address"].as_str().unwrap().to_string();
    let figures = planned::run(lab, berthctl, &vips, &mac, args.planned);
    println!("{}", serde_json::to_string_pretty(&figures).unwrap());
    let report = serde_json::json!({
        "benchmark": "layer2-planned-moves",
        "moves": "per cycle: each node cordoned (spec.unschedulable in the manifests) until its addresses moved, then uncordoned until it owned its share again; then each speaker SIGTERMed until its addresses moved, and started again until it owned its share again",
        "probe": "UDP and numbered ARP requests / Neighbor Solicitations, one each every 1 ms per VIP, from the client",
        "figures": figures,
    });
    write_report(args, report, load_before, bins);
}

/// `--addresses N`.
fn many(
    lab: &mut FailoverLab,
    args: &Args,
    berthctl: &std::path::Path,
    load_before: f64,
    bins: &std::path::Path,
) {
    let mut trials = Vec::new();
    for i in 0..args.trials {
        trials.push(many::trial(lab, berthctl, args.addresses, args.window, i));
        testbed::wait::until("all members heard", Duration::from_secs(60), || {
            Ok(berth_settled(lab, berthctl).then_some(()))
        })
        .unwrap();
        // Its share moves back (a planned move); the bursts end 2.1 s later.
        std::thread::sleep(Duration::from_millis(2500));
    }
    let pick = |f: fn(&many::ManyTrial) -> Option<f64>| -> Vec<f64> {
        trials.iter().filter_map(f).collect()
    };
    let gaps: Vec<f64> = trials
        .iter()
        .flat_map(|t| t.sample_gaps_ms.clone())
        .collect();
    let summary = serde_json::json!({
        "all_announced": summary(&pick(|t| t.all_announced_ms)),
        "median_announced": summary(&pick(|t| t.median_announced_ms)),
        "sample_switched": summary(&pick(|t| t.sample_switched_ms)),
        "sample_gap_per_address": summary(&gaps),
        "trials_with_an_address_never_announced": trials.iter().filter(|t| t.never_announced > 0).count(),
    });
    println!("{}", serde_json::to_string_pretty(&summary).unwrap());
    let report = serde_json::json!({
        "benchmark": "layer2-failover-many",
        "addresses_per_family": args.addresses + 1,
        "fault": Fault::Cable.describe(),
        "probe": format!("UDP, one every 1 ms to every {SAMPLE_EVERY}th extra address the failed node owned"),
        "trials": trials.len(),
        "summary": summary,
        "raw": trials,
    });
    write_report(args, report, load_before, bins);
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
    /// How long old and new owner both answered ARP/NDP (0: never both).
    split_brain_ms: Option<f64>,
    /// The old owner's last answer → the new owner's first (negative: they overlapped).
    neighbor_gap_ms: Option<f64>,
    /// Neighbour requests after the fault nobody answered.
    neighbor_unanswered: usize,
}

/// The client's MAC, as bytes.
fn client_mac(lab: &FailoverLab) -> [u8; 6] {
    let out = lab
        .lab
        .netns("client")
        .unwrap()
        .output("ip", &["-j", "link", "show", "eth0"])
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = v[0]["address"].as_str().unwrap();
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

/// Applies (`on`) or heals the fault on `node`.
fn fault(lab: &mut FailoverLab, kind: Fault, node: &str, on: bool) {
    match (kind, on) {
        (Fault::Cable, _) => lab.set_cable(node, !on).unwrap(),
        (Fault::Loss, _) => lab.set_blackhole(node, on).unwrap(),
        (Fault::Partition, _) => lab.set_partition(node, on).unwrap(),
        (Fault::Kill, true) => lab.daemons.get_mut(node).unwrap().kill(),
        (Fault::Kill, false) => lab.start(node).unwrap(),
    }
}

/// (split brain, gap) in ms from the neighbour answers after `fault_ns`.
fn neighbor_figures(
    probes: &testbed::traffic::neighbor::NeighborProbes,
    fault_ns: u64,
    old_mac: Option<[u8; 6]>,
    new_mac: Option<[u8; 6]>,
) -> (Option<f64>, Option<f64>, usize) {
    let answers: Vec<(u64, [u8; 6])> = probes
        .answers
        .values()
        .flatten()
        .copied()
        .filter(|(at, _)| *at > fault_ns)
        .collect();
    let first_new = answers
        .iter()
        .filter(|(_, m)| Some(*m) == new_mac)
        .map(|(at, _)| *at)
        .min();
    let last_old = answers
        .iter()
        .filter(|(_, m)| Some(*m) == old_mac)
        .map(|(at, _)| *at)
        .max();
    let split = first_new.map(|f| last_old.map_or(0.0, |l| ms(f, l).max(0.0)));
    let gap = first_new.zip(last_old).map(|(f, l)| ms(l, f));
    let after_fault: Vec<u32> = probes
        .sent
        .iter()
        .enumerate()
        .filter(|(_, at)| **at > fault_ns)
        .map(|(i, _)| u32::try_from(i).unwrap_or(u32::MAX))
        .collect();
    let unanswered_all = probes.unanswered(Duration::from_millis(100));
    let unanswered = after_fault
        .iter()
        .filter(|i| unanswered_all.binary_search(i).is_ok())
        .count();
    (split, gap, unanswered)
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

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect::<Option<_>>()?;
    bytes.try_into().ok()
}

fn run_trial(
    lab: &mut FailoverLab,
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
    let (s1, s2, s3) = (stop.clone(), stop.clone(), stop.clone());
    let mac = client_mac(lab);
    let capture = client.spawn_thread(move || capture::record(&s1)).unwrap();
    let probe = client
        .spawn_thread(move || {
            prober::probe(SocketAddr::new(vip, PORT), Duration::from_millis(1), &s2)
        })
        .unwrap();
    let asking = client
        .spawn_thread(move || {
            testbed::traffic::neighbor::probe("eth0", mac, vip, Duration::from_millis(1), &s3)
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let fault_at = now_ns();
    fault(lab, args.fault, &old, true);
    std::thread::sleep(args.window);
    stop.store(true, Ordering::Relaxed);
    let announcements: Vec<Announcement> = capture.join().unwrap().unwrap();
    let (sent, replies): (u64, Vec<Reply>) = probe.join().unwrap().unwrap();
    let neighbors = asking.join().unwrap().unwrap();
    fault(lab, args.fault, &old, false);
    let fault = fault_at;

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
    let (split_brain_ms, neighbor_gap_ms, neighbor_unanswered) = neighbor_figures(
        &neighbors,
        fault,
        lab.macs.get(&old).and_then(|m| parse_mac(m)),
        new_mac.as_deref().and_then(parse_mac),
    );
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
        split_brain_ms,
        neighbor_gap_ms,
        neighbor_unanswered,
    };
    eprintln!(
        "{family} #{trial}: {} → {:?}: gap {:?} ms, detection {:?}, takeover {:?}, switch {:?}, split brain {:?}, neighbour gap {:?}, unanswered {}",
        t.old_owner,
        t.new_owner,
        t.gap_ms,
        t.detection_ms,
        t.takeover_ms,
        t.client_switch_ms,
        t.split_brain_ms,
        t.neighbor_gap_ms,
        t.neighbor_unanswered
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
    split_brain: Option<Summary>,
    neighbor_gap: Option<Summary>,
    neighbor_unanswered: usize,
    failed_trials: usize,
}

fn main() {
    let args = args();
    let load_before = load_average();
    let bins = args.bins.clone().unwrap_or_else(bin_dir);
    let berthctl = bins.join("berthctl");
    let mut lab = FailoverLab::up(&args.announcer, &bins, args.addresses).unwrap();
    if args.planned > 0 {
        return planned(&mut lab, &args, &berthctl, load_before, &bins);
    }
    if args.addresses > 0 {
        return many(&mut lab, &args, &berthctl, load_before, &bins);
    }
    let mut trials = Vec::new();
    for (family, vip) in [("ipv4", VIP4), ("ipv6", VIP6)] {
        let vip: IpAddr = vip.parse().unwrap();
        for i in 0..args.trials {
            trials.push(run_trial(&mut lab, &args, family, vip, i));
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
            split_brain: summary(&pick(family, |t| t.split_brain_ms)),
            neighbor_gap: summary(&pick(family, |t| t.neighbor_gap_ms)),
            neighbor_unanswered: trials
                .iter()
                .filter(|t| t.family == *family)
                .map(|t| t.neighbor_unanswered)
                .sum(),
            failed_trials: trials
                .iter()
                .filter(|t| t.family == *family && t.gap_ms.is_none())
                .count(),
        })
        .collect();
    for s in &summaries {
        println!(
            "{}: gap {:?}\n  detection {:?}\n  takeover {:?}\n  announce after fault {:?}\n  client switch {:?}\n  split brain {:?}\n  neighbour gap {:?}\n  unanswered {}\n  failed trials {}",
            s.family,
            s.gap,
            s.detection,
            s.takeover,
            s.announce_after_fault,
            s.client_switch,
            s.split_brain,
            s.neighbor_gap,
            s.neighbor_unanswered,
            s.failed_trials
        );
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let report = serde_json::json!({
        "benchmark": "layer2-failover",
        "announcer": format!("{:?}", args.announcer),
        "fault": args.fault.describe(),
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
