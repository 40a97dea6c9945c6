//! Stop signals: SIGINT (Ctrl-C), SIGTERM (`kill`, `timeout`, Kubernetes, Slurm) and SIGHUP (a
//! closed terminal or ssh session). The first stops dispatching (in-flight requests finish,
//! results are flushed, the summary says `complete: false`, exit 3); a second one, of any of
//! the three, aborts the requests in flight.
//!
//! Each signal is listened to from the start with one stream, so a signal that arrives while
//! the first one is being handled is never lost.

use crate::runner::Control;

/// The message printed when the first stop signal arrives (tests wait for it).
pub const STOPPING: &str = "orbatch: stopping: no new requests; waiting for those in flight";

/// Waits for two stop signals and cancels `control.stop`, then `control.abort`.
pub async fn handle_stop_signals(control: Control) {
    let Some(mut signals) = Signals::listen() else {
        return;
    };
    let Some(name) = signals.next().await else {
        return;
    };
    // Cancel first: a closed stderr must not keep the run going.
    control.stop.cancel();
    say(&format!(
        "{STOPPING} ({name}; Ctrl-C or another signal to abort them)"
    ));
    let Some(name) = signals.next().await else {
        return;
    };
    control.abort.cancel();
    say(&format!(
        "orbatch: aborting the requests in flight ({name})"
    ));
}

/// Writes a line to stderr once (above the progress bar), ignoring a stderr that is gone.
fn say(line: &str) {
    crate::progress::say(line);
}

/// The stop signals' streams.
#[cfg(unix)]
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn listen() -> Option<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Some(Signals {
            int: signal(SignalKind::interrupt()).ok()?,
            term: signal(SignalKind::terminate()).ok()?,
            hup: signal(SignalKind::hangup()).ok()?,
        })
    }

    /// The name of the next signal received; `None` when the streams closed.
    async fn next(&mut self) -> Option<&'static str> {
        tokio::select! {
            s = self.int.recv() => s.map(|()| "SIGINT"),
            s = self.term.recv() => s.map(|()| "SIGTERM"),
            s = self.hup.recv() => s.map(|()| "SIGHUP"),
        }
    }
}

/// Elsewhere: Ctrl-C only.
#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn listen() -> Option<Signals> {
        Some(Signals)
    }

    async fn next(&mut self) -> Option<&'static str> {
        tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C")
    }
}
