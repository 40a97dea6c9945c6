//! Chunks and the exact cost split.

use orbatch::output::{CostSource, Status};
use rust_decimal::Decimal;

use crate::support::*;
use crate::*;

#[tokio::test]
async fn rows_x_two_models_make_exactly_the_chunks_and_rows_sum_to_the_batch_charges() {
    let srv = mock(batch_mock(300, |_| {})).await;
    let s = Scratch::with_rows(1200);
    batch_job(&s, &[MINI, LLAMA], 500, "");
    let out = Orb::run_job(&s, &srv).output().await;
    out.assert_code(0);
    let ledger = srv.batch_ledger();
    assert_eq!(
        ledger.len(),
        6,
        "1,200 rows x 2 models in chunks of 500: 3 + 3"
    );
    let sizes: Vec<usize> = ledger.iter().map(|b| b.requests).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 2400);
    assert!(sizes.iter().all(|&n| n <= 500));
    assert!(
        srv.requests().is_empty(),
        "nothing went through chat completions"
    );
    let lines = s.lines();
    assert_eq!(lines.len(), 2400, "one line per key, written once");
    assert_one_line_per_pair(&lines, &ids(1200), &[MINI, LLAMA]);
    assert!(lines.iter().all(|l| l.status == Status::Ok));
    assert!(
        lines
            .iter()
            .all(|l| l.cost_source == Some(CostSource::Batch))
    );
    let charged: Decimal = ledger.iter().map(|b| b.cost).sum();
    assert_eq!(
        rows_sum(&s),
        charged,
        "rows sum exactly to the batch charges"
    );
    // Per batch, too: each batch's rows sum to its charge.
    for b in &ledger {
        let rows: Decimal = submitted(&s)
            .iter()
            .find(|e| e["batch_id"] == b.id.as_str())
            .map(|e| {
                let ids: Vec<&str> = e["custom_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|c| c.as_str())
                    .collect();
                lines
                    .iter()
                    .filter(|l| ids.contains(&custom_id(&l.id, &l.model).as_str()))
                    .filter_map(|l| l.cost_usd)
                    .sum()
            })
            .unwrap();
        assert_eq!(rows, b.cost, "batch {}", b.id);
    }
    let summary = s.summary();
    assert_eq!(
        summary["cost_usd"]["total"]
            .to_string()
            .parse::<Decimal>()
            .unwrap(),
        charged
    );
    assert!(out.stderr.contains("completed, "), "{}", out.stderr);
}

#[tokio::test]
async fn own_item_costs_and_paged_results_and_the_beta_path() {
    let srv = mock(batch_mock(200, |b| {
        b.batch_item_cost = true;
        b.batch_page_size = Some(7);
    }))
    .await;
    let s = Scratch::with_rows(30);
    batch_job(
        &s,
        &[MINI],
        5000,
        "path = \"/api/beta/batches\"\nmodel_suffix = \":batch\"",
    );
    Orb::run_job(&s, &srv).output().await.assert_code(0);
    let ledger = srv.batch_ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].model, format!("{MINI}:batch"));
    assert_eq!(s.lines().len(), 30, "every page read");
    assert_eq!(rows_sum(&s), ledger[0].cost);
}

/// The ids 1..=n as strings.
pub fn ids(n: usize) -> Vec<&'static str> {
    (1..=n)
        .map(|i| &*Box::leak(i.to_string().into_boxed_str()))
        .collect()
}

/// The custom_id orbatch sends for (id, model) with no variant.
pub fn custom_id(id: &str, model: &str) -> String {
    orbatch::transport::batch::id::encode(&orbatch::output::key::ResultKey::new(id, model))
}

#[tokio::test]
async fn the_cache_is_consulted_before_chunks_and_batch_answers_are_cached() {
    let srv = mock(batch_mock(100, |_| {})).await;
    let s = Scratch::with_rows(25);
    batch_job(&s, &[MINI], 5000, "");
    Orb::run_job(&s, &srv).output().await.assert_code(0);
    assert_eq!(srv.batch_ledger().len(), 1);
    // The same job into another output dir: every answer is a hit, no batch is built.
    Orb::run_job(&s, &srv)
        .args(["--output-dir", "again"])
        .output()
        .await
        .assert_code(0);
    assert_eq!(srv.batch_ledger().len(), 1, "hits never enter a batch");
    let hits = read_lines(&s.path("again/results.jsonl"));
    assert_eq!(hits.len(), 25);
    assert!(
        hits.iter()
            .all(|l| l.cache_hit && l.cost_usd == Some(Decimal::ZERO))
    );
    let paid: Decimal = hits.iter().filter_map(|l| l.cached_cost_usd).sum();
    assert_eq!(
        paid,
        srv.batch_ledger()[0].cost,
        "what the hits saved is what the batch cost"
    );
}
