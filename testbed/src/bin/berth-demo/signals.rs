//! Ctrl-C and SIGTERM: a thread of its own catches them and sets a flag that every wait of the
//! demo checks, so the main flow stops at its next wait and tears the lab down instead of
//! dying with namespaces and daemons left behind. Knows nothing about what is being waited for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Set by the signal thread on SIGINT or SIGTERM.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How long sessions, the address allocation, statuses and routes get to appear.
pub const TIMEOUT: Duration = Duration::from_secs(45);

/// Installs the handlers on a thread of its own; returns once they are in place.
pub fn watch() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = signal(SignalKind::interrupt())
                .and_then(|i| signal(SignalKind::terminate()).map(|t| (i, t)));
            let (mut interrupt, mut terminate) = match streams {
                Ok(s) => {
                    let _ = ready_tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            loop {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                if !INTERRUPTED.swap(true, Ordering::SeqCst) {
                    eprintln!("\n(signal received: tearing the lab down)");
                }
            }
        });
    });
    ready_rx
        .recv()
        .context("signal thread died")?
        .context("install signal handlers")
}

/// Whether a signal has arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// An error once a signal has arrived, so `?` unwinds to the teardown.
pub fn check() -> Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// Blocks until a signal arrives (`--keep`).
pub fn wait_for_signal() {
    while !interrupted() {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls `probe` until it gives a value, [`TIMEOUT`] passes, or a signal arrives.
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let value = testbed::wait::until(what, TIMEOUT, || {
        if interrupted() {
            // An error is "not yet" to `until`; a value ends it, so end with `None` inside.
            return Ok(Some(None));
        }
        Ok(probe()
            .map_err(|e| testbed::Error::Daemon(format!("{e:#}")))?
            .map(Some))
    })?;
    value.ok_or_else(|| anyhow::anyhow!("interrupted while waiting for {what}"))
}
