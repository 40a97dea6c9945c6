//! Output dirs written by hand in the shape of the contract: result lines with `variant`,
//! `parsed`, `scores`, `score`, `pass`, `judge_cost_usd`, and a summary.json with
//! `cost_usd.by_variant`, `eval.cells`, `eval.comparison` and `annotation.fields`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

/// The two models of the fixture.
pub const MODELS: [&str; 2] = ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"];
/// The two prompt variants of the fixture.
pub const VARIANTS: [&str; 2] = ["terse", "explained"];
/// A reply that is markup.
pub const XSS_REPLY: &str = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
/// A variable that tries to close the data block.
pub const XSS_VAR: &str = "</script><script>alert(3)</script><!--";
const LABELS: [&str; 3] = ["positive", "negative", "neutral"];

/// A small deterministic hash for the fixture's choices.
fn h(a: usize, b: usize) -> usize {
    (a.wrapping_mul(2654435761) ^ b.wrapping_mul(40503)).wrapping_mul(2246822519) >> 7
}

/// One result line of row `i` for (variant `v`, model `m`).
fn line(i: usize, v: usize, m: usize) -> Value {
    let truth = LABELS[i % 3];
    let wrong = h(i, v * 2 + m).is_multiple_of(5 + 3 * m + v);
    let label = if wrong { LABELS[(i + 1) % 3] } else { truth };
    let failed = h(i, 77 + m).is_multiple_of(97);
    let cost = format!("0.0000{}{}", 2 + m * 5, 1 + v);
    let mut l = json!({
        "id": i.to_string(), "variant": VARIANTS[v], "model": MODELS[m],
        "status": "ok", "output": label, "provider": if m == 0 { "OpenAI" } else { "Anthropic" },
        "prompt_tokens": 40, "completion_tokens": 2, "cost_usd": cost.parse::<f64>().unwrap_or(0.0),
        "cost_source": "response", "latency_ms": 200 + h(i, m) % 900 + 300 * m,
        "attempts": 1, "rate_limited_attempts": usize::from(h(i, 5).is_multiple_of(50)), "error": null,
        "finished_at": format!("2026-12-01T10:{:02}:{:02}Z", (i / 60) % 60, i % 60),
        "vars": {"text": format!("review number {i}"), "label": truth},
        "parsed": {"sentiment": label}, "schema_attempts": 1,
        "scores": {"label": if label == truth { 1.0 } else { 0.0 }},
        "score": if label == truth { 1.0 } else { 0.0 }, "pass": label == truth,
        "judge_cost_usd": 0.0
    });
    if i == 1 && v == 0 && m == 1 {
        l["output"] = json!(XSS_REPLY);
    }
    if i == 2 {
        l["vars"]["text"] = json!(XSS_VAR);
    }
    if failed {
        l["status"] = json!("error");
        l["output"] = Value::Null;
        l["parsed"] = Value::Null;
        l["scores"] = Value::Null;
        l["score"] = Value::Null;
        l["pass"] = json!(false);
        l["error"] = json!({"kind": "provider", "status": 502,
                            "message": "upstream <img src=x onerror=alert(4)> failed"});
    }
    l
}

/// Writes results.jsonl (`rows` rows x 2 variants x 2 models) and its summary.json into `dir`.
pub fn write(dir: &Path, rows: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(dir.join("results.jsonl")).unwrap());
    let mut counts: BTreeMap<(usize, usize), [u64; 3]> = BTreeMap::new();
    let mut values: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let (mut ok, mut error) = (0u64, 0u64);
    for i in 1..=rows {
        for (v, variant) in VARIANTS.iter().enumerate() {
            for (m, model) in MODELS.iter().enumerate() {
                let l = line(i, v, m);
                serde_json::to_writer(&mut out, &l).unwrap();
                out.write_all(b"\n").unwrap();
                let c = counts.entry((v, m)).or_default();
                c[0] += 1;
                c[1] += u64::from(l["pass"] == json!(true));
                if l["status"] == "error" {
                    c[2] += 1;
                    error += 1;
                } else {
                    ok += 1;
                    let label = l["parsed"]["sentiment"].as_str().unwrap_or("").to_string();
                    let rater = format!("{variant} / {model}");
                    *values.entry(label).or_default().entry(rater).or_default() += 1;
                }
            }
        }
    }
    out.flush().unwrap();
    let cells: Vec<Value> = counts
        .iter()
        .map(|(&(v, m), c)| {
            let rate = c[1] as f64 / c[0] as f64;
            json!({"variant": VARIANTS[v], "model": MODELS[m], "results": c[0], "passed": c[1],
                   "errors": c[2], "pass_rate": rate,
                   "pass_rate_ci95": [(rate - 0.05).max(0.0), (rate + 0.05).min(1.0)],
                   "mean_score": rate, "mean_score_ci95": [rate - 0.04, rate + 0.04],
                   "scores": {"label": rate}, "cost_usd": 0.001 * (1 + m * 5 + v) as f64,
                   "judge_cost_usd": 0.0, "cost_per_pass_usd": 0.00001,
                   "latency_ms": {"p50": 500 + 300 * m, "p95": 1000 + 300 * m},
                   "pareto": m == 0 || v == 1})
        })
        .collect();
    let summary = json!({
        "job": "review-sentiment <script>alert(5)</script>", "complete": true,
        "rows": {"total": ok + error, "ok": ok, "error": error, "not_sent": 0},
        "requests": {"sent": ok + error, "retried": 3, "rate_limited": 2, "unknown_cost_attempts": 0},
        "tokens": {"prompt": 0, "completion": 0, "reasoning": 0, "cached": 0},
        "cost_usd": {"total": 0.0123, "table_total": 0.0123, "mismatched_rows": 0, "judge_total": 0.0,
                     "by_model": {MODELS[0]: 0.003, MODELS[1]: 0.0093},
                     "by_provider": {"OpenAI": 0.003, "Anthropic": 0.0093},
                     "by_variant": {"terse": 0.006, "explained": 0.0063}},
        "models": {MODELS[0]: {"rows": rows * 2}, MODELS[1]: {"rows": rows * 2}},
        "errors_by_kind": {"provider": {"count": error, "cost_usd": 0.0}},
        "top_errors": [{"kind": "provider", "message": "upstream <img src=x onerror=alert(4)> failed", "count": error}],
        "latency_ms": {"p50": 700, "p95": 1300, "max": 1500},
        "wall_secs": 61.0, "started_at": "2026-12-01T10:00:00Z",
        "finished_at": format!("2026-12-01T10:{:02}:59Z", (rows / 60).min(59)),
        "eval": {"cells": cells, "comparison": {"a": {"variant": "explained", "model": MODELS[0]},
                 "b": {"variant": "terse", "model": MODELS[0]}, "a_only": 7, "b_only": 2, "p_value": 0.18}},
        "annotation": {"fields": {"sentiment": {"values": values, "agreement": 0.71, "kappa": 0.58}}}
    });
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_vec_pretty(&summary).unwrap(),
    )
    .unwrap();
}
