//! The output files: journal repair and compaction, shard merging, results.csv, summary.json and
//! the summary table.

use std::fs;
use std::path::{Path, PathBuf};

use orbatch::input::{Row, RowBody};
use orbatch::output::csv::write_results_csv;
use orbatch::output::results::{Journal, compact, for_each_latest, key_hash};
use orbatch::output::summary::{SummaryMeta, summarize, write_summary_json};
use orbatch::output::table::render_table_plain;
use orbatch::output::{ErrorKind, ResultLine, RowError, Status};
use rust_decimal::Decimal;
use serde_json::{Value, json};

fn ok(id: &str, model: &str, cost: Option<&str>) -> ResultLine {
    ResultLine {
        id: id.to_string(),
        model: model.to_string(),
        status: Status::Ok,
        output: Some(format!("out {id}")),
        response_model: Some(model.to_string()),
        finish_reason: Some("stop".to_string()),
        generation_id: Some(format!("gen-{id}")),
        provider: Some("OpenAI".to_string()),
        prompt_tokens: Some(10),
        completion_tokens: Some(2),
        reasoning_tokens: Some(0),
        cached_tokens: Some(0),
        cost_usd: cost.map(dec),
        cost_source: None,
        table_cost_usd: cost.map(dec),
        cost_mismatch: false,
        latency_ms: 100,
        attempts: 1,
        unknown_cost_attempts: 0,
        unknown_cost_max_usd: None,
        rate_limited_attempts: 0,
        error: None,
        vars: Default::default(),
        finished_at: None,
        resumable: false,
        cache_hit: false,
        cached_cost_usd: None,
        parsed: None,
        schema_attempts: None,
        cache_ticket: None,
    }
}

fn err(id: &str, model: &str, cost: Option<&str>, kind: ErrorKind, msg: &str) -> ResultLine {
    ResultLine {
        status: Status::Error,
        output: None,
        error: Some(RowError {
            kind,
            status: Some(500),
            message: msg.to_string(),
        }),
        ..ok(id, model, cost)
    }
}

fn jsonl(lines: &[ResultLine]) -> String {
    lines
        .iter()
        .map(|l| serde_json::to_string(l).unwrap() + "\n")
        .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

mod csv_file;
mod journal;
mod summary;
#[path = "../support/mod.rs"]
mod support;
use support::{dec, summary_fields};
