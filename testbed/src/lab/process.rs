//! A process a lab started inside a namespace, killed when its guard drops.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, Result, sys};

/// A child process owned by a test; dropping it SIGKILLs and reaps it.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    exited: bool,
}

impl Process {
    /// Spawns `command` (usually from [`super::Netns::command`]) with stdin closed and output
    /// going where the command already says (inherit by default).
    pub fn spawn(name: impl Into<String>, mut command: Command) -> Result<Process> {
        let name = name.into();
        command.stdin(Stdio::null());
        let child = command.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Missing(format!(
                    "{:?} (needed to start {name})",
                    command.get_program()
                ))
            } else {
                Error::io(format!("spawn {name}"), e)
            }
        })?;
        Ok(Process {
            name,
            child,
            exited: false,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process is (for messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&mut self, signal: i32) -> Result<()> {
        if self.exited {
            return Ok(());
        }
        sys::kill(self.pid(), signal).map_err(|e| Error::io(format!("signal {}", self.name), e))
    }

    /// Whether it is still running (reaps it if it exited).
    pub fn running(&mut self) -> bool {
        if self.exited {
            return false;
        }
        match self.child.try_wait() {
            Ok(None) => true,
            _ => {
                self.exited = true;
                false
            }
        }
    }

    /// Waits up to `timeout` for the process to exit; returns whether it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while self.running() {
            if start.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Its memory as the kernel accounts it (`/proc/PID/status`); `None` once it exited.
    pub fn memory(&mut self) -> Option<Memory> {
        if !self.running() {
            return None;
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        Memory::parse(&status)
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`; always reaps.
    pub fn stop(&mut self, grace: Duration) {
        if self.signal(libc::SIGTERM).is_ok() && self.wait_exit(grace) {
            return;
        }
        self.kill();
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.exited = true;
        }
    }
}

/// A process's resident memory, from `/proc/PID/status`, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the most ever resident (the high-water mark).
    pub hwm_kib: u64,
}

impl Memory {
    /// Reads `VmRSS` and `VmHWM` off the text of `/proc/PID/status`.
    pub fn parse(status: &str) -> Option<Memory> {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        Some(Memory {
            rss_kib: field("VmRSS")?,
            hwm_kib: field("VmHWM")?,
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_comes_from_vmrss_and_vmhwm() {
        let status = "Name:\tberth-speaker\nVmPeak:\t  99999 kB\nVmHWM:\t   12345 kB\nVmRSS:\t   10240 kB\nThreads:\t3\n";
        assert_eq!(
            Memory::parse(status),
            Some(Memory {
                rss_kib: 10240,
                hwm_kib: 12345
            })
        );
        // A kernel thread or a zombie has no VmRSS line.
        assert_eq!(Memory::parse("Name:\tkthreadd\nState:\tS\n"), None);
    }

    #[test]
    fn a_process_reports_its_memory_until_it_exits() {
        let mut process = Process::spawn("sleep", {
            let mut c = Command::new("sleep");
            c.arg("30");
            c
        })
        .expect("sleep");
        let memory = process.memory().expect("memory of a running process");
        assert!(memory.rss_kib > 0 && memory.hwm_kib >= memory.rss_kib);
        process.kill();
        assert_eq!(process.memory(), None);
    }
}
