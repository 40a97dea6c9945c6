//! The estimate as data: per model and in total, in the shape `estimate --json` prints
//! (field names are the contract; fields may be added, none renamed).

use rust_decimal::Decimal;
use serde::Serialize;

use super::count::Tally;
use super::model::{Counts, Range, estimate_rest};
use super::pilot::{BootModel, Calibration, LEVEL, RESAMPLES, bootstrap};
use crate::job::Job;
use crate::prices::PriceTable;
use crate::tokens::Encoding;

/// An amount in USD, written as an exact JSON number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Usd(#[serde(with = "crate::money")] pub Decimal);

/// What the key's remaining credit is.
#[derive(Debug, Clone, PartialEq)]
pub enum Credit {
    /// `limit_remaining` of `GET /key`.
    Limited(Decimal),
    /// The key has no credit limit.
    Unlimited,
    /// `GET /key` failed or is not served (the reason).
    Unknown(String),
}

impl Credit {
    /// From `GET /key`'s `data` (or the call's failure).
    pub fn from_key(key: Result<&serde_json::Value, String>) -> Credit {
        let key = match key {
            Ok(k) => k,
            Err(e) => return Credit::Unknown(e),
        };
        let amount = |f: &str| {
            key.get(f)
                .filter(|v| !v.is_null())
                .and_then(|v| crate::money::parse(&v.to_string()))
        };
        match (amount("limit"), amount("limit_remaining")) {
            (_, Some(r)) => Credit::Limited(r),
            (None, None) => Credit::Unlimited,
            (Some(_), None) => Credit::Unknown("the key has a limit but no limit_remaining".into()),
        }
    }

    /// The remaining credit, when limited.
    pub fn remaining(&self) -> Option<Decimal> {
        match self {
            Credit::Limited(r) => Some(*r),
            _ => None,
        }
    }
}

/// A confidence interval of the expected cost.
#[derive(Debug, Clone, Serialize)]
pub struct Interval {
    /// Its level (0.9).
    pub level: f64,
    /// Lower end.
    pub low: Usd,
    /// Upper end.
    pub high: Usd,
    /// How it was computed.
    pub method: String,
}

/// The pilot's part of one model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelPilotReport {
    /// Pilot requests with a recorded cost.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// Their cost.
    pub spent_usd: Usd,
    /// Real / local prompt tokens (null when no request answered).
    pub prompt_ratio: Option<f64>,
    /// Mean completion tokens per request.
    pub completion_mean: Option<f64>,
    /// Real / price-table cost.
    pub cost_factor: f64,
}

/// One model's estimate.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    /// The model slug.
    pub model: String,
    /// Requests to this model (rows that go to it).
    pub rows: u64,
    /// Prompt tokens counted locally (tiktoken).
    pub prompt_tokens: u64,
    /// Prompt tokens expected by the provider's count (the pilot's ratio applied).
    pub prompt_tokens_expected: u64,
    /// A prompt count that cannot undercount (used for the high bound).
    pub prompt_tokens_upper_bound: u64,
    /// The tiktoken encoding used.
    pub tokenizer: &'static str,
    /// True when that encoding is the model's own (OpenAI models); else an approximation.
    pub exact_tokens: bool,
    /// Completion tokens: low (0, or the pilot's) / expected / high (null: no cap known).
    pub completion_tokens: Range<Option<u64>>,
    /// Where `expected` completion tokens come from: `pilot` or `guess`.
    pub completion_basis: &'static str,
    /// Cost bounds in USD (null when the price is unknown).
    pub cost_usd: Range<Option<Usd>>,
    /// False when `/models` does not price this model ("price unknown", never $0).
    pub price_known: bool,
    /// The bootstrap interval of the expected cost (with a pilot).
    pub interval: Option<Interval>,
    /// What the pilot measured.
    pub pilot: Option<ModelPilotReport>,
}

/// The whole job.
#[derive(Debug, Clone, Serialize)]
pub struct TotalReport {
    /// Sum over models (null when some model's price, or cap, is unknown).
    pub cost_usd: Range<Option<Usd>>,
    /// The bootstrap interval of the expected total (with a pilot).
    pub interval: Option<Interval>,
    /// Models without a price.
    pub price_unknown_models: Vec<String>,
}

/// The pilot run.
#[derive(Debug, Clone, Serialize)]
pub struct PilotReport {
    /// Rows picked.
    pub rows: u64,
    /// Requests recorded (rows x variants x models).
    pub requests: u64,
    /// What they cost.
    pub spent_usd: Usd,
    /// The sampling seed.
    pub seed: u64,
}

/// `estimate --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Input rows.
    pub rows: u64,
    /// Requests (rows x variants x models).
    pub requests: u64,
    /// Per model.
    pub models: Vec<ModelReport>,
    /// In total.
    pub total: TotalReport,
    /// Minutes the requests still to send need at the job's RPM/TPM limits (null: no limit).
    pub minutes_at_limits: Option<f64>,
    /// The key's remaining credit (null: unlimited or unknown, see `credit`).
    pub credit_remaining_usd: Option<Usd>,
    /// `limited`, `unlimited` or `unknown`.
    pub credit: &'static str,
    /// The pilot, when one ran.
    pub pilot: Option<PilotReport>,
    /// Age of the price table in seconds (null: no prices).
    pub price_age_secs: Option<u64>,
    /// Warnings (also printed on stderr).
    pub warnings: Vec<String>,
    /// How to read the figures.
    pub notes: Vec<String>,
    /// The same requests at the Batch API's price, and the wait to expect.
    pub batch: Option<super::batch::BatchQuote>,
}

/// A pilot's results, for [`build`].
pub struct PilotInput<'a> {
    /// The calibration.
    pub cal: &'a Calibration,
    /// Rows picked.
    pub rows: u64,
    /// The seed.
    pub seed: u64,
}

/// Everything an estimate is made of.
pub struct Inputs<'a> {
    /// The job.
    pub job: &'a Job,
    /// Input rows.
    pub rows: u64,
    /// Per-model counts over every row.
    pub tally: &'a Tally,
    /// Prices.
    pub prices: &'a PriceTable,
    /// The pilot, if one ran.
    pub pilot: Option<PilotInput<'a>>,
    /// The key's credit.
    pub credit: Credit,
}

/// Builds the report (without its notes and warnings: `notes::annotate` adds them).
pub fn build(inp: &Inputs) -> Report {
    let mut models = Vec::new();
    let (mut boot_idx, mut boot_models) = (Vec::new(), Vec::new());
    let mut rest_all = Counts::default();
    for (model, all) in &inp.tally.models {
        let mp = inp.pilot.as_ref().and_then(|p| p.cal.models.get(model));
        let known = mp.map(|m| m.known).unwrap_or_default();
        let rest = all.minus(&known);
        rest_all.add(&rest);
        let fit = mp.and_then(|m| m.fit());
        let factor = mp.map_or(Decimal::ONE, |m| m.cost_factor);
        let price = inp.prices.get(model);
        let r = estimate_rest(&rest, price, fit.as_ref(), factor);
        let spent = mp.map_or(Decimal::ZERO, |m| m.spent);
        let real_completion = mp.map_or(0, |m| m.real_completion);
        let plus = |v: Option<Decimal>| v.map(|v| Usd(v + spent));
        let (enc, exact) = Encoding::for_model(model, price.and_then(|p| p.tokenizer.as_deref()));
        if let (Some(m), Some(p)) = (mp, price) {
            boot_idx.push(models.len());
            boot_models.push(BootModel {
                pilot: m,
                rest,
                price: p,
            });
        }
        models.push(ModelReport {
            model: model.clone(),
            rows: all.requests,
            prompt_tokens: all.prompt_tokens,
            prompt_tokens_expected: mp.map_or(0, |m| m.real_prompt) + r.prompt_expected,
            prompt_tokens_upper_bound: all.prompt_upper,
            tokenizer: enc.name(),
            exact_tokens: exact,
            completion_tokens: Range {
                low: Some(real_completion),
                expected: r.completion.expected.map(|e| e + real_completion),
                high: r.completion.high.map(|h| h + real_completion),
            },
            completion_basis: if fit.is_some() { "pilot" } else { "guess" },
            cost_usd: match r.cost {
                Some(c) => Range {
                    low: plus(c.low),
                    expected: plus(c.expected),
                    high: plus(c.high),
                },
                None => Range {
                    low: None,
                    expected: None,
                    high: None,
                },
            },
            price_known: price.is_some(),
            interval: None,
            pilot: mp.map(|m| ModelPilotReport {
                requests: m.known.requests,
                errors: m.errors,
                spent_usd: Usd(m.spent),
                prompt_ratio: fit.map(|f| f.prompt_ratio),
                completion_mean: fit.map(|f| f.completion_mean),
                cost_factor: decimal_f64(m.cost_factor),
            }),
        });
    }
    let mut total = total_of(&models);
    if let Some(p) = &inp.pilot
        && let Some((per, tot)) = bootstrap(&boot_models, p.cal.rows, p.seed)
    {
        for (i, (lo, hi)) in boot_idx.iter().zip(per) {
            models[*i].interval = interval(lo, hi, &models[*i].cost_usd, p);
        }
        if total.price_unknown_models.is_empty() {
            total.interval = interval(tot.0, tot.1, &total.cost_usd, p);
        }
    }
    Report {
        rows: inp.rows,
        requests: inp.tally.models.iter().map(|(_, c)| c.requests).sum(),
        models,
        total,
        minutes_at_limits: minutes_at_limits(inp.job, &rest_all),
        credit_remaining_usd: inp.credit.remaining().map(Usd),
        credit: match inp.credit {
            Credit::Limited(_) => "limited",
            Credit::Unlimited => "unlimited",
            Credit::Unknown(_) => "unknown",
        },
        pilot: inp.pilot.as_ref().map(|p| PilotReport {
            rows: p.rows,
            requests: p.cal.requests,
            spent_usd: Usd(p.cal.spent),
            seed: p.seed,
        }),
        price_age_secs: (inp.prices.fetched_at > 0).then(|| inp.prices.age().as_secs()),
        warnings: Vec::new(),
        notes: Vec::new(),
        batch: Some(super::batch::quote(inp)),
    }
}

/// A Decimal as f64 for display fields (0 when out of range).
fn decimal_f64(d: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or(0.0)
}

fn interval(
    lo: Decimal,
    hi: Decimal,
    bounds: &Range<Option<Usd>>,
    p: &PilotInput,
) -> Option<Interval> {
    let clamp_lo = bounds.low.map_or(lo, |l| lo.max(l.0));
    let clamp_hi = bounds.high.map_or(hi, |h| hi.min(h.0));
    Some(Interval {
        level: LEVEL,
        low: Usd(clamp_lo.round_dp(10)),
        high: Usd(clamp_hi.max(clamp_lo).round_dp(10)),
        method: format!(
            "percentile bootstrap over the {} pilot rows ({RESAMPLES} resamples, seed {}): sampling error of the pilot only, not price changes",
            p.cal.rows, p.seed
        ),
    })
}

fn total_of(models: &[ModelReport]) -> TotalReport {
    let unknown: Vec<String> = models
        .iter()
        .filter(|m| !m.price_known)
        .map(|m| m.model.clone())
        .collect();
    let sum = |f: fn(&Range<Option<Usd>>) -> Option<Usd>| -> Option<Usd> {
        models
            .iter()
            .map(|m| f(&m.cost_usd).map(|u| u.0))
            .sum::<Option<Decimal>>()
            .map(Usd)
    };
    TotalReport {
        cost_usd: Range {
            low: sum(|r| r.low),
            expected: sum(|r| r.expected),
            high: sum(|r| r.high),
        },
        interval: None,
        price_unknown_models: unknown,
    }
}

/// Minutes `rest` needs at the job's RPM and TPM limits (the tighter one); `None` when the job
/// sets neither.
pub fn minutes_at_limits(job: &Job, rest: &Counts) -> Option<f64> {
    let rpm = job
        .limits
        .requests_per_minute
        .map(|r| rest.requests as f64 / f64::from(r));
    let tpm = job
        .limits
        .tokens_per_minute
        .map(|t| rest.tpm_tokens as f64 / t as f64);
    match (rpm, tpm) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
    .map(|m| (m * 100.0).round() / 100.0)
}
