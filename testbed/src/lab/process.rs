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

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
