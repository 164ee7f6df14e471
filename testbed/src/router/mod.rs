//! Router drivers: BIRD 2, FRR, GoBGP and ExaBGP run inside a lab namespace from a small typed
//! description ([`RouterConfig`]) or a raw configuration, and report what they see in one
//! structured form ([`Session`], [`BgpTable`], and the namespace's [`crate::Fib`]).

pub mod bird;
mod config;
pub mod exabgp;
pub mod frr;
pub mod gobgp;
pub mod raw;
mod status;

use std::path::PathBuf;
use std::time::Duration;

pub use config::{ListenRange, Neighbor, RouterConfig, Timers};
pub use status::{BgpTable, Session, SessionState};

use crate::lab::Netns;
use crate::{Fib, Result};

/// What every router driver can do.
pub trait Router {
    /// The daemon family (`bird`, `frr`, `gobgp`, `exabgp`).
    fn kind(&self) -> &'static str;

    /// The namespace it runs in.
    fn netns(&self) -> &Netns;

    /// BGP sessions with their state and received prefix counts.
    fn sessions(&self) -> Result<Vec<Session>>;

    /// The BGP table: prefix → next hops of every valid path.
    fn bgp_table(&self) -> Result<BgpTable>;

    /// Stops and starts the daemon again with the same configuration.
    fn restart(&mut self) -> Result<()>;

    /// Stops the daemon (SIGTERM, then SIGKILL); idempotent.
    fn stop(&mut self);

    /// The kernel FIB of the router's namespace.
    fn fib(&self) -> Result<Fib> {
        self.netns().fib()
    }

    /// Waits until `count` sessions are established.
    fn wait_established(&self, count: usize, timeout: Duration) -> Result<Vec<Session>> {
        crate::wait::until(
            &format!(
                "{count} established sessions on {} ({})",
                self.netns().node(),
                self.kind()
            ),
            timeout,
            || {
                let sessions = self.sessions()?;
                let up = sessions
                    .iter()
                    .filter(|s| s.state == SessionState::Established)
                    .count();
                Ok((up >= count).then_some(sessions))
            },
        )
    }
}

/// Where a driver keeps its files: a private directory inside the lab's runtime directory.
fn router_dir(netns: &Netns, kind: &str) -> Result<PathBuf> {
    let dir = netns.dir()?.join(kind);
    std::fs::create_dir_all(&dir)
        .map_err(|e| crate::Error::io(format!("create {}", dir.display()), e))?;
    Ok(dir)
}

/// Fails with a clear message when `program` is not installed.
fn require_program(program: &str, package: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
        || std::path::Path::new(program).is_file();
    if found {
        Ok(())
    } else {
        Err(crate::Error::Missing(format!(
            "`{program}` (Debian package {package})"
        )))
    }
}
