//! How one peer's failed attempts to bring its session up reach the log: every failure
//! once, with its reason; at info level when the reason is new (the first failure, or not
//! the same as the last one), at debug level while the same reason repeats, as it does at
//! the connect-retry rate while a router is down or refuses us. A reason that keeps
//! repeating is said again at info every [`REMIND_AFTER`], with how often it came since,
//! so that a log read hours later still says why the session is not up.
//!
//! Knows nothing of sessions or sockets: a reason is text, the clock is the tokio one.

use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info};

/// How long a repeating reason stays at debug level before it is said again at info.
pub const REMIND_AFTER: Duration = Duration::from_secs(600);

/// At which level a failure is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A reason not seen last time: info.
    New,
    /// The same reason, said at info again after [`REMIND_AFTER`]; it came `repeats` times
    /// in between.
    Reminder {
        /// Failures with this reason since it was last said at info.
        repeats: u64,
    },
    /// The same reason again: debug.
    Repeat,
}

/// The failures of one peer since its session was last Established.
#[derive(Debug, Default)]
pub struct FailureLog {
    /// The last reason, and when it was last said at info.
    last: Option<(String, Instant)>,
    /// Failures with the last reason since it was said at info.
    repeats: u64,
}

impl FailureLog {
    /// Decides how a failure for `reason` at `now` is logged, and remembers it.
    pub fn judge(&mut self, reason: &str, now: Instant) -> Verdict {
        match &mut self.last {
            Some((last, said)) if last == reason => {
                if now.duration_since(*said) < REMIND_AFTER {
                    self.repeats += 1;
                    return Verdict::Repeat;
                }
                *said = now;
                Verdict::Reminder {
                    repeats: std::mem::take(&mut self.repeats),
                }
            }
            _ => {
                self.last = Some((reason.to_owned(), now));
                self.repeats = 0;
                Verdict::New
            }
        }
    }

    /// Logs a failed attempt (in the peer's span).
    pub fn record(&mut self, reason: &str) {
        match self.judge(reason, Instant::now()) {
            Verdict::New => info!(reason, "session attempt failed"),
            Verdict::Reminder { repeats } => {
                info!(reason, repeats, "session attempt still failing");
            }
            Verdict::Repeat => debug!(reason, "session attempt failed again"),
        }
    }

    /// The session is up: the next failure is news again.
    pub fn clear(&mut self) {
        *self = FailureLog::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_news_once_then_repeats_until_reminded() {
        let t0 = Instant::now();
        let mut log = FailureLog::default();
        assert_eq!(log.judge("refused", t0), Verdict::New);
        let every = Duration::from_secs(30);
        let mut t = t0;
        for _ in 0..19 {
            t += every;
            assert_eq!(log.judge("refused", t), Verdict::Repeat);
        }
        t += every;
        assert_eq!(
            log.judge("refused", t),
            Verdict::Reminder { repeats: 19 },
            "said again {REMIND_AFTER:?} after"
        );
        assert_eq!(log.judge("refused", t + every), Verdict::Repeat);
    }

    #[test]
    fn another_reason_is_news_and_so_is_the_first_after_it() {
        let t = Instant::now();
        let mut log = FailureLog::default();
        assert_eq!(log.judge("refused", t), Verdict::New);
        assert_eq!(log.judge("hold timer", t), Verdict::New);
        assert_eq!(log.judge("refused", t), Verdict::New);
        log.clear();
        assert_eq!(log.judge("refused", t), Verdict::New, "after Established");
    }
}
