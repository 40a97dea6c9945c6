//! `orbatch score`'s judge calls: the ok lines of results.jsonl whose judge grades are
//! missing or stale (the rubric, the judge model or the judged output changed, or the last
//! call failed) are graded through the run's machinery ([`super::judge::grade`]: concurrency
//! slots, the rate limiter, retries, budget reservations, the in-flight record), and each
//! graded line is appended to results.jsonl by the run's writer as soon as it is graded. So a
//! crash or a stop loses no paid grade, and the next `score` finds the recorded hash and does
//! not pay again. The budget starts from what the output dir already spent, as `run`'s does.

use std::sync::{Arc, Mutex};

use rust_decimal::Decimal;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::task::TaskTracker;

use super::judge::{grade, needs_grading};
use super::{Control, Ctx, RunError, RunOptions, StopReason, writer};
use crate::eval::Scorer;
use crate::job::{CheckKind, Job};
use crate::output::ResultLine;
use crate::output::finalize::RESULTS;
use crate::output::results::{Journal, for_each_latest};
use crate::prices::PriceTable;

/// What `score`'s judge pass did.
#[derive(Debug, Default)]
pub struct Rejudged {
    /// Lines whose grades were missing or stale when the pass started.
    pub stale: u64,
    /// Judge requests sent (retries and re-asks included).
    pub calls: u64,
    /// What they cost (the judged lines' `judge_cost_usd` grew by this much).
    pub cost_usd: Decimal,
    /// Why the pass stopped before every stale line was graded.
    pub stop: Option<StopReason>,
}

/// Grades the lines of `job`'s output dir whose judge grades are missing or stale, appending
/// each graded line to results.jsonl. The caller holds the output dir's lock. Nothing is
/// built or sent (no key needed) when no grade is stale.
pub async fn rejudge(
    job: &Job,
    scorer: Arc<Scorer>,
    opts: &RunOptions,
    control: &Control,
) -> Result<Rejudged, RunError> {
    let path = job.output_dir.join(RESULTS);
    if !scorer.has_judge() {
        return Ok(Rejudged::default());
    }
    let stale = {
        let (scorer, file) = (scorer.clone(), path.clone());
        tokio::task::spawn_blocking(move || {
            let mut n = 0u64;
            for_each_latest(&[file], |l| n += u64::from(needs_grading(&scorer, &l))).map(|_| n)
        })
        .await
        .map_err(|e| RunError::Other(anyhow::anyhow!("reading results.jsonl failed: {e}")))?
        .map_err(|e| RunError::Other(anyhow::anyhow!("{}: {e}", path.display())))?
    };
    if stale == 0 {
        return Ok(Rejudged::default());
    }
    if opts.api_key.is_none() && opts.client.is_none() {
        return Err(RunError::Config(format!(
            "{stale} results need judge calls (their grades are missing or stale), but OPENROUTER_API_KEY is not set: export it, or pass --api-key-file PATH (or try --mock); nothing was sent"
        )));
    }
    let client = match &opts.client {
        Some(c) => c.clone(),
        None => crate::client::Client::for_job(job, opts.api_key.as_ref())
            .map_err(|e| RunError::Config(format!("cannot build the HTTP client: {e}")))?,
    };
    let prices = PriceTable::cached_or_fetch(&client, crate::prices::RUN_MAX_AGE).await;
    check_judges_priced(job, &scorer, &prices)?;
    let (mut journal, mut recovered) =
        Journal::open(&path).map_err(|e| RunError::Config(format!("{}: {e}", path.display())))?;
    let dir = &job.output_dir;
    let inflight = super::crashed::open_inflight(dir, &mut journal, &mut recovered, false)?;
    let committed = recovered.spent + recovered.unknown_max + super::fresh::carried_spend(dir);
    let ctx = Arc::new(Ctx::new(
        job, client, prices, inflight, committed, opts, control,
    ));
    let (sink, writer) = {
        let ctx = ctx.clone();
        let progress = crate::progress::Progress::new(stale);
        writer::spawn(journal, progress, None, None, move |why| {
            ctx.request_stop(StopReason::JournalFailed(why))
        })
    };
    // The stale lines are read on a thread of their own; the writer only appends after the
    // lines the read hands over.
    let (tx, mut rx) = mpsc::channel::<ResultLine>(64);
    let reader = {
        let (scorer, file) = (scorer.clone(), path.clone());
        tokio::task::spawn_blocking(move || {
            for_each_latest(&[file], |l| {
                if needs_grading(&scorer, &l) {
                    let _ = tx.blocking_send(l);
                }
            })
        })
    };
    let tracker = TaskTracker::new();
    let tasks = Arc::new(Semaphore::new(job.limits.concurrency.max(1)));
    let cost = Arc::new(Mutex::new(Decimal::ZERO));
    loop {
        let next = tokio::select! {
            biased;
            _ = ctx.stop.cancelled() => None,
            l = rx.recv() => l,
        };
        let Some(mut line) = next else { break };
        let permit = tokio::select! {
            biased;
            _ = ctx.stop.cancelled() => None,
            p = tasks.clone().acquire_owned() => p.ok(),
        };
        let Some(permit) = permit else { break };
        let (ctx, scorer, sink, cost) = (ctx.clone(), scorer.clone(), sink.clone(), cost.clone());
        tracker.spawn(async move {
            let before = line.judge_cost_usd.unwrap_or_default();
            grade(&ctx, &scorer, &mut line).await;
            scorer.apply_recorded(&mut line);
            let added = line.judge_cost_usd.unwrap_or_default() - before;
            *cost.lock().unwrap_or_else(|e| e.into_inner()) += added;
            sink.send(line).await;
            drop(permit);
        });
    }
    drop(rx);
    tracker.close();
    tracker.wait().await;
    let (_, journal_failure, _) = writer::finish(sink, writer).await;
    let read = reader
        .await
        .map_err(|e| anyhow::anyhow!("reading results.jsonl failed: {e}"))
        .and_then(|r| r.map_err(|e| anyhow::anyhow!("{}: {e}", path.display())));
    let mut stop = ctx.settle_end(control, journal_failure.is_some());
    if let Some(why) = journal_failure {
        stop = Some(StopReason::JournalFailed(why));
    }
    read.map_err(RunError::AfterSend)?;
    let cost_usd = *cost.lock().unwrap_or_else(|e| e.into_inner());
    Ok(Rejudged {
        stale,
        calls: ctx.sent.this_run(0.0).sent,
        cost_usd,
        stop,
    })
}

/// With a budget, every judge model must be priced (its worst case is what is reserved).
fn check_judges_priced(job: &Job, scorer: &Scorer, prices: &PriceTable) -> Result<(), RunError> {
    if job.limits.budget_usd.is_none() {
        return Ok(());
    }
    for c in &scorer.spec().checks {
        if let CheckKind::Judge { model, .. } = &c.kind
            && prices.get(model).is_none()
        {
            let why = prices
                .error
                .clone()
                .unwrap_or_else(|| "not priced in /models".into());
            return Err(RunError::Config(format!(
                "budget_usd is set, but the worst case of judge \"{}\" ({model}) cannot be priced ({why}); without it the cap cannot be guaranteed",
                c.name
            )));
        }
    }
    Ok(())
}
