//! The dispatcher: reads rows (from a reader thread), skips pairs already finished, reserves
//! each pair's worst case from the budget, waits for a concurrency slot and hands the pair to a
//! worker task. Then it waits for the workers, sweeps pending generation look-ups and writes
//! the final files.

use std::sync::Arc;

use tokio_util::task::TaskTracker;

use super::prepare::Prepared;
use super::reader::spawn_reader;
use super::rows::dispatch_rows;
use super::sweep::sweep_deferred;
use super::{Control, Ctx, RunError, RunOptions, RunReport, StopReason, writer};
use crate::output::finalize::{OutputDir, ResultsCsv};
use crate::output::seen::Seen;
use crate::output::summary::SummaryMeta;
use crate::plan::Plan;
use crate::progress::Progress;

/// Runs the prepared job to its end: the row loop, the workers, the sweep, the end files.
pub(crate) async fn execute(
    mut p: Prepared,
    opts: RunOptions,
    control: Control,
) -> Result<RunReport, RunError> {
    let job = p.job.clone();
    let wall = std::time::Instant::now();
    let inflight = super::crashed::start_inflight(&mut p, &opts)?;
    // The plan is built after the in-flight record was absorbed: its keys are pending too.
    let plan = p
        .plan
        .clone()
        .resuming(&p.recovered, opts.retry_failed)
        .only_rows(opts.only_rows.clone());
    // Earlier attempts of unknown charge count at their worst case, as they did then.
    let committed = plan.committed() + p.carried_spend;
    let ctx = Arc::new(Ctx::new(
        &job,
        p.client.clone(),
        p.prices.clone(),
        inflight,
        committed,
        &opts,
        &control,
    ));
    let progress = Progress::new(plan.pending_count(p.scan.shard_rows));
    // The summary's account of this run (`stopped`: it ended early).
    let meta_of = |stopped| {
        run_meta(
            &p.scan,
            &plan,
            &job,
            &p.started_at,
            (wall, &ctx.sent),
            stopped,
        )
    };
    let (tx, writer) = {
        let ctx = ctx.clone();
        let scorer = job
            .eval
            .as_ref()
            .map(crate::eval::Scorer::compile)
            .transpose()
            .map_err(RunError::Config)?
            .map(|s| (Arc::new(s), ctx.clone()));
        // A first run: the journal's writer shows the end of the run what it writes.
        let watched = p.journal.watch(|| {
            let start = meta_of(false);
            let properties = ResultsCsv::properties_of(&job);
            // Annotation (a schema) reads lines back by offset: keep the journal's key index.
            let index = job.output.is_some();
            Seen::new(&start, &job.output_dir, Some(&properties), index)
        });
        if !watched {
            tracing::debug!("results.jsonl holds earlier lines: it is read again at the end");
        }
        writer::spawn(
            p.journal,
            progress.clone(),
            ctx.cache.clone(),
            scorer,
            move |why| ctx.request_stop(StopReason::JournalFailed(why)),
        )
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
    let reader_error = if job.batch.mode == crate::job::Mode::Batch {
        super::batch::dispatch_batches(&ctx, &p.prompts, &plan, &tx, reader, &control.stop).await
    } else {
        dispatch_rows(&ctx, &p.prompts, &plan, &tracker, &tx, reader).await
    };
    tracker.close();
    tracker.wait().await;
    tracing::debug!("all requests done after {:?}", wall.elapsed());
    sweep_deferred(&ctx, &tx).await;
    let (written, journal_failure, seen) = writer::finish(tx, writer).await;
    if let Some(cache) = &ctx.cache {
        // The inserts of the lines written are done before the run ends.
        let cache = cache.clone();
        let _ = tokio::task::spawn_blocking(move || cache.close()).await;
    }
    // Every attempt is in results.jsonl now: nothing is in flight. After a journal failure
    // the record stays, so the next run counts the attempts it could not record.
    let mut stop = ctx.settle_end(&control, journal_failure.is_some());
    display_done.cancel();
    let _ = display.await;
    if journal_failure.is_none()
        && let Some(e) = reader_error
        && !matches!(stop, Some(StopReason::AuthRefused(_)))
    {
        stop = Some(StopReason::InputChanged(e));
    }
    let stopped = journal_failure.is_some() || stop.is_some();
    let meta = meta_of(stopped);
    let models = plan.models().to_vec();
    drop(plan);
    // What recovery found (8 bytes a finished key) is not needed by the end files: its memory
    // goes before theirs comes.
    p.recovered.done = Default::default();
    p.recovered.failed = Default::default();
    // After a journal failure the end files are written from what the journal holds, when it
    // still can be read (nothing was seen then).
    let end = OutputDir::new(&job.output_dir)
        .finalize_job(&meta, &job, &p.scan, &models, seen)
        .map_err(|e| RunError::Other(anyhow::anyhow!("{e}")));
    if let Some(why) = journal_failure {
        return match end {
            Ok(summary) => Ok(RunReport {
                summary,
                stop: Some(StopReason::JournalFailed(why)),
                output_dir: job.output_dir.clone(),
                sent_this_run: written,
            }),
            Err(e) => Err(RunError::Stopped(format!("{why}\n(and {e})"))),
        };
    }
    let summary = end?;
    Ok(RunReport {
        summary,
        stop,
        output_dir: job.output_dir.clone(),
        sent_this_run: written,
    })
}

/// What the summary of this run cannot read from its lines.
fn run_meta(
    scan: &crate::scan::ScanReport,
    plan: &Plan<'_>,
    job: &crate::job::Job,
    started_at: &str,
    (wall, sent): (std::time::Instant, &super::SentThisRun),
    stopped: bool,
) -> SummaryMeta {
    SummaryMeta {
        job: job.name.clone(),
        total_pairs: Some(plan.total(scan.shard_rows)),
        stopped_early: stopped,
        started_at: Some(started_at.to_string()),
        finished_at: Some(crate::output::summary::now_rfc3339()),
        wall_secs: Some(wall.elapsed().as_secs_f64()),
        models: Some(plan.models().to_vec()),
        variants: Some(plan.variants().to_vec()),
        this_run: Some(sent.this_run(wall.elapsed().as_secs_f64())),
        eval: job.eval.as_ref().map(|e| e.min_pass_rate),
    }
}
