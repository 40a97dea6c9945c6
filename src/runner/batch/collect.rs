//! A finished batch's items into result lines: each item's outcome classified as a live answer
//! would be, the batch's charge split over its items ([`super::cost`]), and a line for every
//! key the batch covers that is still pending (an item missing from the results of an expired
//! batch is a resumable error; of a failed or completed one, an error `--retry-failed` sends
//! again).

use std::collections::HashMap;

use rust_decimal::Decimal;
use tokio::time::Instant;

use super::Meta;
use super::cost::{ItemUsage, split};
use crate::client::{Attempt, Completion, Failure};
use crate::output::{CostSource, ErrorKind, ResultLine};
use crate::prices::ModelPrice;
use crate::retry::Verdict;
use crate::runner::tally::{Attempts, fail, fill_completion, new_line};
use crate::transport::batch::{BatchObject, ResultItem};

/// The lines of a finished batch, and what it cost this output dir: the known charges plus
/// the worst case of items whose charge stayed unknown.
pub(crate) struct Collected {
    pub lines: Vec<ResultLine>,
    pub charge: Decimal,
}

/// Turns `batch`'s `items` into the lines of the keys in `metas` (`custom_ids`: every item the
/// batch was sent with, in order; `price`: the batch price of its model).
pub(crate) fn collect(
    batch: &BatchObject,
    custom_ids: &[String],
    items: Vec<ResultItem>,
    metas: &HashMap<String, Meta>,
    price: Option<&ModelPrice>,
    started: Instant,
) -> Collected {
    let mut by_id: HashMap<String, ResultItem> = items
        .into_iter()
        .map(|i| (i.custom_id.clone(), i))
        .collect();
    let outcomes: Vec<(Attempt, bool)> = custom_ids
        .iter()
        .map(|c| match by_id.remove(c) {
            Some(item) => (item.attempt(), false),
            None => missing(batch),
        })
        .collect();
    let usages: Vec<ItemUsage> = outcomes.iter().map(|(a, _)| usage(a)).collect();
    let costs = split(batch.usage.as_ref().and_then(|u| u.cost), &usages, price);
    let mut out = Collected {
        lines: Vec::new(),
        charge: Decimal::ZERO,
    };
    for ((custom_id, (attempt, resumable)), cost) in custom_ids.iter().zip(outcomes).zip(costs) {
        let Some(meta) = metas.get(custom_id) else {
            // Not pending any more (finished by an earlier run): its charge still counts.
            out.charge += cost.unwrap_or_default();
            continue;
        };
        out.charge += cost.unwrap_or(meta.worst);
        out.lines
            .push(line(meta, attempt, cost, resumable, started));
    }
    out
}

/// The outcome of an item missing from the results, and whether a plain re-run sends it.
fn missing(batch: &BatchObject) -> (Attempt, bool) {
    let (kind, message, resumable) = match batch.status.as_str() {
        "expired" | "cancelled" => (
            ErrorKind::Timeout,
            format!(
                "the batch {} before this request ran; a re-run sends it again",
                batch.status
            ),
            true,
        ),
        "failed" => (
            ErrorKind::Provider,
            format!("the batch failed: {}", batch.failure()),
            false,
        ),
        _ => (
            ErrorKind::InvalidResponse,
            "missing from the batch's results".to_string(),
            false,
        ),
    };
    (Attempt::Failed(failure(kind, None, message)), resumable)
}

fn failure(kind: ErrorKind, status: Option<u16>, message: String) -> Failure {
    Failure {
        kind,
        verdict: Verdict::Fail,
        status,
        message,
        retry_after: None,
        ambiguous: false,
        partial: None,
    }
}

fn usage(a: &Attempt) -> ItemUsage {
    let c: Option<&Completion> = match a {
        Attempt::Answered(c) => Some(c),
        Attempt::Failed(f) => f.partial.as_ref(),
    };
    c.map_or_else(ItemUsage::default, |c| ItemUsage {
        own: c.cost,
        prompt_tokens: c.prompt_tokens.unwrap_or(0),
        completion_tokens: c.completion_tokens.unwrap_or(0),
    })
}

/// One key's line: its earlier runs' counters plus this batch attempt.
fn line(
    meta: &Meta,
    attempt: Attempt,
    cost: Option<Decimal>,
    resumable: bool,
    started: Instant,
) -> ResultLine {
    let mut tally = Attempts::carried(meta.prior.as_ref());
    let before = tally.known_cost;
    tally.attempts += 1;
    tally.add_charge(cost, meta.worst);
    let mut line = new_line(
        crate::output::key::ResultKey::of(&meta.id, meta.variant.as_deref(), &meta.model),
        &meta.vars,
        &tally,
        started,
    );
    match attempt {
        Attempt::Answered(c) => {
            fill_completion(&mut line, &c);
            crate::runner::cached::ticket(&mut line, meta.cache_key, before);
        }
        Attempt::Failed(f) => {
            fail(&mut line, &f);
            line.resumable = resumable;
        }
    }
    line.cost_source = line.cost_usd.and(cost).map(|_| CostSource::Batch);
    if let Some(t) = line.cache_ticket.as_mut() {
        t.cost = cost;
    }
    line
}

/// The line of a key whose chunk the API refused (nothing billed).
pub(crate) fn refused_line(meta: &Meta, why: &str, resumable: bool) -> ResultLine {
    let f = failure(ErrorKind::Http, None, why.to_string());
    line(
        meta,
        Attempt::Failed(f),
        Some(Decimal::ZERO),
        resumable,
        Instant::now(),
    )
}
