//! Ctrl-C: the first stops dispatching (in-flight requests finish, results are flushed, the
//! summary says `complete: false`); the second aborts the requests in flight.

use crate::runner::Control;

/// Waits for Ctrl-C twice and cancels `control.stop`, then `control.abort`.
pub async fn handle_ctrl_c(control: Control) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    // Cancel first, then say so: the stop must not depend on stderr being writable.
    control.stop.cancel();
    eprintln!(
        "orbatch: stopping: no new requests; waiting for those in flight (Ctrl-C again to abort them)"
    );
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    control.abort.cancel();
    eprintln!("orbatch: aborting the requests in flight");
}
