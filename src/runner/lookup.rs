//! Generation look-ups (`GET /generation?id=`): their record appears with a delay, so 404 means
//! "not yet" and is retried with back-off; look-ups have a rate budget of their own (a
//! `governor` quota, apart from the completions' RPM window, so look-ups never take a
//! completion's slot in it), and a server that has no such endpoint is detected and left alone
//! (no retry storm).

use std::num::NonZeroU32;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use governor::clock::MonotonicClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::{Ctx, Lookups};
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

/// Look-ups per second at most, over the whole run.
pub(crate) const LOOKUPS_PER_SEC: u32 = 20;
/// Look-ups sent at once after a quiet spell, at most.
pub(crate) const LOOKUP_BURST: u32 = 8;

/// The look-up rate limiter, on the standard monotonic clock: governor's default clock
/// (quanta) calibrates itself at first use, about 11 M instructions at every start.
pub(crate) type LookupRate =
    RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<std::time::Instant>>;

/// The look-up rate: [`LOOKUPS_PER_SEC`] with a burst of [`LOOKUP_BURST`].
pub(crate) fn lookup_rate() -> LookupRate {
    let rate = NonZeroU32::new(LOOKUPS_PER_SEC).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(LOOKUP_BURST).unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct_with_clock(Quota::per_second(rate).allow_burst(burst), MonotonicClock)
}

impl Lookups {
    /// A fresh look-up budget and circuit breaker.
    pub(crate) fn new() -> Lookups {
        Lookups {
            rate: lookup_rate(),
            found: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
            disabled: AtomicBool::new(false),
        }
    }
}

/// One look-up, within the look-up rate; `NotFound` when the run is aborted meanwhile.
pub(crate) async fn once(ctx: &Ctx, id: &str) -> Result<Generation, CallError> {
    tokio::select! {
        _ = ctx.abort.cancelled() => return Err(CallError::NotFound),
        _ = ctx.lookups.rate.until_ready() => {}
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn look_ups_pass_a_burst_then_keep_to_the_rate() {
        let rate = lookup_rate();
        let start = std::time::Instant::now();
        for _ in 0..LOOKUP_BURST {
            rate.until_ready().await;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_millis(40),
            "the burst waits"
        );
        let n = 6;
        for _ in 0..n {
            rate.until_ready().await;
        }
        // n more at LOOKUPS_PER_SEC: (n - 1) full intervals at least after the burst.
        let min = std::time::Duration::from_secs(1) * (n - 1) / LOOKUPS_PER_SEC;
        assert!(start.elapsed() >= min, "{:?} < {min:?}", start.elapsed());
    }
}
