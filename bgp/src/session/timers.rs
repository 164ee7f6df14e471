//! Timers as data. The state machine never reads a clock: it asks the driver to start or
//! stop a named timer for a duration, and the driver feeds the expiry back as an event.
//! Also the RFC 4271 §10 jitter, drawn from a small seeded generator so that scripted
//! tests are deterministic.

use std::time::Duration;

/// Identifies one TCP connection of a session (a peer may briefly have two: one it
/// opened and one it accepted, until collision detection closes one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// The timers of RFC 4271 §8 (and the idle hold of §8.1.1's DampPeerOscillations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Time between outgoing connection attempts.
    ConnectRetry,
    /// Time spent in Idle before the automatic restart (grows with consecutive failures).
    IdleHold,
    /// The hold timer of one connection.
    Hold(ConnId),
    /// When to send the next KEEPALIVE on one connection.
    Keepalive(ConnId),
}

/// The hold time used in OpenSent before the peer's OPEN tells us the real one
/// (RFC 4271 §8: "a large value", suggested 4 minutes).
pub const LARGE_HOLD_TIME: Duration = Duration::from_secs(240);

/// Negotiated hold time: the smaller of the two, in seconds; 0 means no hold timer and
/// no keepalives. `None` when the peer proposed 1 or 2 seconds, which RFC 4271 §6.2
/// requires us to refuse (OPEN error, Unacceptable Hold Time).
pub fn negotiate_hold_time(ours: u16, theirs: u16) -> Option<u16> {
    if theirs == 1 || theirs == 2 {
        return None;
    }
    Some(ours.min(theirs))
}

/// Keepalive interval for a negotiated hold time: a third of it, at least one second,
/// or none when the hold time is 0.
pub fn keepalive_interval(hold_time: u16, configured: Option<u16>) -> Option<Duration> {
    if hold_time == 0 {
        return None;
    }
    let third = (hold_time / 3).max(1);
    let secs = configured.map_or(third, |k| k.clamp(1, third));
    Some(Duration::from_secs(u64::from(secs)))
}

/// RFC 4271 §10 jitter: each ConnectRetry and KEEPALIVE interval is multiplied by a random
/// factor in [0.75, 1.0] so that peers do not synchronise. A xorshift generator seeded by
/// the driver: deterministic in tests, different per session in production.
#[derive(Clone, Debug)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator with this seed (0 is replaced, xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Self {
        Self {
            state: if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            },
        }
    }

    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    /// `interval` scaled by a factor in [0.75, 1.0].
    pub fn apply(&mut self, interval: Duration) -> Duration {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "750 + (x % 251) is at most 1000"
        )]
        let permille = (750 + self.next() % 251) as u32;
        interval * permille / 1000
    }
}

/// Idle hold time after `failures` consecutive session failures: `base` doubled for each
/// failure after the first, capped at `max` (exponential backoff for reconnects).
pub fn idle_hold_time(base: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_time_is_the_smaller_and_refuses_one_and_two() {
        assert_eq!(negotiate_hold_time(90, 30), Some(30));
        assert_eq!(negotiate_hold_time(9, 180), Some(9));
        assert_eq!(negotiate_hold_time(90, 0), Some(0));
        assert_eq!(negotiate_hold_time(0, 90), Some(0));
        assert_eq!(negotiate_hold_time(90, 1), None);
        assert_eq!(negotiate_hold_time(90, 2), None);
        assert_eq!(negotiate_hold_time(3, 3), Some(3));
    }

    #[test]
    fn keepalive_is_a_third_of_hold_time() {
        assert_eq!(keepalive_interval(90, None), Some(Duration::from_secs(30)));
        assert_eq!(keepalive_interval(3, None), Some(Duration::from_secs(1)));
        assert_eq!(keepalive_interval(0, None), None);
        assert_eq!(
            keepalive_interval(90, Some(10)),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            keepalive_interval(90, Some(60)),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn jitter_stays_between_three_quarters_and_one() {
        let mut j = Jitter::new(42);
        let base = Duration::from_secs(120);
        let samples: Vec<_> = (0..1000).map(|_| j.apply(base)).collect();
        assert!(samples.iter().all(|d| *d >= base * 3 / 4 && *d <= base));
        assert!(samples.iter().any(|d| *d != samples[0]), "jitter must vary");
    }

    #[test]
    fn idle_hold_backs_off_exponentially_up_to_the_cap() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        assert_eq!(idle_hold_time(base, max, 1), Duration::from_secs(1));
        assert_eq!(idle_hold_time(base, max, 2), Duration::from_secs(2));
        assert_eq!(idle_hold_time(base, max, 4), Duration::from_secs(8));
        assert_eq!(idle_hold_time(base, max, 10), max);
        assert_eq!(idle_hold_time(base, max, 1000), max);
    }
}
