//! Guarantee 5: the budget cap. Total spend (the result lines' and the mock's own, which
//! includes attempts billed with an unknown charge) never passes `--budget`, whatever the seed,
//! concurrency and faults; reaching it exits 3; a resumed run with a higher budget continues
//! and the cumulative spend stays under the new cap. A budget that cannot be priced is refused.

use orbatch::mock::{MockConfig, MockServer};
use rust_decimal::Decimal;

use crate::common::*;

fn faulty(seed: u64) -> MockConfig {
    MockConfig {
        seed,
        latency_ms: 5,
        latency_jitter_ms: 20,
        error_rate: 0.1,
        finish_error_rate: 0.05,
        empty_rate: 0.05,
        reset_rate: 0.05,
        malformed_rate: 0.05,
        ..Default::default()
    }
}

async fn run_with_budget(
    s: &Scratch,
    srv: &MockServer,
    model: &str,
    c: u32,
    budget: Decimal,
) -> Out {
    Orb::run(s, srv)
        .args([
            "--model",
            model,
            "--concurrency",
            &c.to_string(),
            "--max-retries",
            "2",
            "--budget",
            &budget.to_string(),
            "--yes",
        ])
        .output()
        .await
}

#[tokio::test]
async fn spend_never_passes_the_budget_across_seeds_concurrency_and_faults() {
    let models = [
        ("openai/gpt-4o-mini", dec("0.00006")),
        ("anthropic/claude-3.5-haiku", dec("0.0003")),
        ("perplexity/sonar", dec("0.04")), // $0.005 per request
    ];
    for (i, c) in [1u32, 2, 4, 8, 16, 3, 6, 12, 5, 32].into_iter().enumerate() {
        let (model, budget) = models[i % models.len()];
        let srv = mock(faulty(i as u64 + 1)).await;
        let s = Scratch::with_rows(40);
        let out = run_with_budget(&s, &srv, model, c, budget).await;
        let case = format!("case {i}: {model}, concurrency {c}, budget {budget}");
        out.assert_code(3);
        assert!(
            out.stderr.contains("budget reached"),
            "{case}: {}",
            out.stderr
        );
        let lines = s.lines();
        assert!(
            recorded_spend(&lines) <= budget,
            "{case}: recorded {}",
            recorded_spend(&lines)
        );
        assert!(
            srv.spent() <= budget,
            "{case}: the mock charged {}",
            srv.spent()
        );
        assert!(!lines.is_empty(), "{case}: something was done");
        srv.shutdown().await;
    }
}

#[tokio::test]
async fn a_resumed_run_with_a_higher_budget_continues_under_the_new_cap() {
    let srv = mock(faulty(42)).await;
    let s = Scratch::with_rows(40);
    let first = dec("0.00005");
    run_with_budget(&s, &srv, MODEL, 4, first)
        .await
        .assert_code(3);
    assert!(srv.spent() <= first);
    let done_before = s.lines().len();
    let n = srv.requests().len();

    let second = dec("0.0001");
    let out = run_with_budget(&s, &srv, MODEL, 4, second).await;
    out.assert_code(3);
    let lines = s.lines();
    assert!(lines.len() > done_before, "the second run did more");
    assert!(recorded_spend(&lines) <= second);
    assert!(
        srv.spent() <= second,
        "cumulative charge {} passed the new budget {second}",
        srv.spent()
    );
    // Nothing answered in the first run was sent again.
    for u in users_since(&srv, n) {
        let answered_before = srv.requests()[..n]
            .iter()
            .any(|r| r.user == u && r.outcome == "ok");
        assert!(
            !answered_before,
            "{u} was answered in the first run and sent again"
        );
    }

    // Enough budget: the run completes.
    let out = run_with_budget(&s, &srv, MODEL, 4, dec("1")).await;
    assert!(matches!(out.code, Some(0) | Some(1)), "{out:?}");
    srv.shutdown().await;
}

#[tokio::test]
async fn a_budget_with_an_unpriced_model_is_refused() {
    let srv = mock(MockConfig {
        unlisted_models: vec!["acme/unlisted".into()],
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(3);
    // (--allow-unknown-models: the model is missing from /models, which the mock hides.)
    let out = Orb::run(&s, &srv)
        .args(["--model", "acme/unlisted", "--allow-unknown-models"])
        .args(["--budget", "1", "--yes"])
        .output()
        .await;
    out.assert_code(2);
    assert!(out.stderr.contains("acme/unlisted"), "{}", out.stderr);
    assert!(out.stderr.contains("cannot be priced"), "{}", out.stderr);
    assert_eq!(srv.requests().len(), 0);
    // Without a budget the same model runs.
    Orb::run(&s, &srv)
        .args(["--model", "acme/unlisted", "--allow-unknown-models"])
        .output()
        .await
        .assert_code(0);
    srv.shutdown().await;
}

#[tokio::test]
async fn attempts_of_unknown_cost_still_count_against_the_budget_after_a_resume() {
    // Run 1: every connection is reset after the mock billed the request, so the runner
    // cannot know any charge (each attempt counts at its worst case while the run lasts).
    let resets = mock(MockConfig {
        reset_rate: 1.0,
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(40);
    let budget = dec("0.00005");
    run_with_budget(&s, &resets, MODEL, 2, budget)
        .await
        .assert_code(3);
    assert!(resets.spent() <= budget);
    assert!(s.lines().iter().all(|l| l.unknown_cost_attempts > 0));

    // Run 2, same budget, a healthy server: what run 1 may have spent still counts.
    let good = mock(MockConfig::default()).await;
    let out = run_with_budget(&s, &good, MODEL, 2, budget).await;
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    let total = resets.spent() + good.spent();
    assert!(
        total <= budget,
        "charged {total} in all ({} in run 1, unknown to the runner) for a budget of {budget}",
        resets.spent()
    );
    resets.shutdown().await;
    good.shutdown().await;
}
