//! The shape of `summary.json` (field names are the contract: fields may be added, none
//! renamed). Built by [`super::summary`].

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ErrorKind;

/// `summary.json`: the aggregate of `results.jsonl` (field names are the contract).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The job's name.
    pub job: String,
    /// True when every (row, model) pair has a line and the run was not stopped early.
    pub complete: bool,
    /// Row counts (one row = one (row, model) pair).
    pub rows: RowCounts,
    /// Request counts.
    pub requests: RequestCounts,
    /// Token totals.
    pub tokens: TokenCounts,
    /// Money.
    pub cost_usd: CostTotals,
    /// Failures by kind: count and dollars spent on them.
    pub errors_by_kind: BTreeMap<String, KindTotals>,
    /// The most frequent error messages, most frequent first.
    #[serde(default)]
    pub top_errors: Vec<ErrorCount>,
    /// Latency percentiles of finished rows.
    pub latency_ms: Latency,
    /// Rows, cost and tokens by requested model (added; `cost_usd.by_model` has the totals).
    #[serde(default)]
    pub models: BTreeMap<String, GroupTotals>,
    /// Rows, cost and tokens by prompt variant (added; only when the job has variants;
    /// `cost_usd.by_variant` has the totals).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variants: BTreeMap<String, GroupTotals>,
    /// Rows, cost and tokens by provider, `unknown` when none was reported (added).
    #[serde(default)]
    pub providers: BTreeMap<String, GroupTotals>,
    /// This run's own counts (absent for `orbatch summary`, which is no run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub this_run: Option<ThisRun>,
    /// Wall time of the run (or the span of the result lines, for `orbatch summary`).
    pub wall_secs: f64,
    /// When the run started (RFC 3339).
    pub started_at: Option<String>,
    /// When the run ended (RFC 3339).
    pub finished_at: Option<String>,
    /// Response-cache hits and what they saved.
    #[serde(default)]
    pub cache: CacheTotals,
    /// Lines of models no longer in the job: kept in results.jsonl, left out of the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_out: Option<LeftOut>,
    /// The leaderboard of a job with checks (`[eval]`, `[[checks]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<crate::eval::cells::EvalSummary>,
    /// Agreement across raters on the structured output's fields (two or more raters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation: Option<crate::annotation::AnnotationSummary>,
}

/// `cache` of the summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheTotals {
    /// Lines answered from the response cache (nothing sent for them).
    pub hits: u64,
    /// What those answers cost when they were first paid.
    #[serde(with = "crate::money")]
    pub saved_usd: Decimal,
}

/// `left_out` of the summary: the latest lines of models, or prompt variants, that are not in
/// the current job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeftOut {
    /// How many (row, model) lines.
    pub rows: u64,
    /// What they cost (still counted by `budget_usd`: the money was spent).
    #[serde(with = "crate::money")]
    pub cost_usd: Decimal,
    /// The models, sorted.
    pub models: Vec<String>,
    /// The prompt variants no longer in the job, sorted (added; absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
}

/// `rows` of the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    /// (row, model) pairs in the job.
    pub total: u64,
    /// Pairs that ended ok.
    pub ok: u64,
    /// Pairs that ended in error.
    pub error: u64,
    /// Pairs with no line (never sent, or stopped early).
    pub not_sent: u64,
    /// Pairs whose line only records the spend of a pair the run stopped (`resumable`): not
    /// failures, a plain re-run sends them again (not in `ok`, `error` or `not_sent`).
    #[serde(default)]
    pub unfinished: u64,
    /// Ok pairs whose reply was cut at `max_tokens` (`finish_reason: "length"`).
    #[serde(default)]
    pub truncated: u64,
}

/// `this_run` of the summary: what the run that wrote it did (the other counts are the
/// output dir's totals, over every run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThisRun {
    /// Attempts this run sent.
    pub sent: u64,
    /// Of them, attempts beyond a pair's first of this run.
    pub retried: u64,
    /// This run's wall time.
    pub wall_secs: f64,
    /// Attempts sent per minute of wall time; `null` when nothing was sent.
    pub requests_per_min: Option<f64>,
}

/// `requests` of the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    /// Attempts sent.
    pub sent: u64,
    /// Attempts beyond the first.
    pub retried: u64,
    /// Attempts answered with 429.
    pub rate_limited: u64,
    /// Attempts that may have been billed with no way to know.
    pub unknown_cost_attempts: u64,
}

/// `tokens` of the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCounts {
    /// Prompt tokens.
    pub prompt: u64,
    /// Completion tokens.
    pub completion: u64,
    /// Reasoning tokens.
    pub reasoning: u64,
    /// Cached prompt tokens.
    pub cached: u64,
}

/// `cost_usd` of the summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostTotals {
    /// The sum of every row's `cost_usd`.
    #[serde(with = "crate::money")]
    pub total: Decimal,
    /// The sum of every row's `judge_cost_usd` (judge checks), included in `total`.
    #[serde(with = "crate::money", default)]
    pub judge_total: Decimal,
    /// The sum of every row's `table_cost_usd`.
    #[serde(with = "crate::money")]
    pub table_total: Decimal,
    /// Rows whose reported and table costs differ.
    pub mismatched_rows: u64,
    /// Rows whose cost is unknown (`cost_usd: null`).
    #[serde(default)]
    pub unknown_rows: u64,
    /// Total by requested model.
    #[serde(with = "money_map")]
    pub by_model: BTreeMap<String, Decimal>,
    /// Total by provider (`unknown` when no provider was reported).
    #[serde(with = "money_map")]
    pub by_provider: BTreeMap<String, Decimal>,
    /// Total by prompt variant (added; only when the job has variants).
    #[serde(
        with = "money_map",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub by_variant: BTreeMap<String, Decimal>,
}

/// One entry of `errors_by_kind`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KindTotals {
    /// Rows that failed with this kind.
    pub count: u64,
    /// Dollars those rows cost.
    #[serde(with = "crate::money")]
    pub cost_usd: Decimal,
}

/// Rows, cost and tokens of one model or provider (`models` / `providers` of the summary).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupTotals {
    /// (row, model) pairs with a line.
    pub rows: u64,
    /// Pairs that ended ok.
    pub ok: u64,
    /// Pairs that ended in error.
    pub error: u64,
    /// The sum of their known `cost_usd`.
    #[serde(with = "crate::money")]
    pub cost_usd: Decimal,
    /// Pairs whose cost is unknown (`cost_usd: null`), not in `cost_usd`.
    pub unknown_cost_rows: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

/// A frequent error message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    /// The error's kind.
    pub kind: ErrorKind,
    /// The message.
    pub message: String,
    /// How many rows failed with it.
    pub count: u64,
}

/// `latency_ms` of the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// Maximum.
    pub max: u64,
}

/// `BTreeMap<String, Decimal>` with exact JSON numbers.
mod money_map {
    use std::collections::BTreeMap;

    use rust_decimal::Decimal;
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    struct Amount(#[serde(with = "crate::money")] Decimal);

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<String, Decimal>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct A<'a>(#[serde(with = "crate::money")] &'a Decimal);
        let mut map = s.serialize_map(Some(m.len()))?;
        for (k, v) in m {
            map.serialize_entry(k, &A(v))?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Decimal>, D::Error> {
        let m: BTreeMap<String, Amount> = Deserialize::deserialize(d)?;
        Ok(m.into_iter().map(|(k, v)| (k, v.0)).collect())
    }
}
