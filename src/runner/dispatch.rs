//! The dispatcher: reads rows (from a reader thread), skips pairs already finished, reserves
//! each pair's worst case from the budget, waits for a concurrency slot and hands the pair to a
//! worker task. Then it waits for the workers, sweeps pending generation look-ups and writes
//! the final files.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::prepare::Prepared;
use super::reader::{Reader, spawn_reader};
use super::worker::{WorkItem, work};
use super::{Control, Ctx, Lookups, RunError, RunOptions, RunReport, StopReason, lookup, writer};
use crate::budget::{Budget, Reservation};
use crate::limits::{LimitSpec, Limiter};
use crate::output::finalize::{OutputDir, ResultsCsv, SummaryJson};
use crate::output::results::key_hash;
use crate::output::summary::SummaryMeta;
use crate::output::{CostSource, ResultLine};
use crate::progress::Progress;
use crate::request::BodyBuilder;
use crate::tokens::Encoding;

pub(crate) async fn execute(
    mut p: Prepared,
    opts: RunOptions,
    control: Control,
) -> Result<RunReport, RunError> {
    let job = p.job.clone();
    let wall = std::time::Instant::now();
    let inflight = super::crashed::start_inflight(&mut p, &opts)?;
    let pending = pending_pairs(&p, &opts);
    let ctx = Arc::new(Ctx {
        job: job.clone(),
        client: p.client.clone(),
        limiter: Limiter::new(LimitSpec {
            concurrency: job.limits.concurrency,
            rpm: job.limits.requests_per_minute,
            tpm: job.limits.tokens_per_minute,
            window: opts.rate_window,
        }),
        // Earlier attempts of unknown charge count at their worst case, as they did then.
        budget: Budget::new(
            job.limits.budget_usd,
            p.recovered.spent + p.recovered.unknown_max + p.carried_spend,
        ),
        inflight,
        prices: p.prices.clone(),
        stop: control.stop.child_token(),
        abort: control.abort.clone(),
        stop_reason: Mutex::new(None),
        lookups: Lookups {
            slots: Semaphore::new(4),
            found: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
            disabled: AtomicBool::new(false),
        },
        deferred: Mutex::new(Vec::new()),
        lookup_scale: opts.lookup_backoff_scale,
        sent: Default::default(),
    });
    let progress = Progress::new(pending);
    let (tx, writer) = {
        let ctx = ctx.clone();
        writer::spawn(p.journal, progress.clone(), move |why| {
            ctx.request_stop(StopReason::JournalFailed(why))
        })
    };
    let display_done = tokio_util::sync::CancellationToken::new();
    let display = tokio::spawn(
        progress
            .clone()
            .display(opts.progress, display_done.clone().cancelled_owned()),
    );

    let tracker = TaskTracker::new();
    // Only the bytes the scan validated are read: rows appended since were not checked.
    let reader = spawn_reader(&job, p.scan.bytes);
    let reader_error = dispatch_rows(
        &ctx,
        &p.template,
        &p.recovered,
        &opts,
        &tracker,
        &tx,
        reader,
    )
    .await;
    tracker.close();
    tracker.wait().await;
    tracing::debug!("all requests done after {:?}", wall.elapsed());
    sweep_deferred(&ctx, &tx).await;
    let (written, journal_failure) = writer::finish(tx, writer).await;
    // Every attempt is in results.jsonl now: nothing is in flight. After a journal failure
    // the record stays, so the next run counts the attempts it could not record.
    if journal_failure.is_none()
        && let Err(e) = ctx.inflight.clear()
    {
        tracing::warn!("cannot empty {}: {e}", ctx.inflight.path().display());
    }
    display_done.cancel();
    let _ = display.await;

    let mut stop = ctx
        .stop_reason
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if stop.is_none() && control.stop.is_cancelled() {
        stop = Some(StopReason::Interrupted);
    }
    if let Some(why) = journal_failure {
        // The end files are written from what the journal holds, when it still can be read.
        return match finish(
            &p.scan,
            &p.models,
            &job,
            &p.started_at,
            (wall, &ctx.sent),
            true,
        ) {
            Ok(summary) => Ok(RunReport {
                summary,
                stop: Some(StopReason::JournalFailed(why)),
                output_dir: job.output_dir.clone(),
                sent_this_run: written,
            }),
            Err(e) => Err(RunError::Stopped(format!("{why}\n(and {e})"))),
        };
    }
    if let Some(e) = reader_error
        && !matches!(stop, Some(StopReason::AuthRefused(_)))
    {
        stop = Some(StopReason::InputChanged(e));
    }
    let summary = finish(
        &p.scan,
        &p.models,
        &job,
        &p.started_at,
        (wall, &ctx.sent),
        stop.is_some(),
    )?;
    Ok(RunReport {
        summary,
        stop,
        output_dir: job.output_dir.clone(),
        sent_this_run: written,
    })
}

/// Pairs this run will send: rows x models, less those already finished.
fn pending_pairs(p: &Prepared, opts: &RunOptions) -> u64 {
    let rows = match &opts.only_rows {
        Some(set) => set.len() as u64,
        None => p.scan.rows,
    };
    let failed_kept = p.recovered.failed.values().filter(|f| !f.resumable).count() as u64;
    let finished = p.recovered.done.len() as u64 + if opts.retry_failed { 0 } else { failed_kept };
    super::job_pairs(&p.job, rows, &p.models).saturating_sub(finished)
}

async fn dispatch_rows(
    ctx: &Arc<Ctx>,
    template: &crate::template::Template,
    recovered: &crate::output::results::Recovered,
    opts: &RunOptions,
    tracker: &TaskTracker,
    tx: &writer::Sink,
    reader: Reader,
) -> Option<String> {
    let mut rows = reader.rows;
    let job = &ctx.job;
    let builder = BodyBuilder::new(&job.request);
    // The tokenizer is built only when a TPM limit needs token estimates.
    let encoding = job.limits.tokens_per_minute.map(|_| {
        let model = job.request.models.first().map(String::as_str).unwrap_or("");
        Encoding::for_model(
            model,
            ctx.prices.get(model).and_then(|p| p.tokenizer.as_deref()),
        )
        .0
    });
    let mut chunk = Vec::new().into_iter();
    'rows: loop {
        let Some((row, share)) = chunk.next() else {
            tokio::select! {
                biased;
                _ = ctx.stop.cancelled() => break,
                r = rows.recv() => match r { Some(c) => chunk = c.into_iter(), None => break },
            }
            continue;
        };
        if opts
            .only_rows
            .as_ref()
            .is_some_and(|only| !only.contains(&row.index))
        {
            continue;
        }
        let share = Arc::new(share);
        let mut messages: Option<Vec<serde_json::Value>> = None;
        let mut vars: Option<crate::output::RawJson> = None;
        for model in builder.models_for(&row) {
            let key = key_hash(&row.id, model);
            if recovered.done.contains(&key) {
                continue;
            }
            let prior = recovered.failed.get(&key).cloned();
            if prior.as_ref().is_some_and(|p| !p.resumable) && !opts.retry_failed {
                continue;
            }
            if messages.is_none() {
                match template.messages(&row) {
                    Ok(m) => messages = Some(m),
                    Err(e) => {
                        // Validated before the run; only a changed file gets here.
                        let at = format!("{}:{}: {e}", job.input.display(), row.line);
                        ctx.request_stop(StopReason::InputChanged(at));
                        break 'rows;
                    }
                }
            }
            let msgs = messages.as_deref().unwrap_or(&[]);
            let cap = crate::request::completion_cap(&row, &job.request);
            // Computed without a budget too: an ambiguous attempt records its worst case, which
            // a later run with a budget counts.
            let worst = crate::prices::worst_case(&ctx.prices, model, msgs, cap).unwrap_or(
                // Unreachable with a budget (an unpriced model is refused); refuse, not guess.
                if job.limits.budget_usd.is_some() {
                    Decimal::MAX
                } else {
                    Decimal::ZERO
                },
            );
            let Some(reservation) = reserve(&ctx.budget, &ctx.stop, model, worst).await else {
                if !ctx.stop.is_cancelled() {
                    ctx.budget_stop(worst);
                }
                break 'rows;
            };
            let permit = tokio::select! {
                biased;
                _ = ctx.stop.cancelled() => {
                    ctx.budget.settle(reservation, Some(Decimal::ZERO));
                    break 'rows;
                }
                p = ctx.limiter.slot() => p,
            };
            let tokens = encoding
                .map(|e| e.count_messages(msgs) + job.request.max_tokens.unwrap_or(0))
                .unwrap_or(0);
            let item = WorkItem {
                id: row.id.clone(),
                model: model.to_string(),
                body: builder.body(&row, model, msgs),
                vars: vars
                    .get_or_insert_with(|| crate::output::RawJson::of(&row.vars))
                    .clone(),
                prior,
                worst,
                tokens,
            };
            let ctx = ctx.clone();
            let tx = tx.clone();
            let share = share.clone();
            tracker.spawn(async move {
                if let Some(line) = work(ctx, item, permit, reservation).await {
                    tx.send(line).await;
                }
                drop(share);
            });
        }
    }
    drop(rows);
    // A reader waiting for bytes held by requests in flight must not block the join.
    reader.bytes_left.close();
    reader.thread.join().unwrap_or(None)
}

/// Reserves `worst` for `model`; when it does not fit while other attempts hold reservations,
/// waits for them to settle (they usually cost less than their worst case) before giving up.
/// Each settle wakes it (no polling); `None` when nothing is in flight and it still does not
/// fit, or when the run stops.
async fn reserve(
    budget: &Budget,
    stop: &CancellationToken,
    model: &str,
    worst: Decimal,
) -> Option<Reservation> {
    let fits = budget.wait_until(|| match budget.try_reserve(model, worst) {
        Some(r) => Some(Some(r)),
        None if budget.in_flight() == 0 => Some(None),
        None => None,
    });
    tokio::select! {
        biased;
        _ = stop.cancelled() => None,
        r = fits => r,
    }
}

/// Looks up once more the generations that were not there yet, and appends an updated line
/// for each one found (the latest line wins). The others keep their price-table cost. Every
/// pending look-up is tried together (within the look-up budget) at 0, 1 and 3 s, so the sweep
/// takes seconds however many there are.
async fn sweep_deferred(ctx: &Ctx, tx: &writer::Sink) {
    let mut pending = std::mem::take(&mut *ctx.deferred.lock().unwrap_or_else(|e| e.into_inner()));
    // A server found to have no usable /generation has nothing to sweep.
    if pending.is_empty()
        || ctx.abort.is_cancelled()
        || ctx
            .lookups
            .disabled
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        return;
    }
    tracing::info!("sweeping {} pending generation look-ups", pending.len());
    for wait in [0u64, 1000, 2000] {
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let found = futures_util::future::join_all(
            pending.iter().map(|d| lookup::once(ctx, &d.generation_id)),
        )
        .await;
        let mut missing = Vec::new();
        for (d, g) in pending.into_iter().zip(found) {
            match g {
                Ok(g) => {
                    if let Some(line) = with_generation(d, g) {
                        tx.send(line).await;
                    }
                }
                Err(_) => missing.push(d),
            }
        }
        pending = missing;
    }
}

/// A deferred line updated with its generation record (None when the record has no cost).
fn with_generation(d: super::Deferred, g: crate::api::Generation) -> Option<ResultLine> {
    let total = g.total_cost?;
    let mut line = d.line;
    // Replace the stand-in table cost by the charge.
    let stand_in = if line.cost_source == Some(CostSource::PriceTable) {
        d.table.unwrap_or_default()
    } else {
        Decimal::ZERO
    };
    line.cost_usd = Some(line.cost_usd.unwrap_or_default() - stand_in + total);
    line.cost_source = Some(CostSource::Generation);
    line.cost_mismatch = d.table.is_some_and(|t| crate::prices::mismatch(total, t));
    if line.provider.is_none() {
        line.provider = g.provider_name;
    }
    line.finished_at = None;
    Some(line)
}

/// The end of the run: compaction, the summary and every exporter ([`OutputDir::finalize`]).
fn finish(
    scan: &crate::scan::ScanReport,
    models: &[String],
    job: &crate::job::Job,
    started_at: &str,
    (wall, sent): (std::time::Instant, &super::SentThisRun),
    stopped: bool,
) -> Result<crate::output::Summary, RunError> {
    let csv = ResultsCsv {
        input: job.input.clone(),
        id_column: job.id_column.clone(),
        limit_rows: job.limit_rows,
        bytes: scan.bytes,
        columns: scan.columns.clone(),
        models: models.to_vec(),
    };
    let meta = SummaryMeta {
        job: job.name.clone(),
        total_pairs: Some(super::job_pairs(job, scan.rows, models)),
        stopped_early: stopped,
        started_at: Some(started_at.to_string()),
        finished_at: Some(crate::output::summary::now_rfc3339()),
        wall_secs: Some(wall.elapsed().as_secs_f64()),
        this_run: Some(sent.this_run(wall.elapsed().as_secs_f64())),
    };
    OutputDir::new(&job.output_dir)
        .finalize(&meta, &[&csv, &SummaryJson])
        .map_err(|e| RunError::Other(anyhow::anyhow!("{e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_reservation_waiting_near_the_cap_is_woken_by_a_settle() {
        let budget = Budget::new(Some(Decimal::from(10)), Decimal::ZERO);
        let stop = CancellationToken::new();
        let held = budget.try_reserve("m", Decimal::from(8)).unwrap();
        budget.learn("m", None, None);
        let waiter = {
            let (b, s) = (budget.clone(), stop.clone());
            tokio::spawn(async move { reserve(&b, &s, "m", Decimal::from(5)).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        let t = tokio::time::Instant::now();
        budget.settle(held, Some(Decimal::ONE));
        let got = waiter.await.unwrap();
        assert_eq!(
            t.elapsed(),
            Duration::ZERO,
            "woken by the settle, not a timer"
        );
        let Some(got) = got else {
            panic!("the reservation fits after the settle")
        };
        budget.settle(got, Some(Decimal::ONE));
        // Nothing in flight and still no room: give up at once; a stop ends the wait.
        assert!(
            reserve(&budget, &stop, "m", Decimal::from(100))
                .await
                .is_none()
        );
        stop.cancel();
        assert!(
            reserve(&budget, &stop, "m", Decimal::from(1))
                .await
                .is_none()
        );
    }
}
