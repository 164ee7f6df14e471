//! Polling until a condition holds: labs wait for sessions, routes and daemons this way.

use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Polls `probe` every 100 ms until it returns `Some`, or fails with [`Error::Timeout`]
/// naming `what`. Errors from the probe count as "not yet" (a daemon still starting).
pub fn until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    let mut last_error = None;
    loop {
        match probe() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(err) => last_error = Some(err),
        }
        if start.elapsed() >= timeout {
            let what = match last_error {
                Some(err) => format!("{what} (last error: {err})"),
                None => what.to_string(),
            };
            return Err(Error::Timeout {
                what,
                seconds: timeout.as_secs_f64(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
