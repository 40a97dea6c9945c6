//! Generation look-ups (`GET /generation?id=`): their record appears with a delay, so 404 means
//! "not yet" and is retried with back-off; look-ups have their own small concurrency budget,
//! and a server that has no such endpoint is detected and left alone (no retry storm).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::Ctx;
use crate::api::Generation;
use crate::client::CallError;
use crate::job::CostMode;

/// A look-up's outcome.
pub(crate) enum Found {
    /// The record.
    Yes(Generation),
    /// Still 404 after the back-off: sweep again at the end of the run.
    NotYet,
    /// The server has no usable `/generation`.
    Unsupported,
}

/// The back-off of one look-up. `generation` mode waits about a minute for the record
/// (docs/contract.md §6). In `auto` mode a look-up happens only when a response had no `usage.cost`,
/// which is most often a server without `/generation` at all: a few seconds (enough for a
/// record that lags a couple of seconds), then the end-of-run sweep.
fn schedule(mode: CostMode) -> &'static [Duration] {
    match mode {
        CostMode::Generation => &LOOKUP_SCHEDULE,
        _ => &LOOKUP_SCHEDULE[..AUTO_STEPS],
    }
}

/// Steps of [`LOOKUP_SCHEDULE`] used in `auto` mode (0.5 + 1 + 2 = 3.5 s).
const AUTO_STEPS: usize = 3;

/// Looks `id` up with back-off.
pub(crate) async fn generation(ctx: &Ctx, id: &str) -> Found {
    for (i, wait) in std::iter::once(None)
        .chain(schedule(ctx.job.cost).iter().map(Some))
        .enumerate()
    {
        if ctx.lookups.disabled.load(Relaxed) {
            return Found::Unsupported;
        }
        if let Some(w) = wait {
            tokio::select! {
                _ = ctx.abort.cancelled() => return Found::NotYet,
                _ = tokio::time::sleep(w.mul_f64(ctx.lookup_scale)) => {}
            }
        }
        match once(ctx, id).await {
            Ok(g) => {
                ctx.lookups.found.fetch_add(1, Relaxed);
                return Found::Yes(g);
            }
            Err(CallError::NotFound) => continue,
            Err(CallError::Auth(..)) | Err(CallError::Status(400 | 405 | 501, _)) => {
                if !ctx.lookups.disabled.swap(true, Relaxed) {
                    tracing::warn!(
                        "GET /generation is not available on this server; costs come from responses or prices"
                    );
                }
                return Found::Unsupported;
            }
            Err(e) => {
                tracing::debug!("generation look-up {id} (try {i}) failed: {e}");
            }
        }
    }
    // A server that never once had a record after several full back-offs has none to give.
    let missed = ctx.lookups.exhausted.fetch_add(1, Relaxed) + 1;
    if missed >= 3
        && ctx.lookups.found.load(Relaxed) == 0
        && !ctx.lookups.disabled.swap(true, Relaxed)
    {
        tracing::warn!(
            "GET /generation never found a record; giving up on generation look-ups for this run"
        );
    }
    Found::NotYet
}

/// One look-up, within the look-up concurrency budget.
pub(crate) async fn once(ctx: &Ctx, id: &str) -> Result<Generation, CallError> {
    let _permit = ctx.lookups.slots.acquire().await;
    ctx.client.generation(id).await
}

/// How long a worker waits for a generation record, at most (then the end-of-run sweep).
pub(crate) const LOOKUP_SCHEDULE: [Duration; 7] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(15),
    Duration::from_secs(30),
];
