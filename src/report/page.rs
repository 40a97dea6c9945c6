//! The page: what the template shows, formatted (money, rates, counts), and the rendering
//! through minijinja with HTML auto-escaping. Only the charts (escaped by plotters), the
//! constant CSS and JS, and the row data (JSON escaped for a `<script>` block) are passed as
//! safe strings; every other value from the data or a model reply is escaped.

use std::collections::BTreeMap;

use minijinja::{Environment, Value, context};
use rust_decimal::Decimal;
use serde::Serialize;

use super::charts::decimal_f64;
use super::rows::Table;
use super::scan::Scan;
use super::view::{Field, Group, View};

const TEMPLATE: &str = include_str!("assets/report.html");
const CSS: &str = include_str!("assets/report.css");
const JS: &str = include_str!("assets/report.js");

/// One figure of the job section.
#[derive(Serialize)]
struct Tile {
    label: String,
    value: String,
    warn: bool,
}

#[derive(Serialize)]
struct GroupRow {
    name: String,
    cost: String,
    rows: u64,
    per_1k: String,
}

#[derive(Serialize)]
struct CostGroup {
    by: &'static str,
    rows: Vec<GroupRow>,
}

#[derive(Serialize)]
struct CellRow {
    variant: String,
    model: String,
    label: String,
    pass_rate: String,
    mean_score: String,
    results: u64,
    errors: u64,
    cost: String,
    per_pass: String,
    p50: u64,
    pareto: bool,
    checks: Vec<String>,
}

#[derive(Serialize)]
struct FieldRow {
    name: String,
    agreement: String,
    kappa: String,
}

#[derive(Serialize)]
struct ErrorRow {
    kind: String,
    count: u64,
    cost: String,
    message: String,
}

/// Everything the template shows (all text escaped by the template).
#[derive(Serialize)]
struct Report {
    job: String,
    generated_at: String,
    bad_lines: u64,
    tiles: Vec<Tile>,
    cost_groups: Vec<CostGroup>,
    cells: Vec<CellRow>,
    checks: Vec<String>,
    comparison: Option<String>,
    fields: Vec<FieldRow>,
    errors: Vec<ErrorRow>,
    messages: Vec<ErrorRow>,
    has_rows: bool,
    rows_note: String,
}

/// What the page is built from.
pub struct Parts<'a> {
    /// The summary.
    pub view: &'a View,
    /// The first pass's aggregates.
    pub scan: &'a Scan,
    /// The rows table.
    pub table: &'a Table,
    /// The budget, when known.
    pub budget: Option<Decimal>,
    /// Charts by name (SVG).
    pub charts: BTreeMap<String, String>,
}

fn usd(d: Decimal) -> String {
    crate::money::usd(d)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn tiles(v: &View, budget: Option<Decimal>) -> Vec<Tile> {
    let t = |label: &str, value: String, warn: bool| Tile {
        label: label.to_string(),
        value,
        warn,
    };
    let [total, ok, error, not_sent, unfinished] = v.rows;
    let [sent, retried, limited] = v.requests;
    let mut out = vec![
        t("results", total.to_string(), false),
        t("ok", ok.to_string(), false),
        t("error", error.to_string(), error > 0),
        t("not sent", not_sent.to_string(), not_sent > 0),
        t(
            "complete",
            if v.complete { "yes" } else { "no" }.into(),
            !v.complete,
        ),
    ];
    if unfinished > 0 {
        out.push(t("stopped mid-way", unfinished.to_string(), true));
    }
    let spend = match budget {
        Some(b) => format!("{} of {}", usd(v.cost_total), usd(b)),
        None => usd(v.cost_total),
    };
    out.push(t("spend", spend, budget.is_some_and(|b| v.cost_total >= b)));
    if let Some(j) = v.judge_total {
        out.push(t("of it, judge", usd(j), false));
    }
    out.push(t("wall time", format!("{:.1} s", v.wall_secs), false));
    out.push(t("requests", sent.to_string(), false));
    out.push(t("retries", retried.to_string(), false));
    out.push(t("429s", limited.to_string(), limited > 0));
    out
}

fn group_rows(groups: &[Group]) -> Vec<GroupRow> {
    groups
        .iter()
        .map(|g| GroupRow {
            name: g.name.clone(),
            cost: usd(g.cost),
            rows: g.rows,
            per_1k: if g.rows == 0 {
                "-".into()
            } else {
                usd(g.cost * Decimal::from(1000) / Decimal::from(g.rows))
            },
        })
        .collect()
}

/// The cost groups shown: model, provider, variant (each when it has entries).
pub fn cost_groups(v: &View) -> Vec<(&'static str, &[Group])> {
    [
        ("model", &v.by_model),
        ("provider", &v.by_provider),
        ("variant", &v.by_variant),
    ]
    .into_iter()
    .filter(|(_, g)| !g.is_empty())
    .map(|(by, g)| (by, g.as_slice()))
    .collect()
}

fn cells(v: &View) -> (Vec<CellRow>, Vec<String>) {
    let mut checks: Vec<String> = Vec::new();
    for c in &v.cells {
        for (k, _) in &c.scores {
            if !checks.contains(k) {
                checks.push(k.clone());
            }
        }
    }
    let rows = v
        .cells
        .iter()
        .map(|c| CellRow {
            variant: c.variant.clone().unwrap_or_default(),
            model: c.model.clone(),
            label: c.label(),
            pass_rate: format!(
                "{} [{} - {}]",
                pct(c.pass_rate.0),
                pct(c.pass_rate.1),
                pct(c.pass_rate.2)
            ),
            mean_score: format!("{:.3}", c.mean_score.0),
            results: c.counts[0],
            errors: c.counts[2],
            cost: usd(c.cost.0 + c.cost.1),
            per_pass: c.cost.2.map_or("-".into(), usd),
            p50: c.latency.0,
            pareto: c.pareto,
            checks: checks
                .iter()
                .map(|k| {
                    c.scores
                        .iter()
                        .find(|(n, _)| n == k)
                        .map_or("-".into(), |(_, s)| pct(*s))
                })
                .collect(),
        })
        .collect();
    (rows, checks)
}

fn field_row(f: &Field) -> FieldRow {
    let num = |x: Option<f64>, fmt: fn(f64) -> String| x.map_or("-".into(), fmt);
    FieldRow {
        name: f.name.clone(),
        agreement: num(f.agreement, pct),
        kappa: num(f.kappa, |k| format!("{k:.3}")),
    }
}

fn report(p: &Parts<'_>) -> Report {
    let v = p.view;
    let (cells, checks) = cells(v);
    let comparison = v.comparison.as_ref().map(|c| {
        let p_value = c.p_value.map_or("-".into(), |p| format!("{p:.4}"));
        format!(
            "{} vs {} on the rows both answered: {} rows only A passed, {} only B passed; McNemar exact p = {}.",
            c.a, c.b, c.a_only, c.b_only, p_value
        )
    });
    Report {
        job: v.job.clone(),
        generated_at: crate::output::summary::now_rfc3339(),
        bad_lines: p.scan.bad_lines,
        tiles: tiles(v, p.budget),
        cost_groups: cost_groups(v)
            .into_iter()
            .map(|(by, g)| CostGroup {
                by,
                rows: group_rows(g),
            })
            .collect(),
        cells,
        checks,
        comparison,
        fields: v.fields.iter().map(field_row).collect(),
        errors: v
            .errors_by_kind
            .iter()
            .map(|(k, n, c)| ErrorRow {
                kind: k.clone(),
                count: *n,
                cost: usd(*c),
                message: String::new(),
            })
            .collect(),
        messages: v
            .top_errors
            .iter()
            .map(|(k, m, n)| ErrorRow {
                kind: k.clone(),
                count: *n,
                cost: String::new(),
                message: m.clone(),
            })
            .collect(),
        has_rows: !p.table.rows.is_empty(),
        rows_note: p.table.note.clone(),
    }
}

/// JSON that is safe inside `<script type="application/json">`: no `<`, `>` or `&` (so no
/// `</script>` or `<!--`), and no U+2028/2029.
pub fn script_json<T: Serialize>(value: &T) -> serde_json::Result<String> {
    let text = serde_json::to_string(value)?;
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Renders the page.
pub fn render(p: &Parts<'_>) -> Result<String, String> {
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE)
        .map_err(|e| e.to_string())?;
    let svg: BTreeMap<&str, Value> = p
        .charts
        .iter()
        .map(|(k, s)| (k.as_str(), Value::from_safe_string(s.clone())))
        .collect();
    let rows_json = script_json(p.table).map_err(|e| e.to_string())?;
    let nonce = blake3::hash(rows_json.as_bytes()).to_hex()[..24].to_string()
        + &format!("{:x}", rand::random::<u64>());
    let tmpl = env.get_template("report.html").map_err(|e| e.to_string())?;
    tmpl.render(context! {
        r => Value::from(minijinja::value::Serde(report(p))),
        svg => svg,
        css => Value::from_safe_string(CSS.to_string()),
        js => Value::from_safe_string(JS.to_string()),
        rows_json => Value::from_safe_string(rows_json),
        nonce => nonce,
    })
    .map_err(|e| e.to_string())
}

/// Decimal to f64 for the charts.
pub fn f(d: Decimal) -> f64 {
    decimal_f64(d)
}
