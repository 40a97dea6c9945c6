//! `estimate --pilot N`: pick N rows spread over prompt lengths, send them for real through
//! the normal pipeline (into the job's output dir, so the following `run` resumes past them),
//! and calibrate on what came back.
//!
//! Sampling is stratified: rows are ranked by their local prompt-token count, the ranks cut
//! into N equal strata, and one row drawn at random (seeded) from each. A pilot row stands for
//! its stratum (its weight), so the calibration sees short and long prompts in the proportions
//! of the input.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

use super::count::{Counter, for_each_row};
use super::model::{Counts, Fit, Sample, expected_cost, fit};
use crate::job::Job;
use crate::output::{ResultLine, Status};
use crate::prices::{ModelPrice, PriceTable};
use crate::prompts::Prompts;

/// Bootstrap resamples for the interval.
pub const RESAMPLES: usize = 1000;
/// The interval's level.
pub const LEVEL: f64 = 0.9;

/// A row chosen for the pilot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    /// Its 0-based index among the data rows.
    pub index: u64,
    /// How many rows it stands for (its stratum's size).
    pub weight: u64,
}

/// Picks `n` rows (all when `n` >= the row count), one at random from each of `n` strata of
/// equal size over the rows ranked by `row_tokens`. Deterministic for a seed.
pub fn pick(row_tokens: &[u32], n: u64, seed: u64) -> Vec<Pick> {
    let len = row_tokens.len();
    let n = usize::try_from(n).unwrap_or(usize::MAX).min(len);
    if n == 0 {
        return Vec::new();
    }
    let mut ranked: Vec<u32> = (0..len as u32).collect();
    ranked.sort_by_key(|&i| (row_tokens[i as usize], i));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut picks: Vec<Pick> = (0..n)
        .map(|k| {
            let (start, end) = (k * len / n, (k + 1) * len / n);
            let at = rng.random_range(start..end);
            Pick {
                index: u64::from(ranked[at]),
                weight: (end - start) as u64,
            }
        })
        .collect();
    picks.sort_by_key(|p| p.index);
    picks
}

/// A pilot row: its id, weight and the local counts of each of its requests.
#[derive(Debug, Clone)]
pub struct PilotRow {
    /// Its position among the pilot rows (in input order), for the bootstrap.
    pub slot: usize,
    /// The row's weight.
    pub weight: u64,
    /// (variant, model, counts of that one request).
    pub requests: Vec<(Option<String>, String, Counts)>,
}

/// Reads the picked rows again and counts their requests (keyed by row id).
pub fn pilot_rows(
    job: &Job,
    prompts: &Prompts,
    prices: &PriceTable,
    picks: &[Pick],
) -> Result<HashMap<String, PilotRow>, crate::input::InputError> {
    let weights: HashMap<u64, u64> = picks.iter().map(|p| (p.index, p.weight)).collect();
    let mut counter = Counter::new(job, prompts, prices, true);
    let mut out = HashMap::new();
    let mut left = weights.len();
    for_each_row(job, |row| {
        if let Some(&weight) = weights.get(&row.index) {
            let mut requests = Vec::new();
            counter.row(&row, |v, m, c| {
                requests.push((v.map(str::to_owned), m.to_string(), *c));
            });
            let slot = out.len();
            out.insert(
                row.id.clone(),
                PilotRow {
                    slot,
                    weight,
                    requests,
                },
            );
            left -= 1;
        }
        left > 0
    })?;
    Ok(out)
}

/// What the pilot's results say about one model.
#[derive(Debug, Clone, Default)]
pub struct ModelPilot {
    /// Local counts of the pilot requests that have a recorded cost (they are not sent
    /// again, and count at that cost).
    pub known: Counts,
    /// Their recorded cost.
    pub spent: Decimal,
    /// Real prompt and completion tokens of those requests.
    pub real_prompt: u64,
    /// Real completion tokens.
    pub real_completion: u64,
    /// Pilot requests that answered (the fit's samples), by pilot-row slot.
    pub samples: Vec<(usize, Sample)>,
    /// Pilot requests that failed.
    pub errors: u64,
    /// Sum of real costs / sum of table costs over the answered requests (1 when unknown).
    pub cost_factor: Decimal,
}

impl ModelPilot {
    /// The fit over every sample.
    pub fn fit(&self) -> Option<Fit> {
        fit(self.samples.iter().map(|(_, s)| s))
    }
}

/// The calibration from the pilot's lines of results.jsonl.
#[derive(Debug, Clone, Default)]
pub struct Calibration {
    /// Per model.
    pub models: HashMap<String, ModelPilot>,
    /// Pilot rows (slots 0..rows).
    pub rows: usize,
    /// Pilot requests with a line.
    pub requests: u64,
    /// Their recorded cost.
    pub spent: Decimal,
}

/// Builds the calibration from result lines (the latest per key).
pub fn calibrate(
    rows: &HashMap<String, PilotRow>,
    lines: impl IntoIterator<Item = ResultLine>,
) -> Calibration {
    let mut cal = Calibration {
        rows: rows.len(),
        ..Default::default()
    };
    let mut ratio: HashMap<String, (Decimal, Decimal)> = HashMap::new();
    for line in lines {
        let Some(row) = rows.get(&line.id) else {
            continue;
        };
        let slot = row.slot;
        let Some((_, _, counts)) = row
            .requests
            .iter()
            .find(|(v, m, _)| *m == line.model && *v == line.variant)
        else {
            continue;
        };
        let m = cal.models.entry(line.model.clone()).or_default();
        let Some(cost) = line.cost_usd else {
            // Unknown charge: treated as not sent (estimated like the rest).
            continue;
        };
        cal.requests += 1;
        cal.spent += cost;
        m.known.add(counts);
        m.spent += cost;
        m.real_prompt += line.prompt_tokens.unwrap_or(0);
        m.real_completion += line.completion_tokens.unwrap_or(0);
        if line.status == Status::Error {
            m.errors += 1;
            continue;
        }
        if let (Some(p), Some(c)) = (line.prompt_tokens, line.completion_tokens) {
            m.samples.push((
                slot,
                Sample {
                    weight: row.weight as f64,
                    local: counts.prompt_tokens,
                    real_prompt: p,
                    completion: c,
                },
            ));
        }
        if let Some(t) = line.table_cost_usd {
            let r = ratio.entry(line.model.clone()).or_default();
            r.0 += cost;
            r.1 += t;
        }
    }
    for (model, m) in cal.models.iter_mut() {
        m.cost_factor = match ratio.get(model) {
            Some((real, table)) if !table.is_zero() => (real / table).round_dp(6),
            _ => Decimal::ONE,
        };
    }
    cal
}

/// One model's inputs to the bootstrap.
pub struct BootModel<'a> {
    /// The pilot's view of the model.
    pub pilot: &'a ModelPilot,
    /// Counts of the requests still to send.
    pub rest: Counts,
    /// The model's price.
    pub price: &'a ModelPrice,
}

/// The (low, high) ends of an interval.
pub type Ends = (Decimal, Decimal);

/// A percentile bootstrap over pilot rows: resample the rows with replacement, refit every
/// model, re-extrapolate. Returns per-model and total (low, high) of the expected cost (the
/// pilot's own spend included).
pub fn bootstrap(models: &[BootModel], rows: usize, seed: u64) -> Option<(Vec<Ends>, Ends)> {
    if rows == 0 || models.iter().all(|m| m.pilot.samples.is_empty()) {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15);
    let mut per_model: Vec<Vec<Decimal>> = vec![Vec::with_capacity(RESAMPLES); models.len()];
    let mut totals = Vec::with_capacity(RESAMPLES);
    let mut times = vec![0u32; rows];
    for _ in 0..RESAMPLES {
        times.iter_mut().for_each(|t| *t = 0);
        for _ in 0..rows {
            times[rng.random_range(0..rows)] += 1;
        }
        let mut total = Decimal::ZERO;
        for (i, m) in models.iter().enumerate() {
            let drawn: Vec<Sample> = m
                .pilot
                .samples
                .iter()
                .filter(|(slot, _)| times[*slot] > 0)
                .map(|(slot, s)| Sample {
                    weight: s.weight * f64::from(times[*slot]),
                    ..*s
                })
                .collect();
            let f = fit(&drawn).or_else(|| m.pilot.fit());
            let v =
                m.pilot.spent + expected_cost(&m.rest, m.price, f.as_ref(), m.pilot.cost_factor);
            per_model[i].push(v);
            total += v;
        }
        totals.push(total);
    }
    let per_model = per_model.iter_mut().map(|v| percentiles(v)).collect();
    Some((per_model, percentiles(&mut totals)))
}

/// The (5%, 95%) percentiles (nearest rank).
fn percentiles(v: &mut [Decimal]) -> Ends {
    v.sort();
    let at = |q: f64| {
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v.get(i).copied().unwrap_or_default()
    };
    let tail = (1.0 - LEVEL) / 2.0;
    (at(tail), at(1.0 - tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_spread_over_lengths() {
        let tokens: Vec<u32> = (0..100).map(|i| (i * 37 % 100) as u32).collect();
        let picks = pick(&tokens, 10, 7);
        assert_eq!(picks.len(), 10);
        assert_eq!(picks.iter().map(|p| p.weight).sum::<u64>(), 100);
        // One from each decile of lengths.
        let mut deciles: Vec<u32> = picks
            .iter()
            .map(|p| tokens[p.index as usize] / 10)
            .collect();
        deciles.sort();
        assert_eq!(deciles, (0..10).collect::<Vec<u32>>());
        assert_eq!(picks, pick(&tokens, 10, 7));
        assert_ne!(picks, pick(&tokens, 10, 8));
        assert_eq!(pick(&tokens, 500, 1).len(), 100);
        assert!(pick(&[], 5, 1).is_empty());
    }
}
