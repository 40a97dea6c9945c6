//! Checks on result lines and `summary.json` that many tests make.

use std::collections::BTreeMap;

use orbatch::mock;
use orbatch::output::{ResultLine, Status, Summary};
use rust_decimal::Decimal;

use super::Mock;

/// Latest line per (id, model).
pub fn latest(lines: &[ResultLine]) -> BTreeMap<(String, String), ResultLine> {
    let mut m = BTreeMap::new();
    for l in lines {
        m.insert((l.id.clone(), l.model.clone()), l.clone());
    }
    m
}

/// Exactly one line per (id, model) in `ids x models`, and nothing else.
pub fn assert_one_line_per_pair(lines: &[ResultLine], ids: &[&str], models: &[&str]) {
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for l in lines {
        *seen.entry((l.id.clone(), l.model.clone())).or_default() += 1;
    }
    let want: BTreeMap<(String, String), usize> = ids
        .iter()
        .flat_map(|id| {
            models
                .iter()
                .map(move |m| ((id.to_string(), m.to_string()), 1))
        })
        .collect();
    assert_eq!(seen, want, "result lines per (id, model)");
}

/// Exactly one line per key (compacted) for ids 1..=n x `models`, each `ok`.
pub fn assert_all_ok_once(lines: &[ResultLine], n: usize, models: &[&str]) {
    let ids: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_one_line_per_pair(lines, &ids, models);
    for l in lines {
        assert_eq!(l.status, Status::Ok, "{l:?}");
    }
}

/// The sum of `cost_usd` over the latest line of every key: the output dir's recorded spend.
pub fn recorded_spend(lines: &[ResultLine]) -> Decimal {
    latest(lines)
        .values()
        .map(|l| l.cost_usd.unwrap_or_default())
        .sum()
}

/// `v`, sorted.
pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Every ok line's cost is the mock's price x the line's tokens, exactly, and is what the mock
/// billed for that generation.
pub fn assert_costs_are_the_mocks(lines: &[ResultLine], mock: &Mock) {
    let charges = mock.charges();
    for l in lines.iter().filter(|l| l.status == Status::Ok) {
        let price = mock::price(&l.model).unwrap();
        let expected = price.cost(l.prompt_tokens.unwrap(), l.completion_tokens.unwrap());
        assert_eq!(l.cost_usd, Some(expected), "cost of {} x {}", l.id, l.model);
        assert_eq!(l.table_cost_usd, Some(expected), "table cost of {}", l.id);
        assert!(!l.cost_mismatch, "{} x {}", l.id, l.model);
        let gen_id = l.generation_id.as_deref().unwrap();
        assert_eq!(charges.get(gen_id), Some(&expected), "billed for {gen_id}");
    }
}

/// summary.json's totals are the sums of the result lines.
pub fn assert_summary_sums(s: &Summary, lines: &[ResultLine]) {
    let sum = |f: &dyn Fn(&ResultLine) -> u64| lines.iter().map(f).sum::<u64>();
    let total: Decimal = lines.iter().filter_map(|l| l.cost_usd).sum();
    let table: Decimal = lines.iter().filter_map(|l| l.table_cost_usd).sum();
    assert_eq!(s.cost_usd.total, total);
    assert_eq!(s.cost_usd.table_total, table);
    let count = |st: Status| lines.iter().filter(|l| l.status == st).count() as u64;
    assert_eq!(s.rows.ok, count(Status::Ok));
    assert_eq!(s.rows.error, count(Status::Error));
    assert_eq!(s.requests.sent, sum(&|l| l.attempts as u64));
    assert_eq!(s.requests.retried, sum(&|l| l.attempts as u64 - 1));
    assert_eq!(
        s.requests.unknown_cost_attempts,
        sum(&|l| l.unknown_cost_attempts as u64)
    );
    assert_eq!(s.tokens.prompt, sum(&|l| l.prompt_tokens.unwrap_or(0)));
    assert_eq!(
        s.tokens.completion,
        sum(&|l| l.completion_tokens.unwrap_or(0))
    );
    let mut by_model: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut by_provider: BTreeMap<String, Decimal> = BTreeMap::new();
    for l in lines {
        let c = l.cost_usd.unwrap_or_default();
        *by_model.entry(l.model.clone()).or_default() += c;
        let p = l.provider.clone().unwrap_or_else(|| "unknown".into());
        *by_provider.entry(p).or_default() += c;
    }
    assert_eq!(s.cost_usd.by_model, by_model);
    assert_eq!(s.cost_usd.by_provider, by_provider);
}

/// The largest number of arrivals in any rolling window of `window_ms` (the mock's rule: an
/// arrival at `t` is in the window of `now` when `now - t < window`).
pub fn max_in_window(at_ms: &[f64], window_ms: f64) -> usize {
    let mut best = 0;
    for (i, &t) in at_ms.iter().enumerate() {
        let n = at_ms[i..]
            .iter()
            .take_while(|&&u| u - t < window_ms)
            .count();
        best = best.max(n);
    }
    best
}

/// No request of `reqs` was refused with a 429, and no rolling window of `window_ms` holds more
/// than `rpm` of their arrivals (the mock's own clock).
pub fn assert_within_rpm(reqs: &[orbatch::mock::RequestRecord], rpm: u32, window_ms: u64) {
    assert!(
        reqs.iter().all(|r| r.outcome == "ok"),
        "429s: {}",
        reqs.iter().filter(|r| r.status == 429).count()
    );
    let at: Vec<f64> = reqs.iter().map(|r| r.at_ms).collect();
    let busiest = max_in_window(&at, window_ms as f64);
    assert!(busiest <= rpm as usize, "{busiest} arrivals in one window");
}
