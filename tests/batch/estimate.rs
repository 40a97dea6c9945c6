//! `estimate`: live and batch side by side, the batch price from `/models`' `:batch` variant,
//! "batch price unknown" (never a guessed discount) for a model without one, and the wait.

use rust_decimal::Decimal;

use crate::support::*;
use crate::*;

#[tokio::test]
async fn estimate_quotes_live_and_batch_side_by_side() {
    let srv = mock(batch_mock(100, |_| {})).await;
    let s = Scratch::with_rows(50);
    batch_job(&s, &[MINI, LLAMA], 5000, "");
    let out = Orb::new(&s)
        .args(["estimate", "job.toml", "--base-url", &srv.base_url()])
        .output()
        .await;
    out.assert_code(0);
    assert!(out.stdout.contains("live vs batch"), "{}", out.stdout);
    assert!(out.stdout.contains("batch price unknown"), "{}", out.stdout);
    assert!(out.stdout.contains("batch wait: median about 7 min"));
    let json = Orb::new(&s)
        .args([
            "estimate",
            "job.toml",
            "--json",
            "--base-url",
            &srv.base_url(),
        ])
        .output()
        .await;
    json.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let dec = |v: &serde_json::Value| v.to_string().trim_matches('"').parse::<Decimal>().unwrap();
    let live = &v["models"][0]["cost_usd"];
    let batch = &v["batch"]["models"][0]["cost_usd"];
    assert_eq!(v["batch"]["models"][0]["model"], MINI);
    // The mock lists gpt-4o-mini:batch at exactly half its prices.
    assert_eq!(dec(&batch["high"]) * Decimal::TWO, dec(&live["high"]));
    assert_eq!(v["batch"]["models"][1]["cost_usd"], serde_json::Value::Null);
    assert_eq!(v["batch"]["price_unknown_models"][0], LLAMA);
    assert_eq!(
        v["batch"]["cost_usd"],
        serde_json::Value::Null,
        "no total with an unknown price"
    );
}
