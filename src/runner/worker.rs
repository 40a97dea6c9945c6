//! One (row, model) pair: attempts with retries, then its cost, into one result line.
//!
//! Every attempt reserves its worst case from the budget and waits for the limiter; the
//! concurrency slot is released before any generation look-up, so look-ups never hold back
//! new completions.

use std::sync::Arc;

use bytes::Bytes;
use rust_decimal::Decimal;
use tokio::time::Instant;

use super::Ctx;
use super::lookup;
use super::reserve::Turn;
use super::tally::{Attempts, fail, new_line, take_completion};
use crate::budget::{Reservation, Worst};
use crate::client::{Attempt, Completion, Failure};
use crate::job::CostMode;
use crate::output::key::ResultKey;
use crate::output::results::Prior;
use crate::output::{CostSource, ErrorKind, RawJson, ResultLine};
use crate::retry::{Verdict, backoff};

/// What the dispatcher hands a worker.
pub(crate) struct WorkItem {
    pub id: String,
    pub model: String,
    /// The prompt variant (`None`: the job defines none).
    pub variant: Option<String>,
    pub body: Bytes,
    pub vars: RawJson,
    pub prior: Option<Prior>,
    /// Each attempt's worst-case charge (reserved from the budget before it is sent).
    pub worst: Decimal,
    /// Estimated tokens, for the TPM limit.
    pub tokens: u64,
    /// The response-cache key of `body` (`None`: no cache).
    pub cache_key: Option<crate::transport::cache::Key>,
    /// The most completion tokens a request may ask for (a re-ask's worst case).
    pub cap: Option<u64>,
}

impl WorkItem {
    /// The pair's key: (id, variant, model).
    pub(super) fn key(&self) -> ResultKey<'_> {
        ResultKey::of(&self.id, self.variant.as_deref(), &self.model)
    }
}

pub(crate) enum End {
    Answered(Completion, Reservation),
    Failed(Failure),
    /// Stopped before a result (auth, credits, budget, abort): a line only if money was spent.
    Stopped(Option<Failure>),
    /// The run stopped before this pair's first attempt of this run was sent: no line.
    NotSent,
}

/// Runs one pair to its end and returns its line (None: nothing to record).
pub(crate) async fn work(
    ctx: Arc<Ctx>,
    item: WorkItem,
    permit: crate::limits::Slot,
    first: Reservation,
) -> Option<ResultLine> {
    let mut item = item;
    let mut started = None;
    let mut tally = Attempts::carried(item.prior.as_ref());
    let mut this_run = 0u32;
    let end = attempts(&ctx, &item, &mut tally, first, &mut started, &mut this_run).await;
    let (end, structured) = match ctx.job.output.as_ref() {
        Some(spec) => {
            let mut run = super::structured::Run {
                tally: &mut tally,
                started: &mut started,
                this_run: &mut this_run,
            };
            let (end, s) = super::structured::reask(&ctx, &mut item, spec, &mut run, end).await;
            (end, Some(s))
        }
        None => (end, None),
    };
    drop(permit);
    let started = started.unwrap_or_else(Instant::now);
    let mut line = new_line(item.key(), &item.vars, &tally, started);
    let failure = match &end {
        End::Failed(f) if f.verdict == Verdict::Fail => Some((f.kind, f.message.as_str())),
        _ => None,
    };
    if !matches!(end, End::NotSent | End::Stopped(_))
        && let Some(why) = ctx.breakers.record(&item.model, failure)
    {
        crate::eprintln!("orbatch: {why}");
    }
    match end {
        End::NotSent => None,
        End::Answered(c, reservation) => {
            let before = tally.known_cost;
            settle_answer(&ctx, &item, &mut tally, &mut line, c, reservation, true).await;
            let valid = structured.as_ref().is_none_or(|s| s.parsed.is_some());
            if valid {
                super::cached::ticket(&mut line, item.cache_key, before);
            }
            if let Some(s) = structured {
                s.fill(&mut line);
            }
            Some(line)
        }
        End::Failed(f) => {
            fail(&mut line, &f);
            if let Some(s) = structured {
                s.fill(&mut line);
            }
            Some(line)
        }
        End::Stopped(f) => {
            // A line only when this run's attempts may have cost something (it keeps the dir's
            // spend and its worst case right); otherwise the pair has no line, like a request
            // never sent. Either way a plain re-run sends it again.
            let prior = item.prior.as_ref();
            let known_before = prior.and_then(|p| p.cost_usd).unwrap_or_default();
            let unknown_before = prior.map_or(0, |p| p.unknown_cost_attempts);
            if tally.known_cost.unwrap_or_default() <= known_before
                && tally.unknown <= unknown_before
            {
                return None;
            }
            let f = f.unwrap_or(Failure {
                kind: ErrorKind::Network,
                verdict: Verdict::Fail,
                status: None,
                message: "aborted in flight (it may have been billed)".into(),
                retry_after: None,
                ambiguous: false,
                partial: None,
            });
            fail(&mut line, &f);
            if let Some(s) = structured {
                s.fill(&mut line);
            }
            line.resumable = true;
            if let Some(e) = line.error.as_mut() {
                e.message
                    .push_str(" (not retried: the run stopped; a re-run sends it again)");
            }
            Some(line)
        }
    }
}

/// Sends `item` until it is answered or fails for good (retries, back-off); `this_run`
/// counts the pair's attempts in this run, re-asks included.
pub(crate) async fn attempts(
    ctx: &Ctx,
    item: &WorkItem,
    tally: &mut Attempts,
    first: Reservation,
    started: &mut Option<Instant>,
    this_run: &mut u32,
) -> End {
    let limits = &ctx.job.limits;
    // A retry is priced like the first attempt, at the table generation it was priced at.
    let worst = Worst {
        amount: item.worst,
        generation: first.generation(),
    };
    let mut reservation = Some(first);
    let mut last: Option<Failure> = None;
    let mut tries = 0u32;
    loop {
        let res = match reservation.take() {
            Some(r) => r,
            None => match ctx.reserve(&item.model, worst, Turn::Again).await {
                Ok(r) => r,
                Err(_) => return End::Stopped(last),
            },
        };
        tokio::select! {
            biased;
            _ = ctx.abort.cancelled() => {
                ctx.budget.settle(res, Some(Decimal::ZERO));
                return End::Stopped(last);
            }
            // Waiting for the rate limiter is not being in flight: once the run stops
            // (Ctrl-C, budget, credits, auth), a pair not yet sent stays unsent.
            _ = ctx.stop.cancelled(), if *this_run == 0 => {
                ctx.budget.settle(res, Some(Decimal::ZERO));
                return End::NotSent;
            }
            _ = ctx.limiter.admit(item.tokens) => {}
        }
        // The record of money in flight is in the file before the request leaves.
        let n = tally.attempts + 1;
        if let Err(e) = ctx.inflight.sent(item.key(), n, item.worst).await {
            ctx.budget.settle(res, Some(Decimal::ZERO));
            let why = format!(
                "cannot write {}: {e}; stopping (nothing more is sent)",
                ctx.inflight.path().display()
            );
            tracing::error!("{why}");
            ctx.request_stop(super::StopReason::JournalFailed(why));
            return if *this_run == 0 {
                End::NotSent
            } else {
                End::Stopped(last)
            };
        }
        started.get_or_insert_with(Instant::now);
        tally.attempts = n;
        *this_run += 1;
        tries += 1;
        ctx.sent.count(*this_run);
        let attempt = tokio::select! {
            _ = ctx.abort.cancelled() => {
                ctx.budget.settle(res, None);
                tally.add_charge(None, item.worst);
                return End::Stopped(last);
            }
            a = ctx.client.chat(item.body.clone()) => a,
        };
        let f = match attempt {
            Attempt::Answered(c) => {
                ctx.limiter.on_success();
                return End::Answered(c, res);
            }
            Attempt::Failed(f) => f,
        };
        let charge = f.partial.as_ref().and_then(|p| p.cost).or(if f.ambiguous {
            None
        } else {
            Some(Decimal::ZERO)
        });
        if let Some(c) = charge {
            if c > item.worst {
                learned(ctx, item, c, item.worst);
            }
            // Without this the next run would count the attempt at its worst case.
            if let Err(e) = ctx.inflight.charged(item.key(), n, c) {
                tracing::debug!("cannot record a settled attempt: {e}");
            }
        }
        ctx.budget.settle(res, charge);
        tally.add_charge(charge, item.worst);
        if f.kind == ErrorKind::RateLimited {
            tally.rate_limited += 1;
            ctx.limiter.on_rate_limited(f.retry_after);
        }
        tracing::debug!(id = %item.id, variant = ?item.variant, model = %item.model, kind = f.kind.as_str(), "attempt failed: {}", f.message);
        match f.verdict {
            Verdict::StopAuth => {
                ctx.request_stop(super::StopReason::AuthRefused(f.message.clone()));
                return End::Stopped(Some(f));
            }
            Verdict::StopCredits => {
                ctx.request_stop(super::StopReason::CreditsExhausted(f.message.clone()));
                return End::Stopped(Some(f));
            }
            Verdict::Fail => return End::Failed(f),
            Verdict::Retry => {}
        }
        if tries > limits.max_retries {
            return End::Failed(f);
        }
        if f.ambiguous && charge.is_none() && !limits.retry_ambiguous {
            let mut f = f;
            f.message
                .push_str(" (not re-sent: it may have been billed, and retry_ambiguous = false)");
            return End::Failed(f);
        }
        let wait = backoff(tries - 1, f.retry_after);
        last = Some(f);
        // A stopped run sends nothing new: the back-off ends at once and the pair stays
        // unsent (a line only if this run's attempts may have cost something).
        tokio::select! {
            _ = ctx.abort.cancelled() => return End::Stopped(last),
            _ = ctx.stop.cancelled() => return End::Stopped(last),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Resolves the answering attempt's cost (response, generation, price table), settles the
/// budget and fills the line. `may_defer`: a generation record not there yet is looked up
/// again at the end of the run (only for the pair's final answer; an earlier answer of a
/// re-asked pair counts its table price, else as an attempt of unknown cost).
pub(crate) async fn settle_answer(
    ctx: &Ctx,
    item: &WorkItem,
    tally: &mut Attempts,
    line: &mut ResultLine,
    c: Completion,
    reservation: Reservation,
    may_defer: bool,
) {
    let (tokens, response_cost) = ((c.prompt_tokens, c.completion_tokens), c.cost);
    take_completion(line, c);
    let table = ctx
        .prices
        .current()
        .get(&item.model)
        .and_then(|p| match tokens {
            (Some(pt), Some(ct)) => Some(p.cost(pt, ct)),
            _ => None,
        });
    let want_lookup = match ctx.job.cost {
        CostMode::Response => false,
        CostMode::Auto => response_cost.is_none(),
        CostMode::Generation => true,
    };
    let mut cost = response_cost.map(|v| (v, CostSource::Response));
    let mut deferred = false;
    if want_lookup && let Some(gen_id) = line.generation_id.clone() {
        match lookup::generation(ctx, &gen_id).await {
            lookup::Found::Yes(g) => {
                if let Some(total) = g.total_cost {
                    cost = Some((total, CostSource::Generation));
                }
                if line.provider.is_none() {
                    line.provider = g.provider_name;
                }
            }
            lookup::Found::NotYet => deferred = cost.is_none(),
            lookup::Found::Unsupported => {}
        }
    }
    let charge = cost.map(|(v, _)| v);
    match charge {
        Some(v) => learned(ctx, item, v, table.unwrap_or(item.worst)),
        None => {
            ctx.budget.learn(&item.model, None, None);
        }
    }
    ctx.budget.settle(reservation, charge);
    match cost {
        Some((v, src)) => {
            tally.known_cost = Some(tally.known_cost.unwrap_or_default() + v);
            line.cost_source = Some(src);
            line.cost_mismatch = table.is_some_and(|t| crate::prices::mismatch(v, t));
        }
        None => {
            // Charge unknown: the table price stands in (and says so), or null.
            if let Some(t) = table {
                tally.known_cost = Some(tally.known_cost.unwrap_or_default() + t);
                line.cost_source = Some(CostSource::PriceTable);
            }
        }
    }
    line.cost_usd = tally.known_cost;
    line.table_cost_usd = table;
    if deferred && !may_defer && table.is_none() {
        tally.add_charge(None, item.worst);
    }
    if deferred
        && may_defer
        && let Some(gen_id) = line.generation_id.clone()
    {
        ctx.defer(line.clone(), gen_id, table);
    }
}

/// Teaches the budget what an answer of `item.model` cost against what its prices said.
fn learned(ctx: &Ctx, item: &WorkItem, charge: Decimal, expected: Decimal) {
    if ctx.budget.learn(&item.model, Some(charge), Some(expected)) {
        tracing::warn!(
            model = %item.model,
            "a charge of {charge} where the prices say {expected}: the prices understate the charge; every reservation of this model now counts {}x",
            ctx.budget.ratio(&item.model).round_dp(3)
        );
        ctx.prices.refresh_once(&ctx.client, &ctx.budget);
    }
}
