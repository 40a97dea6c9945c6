//! What the report reads from `summary.json`, leniently: every section is optional and read
//! field by field, so a summary written by an older or newer orbatch (with or without
//! `eval`, `annotation` or `cost_usd.by_variant`) still makes a report.

use rust_decimal::Decimal;
use serde_json::{Map, Value};

/// The summary's numbers the report shows.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The job's name.
    pub job: String,
    /// Every pair has a line and the run was not stopped early.
    pub complete: bool,
    /// `rows`: total, ok, error, not_sent, unfinished.
    pub rows: [u64; 5],
    /// `requests`: sent, retried, rate_limited.
    pub requests: [u64; 3],
    /// `cost_usd.total`.
    pub cost_total: Decimal,
    /// `cost_usd.judge_total`, when checks with a judge ran.
    pub judge_total: Option<Decimal>,
    /// `cost_usd.by_model` with each model's rows.
    pub by_model: Vec<Group>,
    /// `cost_usd.by_provider` with each provider's rows.
    pub by_provider: Vec<Group>,
    /// `cost_usd.by_variant` (rows filled in from the results).
    pub by_variant: Vec<Group>,
    /// `errors_by_kind`: (kind, count, cost).
    pub errors_by_kind: Vec<(String, u64, Decimal)>,
    /// `top_errors`: (kind, message, count).
    pub top_errors: Vec<(String, String, u64)>,
    /// `latency_ms`: p50, p95, max.
    pub latency: [u64; 3],
    /// `wall_secs`.
    pub wall_secs: f64,
    /// `started_at`, `finished_at` (RFC 3339).
    pub span: (Option<String>, Option<String>),
    /// `eval.cells`, best first.
    pub cells: Vec<Cell>,
    /// `eval.comparison`, as given.
    pub comparison: Option<Comparison>,
    /// `annotation.fields`.
    pub fields: Vec<Field>,
}

/// Cost and rows of one model, provider or variant.
#[derive(Debug, Clone, Default)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Dollars.
    pub cost: Decimal,
    /// Result lines (0 when unknown).
    pub rows: u64,
}

/// One (variant, model) cell of the eval leaderboard.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    /// The prompt variant, if any.
    pub variant: Option<String>,
    /// The model.
    pub model: String,
    /// Results, passed, errors.
    pub counts: [u64; 3],
    /// Pass rate and its 95% interval.
    pub pass_rate: (f64, f64, f64),
    /// Mean score and its 95% interval.
    pub mean_score: (f64, f64, f64),
    /// Mean score per check.
    pub scores: Vec<(String, f64)>,
    /// Dollars (completions), judge dollars, dollars per passed result.
    pub cost: (Decimal, Decimal, Option<Decimal>),
    /// p50 and p95 latency.
    pub latency: (u64, u64),
    /// On the cost / pass-rate Pareto front.
    pub pareto: bool,
}

impl Cell {
    /// "variant / model", or the model alone.
    pub fn label(&self) -> String {
        match &self.variant {
            Some(v) => format!("{v} / {}", self.model),
            None => self.model.clone(),
        }
    }
}

/// `eval.comparison`: the two best cells on the rows both answered.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    /// Labels of A and B.
    pub a: String,
    /// See `a`.
    pub b: String,
    /// Rows A passed and B did not, and the reverse.
    pub a_only: u64,
    /// See `a_only`.
    pub b_only: u64,
    /// McNemar's exact two-sided p-value.
    pub p_value: Option<f64>,
}

/// One annotation field: value counts per rater, agreement and kappa.
#[derive(Debug, Clone, Default)]
pub struct Field {
    /// The property's name.
    pub name: String,
    /// (value, [(rater, count)]).
    pub values: Vec<(String, Vec<(String, u64)>)>,
    /// Share of rows where every answer agrees.
    pub agreement: Option<f64>,
    /// Cohen's or Fleiss' kappa.
    pub kappa: Option<f64>,
}

impl Field {
    /// The raters in first-seen order.
    pub fn raters(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, counts) in &self.values {
            for (r, _) in counts {
                if !out.contains(r) {
                    out.push(r.clone());
                }
            }
        }
        out
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn money(v: Option<&Value>) -> Option<Decimal> {
    v.and_then(|v| match v {
        Value::Number(n) => crate::money::parse(&n.to_string()),
        Value::String(s) => crate::money::parse(s),
        _ => None,
    })
}

fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path).and_then(Value::as_u64).unwrap_or(0)
}

fn f(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64).filter(|x| x.is_finite())
}

/// `[lo, hi]` as a pair, else the point itself.
fn interval(v: Option<&Value>, point: f64) -> (f64, f64) {
    match v.and_then(Value::as_array).map(|a| a.as_slice()) {
        Some([lo, hi]) => (f(Some(lo)).unwrap_or(point), f(Some(hi)).unwrap_or(point)),
        _ => (point, point),
    }
}

fn object<'a>(v: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
    v.pointer(path).and_then(Value::as_object)
}

/// Money by name (a `{name: amount}` object) with rows from a `{name: {"rows": n}}` object.
fn groups(v: &Value, costs: &str, rows: &str) -> Vec<Group> {
    let Some(costs) = object(v, costs) else {
        return Vec::new();
    };
    costs
        .iter()
        .map(|(name, c)| Group {
            name: name.clone(),
            cost: money(Some(c)).unwrap_or_default(),
            rows: object(v, rows)
                .and_then(|m| m.get(name))
                .map_or(0, |g| u(g, "/rows")),
        })
        .collect()
}

impl View {
    /// Reads the summary's JSON value; absent or malformed sections stay empty.
    pub fn from_json(v: &Value) -> View {
        let s = |p: &str| v.pointer(p).map(text).unwrap_or_default();
        let opt = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        View {
            job: s("/job"),
            complete: v.pointer("/complete").and_then(Value::as_bool) == Some(true),
            rows: ["total", "ok", "error", "not_sent", "unfinished"]
                .map(|k| u(v, &format!("/rows/{k}"))),
            requests: ["sent", "retried", "rate_limited"].map(|k| u(v, &format!("/requests/{k}"))),
            cost_total: money(v.pointer("/cost_usd/total")).unwrap_or_default(),
            judge_total: money(v.pointer("/cost_usd/judge_total")),
            by_model: groups(v, "/cost_usd/by_model", "/models"),
            by_provider: groups(v, "/cost_usd/by_provider", "/providers"),
            by_variant: groups(v, "/cost_usd/by_variant", "/variants"),
            errors_by_kind: object(v, "/errors_by_kind")
                .map(|m| {
                    m.iter()
                        .map(|(k, e)| {
                            (
                                k.clone(),
                                u(e, "/count"),
                                money(e.get("cost_usd")).unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            top_errors: v
                .pointer("/top_errors")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|e| (s_of(e, "kind"), s_of(e, "message"), u(e, "/count")))
                        .collect()
                })
                .unwrap_or_default(),
            latency: ["p50", "p95", "max"].map(|k| u(v, &format!("/latency_ms/{k}"))),
            wall_secs: f(v.pointer("/wall_secs")).unwrap_or(0.0),
            span: (opt("/started_at"), opt("/finished_at")),
            cells: v
                .pointer("/eval/cells")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(cell).collect())
                .unwrap_or_default(),
            comparison: v.pointer("/eval/comparison").and_then(comparison),
            fields: v
                .pointer("/annotation/fields")
                .map(fields)
                .unwrap_or_default(),
        }
    }
}

fn s_of(v: &Value, key: &str) -> String {
    v.get(key).map(text).unwrap_or_default()
}

fn opt_s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn cell(c: &Value) -> Cell {
    let rate = f(c.get("pass_rate")).unwrap_or(0.0);
    let (rlo, rhi) = interval(c.get("pass_rate_ci95"), rate);
    let mean = f(c.get("mean_score")).unwrap_or(0.0);
    let (mlo, mhi) = interval(c.get("mean_score_ci95"), mean);
    Cell {
        variant: opt_s(c, "variant"),
        model: s_of(c, "model"),
        counts: [u(c, "/results"), u(c, "/passed"), u(c, "/errors")],
        pass_rate: (rate, rlo, rhi),
        mean_score: (mean, mlo, mhi),
        scores: c
            .get("scores")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), f(Some(v)).unwrap_or(0.0)))
                    .collect()
            })
            .unwrap_or_default(),
        cost: (
            money(c.get("cost_usd")).unwrap_or_default(),
            money(c.get("judge_cost_usd")).unwrap_or_default(),
            money(c.get("cost_per_pass_usd")),
        ),
        latency: (u(c, "/latency_ms/p50"), u(c, "/latency_ms/p95")),
        pareto: c.get("pareto").and_then(Value::as_bool) == Some(true),
    }
}

fn comparison(c: &Value) -> Option<Comparison> {
    let label = |side: &Value| {
        let model = s_of(side, "model");
        match opt_s(side, "variant") {
            Some(v) => format!("{v} / {model}"),
            None => model,
        }
    };
    Some(Comparison {
        a: label(c.get("a")?),
        b: label(c.get("b")?),
        a_only: u(c, "/a_only"),
        b_only: u(c, "/b_only"),
        p_value: f(c.get("p_value")),
    })
}

/// `annotation.fields`: an object `{name: field}` or a list of fields with a `name`/`field`.
/// A field's counts are `values` (or `counts`): `{value: {rater: count}}`.
fn fields(v: &Value) -> Vec<Field> {
    let named: Vec<(String, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, f)| (k.clone(), f)).collect(),
        Value::Array(a) => a
            .iter()
            .map(|f| {
                (
                    opt_s(f, "name")
                        .or_else(|| opt_s(f, "field"))
                        .unwrap_or_default(),
                    f,
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    named
        .into_iter()
        .map(|(name, fv)| {
            let counts = fv.get("values").or_else(|| fv.get("counts"));
            let values = counts
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(value, per)| {
                            let per = per
                                .as_object()
                                .map(|p| {
                                    p.iter()
                                        .map(|(r, n)| (r.clone(), n.as_u64().unwrap_or(0)))
                                        .collect()
                                })
                                .unwrap_or_default();
                            (value.clone(), per)
                        })
                        .collect()
                })
                .unwrap_or_default();
            Field {
                name,
                values,
                agreement: f(fv.get("agreement")),
                kappa: f(fv.get("kappa")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_section_and_tolerates_their_absence() {
        let empty = View::from_json(&serde_json::json!({}));
        assert!(empty.cells.is_empty() && empty.fields.is_empty() && empty.by_variant.is_empty());
        let v = View::from_json(&serde_json::json!({
            "job": "j", "complete": true, "rows": {"total": 4, "ok": 3, "error": 1},
            "cost_usd": {"total": 0.5, "by_model": {"m": 0.5}, "by_variant": {"v": 0.25}},
            "models": {"m": {"rows": 4}},
            "eval": {"cells": [{"variant": "v", "model": "m", "pass_rate": 0.75,
                                "pass_rate_ci95": [0.3, 0.95], "pareto": true, "cost_usd": 0.5}],
                     "comparison": {"a": {"model": "m"}, "b": {"variant": "v", "model": "n"},
                                    "a_only": 2, "b_only": 0, "p_value": 0.5}},
            "annotation": {"fields": [{"name": "sentiment", "values": {"positive": {"m": 2, "n": 1}},
                                       "agreement": 0.5, "kappa": 0.2}]}
        }));
        assert_eq!(v.rows, [4, 3, 1, 0, 0]);
        assert_eq!(v.by_model[0].rows, 4);
        assert_eq!(v.by_variant[0].cost, Decimal::new(25, 2));
        assert_eq!(v.cells[0].label(), "v / m");
        assert_eq!(v.cells[0].pass_rate, (0.75, 0.3, 0.95));
        assert_eq!(v.comparison.as_ref().map(|c| c.b.as_str()), Some("v / n"));
        assert_eq!(v.fields[0].raters(), vec!["m", "n"]);
        assert_eq!(v.fields[0].kappa, Some(0.2));
    }
}
