//! A router's kernel FIB prefix count over time: a thread inside the router's namespace
//! reads `fib_triestat` every period and keeps each change with its wall-clock time, so a
//! measurement can ask afterwards when the count first reached a value.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use testbed::Netns;

use crate::whole::probe::{FibCounter, now_ns};

/// The change history of one namespace's IPv4 FIB prefix count; stops when dropped.
#[derive(Debug)]
pub struct FibHistory {
    changes: Arc<Mutex<Vec<(u64, u64)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FibHistory {
    /// Starts polling `netns` every `period`.
    pub fn start(netns: &Netns, period: Duration) -> testbed::Result<FibHistory> {
        let changes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (Arc::clone(&changes), Arc::clone(&stop));
        let thread = netns.spawn_thread(move || {
            let Ok(mut counter) = FibCounter::open() else {
                return;
            };
            let mut last = None;
            while !s.load(Ordering::Relaxed) {
                let count = counter.count().unwrap_or(0);
                if last != Some(count) {
                    last = Some(count);
                    c.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((now_ns(), count));
                }
                std::thread::sleep(period);
            }
        })?;
        Ok(FibHistory {
            changes,
            stop,
            thread: Some(thread),
        })
    }

    /// The latest count seen (0 before the first read).
    pub fn count(&self) -> u64 {
        self.lock().last().map_or(0, |(_, c)| *c)
    }

    /// When the count was first seen at `target` or above at or after `since` (ns since
    /// the epoch).
    pub fn reached(&self, since: u64, target: u64) -> Option<u64> {
        let changes = self.lock();
        // The value in force at `since` counts as seen then.
        let before = changes.iter().rev().find(|(t, _)| *t < since);
        if before.is_some_and(|(_, c)| *c >= target) {
            return Some(since);
        }
        changes
            .iter()
            .find(|(t, c)| *t >= since && *c >= target)
            .map(|(t, _)| *t)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, u64)>> {
        self.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FibHistory {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
