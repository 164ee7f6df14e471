//! One measured run: a fresh lab (receiver `r`, sender `s`), the sender loaded, the
//! receiver's sessions enabled, and the receiver's FIB watched until the whole table is in.
//! Churn runs toggle one prefix and time each change from the call to the receiver's FIB.

use std::time::Duration;

use testbed::Lab;

use super::addressing::{receiver_addresses, sender_addresses};
use super::probe::{Arrival, FibCounter, now_ns, settle, usage, watch_arrival};
use super::receiver::Receiver;
use super::senders::{Kind, Plan, Sender};
use super::wire::{Capture, WireCount};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Figures of one transfer run; times are ms after the (first) session's Established.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transfer {
    /// First route in the receiver's FIB.
    pub first_ms: f64,
    /// 99 % of the table.
    pub p99_ms: f64,
    /// The whole table.
    pub all_ms: f64,
    /// Sender CPU from enabling the sessions until the whole table arrived, ms.
    pub cpu_ms: f64,
    /// Sender CPU since it started (loading included), ms.
    pub cpu_total_ms: f64,
    /// Sender peak RSS, kB.
    pub peak_rss_kb: u64,
    /// Load average when the run started.
    pub load: f64,
    /// Wire counts, when this run captured.
    pub wire: Option<WireCount>,
    /// First and last route-carrying UPDATE seen on the receiver's link, ms after
    /// Established (NaN without a capture).
    pub wire_first_ms: f64,
    /// See `wire_first_ms`.
    pub wire_last_ms: f64,
}

fn lab(sessions: usize) -> Result<Lab, BoxError> {
    let mut lab = Lab::new("whole")?;
    lab.add_namespace("r")?;
    lab.add_namespace("s")?;
    lab.link(("r", "eth0"), ("s", "eth0"))?;
    for address in sender_addresses(sessions) {
        lab.add_address("s", "eth0", format!("{address}/16").parse()?)?;
    }
    for address in receiver_addresses(sessions) {
        lab.add_address("r", "eth0", format!("{address}/16").parse()?)?;
    }
    Ok(lab)
}

/// Measures one transfer of `plan` from `kind`; `capture` also counts the wire (tcpdump in
/// immediate mode, a few hundred packets per 100,000 routes). With `fib` off the receiver
/// keeps routes in BIRD's table only, and arrival is polled there every 20 ms (the wire
/// times are the precise figures then).
pub fn transfer(kind: Kind, plan: Plan, capture: bool, fib: bool) -> Result<Transfer, BoxError> {
    let load = super::probe::load_average();
    let mut lab = lab(plan.sessions)?;
    let receiver = Receiver::start(lab.netns("r")?, plan.sessions, fib)?;
    let sender = Sender::start(kind, &mut lab, plan)?;
    settle(sender.pid(), Duration::from_secs(30));
    let expected = (plan.sessions.max(1) * plan.per_session) as u64;
    let timeout = Duration::from_secs(60 + expected / 2_000);
    // With kernel export, a thread in the receiver's namespace watches its FIB.
    let watcher = if fib {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let watcher = lab
            .netns("r")?
            .spawn_thread(move || -> std::io::Result<Arrival> {
                let mut counter = FibCounter::open()?;
                let baseline = counter.count()?;
                let _ = ready_tx.send(());
                Ok(watch_arrival(
                    &mut counter,
                    baseline,
                    expected,
                    Duration::from_millis(1),
                    timeout,
                ))
            })?;
        ready_rx.recv_timeout(Duration::from_secs(10))?;
        Some(watcher)
    } else {
        None
    };
    let capture = if capture {
        let file = lab.dir().join("wire.pcap");
        Some(Capture::start(lab.netns("r")?, "eth0", &file)?)
    } else {
        None
    };
    let before = usage(sender.pid());
    receiver.enable()?;
    let arrival = match watcher {
        Some(watcher) => watcher.join().map_err(|_| "watcher panicked")??,
        None => watch_table(&receiver, expected, timeout),
    };
    let after = usage(sender.pid());
    let established = receiver.wait_established(plan.sessions.max(1), Duration::from_secs(30))?;
    let wire = match capture {
        Some(capture) => {
            std::thread::sleep(Duration::from_millis(100));
            Some(capture.finish(&sender_addresses(plan.sessions))?)
        }
        None => None,
    };
    let since = |t: Option<u64>| -> Result<f64, BoxError> {
        let t = t.ok_or_else(|| {
            format!(
                "{} did not deliver {expected} routes in {timeout:?}: {arrival:?}",
                kind.name()
            )
        })?;
        Ok((t as f64 - established as f64) / 1e6)
    };
    Ok(Transfer {
        first_ms: since(arrival.first)?,
        p99_ms: since(arrival.p99)?,
        all_ms: since(arrival.all)?,
        cpu_ms: after.cpu_ns.saturating_sub(before.cpu_ns) as f64 / 1e6,
        cpu_total_ms: after.cpu_ns as f64 / 1e6,
        peak_rss_kb: after.peak_rss_kb,
        load,
        wire_first_ms: ms_after(wire.and_then(|w| w.first_update_ns), established),
        wire_last_ms: ms_after(wire.and_then(|w| w.last_update_ns), established),
        wire,
    })
}

/// Polls BIRD's table every 20 ms until it holds `expected` routes.
fn watch_table(receiver: &Receiver, expected: u64, timeout: Duration) -> Arrival {
    let mut arrival = Arrival::default();
    let target99 = expected.saturating_mul(99).div_ceil(100);
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        let have = receiver.route_count().unwrap_or(0);
        let t = now_ns();
        if have >= 1 && arrival.first.is_none() {
            arrival.first = Some(t);
        }
        if have >= target99 && arrival.p99.is_none() {
            arrival.p99 = Some(t);
        }
        if have >= expected {
            arrival.all = Some(t);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    arrival
}

fn ms_after(t: Option<u64>, reference: u64) -> f64 {
    t.map_or(f64::NAN, |t| (t as f64 - reference as f64) / 1e6)
}

/// Delays of one churn run, ms from the call to the receiver's FIB.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Churn {
    /// Announce delays.
    pub announce_ms: Vec<f64>,
    /// Withdraw delays.
    pub withdraw_ms: Vec<f64>,
    /// Load average when the run started.
    pub load: f64,
}

/// Announces and withdraws one prefix `cycles` times over one session and times each change.
pub fn churn(kind: Kind, cycles: usize) -> Result<Churn, BoxError> {
    let load = super::probe::load_average();
    let plan = Plan {
        sessions: 1,
        per_session: 0,
    };
    let mut lab = lab(1)?;
    let receiver = Receiver::start(lab.netns("r")?, 1, true)?;
    let mut sender = Sender::start(kind, &mut lab, plan)?;
    receiver.enable()?;
    receiver.wait_established(1, Duration::from_secs(20))?;
    // Let the sessions' first exchanges (End-of-RIB, timers) pass.
    std::thread::sleep(Duration::from_millis(500));
    let (ask_tx, ask_rx) = std::sync::mpsc::channel::<Option<i64>>();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<Option<u64>>();
    let watcher = lab
        .netns("r")?
        .spawn_thread(move || -> std::io::Result<()> {
            let mut counter = FibCounter::open()?;
            let baseline = counter.count()?;
            let _ = seen_tx.send(Some(baseline));
            // Each request: wait until the count is baseline + delta (at most 10 s).
            while let Ok(Some(delta)) = ask_rx.recv() {
                let want = baseline.saturating_add_signed(delta);
                let start = std::time::Instant::now();
                let mut seen = None;
                while start.elapsed() < Duration::from_secs(10) {
                    if counter.count()? == want {
                        seen = Some(now_ns());
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
                let _ = seen_tx.send(seen);
            }
            Ok(())
        })?;
    seen_rx.recv_timeout(Duration::from_secs(10))?;
    let mut result = Churn {
        load,
        ..Churn::default()
    };
    for _ in 0..cycles {
        for announce in [true, false] {
            ask_tx.send(Some(i64::from(announce)))?;
            let called = sender.churn(announce)?;
            let seen = seen_rx
                .recv_timeout(Duration::from_secs(15))?
                .ok_or_else(|| format!("{} churn change never reached the FIB", kind.name()))?;
            let delay = (seen as f64 - called as f64) / 1e6;
            if std::env::var_os("WHOLE_CHURN_DUMP").is_some() {
                eprintln!(
                    "churn {} announce={announce} called={called} seen={seen} delay_ms={delay:.3}",
                    kind.name()
                );
            }
            if announce {
                result.announce_ms.push(delay);
            } else {
                result.withdraw_ms.push(delay);
            }
        }
    }
    let _ = ask_tx.send(None);
    let _ = watcher.join();
    Ok(result)
}
