//! Batch mode (`--mode batch`) against the mock's Batch API over 127.0.0.1: chunking, the
//! record of accepted batches and its resume after `kill -9`, the exact cost split, failed
//! and expired items, the budget at batch prices, Ctrl-C while polling, and `estimate`'s
//! live vs batch quote.

mod costs;
mod estimate;
mod faults;
mod resume;
#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use orbatch::mock::{BatchMockConfig, MockConfig};
use orbatch::output::ResultLine;
use rust_decimal::Decimal;

use support::*;

/// A second model of the mock, without a `:batch` variant.
pub const LLAMA: &str = "meta-llama/llama-3.3-70b-instruct";

/// A mock whose batches finish after `ms`, with `more` batch settings.
pub fn batch_mock(ms: u64, more: impl FnOnce(&mut BatchMockConfig)) -> MockConfig {
    let mut batch = BatchMockConfig {
        batch_ms: ms,
        ..Default::default()
    };
    more(&mut batch);
    MockConfig {
        batch,
        ..Default::default()
    }
}

/// Writes `job.toml` in batch mode for `models`, with `max_requests` and fast polling.
pub fn batch_job(s: &Scratch, models: &[&str], max_requests: usize, extra: &str) {
    let models: Vec<String> = models.iter().map(|m| format!("{m:?}")).collect();
    s.create(
        "job.toml",
        &format!(
            "input = \"in.csv\"\noutput_dir = \"out\"\n[request]\nmodels = [{}]\nprompt = \"Q: {{{{ text }}}}\"\nmax_tokens = 8\nmode = \"batch\"\n[batch]\nmax_requests = {max_requests}\npoll_min_secs = 0.05\npoll_max_secs = 0.2\n{extra}",
            models.join(", ")
        ),
    );
}

/// The latest line of each key.
pub fn latest_lines(s: &Scratch) -> BTreeMap<(String, String), ResultLine> {
    latest(&s.lines())
}

/// The `submitted` entries of batches.jsonl.
pub fn submitted(s: &Scratch) -> Vec<serde_json::Value> {
    std::fs::read_to_string(s.out().join("batches.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "submitted")
        .collect()
}

/// The sum of the latest lines' costs.
pub fn rows_sum(s: &Scratch) -> Decimal {
    latest_lines(s).values().filter_map(|l| l.cost_usd).sum()
}
