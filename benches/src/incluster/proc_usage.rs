//! CPU time (utime + stime of `/proc/PID/stat`, all threads of the process) and resident
//! memory (`VmRSS`, `VmHWM`, and `VmRSS` split into `RssAnon`, the heap and stacks, and
//! `RssFile`, the pages of the binary and libraries mapped from files) of a daemon.

use serde::Serialize;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProcUsage {
    /// utime + stime, milliseconds.
    pub cpu_ms: u64,
    /// Resident now, kB.
    pub rss_kb: u64,
    /// Peak resident (`VmHWM`), kB.
    pub hwm_kb: u64,
    /// Resident anonymous memory now (`RssAnon`: heap, stacks), kB.
    pub anon_kb: u64,
    /// Resident file-backed memory now (`RssFile`: the binary's pages), kB.
    pub file_kb: u64,
}

/// Reads `pid` (zeros for a process that is gone).
pub fn read(pid: u32) -> ProcUsage {
    let cpu_ms = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| cpu_ticks(&s))
        .map_or(0, |ticks| ticks * 1000 / clock_ticks());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let memory = testbed::lab::Memory::parse(&status);
    ProcUsage {
        cpu_ms,
        rss_kb: memory.map_or(0, |m| m.rss_kib),
        hwm_kb: memory.map_or(0, |m| m.hwm_kib),
        anon_kb: status_kib(&status, "RssAnon:").unwrap_or(0),
        file_kb: status_kib(&status, "RssFile:").unwrap_or(0),
    }
}

/// The value of a `/proc/PID/status` line such as `RssAnon:   1036 kB`, in kB.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in clock ticks. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, at index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// USER_HZ: the unit of `/proc/PID/stat` times, 100 on every Linux architecture Berth runs
/// on (it is fixed by the kernel ABI, unlike the kernel's own HZ).
fn clock_ticks() -> u64 {
    100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_counted_after_the_command_name() {
        let stat = "42 (berth speaker) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 3 0";
        assert_eq!(cpu_ticks(stat), Some(12));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn rss_parts_are_read_by_key() {
        let status = "VmRSS:\t   10280 kB\nRssAnon:\t    1036 kB\nRssFile:\t    9244 kB\n";
        assert_eq!(status_kib(status, "RssAnon:"), Some(1036));
        assert_eq!(status_kib(status, "RssFile:"), Some(9244));
        assert_eq!(status_kib(status, "RssShmem:"), None);
    }
}
