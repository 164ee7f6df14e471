//! How Berth's watches retry after an error, shared by the controller and the speakers.
//!
//! kube-runtime's default (800 ms doubling to 30 s, reset only after 120 s without an error)
//! is client-go's, but client-go re-lists at once when a watch is told its resource version
//! expired, while kube-runtime backs off on that error too. After a 20 s API server outage
//! that left a watch 30 s of backoff and then, because a restarted API server's watch cache
//! starts at a newer version, a second 30 s after the "too old resource version" answer:
//! a Service created right after the outage reached the routers a minute later. Here
//! ([`retrying`]) the delay doubles from 200 ms to at most 3 s, jittered to half to full
//! length so a fleet of speakers does not retry in step, starts again from 200 ms after any
//! event received, and an expired resource version (HTTP 410) is re-listed at once, as
//! client-go does.
//!
//! No I/O: a delay sequence and a wrapper around a watch stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{Stream, TryStreamExt};
use kube::runtime::WatchStreamExt;
use kube::runtime::utils::{Backoff, StreamBackoff};
use kube::runtime::watcher;

/// A watch stream with Berth's retry policy: [`WatchBackoff`] after errors, no delay before
/// the re-list that follows an expired resource version.
pub fn retrying<S, T>(
    stream: S,
) -> StreamBackoff<impl Stream<Item = Result<T, watcher::Error>>, WatchBackoff>
where
    S: Stream<Item = Result<T, watcher::Error>>,
{
    let expired = Arc::new(AtomicBool::new(false));
    let seen = expired.clone();
    stream
        .inspect_err(move |e| {
            if is_expired(e) {
                seen.store(true, Ordering::Relaxed);
            }
        })
        .backoff(WatchBackoff::default().relisting_at_once(expired))
}

/// Whether the API server said the watch's resource version is too old (410 Gone): the
/// watcher re-lists next, which is not a failure to back off from.
pub fn is_expired(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 410,
        _ => false,
    }
}

/// The first delay after an error.
pub const MIN_DELAY: Duration = Duration::from_millis(200);
/// The longest delay between retries.
pub const MAX_DELAY: Duration = Duration::from_secs(3);

/// Exponential backoff with jitter for watch streams (`WatchStreamExt::backoff`).
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: Duration,
    seed: u64,
    /// Set when the last error was an expired resource version: retry at once.
    expired: Option<Arc<AtomicBool>>,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
        WatchBackoff::with_seed(u64::from(nanos) | 1)
    }
}

impl WatchBackoff {
    /// A backoff whose jitter comes from `seed` (tests fix it).
    pub fn with_seed(seed: u64) -> Self {
        WatchBackoff {
            next: MIN_DELAY,
            seed: seed.max(1),
            expired: None,
        }
    }

    /// The next delay is zero, once, whenever `expired` has been set since.
    pub fn relisting_at_once(mut self, expired: Arc<AtomicBool>) -> Self {
        self.expired = Some(expired);
        self
    }

    /// xorshift64: enough randomness to spread retries, no dependency.
    fn random(&mut self) -> u64 {
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed = x;
        x
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    /// The delay before the next retry: the current step, jittered to [50 %, 100 %] of it.
    fn next(&mut self) -> Option<Duration> {
        if let Some(expired) = &self.expired
            && expired.swap(false, Ordering::Relaxed)
        {
            return Some(Duration::ZERO);
        }
        let step = self.next;
        self.next = (step * 2).min(MAX_DELAY);
        let half = step / 2;
        let jitter_nanos = self.random() % (half.as_nanos() as u64).max(1);
        Some(half + Duration::from_nanos(jitter_nanos))
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = MIN_DELAY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_min_to_max_with_jitter_and_resets() {
        let mut b = WatchBackoff::with_seed(42);
        let delays: Vec<Duration> = (&mut b).take(10).collect();
        let mut step = MIN_DELAY;
        for d in &delays {
            assert!(
                *d >= step / 2 && *d <= step,
                "{d:?} outside [{:?}, {step:?}]",
                step / 2
            );
            step = (step * 2).min(MAX_DELAY);
        }
        assert!(delays.iter().all(|d| *d <= MAX_DELAY));
        // After 10 errors the step is at the cap: never more than 5 s.
        assert!(delays[9] >= MAX_DELAY / 2);
        b.reset();
        let first = b.next().unwrap_or_default();
        assert!(first <= MIN_DELAY, "{first:?}");
    }

    #[test]
    fn an_expired_resource_version_is_relisted_at_once() {
        let expired = Arc::new(AtomicBool::new(false));
        let mut b = WatchBackoff::with_seed(7).relisting_at_once(expired.clone());
        let _ = b.nth(3);
        expired.store(true, Ordering::Relaxed);
        assert_eq!(b.next(), Some(Duration::ZERO));
        // Only once: the next plain error backs off again, from where it was.
        assert!(b.next().unwrap_or_default() >= Duration::from_millis(800));
        let gone = watcher::Error::WatchError(Box::new(
            kube::core::Status::failure("too old resource version: 279 (286)", "Expired")
                .with_code(410),
        ));
        assert!(is_expired(&gone));
        assert!(!is_expired(&watcher::Error::NoResourceVersion));
    }

    #[test]
    fn jitter_spreads_a_fleet() {
        let firsts: std::collections::BTreeSet<Duration> = (1..=20)
            .map(|seed| {
                WatchBackoff::with_seed(seed * 7919)
                    .nth(5)
                    .unwrap_or_default()
            })
            .collect();
        assert!(firsts.len() > 10, "{firsts:?}");
    }
}
