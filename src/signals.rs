//! Ctrl-C: the first stops dispatching (in-flight requests finish, results are flushed, the
//! summary says `complete: false`); the second aborts the requests in flight.

use crate::runner::Control;

/// Waits for Ctrl-C twice and cancels `control.stop`, then `control.abort`.
pub async fn handle_ctrl_c(control: Control) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    eprintln!(
        "orbatch: stopping: no new requests; waiting for those in flight (Ctrl-C again to abort them)"
    );
    control.stop.cancel();
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    eprintln!("orbatch: aborting the requests in flight");
    control.abort.cancel();
}
