//! Cheap probes: the receiver's kernel FIB prefix count (`/proc/net/fib_triestat`, read from a
//! thread inside the namespace) and a process's CPU time and peak RSS from `/proc/PID`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock time in nanoseconds since the Unix epoch (comparable across processes).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The IPv4 FIB prefix count of the namespace the opening thread was in. The kernel walks its
/// trie under RCU for every read (no RTNL lock), so polling does not slow route insertion; a
/// read of 100,000 prefixes costs about a millisecond.
#[derive(Debug)]
pub struct FibCounter {
    file: File,
    buf: String,
}

impl FibCounter {
    /// Opens the statistics of the calling thread's namespace: call it on a thread that has
    /// entered the receiver's namespace.
    pub fn open() -> std::io::Result<FibCounter> {
        Ok(FibCounter {
            file: File::open("/proc/thread-self/net/fib_triestat")?,
            buf: String::with_capacity(4096),
        })
    }

    /// Prefixes in the main trie (local and main tables are one trie in current kernels).
    pub fn count(&mut self) -> std::io::Result<u64> {
        self.file.seek(SeekFrom::Start(0))?;
        self.buf.clear();
        self.file.read_to_string(&mut self.buf)?;
        Ok(parse_main_prefixes(&self.buf).unwrap_or(0))
    }
}

/// The `Prefixes:` figure of the `Main:` section of `fib_triestat`.
pub fn parse_main_prefixes(text: &str) -> Option<u64> {
    let main = text.split("\nMain:").nth(1)?;
    main.lines()
        .find_map(|l| l.trim().strip_prefix("Prefixes:"))
        .and_then(|n| n.trim().parse().ok())
}

/// When a growing (or shrinking) count crossed the thresholds of one transfer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Arrival {
    /// First route in the FIB (ns since the epoch).
    pub first: Option<u64>,
    /// 99 % of the routes.
    pub p99: Option<u64>,
    /// Every route.
    pub all: Option<u64>,
}

/// Polls `counter` every `period` until it shows `baseline + expected` prefixes or `timeout`
/// passes, and returns when the thresholds were crossed.
pub fn watch_arrival(
    counter: &mut FibCounter,
    baseline: u64,
    expected: u64,
    period: Duration,
    timeout: Duration,
) -> Arrival {
    let mut arrival = Arrival::default();
    let target99 = expected.saturating_mul(99).div_ceil(100);
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        let have = counter.count().unwrap_or(0).saturating_sub(baseline);
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
        std::thread::sleep(period);
    }
    arrival
}

/// CPU time (ns, every thread still alive) and peak RSS (kB) of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Sum of `/proc/PID/task/*/schedstat` run times, ns.
    pub cpu_ns: u64,
    /// `VmHWM` of `/proc/PID/status`, kB.
    pub peak_rss_kb: u64,
}

/// Reads the usage of `pid` (zeros for a process that is gone).
pub fn usage(pid: u32) -> Usage {
    let mut cpu_ns = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
                cpu_ns += text
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    let peak_rss_kb = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| testbed::lab::Memory::parse(&status))
        .map_or(0, |memory| memory.hwm_kib);
    Usage {
        cpu_ns,
        peak_rss_kb,
    }
}

/// Waits until `pid` has been idle (less than 5 ms of CPU in 300 ms) or `limit` passes, so a
/// sender's loading work does not leak into the transfer's CPU figure.
pub fn settle(pid: u32, limit: Duration) {
    let start = std::time::Instant::now();
    let mut last = usage(pid).cpu_ns;
    while start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(300));
        let now = usage(pid).cpu_ns;
        if now.saturating_sub(last) < 5_000_000 {
            return;
        }
        last = now;
    }
}

/// The loading average of the machine (`/proc/loadavg`, first figure).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_prefixes_are_read_from_the_main_section() {
        let text = "Basic info: size of leaf: 48 bytes\nMain:\n\tAver depth: 2\n\tPrefixes:       7\nLocal:\n\tPrefixes: 4\n";
        assert_eq!(parse_main_prefixes(text), Some(7));
        assert_eq!(parse_main_prefixes("nothing"), None);
    }
}
