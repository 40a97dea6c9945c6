//! The per-model arithmetic of an estimate: local token counts x prices -> low / expected /
//! high, with or without a pilot's calibration. Pure functions, no I/O.
//!
//! For the requests still to send ("rest"):
//! - `low`: prompt tokens as counted locally (scaled down by the pilot's ratio when it is
//!   below 1), no completion, plus the request fee;
//! - `expected`: prompt tokens x the pilot's real/local ratio (1 without a pilot) plus the
//!   expected completion (the pilot's weighted mean, else [`DEFAULT_GUESS`] / half of
//!   `max_tokens`), times the pilot's real/table cost factor;
//! - `high`: a prompt count that cannot undercount ([`crate::prices::prompt_tokens_upper_bound`])
//!   plus every reply at its cap (`max_tokens`, else the model's max completion, else its
//!   context length), plus the request fee. One attempt per request: billed retries come on top
//!   (the budget cap covers those).
//!
//! Pairs the pilot already sent count at their recorded cost in all three.

use rust_decimal::Decimal;

use crate::prices::ModelPrice;

/// Expected completion tokens per request without a pilot, when the request has no
/// `max_tokens` (with one, the guess is half of it): a stated prior, not a measurement.
pub const DEFAULT_GUESS: u64 = 256;

/// Token counts of a set of requests to one model, as counted locally.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests.
    pub requests: u64,
    /// Prompt tokens counted with tiktoken (0 when the tokenizer was not used).
    pub prompt_tokens: u64,
    /// Prompt tokens that cannot undercount.
    pub prompt_upper: u64,
    /// Requests that carry a `max_tokens` (the job's or their own).
    pub capped_requests: u64,
    /// The sum of those requests' `max_tokens`.
    pub cap_sum: u64,
    /// The sum of those requests' completion guess (half of `max_tokens`, rounded up).
    pub capped_guess: u64,
    /// Tokens the TPM limiter counts: prompt tokens + the job's `max_tokens`.
    pub tpm_tokens: u64,
}

impl Counts {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &Counts) {
        self.requests += o.requests;
        self.prompt_tokens += o.prompt_tokens;
        self.prompt_upper += o.prompt_upper;
        self.capped_requests += o.capped_requests;
        self.cap_sum += o.cap_sum;
        self.capped_guess += o.capped_guess;
        self.tpm_tokens += o.tpm_tokens;
    }

    /// `self` less `o` (which must be a part of it).
    pub fn minus(&self, o: &Counts) -> Counts {
        Counts {
            requests: self.requests.saturating_sub(o.requests),
            prompt_tokens: self.prompt_tokens.saturating_sub(o.prompt_tokens),
            prompt_upper: self.prompt_upper.saturating_sub(o.prompt_upper),
            capped_requests: self.capped_requests.saturating_sub(o.capped_requests),
            cap_sum: self.cap_sum.saturating_sub(o.cap_sum),
            capped_guess: self.capped_guess.saturating_sub(o.capped_guess),
            tpm_tokens: self.tpm_tokens.saturating_sub(o.tpm_tokens),
        }
    }

    fn uncapped(&self) -> u64 {
        self.requests.saturating_sub(self.capped_requests)
    }

    /// The most completion tokens these requests can produce; `None` when some request has
    /// no `max_tokens` and the model's cap is unknown.
    pub fn completion_high(&self, model_cap: Option<u64>) -> Option<u64> {
        match self.uncapped() {
            0 => Some(self.cap_sum),
            n => model_cap.map(|c| self.cap_sum + n * c),
        }
    }

    /// The prior guess of completion tokens (see [`DEFAULT_GUESS`]).
    pub fn completion_guess(&self, model_cap: Option<u64>) -> u64 {
        let per = model_cap.map_or(DEFAULT_GUESS, |c| c.min(DEFAULT_GUESS));
        self.capped_guess + self.uncapped() * per
    }
}

/// What a pilot measured for one model (weights: how many rows each pilot row stands for).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Real prompt tokens / local count (weighted ratio of sums).
    pub prompt_ratio: f64,
    /// Mean completion tokens per request (weighted).
    pub completion_mean: f64,
}

/// One pilot request that answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// How many rows of the input this pilot row stands for (its stratum's size).
    pub weight: f64,
    /// Prompt tokens counted locally.
    pub local: u64,
    /// Prompt tokens the provider reported.
    pub real_prompt: u64,
    /// Completion tokens the provider reported.
    pub completion: u64,
}

/// Fits a [`Fit`] to samples (`None` when there are none, or no local tokens).
pub fn fit<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Option<Fit> {
    let (mut w, mut real, mut local, mut compl) = (0.0, 0.0, 0.0, 0.0);
    for s in samples {
        w += s.weight;
        real += s.weight * s.real_prompt as f64;
        local += s.weight * s.local as f64;
        compl += s.weight * s.completion as f64;
    }
    if w <= 0.0 || local <= 0.0 {
        return None;
    }
    Some(Fit {
        prompt_ratio: real / local,
        completion_mean: compl / w,
    })
}

/// Low / expected / high.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Range<T> {
    /// The hard lower bound (see the module docs).
    pub low: T,
    /// The expected value.
    pub expected: T,
    /// The hard upper bound.
    pub high: T,
}

/// The estimate of the requests still to send to one model.
#[derive(Debug, Clone, PartialEq)]
pub struct RestEstimate {
    /// Prompt tokens expected (local count x the pilot's ratio).
    pub prompt_expected: u64,
    /// Completion tokens: 0 / expected / cap (`None` when the cap is unknown).
    pub completion: Range<Option<u64>>,
    /// Costs (`None` when the price is unknown; `high` also when the cap is unknown).
    pub cost: Option<Range<Option<Decimal>>>,
}

/// Estimates the requests of `rest` (requests not yet sent) to a model.
pub fn estimate_rest(
    rest: &Counts,
    price: Option<&ModelPrice>,
    fit: Option<&Fit>,
    cost_factor: Decimal,
) -> RestEstimate {
    let model_cap = price.and_then(|p| p.completion_cap(None));
    let high_completion = rest.completion_high(model_cap);
    let (prompt_expected, completion_expected) = expected_tokens(rest, model_cap, fit);
    let completion_expected = match high_completion {
        Some(h) => completion_expected.min(h),
        None => completion_expected,
    };
    let ratio = fit.map_or(1.0, |f| f.prompt_ratio);
    let prompt_low = scale(rest.prompt_tokens, ratio.min(1.0));
    let cost = price.map(|p| {
        let fees = p.request * Decimal::from(rest.requests);
        let tokens = |pt: u64, ct: u64| {
            p.prompt * Decimal::from(pt) + p.completion * Decimal::from(ct) + fees
        };
        Range {
            low: Some(tokens(prompt_low, 0)),
            expected: Some(
                (tokens(prompt_expected, completion_expected) * cost_factor).round_dp(12),
            ),
            high: high_completion.map(|h| tokens(rest.prompt_upper, h)),
        }
    });
    RestEstimate {
        prompt_expected,
        completion: Range {
            low: Some(0),
            expected: Some(completion_expected),
            high: high_completion,
        },
        cost,
    }
}

/// The expected cost only (for the bootstrap): `None` when the price is unknown.
pub fn expected_cost(
    rest: &Counts,
    price: &ModelPrice,
    fit: Option<&Fit>,
    cost_factor: Decimal,
) -> Decimal {
    let model_cap = price.completion_cap(None);
    let (pt, mut ct) = expected_tokens(rest, model_cap, fit);
    if let Some(h) = rest.completion_high(model_cap) {
        ct = ct.min(h);
    }
    (price.prompt * Decimal::from(pt)
        + price.completion * Decimal::from(ct)
        + price.request * Decimal::from(rest.requests))
        * cost_factor
}

fn expected_tokens(rest: &Counts, model_cap: Option<u64>, fit: Option<&Fit>) -> (u64, u64) {
    match fit {
        Some(f) => (
            scale(rest.prompt_tokens, f.prompt_ratio),
            scale(rest.requests, f.completion_mean),
        ),
        None => (rest.prompt_tokens, rest.completion_guess(model_cap)),
    }
}

fn scale(n: u64, by: f64) -> u64 {
    let v = (n as f64 * by).round();
    if v.is_finite() && v > 0.0 {
        v as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price() -> ModelPrice {
        ModelPrice {
            prompt: Decimal::new(1, 6),
            completion: Decimal::new(2, 6),
            request: Decimal::new(1, 3),
            context_length: Some(1000),
            max_completion_tokens: Some(100),
            tokenizer: None,
        }
    }

    fn counts(requests: u64, capped: u64) -> Counts {
        Counts {
            requests,
            prompt_tokens: 50 * requests,
            prompt_upper: 200 * requests,
            capped_requests: capped,
            cap_sum: 10 * capped,
            capped_guess: 5 * capped,
            tpm_tokens: 0,
        }
    }

    #[test]
    fn bounds_without_pilot() {
        let e = estimate_rest(&counts(10, 10), Some(&price()), None, Decimal::ONE);
        assert_eq!(e.completion.high, Some(100));
        assert_eq!(e.completion.expected, Some(50));
        let c = e.cost.unwrap();
        // 500 prompt tokens x 1e-6 + 10 fees x 1e-3.
        assert_eq!(c.low, Some(Decimal::new(105, 4)));
        // + 50 completion tokens x 2e-6.
        assert_eq!(c.expected, Some(Decimal::new(1060, 5)));
        // 2000 x 1e-6 + 100 x 2e-6 + 0.01.
        assert_eq!(c.high, Some(Decimal::new(122, 4)));
    }

    #[test]
    fn uncapped_requests_use_the_model_cap() {
        let c = counts(4, 0);
        assert_eq!(c.completion_high(Some(100)), Some(400));
        assert_eq!(c.completion_high(None), None);
        assert_eq!(c.completion_guess(Some(100)), 400);
        assert_eq!(c.completion_guess(Some(10_000)), 4 * DEFAULT_GUESS);
        let e = estimate_rest(&c, None, None, Decimal::ONE);
        assert!(e.cost.is_none());
    }

    #[test]
    fn pilot_fit_scales_prompt_and_completion() {
        let samples = [
            Sample {
                weight: 1.0,
                local: 100,
                real_prompt: 120,
                completion: 10,
            },
            Sample {
                weight: 3.0,
                local: 100,
                real_prompt: 120,
                completion: 30,
            },
        ];
        let f = fit(&samples).unwrap();
        assert!((f.prompt_ratio - 1.2).abs() < 1e-12);
        assert!((f.completion_mean - 25.0).abs() < 1e-12);
        let e = estimate_rest(&counts(10, 10), Some(&price()), Some(&f), Decimal::ONE);
        assert_eq!(e.prompt_expected, 600);
        // 25 per request, capped at 10 per request.
        assert_eq!(e.completion.expected, Some(100));
        assert!(fit(&[]).is_none());
    }
}
