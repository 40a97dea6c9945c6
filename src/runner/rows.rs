//! The row loop: reads rows (from the reader thread), asks the plan which of their keys (each
//! prompt variant x each model) are
//! still to send, reserves each pair's worst case from the budget, waits for a concurrency
//! slot and hands the pair to a worker task.

use crate::budget::Worst;
use std::sync::Arc;

use tokio_util::task::TaskTracker;

use super::reader::Reader;
use super::reserve::Turn;
use super::worker::{WorkItem, work};
use super::{Ctx, StopReason, writer};
use crate::plan::Plan;
use crate::tokens::Encoding;

/// Dispatches every pending pair of the rows `reader` reads; returns the reader's error (the
/// input changed during the run), if any.
pub(crate) async fn dispatch_rows(
    ctx: &Arc<Ctx>,
    prompts: &crate::prompts::Prompts,
    plan: &Plan<'_>,
    tracker: &TaskTracker,
    tx: &writer::Sink,
    reader: Reader,
) -> Option<String> {
    let mut rows = reader.rows;
    let job = &ctx.job;
    // Each variant's request, over the job's (its models as checked).
    let arms = prompts.arms(&job.request);
    // The tokenizer is built only when a TPM limit needs token estimates.
    let encoding = job.limits.tokens_per_minute.map(|_| {
        let model = job.request.models.first().map(String::as_str).unwrap_or("");
        Encoding::for_model(
            model,
            ctx.prices
                .current()
                .get(model)
                .and_then(|p| p.tokenizer.as_deref()),
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
        if !plan.includes_row(row.index, &row.id) {
            continue;
        }
        let share = Arc::new(share);
        let mut vars: Option<crate::output::RawJson> = None;
        for arm in &arms {
            let mut messages: Option<Vec<serde_json::Value>> = None;
            for model in arm.builder.models_for(&row) {
                let Some(pending) = plan.pending(&row.id, arm.variant, model) else {
                    continue;
                };
                if ctx.breakers.is_open(model) {
                    continue;
                }
                if messages.is_none() {
                    match arm.prompt.messages(&row) {
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
                let cap = crate::request::completion_cap(&row, &arm.spec);
                // Computed without a budget too: an ambiguous attempt records its worst case,
                // which a later run with a budget counts.
                let priced = ctx.prices.current();
                let worst = Worst {
                    amount: pending.worst(&priced, msgs, cap, job.limits.budget_usd.is_some()),
                    generation: priced.generation,
                };
                // A cache hit is answered here: no budget, no limiter, nothing sent.
                let body = arm.builder.body(&row, model, msgs);
                let cache_key = ctx.cache.as_ref().map(|c| c.key(&body));
                let row_vars = vars.get_or_insert_with(|| crate::output::RawJson::of(&row.vars));
                if let Some(line) = super::cached::hit(
                    ctx,
                    cache_key,
                    pending.key,
                    row_vars.clone(),
                    pending.prior.as_ref(),
                ) {
                    tx.send(line).await;
                    continue;
                }
                // The slot first, then the reservation: every reservation is then held by a
                // pair that has its slot and goes on, so a retry waiting for budget room
                // (holding its slot, no reservation) is never waiting on a reservation that
                // waits for its slot.
                let permit = tokio::select! {
                    biased;
                    _ = ctx.stop.cancelled() => break 'rows,
                    p = ctx.limiter.slot() => p,
                };
                let Ok(reservation) = ctx.reserve(model, worst, Turn::First).await else {
                    break 'rows;
                };
                let tokens = encoding
                    .map(|e| e.count_messages(msgs) + arm.spec.max_tokens.unwrap_or(0))
                    .unwrap_or(0);
                let item = WorkItem {
                    id: row.id.clone(),
                    model: model.to_string(),
                    variant: arm.variant.map(str::to_owned),
                    body,
                    vars: row_vars.clone(),
                    prior: pending.prior,
                    worst: worst.amount,
                    tokens,
                    cache_key,
                    cap,
                };
                let ctx = ctx.clone();
                let tx = tx.clone();
                let share = share.clone();
                // Boxed: the task then moves a pointer, not the whole (large) future, each
                // time tokio hands it on.
                tracker.spawn(Box::pin(async move {
                    if let Some(line) = work(ctx, item, permit, reservation).await {
                        tx.send(line).await;
                    }
                    drop(share);
                }));
            }
        }
    }
    drop(rows);
    // A reader waiting for bytes held by requests in flight must not block the join.
    reader.bytes_left.close();
    reader.thread.join().unwrap_or(None)
}
