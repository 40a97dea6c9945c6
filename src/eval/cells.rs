//! The leaderboard: one cell per (variant, model), aggregated while the result lines stream
//! by, and McNemar's comparison of the two best cells (`summary.json`'s `eval`).
//!
//! **Memory.** A cell keeps counts and sums (pass, score, score², each check's sum, cost,
//! judge cost) and a latency histogram of three significant digits (at most 900 buckets per
//! decade, so bounded whatever the number of rows). The one thing that grows with rows is
//! what McNemar's test needs: which rows each cell passed, to pair the two best cells' rows
//! at the end (they are known only then). A cell keeps one `u64` per result: the row id's
//! 64-bit hash with its lowest bit replaced by "passed" (8 bytes a result, no strings: 16 MB
//! for a million rows x two models), sorted and merged at the end. Everything else the
//! leaderboard shows is per cell.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::stats::{mcnemar_exact, mean_ci, pareto, wilson};
use crate::output::Status;

/// `eval` of summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    /// One cell per (variant, model), best first (pass rate descending, then cost ascending).
    pub cells: Vec<Cell>,
    /// McNemar's exact test between the two best cells (`null` with fewer than two).
    pub comparison: Option<Comparison>,
    /// `[eval] min_pass_rate`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pass_rate: Option<f64>,
}

impl EvalSummary {
    /// The cells below `min_pass_rate` (none when it is unset).
    pub fn below_min(&self) -> Vec<&Cell> {
        let Some(min) = self.min_pass_rate else {
            return Vec::new();
        };
        self.cells.iter().filter(|c| c.pass_rate < min).collect()
    }
}

/// One (variant, model) cell of the leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The prompt variant (`null` without variants).
    pub variant: Option<String>,
    /// The model.
    pub model: String,
    /// Results (ok and error lines).
    pub results: u64,
    /// Results that passed.
    pub passed: u64,
    /// Results that are errors (counted as not passed).
    pub errors: u64,
    /// passed / results.
    pub pass_rate: f64,
    /// Wilson's 95% interval of the pass rate.
    pub pass_rate_ci95: [f64; 2],
    /// The mean score of the scored ok results (`null`: none).
    pub mean_score: Option<f64>,
    /// mean +- 1.96 standard errors, clamped to 0..1.
    pub mean_score_ci95: Option<[f64; 2]>,
    /// Each check's mean score over the results it scored.
    pub scores: BTreeMap<String, f64>,
    /// What the completions cost.
    #[serde(with = "crate::money")]
    pub cost_usd: Decimal,
    /// What the judge calls cost.
    #[serde(with = "crate::money")]
    pub judge_cost_usd: Decimal,
    /// cost_usd / passed (`null` when nothing passed).
    #[serde(with = "crate::money::opt")]
    pub cost_per_pass_usd: Option<Decimal>,
    /// Latency of the cell's results.
    pub latency_ms: CellLatency,
    /// No other cell has a pass rate >= and a cost <=, one of them strictly better.
    pub pareto: bool,
}

/// `latency_ms` of a cell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellLatency {
    /// Median (three significant digits).
    pub p50: u64,
    /// 95th percentile (three significant digits).
    pub p95: u64,
}

/// A cell's name in `comparison`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellName {
    /// The variant.
    pub variant: Option<String>,
    /// The model.
    pub model: String,
}

/// `eval.comparison`: the two best cells on the rows both answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The best cell.
    pub a: CellName,
    /// The second best.
    pub b: CellName,
    /// Rows both cells have a result for.
    pub rows: u64,
    /// Rows A passed and B did not.
    pub a_only: u64,
    /// Rows B passed and A did not.
    pub b_only: u64,
    /// McNemar's exact two-sided p-value.
    pub p_value: f64,
}

/// The fields of a result line the leaderboard reads, borrowed where they are text.
#[derive(Deserialize)]
struct EvalLine<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    variant: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Cow<'a, str>,
    status: Status,
    #[serde(default)]
    resumable: bool,
    #[serde(default)]
    pass: Option<bool>,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default)]
    scores: Option<BTreeMap<String, Option<f64>>>,
    #[serde(with = "crate::money::opt", default)]
    cost_usd: Option<Decimal>,
    #[serde(with = "crate::money::opt", default)]
    judge_cost_usd: Option<Decimal>,
    #[serde(default)]
    latency_ms: u64,
}

#[derive(Default)]
struct CellAcc {
    results: u64,
    passed: u64,
    errors: u64,
    scored: u64,
    sum: f64,
    sum_sq: f64,
    checks: BTreeMap<String, (f64, u64)>,
    cost: Decimal,
    judge_cost: Decimal,
    latency: BTreeMap<u64, u64>,
    /// Row id hash with the lowest bit = passed (see the module docs).
    rows: Vec<u64>,
}

/// The streaming aggregate of every cell.
pub struct Cells {
    cells: BTreeMap<(Option<String>, String), CellAcc>,
    only: Option<HashSet<String>>,
    min_pass_rate: Option<f64>,
}

impl Cells {
    /// An empty leaderboard; lines of models not in `models` (when given) are left out.
    pub fn new(models: Option<&[String]>, min_pass_rate: Option<f64>) -> Cells {
        Cells {
            cells: BTreeMap::new(),
            only: models.map(|m| m.iter().cloned().collect()),
            min_pass_rate,
        }
    }

    /// Adds one result line (its JSON text); lines that do not parse, and lines that only
    /// record the spend of a stopped pair, are not results.
    pub fn add_json(&mut self, bytes: &[u8]) {
        let Ok(line) = serde_json::from_slice::<EvalLine<'_>>(bytes) else {
            return;
        };
        if line.resumable
            || self
                .only
                .as_ref()
                .is_some_and(|m| !m.contains(line.model.as_ref()))
        {
            return;
        }
        let key = (line.variant.map(Cow::into_owned), line.model.into_owned());
        let acc = self.cells.entry(key).or_default();
        acc.results += 1;
        let passed = line.status == Status::Ok && line.pass == Some(true);
        acc.passed += u64::from(passed);
        acc.errors += u64::from(line.status == Status::Error);
        if line.status == Status::Ok
            && let Some(s) = line.score
        {
            acc.scored += 1;
            acc.sum += s;
            acc.sum_sq += s * s;
        }
        for (name, s) in line.scores.into_iter().flatten() {
            if let Some(s) = s {
                let e = acc.checks.entry(name).or_default();
                e.0 += s;
                e.1 += 1;
            }
        }
        acc.cost += line.cost_usd.unwrap_or_default();
        acc.judge_cost += line.judge_cost_usd.unwrap_or_default();
        *acc.latency
            .entry(three_digits(line.latency_ms))
            .or_default() += 1;
        acc.rows
            .push((crate::scan::id_hash(&line.id) & !1) | u64::from(passed));
    }

    /// The leaderboard, best first, with the comparison of the two best cells.
    pub fn finish(self) -> EvalSummary {
        let mut built: Vec<(Cell, Vec<u64>)> = self
            .cells
            .into_iter()
            .map(|((variant, model), acc)| cell(variant, model, acc))
            .collect();
        built.sort_by(|(a, _), (b, _)| {
            b.pass_rate
                .total_cmp(&a.pass_rate)
                .then(a.cost_usd.cmp(&b.cost_usd))
                .then_with(|| a.variant.cmp(&b.variant))
                .then_with(|| a.model.cmp(&b.model))
        });
        let front = pareto(
            &built
                .iter()
                .map(|(c, _)| (c.pass_rate, c.cost_usd))
                .collect::<Vec<_>>(),
        );
        for ((c, _), p) in built.iter_mut().zip(front) {
            c.pareto = p;
        }
        let comparison = match built.as_mut_slice() {
            [(a, ra), (b, rb), ..] => Some(compare(a, std::mem::take(ra), b, std::mem::take(rb))),
            _ => None,
        };
        EvalSummary {
            cells: built.into_iter().map(|(c, _)| c).collect(),
            comparison,
            min_pass_rate: self.min_pass_rate,
        }
    }
}

fn cell(variant: Option<String>, model: String, acc: CellAcc) -> (Cell, Vec<u64>) {
    let round = |x: f64| (x * 1e6).round() / 1e6;
    let mean = mean_ci(acc.scored, acc.sum, acc.sum_sq);
    let rate = if acc.results == 0 {
        0.0
    } else {
        acc.passed as f64 / acc.results as f64
    };
    let cell = Cell {
        variant,
        model,
        results: acc.results,
        passed: acc.passed,
        errors: acc.errors,
        pass_rate: round(rate),
        pass_rate_ci95: wilson(acc.passed, acc.results).map(round),
        mean_score: mean.map(|(m, _)| round(m)),
        mean_score_ci95: mean.map(|(_, ci)| ci.map(round)),
        scores: acc
            .checks
            .into_iter()
            .map(|(k, (sum, n))| (k, round(sum / n as f64)))
            .collect(),
        cost_usd: acc.cost,
        judge_cost_usd: acc.judge_cost,
        cost_per_pass_usd: (acc.passed > 0).then(|| {
            (acc.cost / Decimal::from(acc.passed))
                .round_dp(10)
                .normalize()
        }),
        latency_ms: CellLatency {
            p50: quantile(&acc.latency, 50),
            p95: quantile(&acc.latency, 95),
        },
        pareto: false,
    };
    (cell, acc.rows)
}

/// McNemar's test between `a` and `b` on the rows both answered.
fn compare(a: &Cell, mut ra: Vec<u64>, b: &Cell, mut rb: Vec<u64>) -> Comparison {
    ra.sort_unstable();
    rb.sort_unstable();
    let (mut i, mut j) = (0, 0);
    let (mut rows, mut a_only, mut b_only) = (0u64, 0u64, 0u64);
    while i < ra.len() && j < rb.len() {
        let (x, y) = (ra[i] >> 1, rb[j] >> 1);
        if x < y {
            i += 1;
        } else if y < x {
            j += 1;
        } else {
            rows += 1;
            let (pa, pb) = (ra[i] & 1 == 1, rb[j] & 1 == 1);
            a_only += u64::from(pa && !pb);
            b_only += u64::from(pb && !pa);
            i += 1;
            j += 1;
        }
    }
    let name = |c: &Cell| CellName {
        variant: c.variant.clone(),
        model: c.model.clone(),
    };
    Comparison {
        a: name(a),
        b: name(b),
        rows,
        a_only,
        b_only,
        p_value: mcnemar_exact(a_only, b_only),
    }
}

/// `v` rounded down to three significant digits (the histogram's bucket).
fn three_digits(v: u64) -> u64 {
    let mut scale = 1;
    while v / scale >= 1000 {
        scale *= 10;
    }
    v / scale * scale
}

/// The nearest-rank `p`th percentile of a histogram.
fn quantile(h: &BTreeMap<u64, u64>, p: u64) -> u64 {
    let n: u64 = h.values().sum();
    if n == 0 {
        return 0;
    }
    let rank = (p * n).div_ceil(100).clamp(1, n);
    let mut seen = 0;
    for (&v, &c) in h {
        seen += c;
        if seen >= rank {
            return v;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, model: &str, pass: bool, cost: &str, latency: u64) -> Vec<u8> {
        format!(
            r#"{{"id":"{id}","model":"{model}","status":"ok","pass":{pass},"score":{},"scores":{{"label":{}}},"cost_usd":{cost},"latency_ms":{latency}}}"#,
            u8::from(pass),
            u8::from(pass)
        )
        .into_bytes()
    }

    #[test]
    fn cells_count_rank_and_compare() {
        let mut cells = Cells::new(None, Some(0.7));
        for i in 0..10 {
            let id = i.to_string();
            cells.add_json(&line(&id, "a", i < 9, "0.01", 100 + i));
            cells.add_json(&line(&id, "b", i < 6 || i == 9, "0.001", 1000 + i));
        }
        cells.add_json(br#"{"id":"x","model":"b","status":"error","pass":false,"latency_ms":5}"#);
        cells.add_json(
            br#"{"id":"y","model":"b","status":"error","resumable":true,"latency_ms":5}"#,
        );
        let s = cells.finish();
        let [a, b] = &s.cells[..] else { panic!() };
        assert_eq!(
            (a.model.as_str(), a.results, a.passed, a.errors),
            ("a", 10, 9, 0)
        );
        assert_eq!(
            (b.model.as_str(), b.results, b.passed, b.errors),
            ("b", 11, 7, 1)
        );
        assert_eq!(a.pass_rate, 0.9);
        assert_eq!(a.cost_usd, "0.10".parse::<Decimal>().unwrap());
        assert_eq!(a.cost_per_pass_usd, Some("0.0111111111".parse().unwrap()));
        assert_eq!(a.scores["label"], 0.9);
        assert_eq!(a.latency_ms.p50, 104);
        assert!(a.pareto && b.pareto, "a passes more, b is cheaper");
        let c = s.comparison.clone().unwrap();
        assert_eq!((c.rows, c.a_only, c.b_only), (10, 3, 1));
        assert!((c.p_value - mcnemar_exact(3, 1)).abs() < 1e-12);
        assert_eq!(s.below_min().len(), 1, "b is below 0.7");
    }

    #[test]
    fn the_latency_histogram_is_bounded() {
        let mut h = BTreeMap::new();
        for v in 0..2_000_000u64 {
            *h.entry(three_digits(v)).or_insert(0u64) += 1;
        }
        assert!(h.len() < 4000, "{}", h.len());
        assert_eq!(three_digits(123_456), 123_000);
        assert_eq!(quantile(&h, 50), 999_000);
    }
}
