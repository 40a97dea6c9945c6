//! The one constructor of a run's shared state ([`Ctx`]): `run` builds it after its
//! pre-flight, `score` before it sends the judge calls whose inputs changed.

use std::sync::{Arc, Mutex};

use rust_decimal::Decimal;

use super::{Control, Ctx, Lookups, RunOptions, StopReason};
use crate::budget::Budget;
use crate::client::Client;
use crate::job::Job;
use crate::limits::{LimitSpec, Limiter};
use crate::output::inflight::Inflight;
use crate::prices::PriceTable;

impl Ctx {
    /// The shared state of a run of `job`: the job's limiter (concurrency, RPM, TPM over
    /// `opts.rate_window`), a budget that starts from `committed` (what the output dir already
    /// spent, plus the worst case of its attempts of unknown charge), the in-flight record,
    /// the price table, the response cache of `opts`, and stop tokens under `control`'s.
    pub(crate) fn new(
        job: &Job,
        client: Client,
        prices: PriceTable,
        inflight: Inflight,
        committed: Decimal,
        opts: &RunOptions,
        control: &Control,
    ) -> Ctx {
        Ctx {
            job: job.clone(),
            client,
            limiter: Limiter::new(LimitSpec {
                concurrency: job.limits.concurrency,
                rpm: job.limits.requests_per_minute,
                tpm: job.limits.tokens_per_minute,
                window: opts.rate_window,
            }),
            budget: Budget::new(job.limits.budget_usd, committed),
            inflight,
            prices: Arc::new(crate::prices::LivePrices::new(prices)),
            stop: control.stop.child_token(),
            abort: control.abort.clone(),
            stop_reason: Mutex::new(None),
            refused_worst: Mutex::new(None),
            lookups: Lookups::new(),
            deferred: Mutex::new(Vec::new()),
            lookup_scale: opts.lookup_backoff_scale,
            cache: opts
                .cache
                .as_ref()
                .and_then(|c| crate::transport::cache::ResponseCache::open(&c.dir, &c.identity)),
            breakers: super::breaker::Breakers::new(super::breaker::TRIP_AFTER),
            sent: Default::default(),
        }
    }
}

impl Ctx {
    /// The end of a run's sending: empties the in-flight record (every attempt is in
    /// results.jsonl) unless the journal failed (the next run counts what it could not record),
    /// and gives why the run stopped early (`Interrupted` for a stop of `control`'s; a budget stop
    /// with the cap a resume needs).
    pub(crate) fn settle_end(&self, control: &Control, journal_failed: bool) -> Option<StopReason> {
        if !journal_failed && let Err(e) = self.inflight.clear() {
            tracing::warn!("cannot empty {}: {e}", self.inflight.path().display());
        }
        let stop = self
            .stop_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match stop {
            None if control.stop.is_cancelled() => Some(StopReason::Interrupted),
            // Everything in flight has settled: what is spent now is what a resume starts from.
            Some(StopReason::BudgetReached(_)) => {
                let refused = self.refused_worst.lock().unwrap_or_else(|e| e.into_inner());
                let at_least = refused.as_ref().and_then(|(model, worst)| {
                    let next = self.budget.counted(model, *worst);
                    self.budget.spent().checked_add(next)
                });
                Some(StopReason::BudgetReached(at_least))
            }
            stop => stop,
        }
    }
}
