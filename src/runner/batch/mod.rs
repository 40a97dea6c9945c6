//! Batch mode (`--mode batch`): the plan's pending keys go through the provider's Batch API
//! instead of one request each.
//!
//! ```text
//! batches.jsonl (open batches) --> their keys are covered: never submitted again
//! rows --plan--> cache hit? its line | chunk per model (max_requests, max_bytes, the budget)
//!                                        |  reserve the chunk's worst case at batch prices
//!                                        v
//!                                  POST {path} --202--> append to batches.jsonl (synced)
//! poll every open batch with back-off --> finished: items -> lines (cost split) -> writer
//!                                         -> `collected` in batches.jsonl, settle the budget
//! ```
//!
//! The lines, the writer, the response cache (answers enter it once their lines are written)
//! and the budget are the live path's own; only the sending differs. Ctrl-C while polling
//! leaves the batches running server-side: the next run collects them.

mod collect;
pub(crate) mod cost;
mod poll;

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use tokio_util::sync::CancellationToken;

use super::reader::Reader;
use super::{Ctx, StopReason, writer};
use crate::budget::Reservation;
use crate::job::batch::batch_variant;
use crate::output::RawJson;
use crate::output::batches::{BatchLog, Entry, Submitted};
use crate::output::results::Prior;
use crate::plan::Plan;
use crate::transport::batch::chunk::Chunk;
use crate::transport::batch::{BatchApi, id};

/// What a batch item's line needs besides its result.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub id: String,
    pub variant: Option<String>,
    pub model: String,
    pub vars: RawJson,
    pub prior: Option<Prior>,
    /// The item's worst case at batch prices (counted when its charge stays unknown).
    pub worst: Decimal,
    pub cache_key: Option<crate::transport::cache::Key>,
}

/// A batch submitted and not collected yet.
pub(crate) struct Open {
    pub sub: Submitted,
    /// The chunk's worst case, reserved from the budget (`None`: it did not fit on a re-run;
    /// nothing new is submitted then).
    pub reservation: Option<Reservation>,
    /// The pending keys it covers, by `custom_id`.
    pub metas: HashMap<String, Meta>,
}

/// Runs the plan's pending keys through the Batch API; returns the reader's error, if any.
/// `interrupt` is the user's stop (Ctrl-C / SIGTERM): polling ends and the batches keep
/// running server-side; a budget stop only ends submitting.
pub(crate) async fn dispatch_batches(
    ctx: &Arc<Ctx>,
    prompts: &crate::prompts::Prompts,
    plan: &Plan<'_>,
    tx: &writer::Sink,
    reader: Reader,
    interrupt: &CancellationToken,
) -> Option<String> {
    let job = &ctx.job;
    let (log, recorded) = match BatchLog::open(&job.output_dir) {
        Ok(x) => x,
        Err(e) => {
            let why = format!(
                "cannot open {}: {e}",
                job.output_dir.join(crate::output::batches::FILE).display()
            );
            ctx.request_stop(StopReason::JournalFailed(why));
            return None;
        }
    };
    let mut open: Vec<Open> = recorded
        .open
        .into_iter()
        .map(|sub| {
            let reservation = ctx.budget.try_reserve_retry(&sub.model, sub.worst_usd);
            Open {
                sub,
                reservation,
                metas: HashMap::new(),
            }
        })
        .collect();
    if !open.is_empty() {
        crate::progress::say(&format!(
            "orbatch: {} batch(es) recorded in {} are still to collect; polling them (their requests are not sent again)",
            open.len(),
            log.path().display()
        ));
    }
    let full_reserved = open.iter().all(|o| o.reservation.is_some());
    let covered: HashMap<String, usize> = open
        .iter()
        .enumerate()
        .flat_map(|(i, o)| o.sub.custom_ids.iter().map(move |c| (c.clone(), i)))
        .collect();
    let api = BatchApi::new(ctx.client.clone(), job.batch.url(&job.base_url));
    let mut sub = Submitter {
        ctx,
        api: &api,
        log,
        next_chunk: recorded.next_chunk,
        can_submit: full_reserved,
    };
    let pass = rows_pass(
        &mut sub, prompts, plan, tx, reader, &covered, &mut open, interrupt,
    )
    .await;
    // A pass cut short (Ctrl-C, a changed input) may not have seen every key a recorded batch
    // covers: its batches are then not marked collected, so a re-run collects the rest.
    let complete = pass.complete && !interrupt.is_cancelled();
    poll::poll_all(ctx, &api, sub.log, open, tx, interrupt, complete).await;
    pass.reader_error
}

/// Submits chunks: reserves, posts, records.
pub(crate) struct Submitter<'a> {
    ctx: &'a Arc<Ctx>,
    api: &'a BatchApi,
    log: BatchLog,
    next_chunk: u64,
    /// False once the budget refused a chunk (or a recorded batch could not be reserved).
    can_submit: bool,
}

/// The chunks being filled, one per model, with their worst case so far.
type Filling = HashMap<String, (Chunk<Meta>, Decimal)>;

/// How the row pass ended.
struct Pass {
    /// Every row was read.
    complete: bool,
    /// The reader's error (the input changed during the run).
    reader_error: Option<String>,
}

/// Reads every row: a covered key joins its recorded batch, a cache hit is its line, any
/// other pending key joins its model's chunk (submitted when full). Rows are read to the end
/// even once nothing more may be submitted (a budget stop), so that recorded batches find
/// every key they cover; only `interrupt` or a changed input ends it early.
#[allow(clippy::too_many_arguments)]
async fn rows_pass(
    sub: &mut Submitter<'_>,
    prompts: &crate::prompts::Prompts,
    plan: &Plan<'_>,
    tx: &writer::Sink,
    reader: Reader,
    covered: &HashMap<String, usize>,
    open: &mut Vec<Open>,
    interrupt: &CancellationToken,
) -> Pass {
    let mut complete;
    let ctx = sub.ctx;
    let job = &ctx.job;
    // Each variant's request, over the job's (its models as checked).
    let arms = prompts.arms(&job.request);
    let mut rows = reader.rows;
    let mut filling: Filling = HashMap::new();
    'rows: loop {
        let chunk = tokio::select! {
            biased;
            _ = interrupt.cancelled() => None,
            c = rows.recv() => c,
        };
        let Some(chunk) = chunk else {
            complete = !interrupt.is_cancelled();
            break;
        };
        for (row, share) in chunk {
            drop(share);
            if !plan.includes_row(row.index, &row.id) {
                continue;
            }
            let mut vars: Option<RawJson> = None;
            for arm in &arms {
                let mut messages: Option<Vec<serde_json::Value>> = None;
                for model in arm.builder.models_for(&row) {
                    let Some(pending) = plan.pending(&row.id, arm.variant, model) else {
                        continue;
                    };
                    if messages.is_none() {
                        match arm.prompt.messages(&row) {
                            Ok(m) => messages = Some(m),
                            Err(e) => {
                                let at = format!("{}:{}: {e}", job.input.display(), row.line);
                                ctx.request_stop(StopReason::InputChanged(at));
                                complete = false;
                                break 'rows;
                            }
                        }
                    }
                    let msgs = messages.as_deref().unwrap_or(&[]);
                    let cap = crate::request::completion_cap(&row, &arm.spec);
                    let priced = ctx.prices.current();
                    let batch_priced =
                        crate::prices::worst_case(&priced, &batch_variant(model), msgs, cap);
                    let worst = batch_priced.unwrap_or_else(|| {
                        pending.worst(&priced, msgs, cap, job.limits.budget_usd.is_some())
                    });
                    let body = arm.builder.body(&row, model, msgs);
                    let cache_key = ctx.cache.as_ref().map(|c| c.key(&body));
                    let row_vars = vars.get_or_insert_with(|| RawJson::of(&row.vars)).clone();
                    let custom_id = id::encode(&pending.key);
                    let meta = Meta {
                        id: row.id.clone(),
                        variant: arm.variant.map(str::to_string),
                        model: model.to_string(),
                        vars: row_vars.clone(),
                        prior: pending.prior.clone(),
                        worst,
                        cache_key,
                    };
                    if let Some(&i) = covered.get(&custom_id) {
                        open[i].metas.insert(custom_id, meta);
                        continue;
                    }
                    if let Some(line) = super::cached::hit(
                        ctx,
                        cache_key,
                        pending.key,
                        row_vars,
                        pending.prior.as_ref(),
                    ) {
                        tx.send(line).await;
                        continue;
                    }
                    if ctx.stop.is_cancelled() {
                        sub.can_submit = false;
                    }
                    if !sub.can_submit {
                        continue;
                    }
                    let request = Chunk::<Meta>::request_json(&custom_id, &body);
                    let (chunk, chunk_worst) = filling
                        .entry(model.to_string())
                        .or_insert_with(|| (new_chunk(&job.batch, model), Decimal::ZERO));
                    let over_budget = !sub.fits(model, *chunk_worst + worst);
                    if !chunk.fits(&request) || (over_budget && !chunk.is_empty()) {
                        let full = std::mem::replace(chunk, new_chunk(&job.batch, model));
                        let full_worst = std::mem::take(chunk_worst);
                        if let Some(o) = sub.submit(full, full_worst, tx).await {
                            open.push(o);
                        }
                    }
                    if !sub.can_submit || !sub.fits(model, worst) {
                        if !ctx.stop.is_cancelled() {
                            ctx.budget_stop(model, worst);
                        }
                        sub.can_submit = false;
                        continue;
                    }
                    if let Some((chunk, chunk_worst)) = filling.get_mut(model) {
                        chunk.push(custom_id, &request, meta);
                        *chunk_worst += worst;
                    }
                }
            }
        }
    }
    drop(rows);
    reader.bytes_left.close();
    let reader_error = reader.thread.join().unwrap_or(None);
    complete &= reader_error.is_none();
    // The last, partly filled chunks (unless the run stopped: nothing new is sent then).
    for (_, (chunk, worst)) in filling {
        if chunk.is_empty() || ctx.stop.is_cancelled() || !sub.can_submit {
            continue;
        }
        if let Some(o) = sub.submit(chunk, worst, tx).await {
            open.push(o);
        }
    }
    Pass {
        complete,
        reader_error,
    }
}

fn new_chunk(spec: &crate::job::BatchSpec, model: &str) -> Chunk<Meta> {
    Chunk::new(
        model,
        &spec.batch_model(model),
        spec.max_requests,
        spec.max_bytes,
    )
}

impl Submitter<'_> {
    /// Whether `worst` more for `model` fits under the budget now (always, without one).
    fn fits(&self, model: &str, worst: Decimal) -> bool {
        let Some(cap) = self.ctx.job.limits.budget_usd else {
            return true;
        };
        let b = &self.ctx.budget;
        b.spent() + b.reserved() + worst * b.ratio(model) <= cap
    }

    /// Reserves the chunk's worst case, posts it and records the accepted batch; a refused
    /// chunk's keys become error lines.
    async fn submit(
        &mut self,
        chunk: Chunk<Meta>,
        worst: Decimal,
        tx: &writer::Sink,
    ) -> Option<Open> {
        let ctx = self.ctx;
        let Some(reservation) = ctx.budget.try_reserve_retry(&chunk.model, worst) else {
            ctx.budget_stop(&chunk.model, worst);
            self.can_submit = false;
            return None;
        };
        let body = chunk.body();
        let answer = self.api.create(body).await;
        let batch = match answer {
            Ok(b) if !b.id.is_empty() => b,
            Ok(_) => {
                let why = "the batch API accepted a batch without an id".to_string();
                return self.refused(chunk, reservation, &why, true, tx).await;
            }
            Err(e) => {
                if let crate::client::CallError::Auth(..) = e {
                    ctx.request_stop(StopReason::AuthRefused(e.to_string()));
                }
                let retry_later = !matches!(e, crate::client::CallError::Status(400..=499, _));
                return self
                    .refused(
                        chunk,
                        reservation,
                        &format!("batch refused: {e}"),
                        retry_later,
                        tx,
                    )
                    .await;
            }
        };
        (0..chunk.len()).for_each(|_| ctx.sent.count(1));
        let sub = Submitted {
            batch_id: batch.id.clone(),
            model: chunk.model.clone(),
            chunk: self.next_chunk,
            submitted_at: crate::output::summary::now_rfc3339(),
            worst_usd: worst,
            custom_ids: chunk.items.iter().map(|(c, _)| c.clone()).collect(),
        };
        self.next_chunk += 1;
        if let Err(e) = self.log.append(&Entry::Submitted(sub.clone())) {
            // Still polled by this run; a crash now would submit these keys again.
            let why = format!(
                "cannot record batch {} in {}: {e} (it runs server-side; this run still collects it)",
                batch.id,
                self.log.path().display()
            );
            ctx.request_stop(StopReason::JournalFailed(why));
            self.can_submit = false;
        }
        crate::progress::say(&format!(
            "orbatch: batch {} submitted ({}, chunk {}, {} requests, worst case {})",
            batch.id,
            sub.model,
            sub.chunk,
            sub.custom_ids.len(),
            crate::money::usd(worst)
        ));
        Some(Open {
            sub,
            reservation: Some(reservation),
            metas: chunk.items.into_iter().collect(),
        })
    }

    /// A chunk the API refused: nothing was billed; its keys get error lines (`resumable`
    /// when a plain re-run may succeed: not a 4xx).
    async fn refused(
        &mut self,
        chunk: Chunk<Meta>,
        reservation: Reservation,
        why: &str,
        resumable: bool,
        tx: &writer::Sink,
    ) -> Option<Open> {
        self.ctx.budget.settle(reservation, Some(Decimal::ZERO));
        crate::progress::say(&format!(
            "orbatch: {} ({} requests): {why}",
            chunk.model,
            chunk.len()
        ));
        for (_, meta) in chunk.items {
            tx.send(collect::refused_line(&meta, why, resumable)).await;
        }
        None
    }
}
