//! `credits`, `run`'s pre-flight check (budget and key limit), and cost reconciliation
//! (`table_cost_usd`, `cost_mismatch`, `table_total`).

use orbatch::mock::{self, MockConfig, MockServer};
use orbatch::output::{ResultLine, Summary};
use rust_decimal::Decimal;
use serde_json::Value;

use super::{
    CLAUDE, Dir, GPT, KEY, estimate, expect_code, job, orbatch, output, run, texts, write_csv,
};

async fn credits(dir: &Dir, srv: &MockServer, json: bool, management: bool) -> String {
    let mut cmd = orbatch(dir);
    cmd.args(["credits", "--base-url", &srv.base_url()]);
    if json {
        cmd.arg("--json");
    }
    if management {
        cmd.env("OPENROUTER_MANAGEMENT_KEY", KEY);
    }
    let out = output(cmd).await;
    expect_code(&out, 0);
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_renders_the_key_with_null_and_set_limits() {
    let dir = Dir::new();
    let open = MockServer::start(MockConfig::default()).await.unwrap();
    let table = credits(&dir, &open, false, false).await;
    for field in [
        "label",
        "usage",
        "limit_remaining",
        "usage_daily",
        "is_free_tier",
    ] {
        assert!(table.contains(field), "{field} missing:\n{table}");
    }
    assert!(table.contains("unlimited"), "{table}");
    assert!(!table.contains("GET /credits"));
    let v: Value = serde_json::from_str(&credits(&dir, &open, true, false).await).unwrap();
    assert!(v["key"]["limit"].is_null() && v["key"]["limit_remaining"].is_null());
    assert!(v["credits"].is_null());

    let capped = MockServer::start(MockConfig {
        credit_limit: Some(Decimal::new(5, 0)),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let table = credits(&dir, &capped, false, true).await;
    assert!(table.contains("$5"), "{table}");
    assert!(!table.contains("unlimited"), "{table}");
    assert!(table.contains("GET /credits") && table.contains("total_credits"));
    let v: Value = serde_json::from_str(&credits(&dir, &capped, true, true).await).unwrap();
    assert_eq!(v["key"]["limit"], 5);
    assert_eq!(v["key"]["limit_remaining"], 5);
    assert_eq!(v["credits"]["total_credits"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_a_budget_below_the_high_estimate_unless_yes() {
    let srv = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = Dir::new();
    let input = write_csv(&dir, &texts(30, 40, 9));
    let args = job(&srv, &input, &dir.out(), &[GPT, CLAUDE], Some(32));
    let est = estimate(&dir, &args).await;
    let high = est.total.cost_usd.high.unwrap();
    // Above what the run costs (the expected), below its worst case.
    let budget = (high * Decimal::new(95, 2)).round_dp(8);
    let mut with_budget = args.clone();
    with_budget.extend(["--budget".to_string(), budget.to_string()]);

    let out = run(&dir, &with_budget).await;
    expect_code(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("budget_usd") && err.contains("--yes"), "{err}");
    assert!(srv.requests().is_empty(), "nothing was sent");

    with_budget.push("--yes".into());
    let out = run(&dir, &with_budget).await;
    expect_code(&out, 0);
    assert_eq!(srv.requests().len(), 60);
    assert!(srv.spent() <= budget);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_when_the_key_limit_is_below_the_high_estimate() {
    let srv = MockServer::start(MockConfig {
        credit_limit: Some(Decimal::new(1, 6)),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = Dir::new();
    let input = write_csv(&dir, &texts(10, 40, 2));
    let args = job(&srv, &input, &dir.out(), &[GPT], Some(16));
    let out = run(&dir, &args).await;
    expect_code(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("remaining credit"), "{err}");
    assert!(srv.requests().is_empty());
    // estimate shows the credit and warns.
    let mut cmd = orbatch(&dir);
    cmd.arg("estimate").args(&args);
    let out = output(cmd).await;
    expect_code(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("key credit remaining: $0.000001"), "{text}");
    assert!(text.contains("warning: the high estimate"), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("warning: the high estimate"),
        "said twice: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_reconciles_with_the_price_table() {
    let srv = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = Dir::new();
    let input = write_csv(&dir, &texts(25, 80, 4));
    let models = [GPT, CLAUDE, "perplexity/sonar"];
    let out = run(&dir, &job(&srv, &input, &dir.out(), &models, Some(20))).await;
    expect_code(&out, 0);
    let text = std::fs::read_to_string(dir.out().join("results.jsonl")).unwrap();
    let lines: Vec<ResultLine> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 75);
    let mut table_sum = Decimal::ZERO;
    for l in &lines {
        let (pt, ct) = (l.prompt_tokens.unwrap(), l.completion_tokens.unwrap());
        let priced = mock::price(&l.model).unwrap().cost(pt, ct);
        assert_eq!(l.table_cost_usd, Some(priced), "{}/{}", l.id, l.model);
        assert_eq!(l.cost_usd, Some(priced));
        assert!(!l.cost_mismatch);
        table_sum += priced;
    }
    let s: Summary =
        serde_json::from_str(&std::fs::read_to_string(dir.out().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(s.cost_usd.table_total, table_sum);
    assert_eq!(s.cost_usd.total, srv.spent());
    assert_eq!(s.cost_usd.mismatched_rows, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pilot_obeys_the_key_limit_like_a_run() {
    let srv = MockServer::start(MockConfig {
        credit_limit: Some(Decimal::new(1, 5)),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = Dir::new();
    let input = write_csv(&dir, &texts(40, 60, 6));
    let mut args = job(&srv, &input, &dir.out(), &[CLAUDE], Some(16));
    // One at a time, so the second request meets the limit the first one used up.
    args.extend(["--pilot", "10", "--json", "--concurrency", "1"].map(String::from));
    let mut cmd = orbatch(&dir);
    cmd.arg("estimate").args(&args);
    let out = output(cmd).await;
    expect_code(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("the pilot"));
    assert!(srv.requests().is_empty(), "a refused pilot sends nothing");

    // With --yes the pilot runs into the credit limit (402): exit 3, resumable, and the
    // estimate is still printed from what it got.
    let mut cmd = orbatch(&dir);
    cmd.arg("estimate").args(&args).arg("--yes");
    let out = output(cmd).await;
    expect_code(&out, 3);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["credit"], "limited");
    assert!(v["pilot"]["requests"].as_u64().unwrap() >= 1);
    assert!(srv.requests().iter().any(|r| r.outcome == "credits"));
}
