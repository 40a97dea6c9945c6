//! What an estimate's figures rest on, said in words (`notes`), and what the user should act
//! on (`warnings`: credit or budget below the high estimate).

use rust_decimal::Decimal;

use super::report::{Credit, Inputs, Report};
use crate::money::usd;

/// Below this many pilot rows the bootstrap interval is said to be too narrow.
const SMALL_PILOT: u64 = 20;

/// Fills `report.notes` and `report.warnings`.
pub fn annotate(r: &mut Report, inp: &Inputs) {
    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    notes.push(match (&inp.prices.error, r.price_age_secs) {
        (Some(e), _) => format!("prices: unavailable ({e}); every cost is unknown"),
        (None, Some(age)) => format!(
            "prices: GET /models, {} old{}",
            human_age(age),
            if age > 60 {
                " (cached; --refresh-prices fetches them now)"
            } else {
                ""
            }
        ),
        (None, None) => "prices: none".into(),
    });
    if !r.total.price_unknown_models.is_empty() {
        warnings.push(format!(
            "price unknown for {} (not priced in /models): its cost is not estimated, and the total is unknown",
            r.total.price_unknown_models.join(", ")
        ));
    }
    let approx: Vec<&str> = r
        .models
        .iter()
        .filter(|m| !m.exact_tokens)
        .map(|m| m.model.as_str())
        .collect();
    if !approx.is_empty() {
        notes.push(format!(
            "prompt tokens of {} are an approximation (tiktoken {}, not the model's own tokenizer){}",
            approx.join(", "),
            r.models
                .iter()
                .find(|m| !m.exact_tokens)
                .map_or("", |m| m.tokenizer),
            if r.pilot.is_none() {
                "; --pilot N measures the difference"
            } else {
                ""
            }
        ));
    }
    let guessed: Vec<&str> = r
        .models
        .iter()
        .filter(|m| m.completion_basis == "guess")
        .map(|m| m.model.as_str())
        .collect();
    if !guessed.is_empty() {
        notes.push(format!(
            "expected completion tokens of {} are a guess (per request: half of max_tokens, else min({}, the model's max completion)) until --pilot N measures them",
            guessed.join(", "),
            super::model::DEFAULT_GUESS
        ));
    }
    notes.push("low = prompt tokens as counted and no reply; high = every prompt at a byte count that cannot undercount and every reply at its cap (max_tokens, else the model's max completion), one attempt each: billed retries come on top, and the budget cap covers those".into());
    if let Some(p) = &r.pilot {
        notes.push(format!(
            "pilot: {} rows sent for real ({} requests), spent {}; kept in {}, so the following run does not send them again; totals include them",
            p.rows,
            p.requests,
            usd(p.spent_usd.0),
            inp.job.output_dir.display()
        ));
        if let Some(i) = &r.total.interval {
            let small = if p.rows < SMALL_PILOT {
                format!("; with fewer than {SMALL_PILOT} pilot rows it understates the uncertainty")
            } else {
                String::new()
            };
            notes.push(format!(
                "interval: {:.0}% {}{small}",
                i.level * 100.0,
                i.method
            ));
        }
    }
    if r.minutes_at_limits.is_none() {
        notes.push(format!(
            "time: no requests_per_minute or tokens_per_minute limit: unbounded by limits (concurrency {})",
            inp.job.limits.concurrency
        ));
    }
    let pilot_spent = r.pilot.as_ref().map_or(Decimal::ZERO, |p| p.spent_usd.0);
    let high = r.total.cost_usd.high.map(|h| h.0);
    match &inp.credit {
        Credit::Limited(left) => {
            if let Some(h) = high
                && h - pilot_spent > *left
            {
                warnings.push(format!(
                    "the high estimate ({}) exceeds the key's remaining credit ({}): the run may stop with HTTP 402 (resumable)",
                    usd(h - pilot_spent),
                    usd(*left)
                ));
            }
        }
        Credit::Unlimited => notes.push("credit: the key has no credit limit".into()),
        Credit::Unknown(why) => notes.push(format!("credit: remaining credit unknown ({why})")),
    }
    if let (Some(budget), Some(h)) = (inp.job.limits.budget_usd, high)
        && h > budget
    {
        warnings.push(format!(
            "the high estimate ({}) exceeds budget_usd ({}): `run` asks for --yes, and then stops when the budget is reached",
            usd(h),
            usd(budget)
        ));
    }
    r.notes = notes;
    r.warnings = warnings;
}

fn human_age(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        7200..172_800 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}
