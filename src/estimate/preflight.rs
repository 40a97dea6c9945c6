//! `run`'s pre-flight check: before anything is sent, compare the high estimate of the
//! requests still to send with `budget_usd` (less what the output dir already spent) and with
//! the key's `limit_remaining`; refuse (exit 2, nothing sent) unless `--yes`.
//!
//! The high estimate needs no tokenizer: it prices a prompt count that cannot undercount
//! (UTF-8 bytes plus overheads) and every reply at its cap, so `run` never builds the tiktoken
//! tables for it. `GET /key` failing (a server without it) means "unknown", never an error.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;

use super::count::{Counter, Tally, for_each_row};
use super::model::estimate_rest;
use super::report::Credit;
use crate::client::Client;
use crate::job::Job;
use crate::money::usd;
use crate::output::results::Recovered;
use crate::plan::Plan;
use crate::prices::PriceTable;
use crate::prompts::Prompts;
use crate::runner::RunOptions;

/// The requests a run would still send, and their worst case.
#[derive(Debug, Default)]
pub struct Pending {
    /// Requests still to send.
    pub requests: u64,
    /// Their high estimate (priced models only).
    pub high: Decimal,
    /// Models whose worst case cannot be priced.
    pub unpriced: Vec<String>,
    /// What the output dir already spent (the budget covers it too).
    pub spent: Decimal,
    /// The most its attempts of unknown charge may have cost on top of `spent` (the run's
    /// budget starts from both).
    pub carried: Decimal,
}

/// The pre-flight's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send.
    Go,
    /// Refused, and said why on stderr: nothing was sent.
    Refused,
}

/// What the caller already fetched this command (`GET /key` and `/models` once per command).
pub struct Known {
    /// The key's credit.
    pub credit: Credit,
    /// The price table.
    pub prices: Arc<PriceTable>,
}

/// The pre-flight check (see the module docs).
/// `what` names the sender in messages ("this run", "the pilot").
pub async fn check(
    job: &Job,
    opts: &RunOptions,
    what: &str,
    known: Option<Known>,
) -> anyhow::Result<Verdict> {
    if job.input == Path::new("-") {
        tracing::info!("pre-flight skipped: the input is stdin");
        return Ok(Verdict::Go);
    }
    let client = match &opts.client {
        Some(c) => c.clone(),
        None => Client::new(
            &job.base_url,
            opts.api_key.as_ref(),
            Duration::from_secs(15),
            2,
        )?,
    };
    let (credit, prices) = match known {
        Some(k) => (k.credit, Some(k.prices)),
        None => {
            let key = client.key_info().await.map_err(|e| e.to_string());
            (Credit::from_key(key.as_ref().map_err(Clone::clone)), None)
        }
    };
    let left = credit.remaining();
    if job.limits.budget_usd.is_none() && left.is_none() {
        return Ok(Verdict::Go);
    }
    let prices = match prices {
        Some(p) => p,
        None => Arc::new(PriceTable::cached_or_fetch(&client, crate::prices::RUN_MAX_AGE).await),
    };
    let (job2, opts2) = (job.clone(), opts.clone());
    let pending = tokio::task::spawn_blocking(move || pending_high(&job2, &opts2, &prices)).await?;
    let Some(p) = pending else {
        return Ok(Verdict::Go);
    };
    let mut reasons = Vec::new();
    if let Some(budget) = job.limits.budget_usd
        && p.spent + p.carried + p.high > budget
    {
        let unknown = if p.carried.is_zero() {
            String::new()
        } else {
            format!(
                " (and up to {} more for attempts of unknown charge)",
                usd(p.carried)
            )
        };
        reasons.push(if (p.spent + p.carried).is_zero() {
            format!("that is above budget_usd ({})", usd(budget))
        } else {
            format!(
                "with {} already spent{unknown} in {}, that exceeds budget_usd ({})",
                usd(p.spent),
                job.output_dir.display(),
                usd(budget)
            )
        });
    }
    if let Some(left) = left
        && p.high > left
    {
        reasons.push(format!(
            "that is above the key's remaining credit ({})",
            usd(left)
        ));
    }
    if left.is_some() && !p.unpriced.is_empty() {
        eprintln!(
            "orbatch: pre-flight: cannot check {} against the key's remaining credit: price unknown",
            p.unpriced.join(", ")
        );
    }
    if reasons.is_empty() {
        return Ok(Verdict::Go);
    }
    eprintln!(
        "orbatch: pre-flight: the {} requests {what} still has to send could cost up to {} (high estimate: every prompt at a byte count that cannot undercount, every reply at its max_tokens cap)",
        p.requests,
        usd(p.high)
    );
    for r in &reasons {
        eprintln!("orbatch: pre-flight: {r}");
    }
    if opts.yes {
        eprintln!(
            "orbatch: pre-flight: going on (--yes); the budget cap still stops the run before it is passed"
        );
        return Ok(Verdict::Go);
    }
    eprintln!(
        "orbatch: nothing was sent. `orbatch estimate` gives the expected cost; lower max_tokens, raise the budget, or pass --yes to go on (the budget cap still holds during the run)"
    );
    Ok(Verdict::Refused)
}

/// The requests still to send (resume, `--retry-failed`, `--fresh` and the pilot's row set
/// as `run` applies them) and their high estimate. `None` when the job's templates do not
/// compile or its input cannot be read: `run` reports that itself.
pub fn pending_high(job: &Job, opts: &RunOptions, prices: &PriceTable) -> Option<Pending> {
    let prompts = Prompts::compile(job).ok()?;
    let recovered = if opts.fresh {
        Recovered::default()
    } else {
        crate::runner::recorded(&job.output_dir).ok()?
    };
    // The dispatcher's plan: the same finished keys, the same rows.
    let plan = Plan::for_job(job)
        .resuming(&recovered, opts.retry_failed)
        .only_rows(opts.only_rows.clone());
    let mut counter = Counter::new(job, &prompts, prices, false);
    let mut tally = Tally::default();
    for_each_row(job, |row| {
        if plan.includes_row(row.index, &row.id) {
            counter.row(&row, |variant, model, c| {
                if plan.pending(&row.id, variant, model).is_some() {
                    tally.add(model, c);
                }
            });
        }
        true
    })
    .ok()?;
    let mut p = Pending {
        // What earlier runs spent (and `--fresh` would carry on) counts as the run's cap does.
        spent: plan.spent()
            + crate::runner::spend_to_carry(&job.output_dir, opts.fresh, opts.forget_spend),
        carried: plan.carried_worst(),
        ..Default::default()
    };
    for (model, counts) in &tally.models {
        p.requests += counts.requests;
        // Batch mode pays the batch price where `/models` lists one (the live price else).
        let price = match job.batch.mode {
            crate::job::Mode::Batch => prices
                .get(&crate::job::batch::batch_variant(model))
                .or_else(|| prices.get(model)),
            crate::job::Mode::Live => prices.get(model),
        };
        let high = estimate_rest(counts, price, None, Decimal::ONE)
            .cost
            .and_then(|c| c.high);
        match high {
            Some(h) => p.high += h,
            None => p.unpriced.push(model.clone()),
        }
    }
    Some(p)
}
