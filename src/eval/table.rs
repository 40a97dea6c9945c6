//! The leaderboard printed first by `run` and `score`: variant, model, pass rate [95%
//! interval], mean score, cost, $ per pass, p50 latency; then McNemar's comparison.

use std::fmt::Write as _;

use super::cells::EvalSummary;
use crate::money::usd;

/// The leaderboard as text (`plain`: no styling, for files and tests).
pub fn leaderboard(eval: &EvalSummary, plain: bool) -> String {
    let header = [
        "variant",
        "model",
        "pass rate [95% CI]",
        "mean score",
        "cost",
        "$ per pass",
        "p50 latency",
    ];
    let mut t = crate::output::table::new_table(plain, &header, &[2, 3, 4, 5, 6]);
    for c in &eval.cells {
        let mut model = c.model.clone();
        if c.pareto && eval.cells.len() > 1 {
            model.push_str(" *");
        }
        t.add_row(vec![
            c.variant.clone().unwrap_or_else(|| "-".into()),
            model,
            format!(
                "{:.1}% [{:.1}, {:.1}] ({}/{})",
                c.pass_rate * 100.0,
                c.pass_rate_ci95[0] * 100.0,
                c.pass_rate_ci95[1] * 100.0,
                c.passed,
                c.results
            ),
            c.mean_score.map_or("-".into(), |m| format!("{m:.3}")),
            usd(c.cost_usd),
            c.cost_per_pass_usd.map_or("-".into(), usd),
            format!("{} ms", c.latency_ms.p50),
        ]);
    }
    let mut out = format!("leaderboard (best first):\n{t}\n");
    if eval.cells.len() > 1 {
        out.push_str("* on the Pareto front of pass rate against cost\n");
    }
    if let Some(c) = &eval.comparison {
        let name = |n: &super::cells::CellName| match &n.variant {
            Some(v) => format!("{v} x {}", n.model),
            None => n.model.clone(),
        };
        let _ = writeln!(
            out,
            "{} vs {}: on {} rows both answered, {} passed only by the first, {} only by the second; McNemar exact p = {:.4}",
            name(&c.a),
            name(&c.b),
            c.rows,
            c.a_only,
            c.b_only,
            c.p_value
        );
    }
    for c in eval.below_min() {
        let _ = writeln!(
            out,
            "below min_pass_rate {}: {} x {} ({:.1}%)",
            eval.min_pass_rate.unwrap_or_default(),
            c.variant.as_deref().unwrap_or("-"),
            c.model,
            c.pass_rate * 100.0
        );
    }
    out
}
