//! The human summary printed at the end of `run` and by `orbatch summary`: a few header lines,
//! cost by model, by prompt variant (when the job has variants) and by provider, the total, and the failures (comfy-table).

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
    let mut out = s.eval.as_ref().map_or(String::new(), |e| {
        crate::eval::table::leaderboard(e, plain) + "\n"
    });
    out.push_str(&header(s));
    let models = groups_or_costs(&s.models, &s.cost_usd.by_model);
    let providers = groups_or_costs(&s.providers, &s.cost_usd.by_provider);
    let _ = writeln!(out, "\n{}\n", group_table("model", &models, plain));
    if !s.variants.is_empty() {
        let variants = groups_or_costs(&s.variants, &s.cost_usd.by_variant);
        let _ = writeln!(out, "{}\n", group_table("variant", &variants, plain));
    }
    let _ = writeln!(out, "{}\n", group_table("provider", &providers, plain));
    if let Some(a) = &s.annotation {
        let _ = writeln!(out, "{}\n", agreement_table(a, plain));
    }
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

/// Per annotated field: how often every rater gave the same answer, and kappa.
fn agreement_table(a: &crate::annotation::AnnotationSummary, plain: bool) -> String {
    let mut t = new_table(
        plain,
        &["field", "rows", "agreement", "kappa", "method"],
        &[1, 2, 3],
    );
    for (name, f) in &a.fields {
        let share = |x: Option<f64>| x.map_or("-".into(), |x| format!("{:.1}%", x * 100.0));
        t.add_row(vec![
            name.clone(),
            f.rows.to_string(),
            share(f.agreement),
            f.kappa.map_or("-".into(), |k| format!("{k:.3}")),
            f.kappa_method.clone(),
        ]);
    }
    format!(
        "agreement between {} raters ({} rows disagree: disagreements.csv):\n{t}",
        a.raters.len(),
        a.disagreements
    )
}

/// The lines above the tables: job and state, this run, then the output dir's totals.
fn header(s: &Summary) -> String {
    let r = &s.rows;
    let q = &s.requests;
    let mut out = format!("job {}: {}\n", s.job, state(s));
    let l = &s.latency_ms;
    let latency = format!(
        "latency p50 {} ms, p95 {} ms, max {} ms",
        l.p50, l.p95, l.max
    );
    let totals = if let Some(t) = &s.this_run {
        let rate = t
            .requests_per_min
            .map_or("-".to_string(), |r| format!("{r:.1}"));
        let _ = writeln!(
            out,
            "this run: {} sent, {} retried, {} wall, {rate} req/min",
            plural(t.sent, "request", "requests"),
            t.retried,
            duration(t.wall_secs),
        );
        "output dir totals (every run)"
    } else {
        let _ = writeln!(out, "time: {} span of the results", duration(s.wall_secs));
        "totals"
    };
    let _ = writeln!(out, "{totals}:");
    let mut rows = format!(
        "  rows: {} ok, {} error, {} not sent (of {})",
        r.ok, r.error, r.not_sent, r.total
    );
    if r.unfinished > 0 {
        let _ = write!(
            rows,
            ", {} stopped in flight (a re-run sends them)",
            r.unfinished
        );
    }
    if r.truncated > 0 {
        let _ = write!(rows, "; {} cut at max_tokens", r.truncated);
    }
    let _ = writeln!(out, "{rows}");
    let _ = writeln!(
        out,
        "  requests: {} sent, {} retried, {} rate-limited (429); {latency}",
        q.sent, q.retried, q.rate_limited
    );
    out
}

/// `complete`, `finished, N failed` or `stopped early`.
fn state(s: &Summary) -> String {
    match (s.complete, s.rows.error) {
        (true, 0) => "complete".to_string(),
        (true, n) => format!("finished, {n} failed"),
        (false, _) => "stopped early".to_string(),
    }
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
    if c.judge_total > Decimal::ZERO {
        let _ = writeln!(
            out,
            "judge calls: {} (in the total; the tables above are completions)",
            usd(c.judge_total)
        );
    }
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

/// `12.3 s`, `2 min 30 s`, `2 h 03 min 10 s`.
pub(crate) fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".to_string();
    }
    if secs < 60.0 {
        return format!("{secs:.1} s");
    }
    let total = secs.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h} h {m:02} min {s:02} s")
    } else {
        format!("{m} min {s:02} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headline_says_finished_with_failures_not_complete() {
        let meta = crate::output::summary::SummaryMeta {
            job: "j".into(),
            ..Default::default()
        };
        let mut s = crate::output::summary::summarize(&[], &meta).unwrap();
        assert!(header(&s).starts_with("job j: complete\n"));
        s.rows.error = 3;
        assert!(header(&s).starts_with("job j: finished, 3 failed\n"));
        s.complete = false;
        assert!(header(&s).starts_with("job j: stopped early\n"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0.0), "0.0 s");
        assert_eq!(duration(12.34), "12.3 s");
        assert_eq!(duration(150.0), "2 min 30 s");
        assert_eq!(duration(101.2), "1 min 41 s");
        assert_eq!(duration(7390.0), "2 h 03 min 10 s");
        assert_eq!(duration(f64::NAN), "-");
    }
}
