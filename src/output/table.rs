//! The human summary printed at the end of `run` and by `orbatch summary`: a few header lines,
//! cost by model and by provider, the total, and the failures (comfy-table).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Attribute, Cell, CellAlignment, ContentArrangement, Table};
use rust_decimal::Decimal;

use super::{GroupTotals, Summary, truncate_chars};
use crate::money::usd;

/// Characters of an error message shown in the table.
const MESSAGE_CHARS: usize = 80;

/// Renders the summary for a terminal: styled and fitted to its width when stdout is a TTY,
/// plain otherwise.
pub fn render_table(s: &Summary) -> String {
    render(s, false)
}

/// Renders the summary with no styling and no width fitting (stable, for files and tests).
pub fn render_table_plain(s: &Summary) -> String {
    render(s, true)
}

fn render(s: &Summary, plain: bool) -> String {
    let mut out = header(s);
    let models = groups_or_costs(&s.models, &s.cost_usd.by_model);
    let providers = groups_or_costs(&s.providers, &s.cost_usd.by_provider);
    let _ = writeln!(out, "\n{}\n", group_table("model", &models, plain));
    let _ = writeln!(out, "{}\n", group_table("provider", &providers, plain));
    out.push_str(&cost_lines(s));
    if !s.errors_by_kind.is_empty() {
        let mut t = new_table(plain, &["failure", "rows", "cost"], &[1, 2]);
        for (kind, k) in &s.errors_by_kind {
            t.add_row(vec![kind.clone(), k.count.to_string(), usd(k.cost_usd)]);
        }
        let _ = writeln!(out, "\n{t}");
    }
    if !s.top_errors.is_empty() {
        let mut t = new_table(plain, &["kind", "rows", "top error messages"], &[1]);
        for e in &s.top_errors {
            let message = e.message.replace(['\n', '\r', '\t'], " ");
            t.add_row(vec![
                e.kind.as_str().to_string(),
                e.count.to_string(),
                truncate_chars(&message, MESSAGE_CHARS),
            ]);
        }
        let _ = writeln!(out, "\n{t}");
    }
    out
}

/// The lines above the tables: job and state, rows, requests, time.
fn header(s: &Summary) -> String {
    let state = if s.complete {
        "complete"
    } else {
        "stopped early"
    };
    let r = &s.rows;
    let q = &s.requests;
    let mut out = format!("job {}: {state}\n", s.job);
    let _ = writeln!(
        out,
        "rows: {} ok, {} error, {} not sent (of {})",
        r.ok, r.error, r.not_sent, r.total
    );
    let _ = writeln!(
        out,
        "requests: {} sent, {} retried, {} rate-limited (429)",
        q.sent, q.retried, q.rate_limited
    );
    let rate = if s.wall_secs > 0.0 {
        format!("{:.1} req/min", q.sent as f64 * 60.0 / s.wall_secs)
    } else {
        "- req/min".to_string()
    };
    let l = &s.latency_ms;
    let _ = writeln!(
        out,
        "time: {} wall, {rate}, latency p50 {} ms, p95 {} ms, max {} ms",
        duration(s.wall_secs),
        l.p50,
        l.p95,
        l.max
    );
    out
}

/// The total cost line, and the notes that qualify it.
fn cost_lines(s: &Summary) -> String {
    let c = &s.cost_usd;
    let mut out = format!("total cost: {}", usd(c.total));
    if c.table_total != Decimal::ZERO || c.mismatched_rows > 0 {
        let _ = write!(out, " (price table: {}", usd(c.table_total));
        if c.mismatched_rows > 0 {
            let n = plural(c.mismatched_rows, "row differs", "rows differ");
            let _ = write!(out, "; {n} by more than 1%");
        }
        out.push(')');
    }
    out.push('\n');
    if c.unknown_rows > 0 {
        let n = plural(c.unknown_rows, "row", "rows");
        let _ = writeln!(out, "cost unknown for {n} (not in the total)");
    }
    if s.cache.hits > 0 {
        let n = plural(s.cache.hits, "row", "rows");
        let _ = writeln!(
            out,
            "cache: {n} answered from the response cache (nothing sent), saved {}",
            usd(s.cache.saved_usd)
        );
    }
    if s.requests.unknown_cost_attempts > 0 {
        let n = plural(s.requests.unknown_cost_attempts, "attempt", "attempts");
        let _ = writeln!(out, "{n} may have been billed at an unknown cost");
    }
    out
}

/// A cost table by model or provider, with a total row.
fn group_table(name: &str, groups: &BTreeMap<String, GroupTotals>, plain: bool) -> Table {
    let header = [name, "rows", "cost", "tokens in", "tokens out"];
    let mut t = new_table(plain, &header, &[1, 2, 3, 4]);
    let mut total = GroupTotals::default();
    for (key, g) in groups {
        t.add_row(group_row(key, g));
        total.rows += g.rows;
        total.cost_usd += g.cost_usd;
        total.unknown_cost_rows += g.unknown_cost_rows;
        total.prompt_tokens += g.prompt_tokens;
        total.completion_tokens += g.completion_tokens;
    }
    if groups.len() > 1 {
        t.add_row(group_row("total", &total));
    }
    t
}

fn group_row(name: &str, g: &GroupTotals) -> Vec<String> {
    let mut cost = usd(g.cost_usd);
    if g.unknown_cost_rows > 0 {
        let _ = write!(cost, " + {} unknown", g.unknown_cost_rows);
    }
    vec![
        name.to_string(),
        g.rows.to_string(),
        cost,
        g.prompt_tokens.to_string(),
        g.completion_tokens.to_string(),
    ]
}

/// The detailed groups, or (for a summary.json written without them) the cost totals alone.
fn groups_or_costs(
    groups: &BTreeMap<String, GroupTotals>,
    costs: &BTreeMap<String, Decimal>,
) -> BTreeMap<String, GroupTotals> {
    if !groups.is_empty() || costs.is_empty() {
        return groups.clone();
    }
    costs
        .iter()
        .map(|(k, &cost_usd)| {
            let g = GroupTotals {
                cost_usd,
                ..GroupTotals::default()
            };
            (k.clone(), g)
        })
        .collect()
}

/// A table with a header row; the columns in `right` are right-aligned (numbers). `plain`
/// never styles (for tests); otherwise styling and wrapping follow the terminal. Every human
/// table of orbatch (summary, estimate, credits, models) is built here.
pub(crate) fn new_table(plain: bool, header: &[&str], right: &[usize]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    if plain {
        t.force_no_tty();
    } else {
        t.set_content_arrangement(ContentArrangement::Dynamic);
    }
    let bold = !plain && crate::console::color_allowed();
    t.set_header(header.iter().map(|h| {
        let cell = Cell::new(h);
        if bold {
            cell.add_attribute(Attribute::Bold)
        } else {
            cell
        }
    }));
    for &i in right {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// `1 row`, `2 rows`.
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `12.3s`, `1m 41s`, `2h 03m 10s`.
fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".to_string();
    }
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let total = secs.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else {
        format!("{m}m {s:02}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(0.0), "0.0s");
        assert_eq!(duration(12.34), "12.3s");
        assert_eq!(duration(101.2), "1m 41s");
        assert_eq!(duration(7390.0), "2h 03m 10s");
        assert_eq!(duration(f64::NAN), "-");
    }
}
