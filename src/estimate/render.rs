//! Human tables: the estimate, and `orbatch credits`.

use comfy_table::Table;
use rust_decimal::Decimal;
use serde_json::Value;

use super::model::Range;
use super::report::{Report, Usd};
use crate::money::usd;

fn table(header: &[&str]) -> Table {
    crate::output::table::new_table(false, header, &[])
}

fn money(v: Option<Usd>) -> String {
    v.map_or("unknown".into(), |u| usd(u.0))
}

fn tokens(r: &Range<Option<u64>>) -> String {
    let n = |v: Option<u64>| v.map_or("?".into(), |v| v.to_string());
    format!("{} / {} / {}", n(r.low), n(r.expected), n(r.high))
}

/// The widest the estimate is drawn when the terminal's width is unknown.
const WIDTH: u16 = 80;

/// The estimate as a table plus notes (stdout): the costs in a table that fits 80 columns
/// (only the model column wraps, never a number), each model's token counts below it.
pub fn render_estimate(r: &Report) -> String {
    let mut t = table(&["model", "cost low", "cost expected", "cost high"]);
    let mut details = String::new();
    for m in &r.models {
        let prompt = if m.prompt_tokens_expected != m.prompt_tokens && r.pilot.is_some() {
            format!("{} (local {})", m.prompt_tokens_expected, m.prompt_tokens)
        } else {
            m.prompt_tokens.to_string()
        };
        let costs = if m.price_known {
            [
                money(m.cost_usd.low),
                money(m.cost_usd.expected),
                money(m.cost_usd.high),
            ]
        } else {
            [
                "price unknown".into(),
                "price unknown".into(),
                "price unknown".into(),
            ]
        };
        let [low, expected, high] = costs;
        t.add_row([m.model.clone(), low, expected, high]);
        let exact = if m.exact_tokens {
            "exact"
        } else {
            "approximation"
        };
        details.push_str(&format!(
            "{}: {} requests\n  prompt tokens: {prompt} ({}, {exact})\n  completion tokens low / expected / high: {} ({})\n",
            m.model,
            m.rows,
            m.tokenizer,
            tokens(&m.completion_tokens),
            m.completion_basis
        ));
        if let Some(i) = &m.interval {
            details.push_str(&format!(
                "  90% interval: {} - {}\n",
                usd(i.low.0),
                usd(i.high.0)
            ));
        }
    }
    let c = &r.total.cost_usd;
    t.add_row([
        "TOTAL".into(),
        money(c.low),
        money(c.expected),
        money(c.high),
    ]);
    if let Some(i) = &r.total.interval {
        details.push_str(&format!(
            "TOTAL 90% interval: {} - {}\n",
            usd(i.low.0),
            usd(i.high.0)
        ));
    }
    fit(&mut t);
    let mut out = format!("{} rows, {} requests\n{t}\n{details}", r.rows, r.requests);
    out.push_str(&match r.minutes_at_limits {
        Some(m) => format!(
            "time at the job's limits: {}\n",
            crate::output::table::duration(m * 60.0)
        ),
        None => "time at the job's limits: unbounded (no rpm/tpm limit)\n".into(),
    });
    out.push_str(&match (r.credit, r.credit_remaining_usd) {
        (_, Some(left)) => format!("key credit remaining: {}\n", usd(left.0)),
        ("unlimited", None) => "key credit remaining: unlimited\n".into(),
        _ => "key credit remaining: unknown\n".into(),
    });
    out.push_str(&super::batch::render(r));
    if let Some(p) = &r.pilot {
        out.push_str(&format!(
            "pilot spend (real): {} for {} requests\n",
            usd(p.spent_usd.0),
            p.requests
        ));
    }
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    for w in &r.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

/// Fits `t` to the terminal, or to [`WIDTH`] columns when its width is unknown: the money
/// columns keep their content width (a number is never split), the model column wraps.
fn fit(t: &mut Table) {
    use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement};
    t.set_content_arrangement(ContentArrangement::Dynamic);
    if t.width().is_none() {
        t.set_width(WIDTH);
    }
    for i in 1..4 {
        if let Some(c) = t.column_mut(i) {
            c.set_constraint(ColumnConstraint::ContentWidth);
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// A JSON number or string as money; `None` for null or anything else.
fn amount(v: Option<&Value>) -> Option<Decimal> {
    v.filter(|v| !v.is_null())
        .and_then(|v| crate::money::parse(&v.to_string()))
}

/// The `credits` table: `GET /key` (null limits shown as "unlimited"/"-"), and `GET /credits`
/// when it was fetched with a management key.
pub fn render_credits(key: &Value, credits: Option<&Value>) -> String {
    let text = |f: &str, none: &str| match key.get(f) {
        None | Some(Value::Null) => none.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let cash = |f: &str, none: &str| amount(key.get(f)).map_or(none.to_string(), usd);
    let limit = amount(key.get("limit"));
    let mut t = table(&["GET /key", ""]);
    t.add_row(["label".to_string(), text("label", "-")]);
    t.add_row(["usage".to_string(), cash("usage", "-")]);
    t.add_row(["limit".to_string(), cash("limit", "unlimited")]);
    t.add_row([
        "limit_remaining".to_string(),
        cash(
            "limit_remaining",
            if limit.is_none() { "unlimited" } else { "-" },
        ),
    ]);
    t.add_row([
        "limit_reset".to_string(),
        text("limit_reset", if limit.is_none() { "-" } else { "never" }),
    ]);
    t.add_row(["usage_daily".to_string(), cash("usage_daily", "-")]);
    t.add_row(["usage_weekly".to_string(), cash("usage_weekly", "-")]);
    t.add_row(["usage_monthly".to_string(), cash("usage_monthly", "-")]);
    t.add_row(["is_free_tier".to_string(), text("is_free_tier", "-")]);
    let mut out = t.to_string();
    if let Some(c) = credits {
        let total = amount(c.get("total_credits"));
        let used = amount(c.get("total_usage"));
        let mut t = table(&["GET /credits (account)", ""]);
        let show = |v: Option<Decimal>| v.map_or("-".to_string(), usd);
        t.add_row(["total_credits".to_string(), show(total)]);
        t.add_row(["total_usage".to_string(), show(used)]);
        t.add_row([
            "remaining".to_string(),
            show(total.zip(used).map(|(a, b)| a - b)),
        ]);
        out.push('\n');
        out.push_str(&t.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credits_with_and_without_limits() {
        let open = render_credits(
            &json!({"label": "k", "usage": 0.5, "limit": null, "limit_remaining": null,
                    "limit_reset": null, "usage_daily": 0.1, "usage_weekly": 0.2,
                    "usage_monthly": 0.3, "is_free_tier": false}),
            None,
        );
        assert!(open.contains("unlimited"), "{open}");
        assert!(open.contains("$0.5"), "{open}");
        assert!(!open.contains("GET /credits"));
        let capped = render_credits(
            &json!({"label": "k", "usage": 1, "limit": 10, "limit_remaining": 9,
                    "limit_reset": "monthly"}),
            Some(&json!({"total_credits": 100.5, "total_usage": 25.75})),
        );
        assert!(capped.contains("$9"), "{capped}");
        assert!(capped.contains("monthly"));
        assert!(capped.contains("$74.75"), "{capped}");
    }
}
