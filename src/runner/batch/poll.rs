//! Polling the open batches with back-off (`[batch] poll_min_secs`, doubling up to
//! `poll_max_secs`), showing each one's status and counts as they change, and collecting each
//! as it finishes: its lines to the writer, then (once they are in results.jsonl) `collected`
//! in batches.jsonl and the budget settled to its charge. Ctrl-C / SIGTERM ends the polling:
//! the batches keep running server-side and the next run collects them.

use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Open;
use super::collect::{Collected, collect};
use crate::client::CallError;
use crate::job::batch::batch_variant;
use crate::output::batches::{BatchLog, Entry};
use crate::progress::say;
use crate::runner::{Ctx, StopReason, writer};
use crate::transport::batch::{BatchApi, BatchObject};

struct Polled {
    open: Open,
    delay: Duration,
    next: Instant,
    shown: Option<(String, u64, u64)>,
}

/// Polls every open batch until each is collected, or until `interrupt`.
pub(crate) async fn poll_all(
    ctx: &Arc<Ctx>,
    api: &BatchApi,
    mut log: BatchLog,
    open: Vec<Open>,
    tx: &writer::Sink,
    interrupt: &CancellationToken,
    complete: bool,
) {
    let spec = &ctx.job.batch;
    let started = Instant::now();
    let mut polled: Vec<Polled> = Vec::new();
    for o in open {
        if o.metas.is_empty() {
            // Every key it covers finished in an earlier run: nothing to collect.
            finish(
                ctx,
                &mut log,
                o,
                "already recorded",
                Decimal::ZERO,
                tx,
                complete,
            )
            .await;
        } else {
            polled.push(Polled {
                open: o,
                delay: spec.poll_min,
                next: Instant::now(),
                shown: None,
            });
        }
    }
    while !polled.is_empty() {
        let now = Instant::now();
        let mut i = 0;
        while i < polled.len() {
            if polled[i].next > now {
                i += 1;
                continue;
            }
            match poll_one(ctx, api, &mut polled[i], started).await {
                Step::Wait => {
                    let p = &mut polled[i];
                    p.next = Instant::now() + p.delay;
                    p.delay = (p.delay * 2).min(spec.poll_max);
                    i += 1;
                }
                Step::Done(collected, status) => {
                    let p = polled.swap_remove(i);
                    for line in collected.lines {
                        tx.send(line).await;
                    }
                    finish(
                        ctx,
                        &mut log,
                        p.open,
                        &status,
                        collected.charge,
                        tx,
                        complete,
                    )
                    .await;
                }
                Step::Stop => return left_running(&polled),
            }
        }
        let Some(next) = polled.iter().map(|p| p.next).min() else {
            break;
        };
        tokio::select! {
            biased;
            _ = interrupt.cancelled() => return left_running(&polled),
            _ = tokio::time::sleep_until(next) => {}
        }
    }
}

enum Step {
    Wait,
    Done(Collected, String),
    Stop,
}

async fn poll_one(ctx: &Ctx, api: &BatchApi, p: &mut Polled, started: Instant) -> Step {
    let sub = &p.open.sub;
    let batch = match api.get(&sub.batch_id).await {
        Ok(b) => b,
        Err(CallError::NotFound) => {
            // The provider no longer knows it: its keys are sent again by a re-run.
            say(&format!(
                "orbatch: batch {} ({}) is unknown to the provider; its requests are sent again by a re-run",
                sub.batch_id, sub.model
            ));
            let gone = BatchObject {
                id: sub.batch_id.clone(),
                status: "expired".into(),
                ..Default::default()
            };
            return done(ctx, p, &gone, Vec::new(), started);
        }
        Err(e @ CallError::Auth(..)) => {
            ctx.request_stop(StopReason::AuthRefused(e.to_string()));
            return Step::Stop;
        }
        Err(e) => {
            tracing::warn!("batch {}: cannot poll it yet: {e}", sub.batch_id);
            return Step::Wait;
        }
    };
    show(p, &batch);
    if !batch.is_terminal() {
        return Step::Wait;
    }
    match api.items(&batch).await {
        Ok(items) => done(ctx, p, &batch, items, started),
        Err(e) => {
            tracing::warn!("batch {}: cannot read its results yet: {e}", batch.id);
            Step::Wait
        }
    }
}

fn done(
    ctx: &Ctx,
    p: &Polled,
    batch: &BatchObject,
    items: Vec<crate::transport::batch::ResultItem>,
    started: Instant,
) -> Step {
    let priced = ctx.prices.current();
    let model = &p.open.sub.model;
    let price = priced
        .get(&batch_variant(model))
        .or_else(|| priced.get(model));
    let collected = collect(
        batch,
        &p.open.sub.custom_ids,
        items,
        &p.open.metas,
        price,
        started,
    );
    Step::Done(collected, batch.status.clone())
}

/// Shows a batch's status and counts when they changed.
fn show(p: &mut Polled, b: &BatchObject) {
    let c = b.request_counts.unwrap_or_default();
    let now = (b.status.clone(), c.completed, c.failed);
    if p.shown.as_ref() == Some(&now) {
        return;
    }
    let total = if c.total > 0 {
        c.total
    } else {
        p.open.sub.custom_ids.len() as u64
    };
    say(&format!(
        "orbatch: batch {} ({}, chunk {}): {}, {}/{} done, {} failed",
        p.open.sub.batch_id,
        p.open.sub.model,
        p.open.sub.chunk,
        b.status,
        c.completed,
        total,
        c.failed
    ));
    p.shown = Some(now);
}

/// Once a batch's lines are in results.jsonl: `collected` in batches.jsonl, and its
/// reservation settled to its charge.
async fn finish(
    ctx: &Ctx,
    log: &mut BatchLog,
    open: Open,
    status: &str,
    charge: Decimal,
    tx: &writer::Sink,
    complete: bool,
) {
    let recorded = tx.flushed().await && complete;
    if let Some(r) = open.reservation {
        ctx.budget.settle(r, Some(charge));
    }
    if !recorded {
        return;
    }
    let entry = Entry::Collected {
        batch_id: open.sub.batch_id.clone(),
        status: status.to_string(),
    };
    if let Err(e) = log.append(&entry) {
        // Harmless: a re-run finds every key of the batch recorded and collects nothing.
        tracing::warn!(
            "cannot record batch {} as collected: {e}",
            open.sub.batch_id
        );
    }
}

/// Says which batches keep running server-side (the run was interrupted or stopped).
fn left_running(polled: &[Polled]) {
    if polled.is_empty() {
        return;
    }
    let ids: Vec<&str> = polled
        .iter()
        .map(|p| p.open.sub.batch_id.as_str())
        .collect();
    say(&format!(
        "orbatch: {} batch(es) keep running server-side ({}); run the same command again to collect them (they are not submitted again)",
        ids.len(),
        ids.join(", ")
    ));
}
