//! The budget holds against what a run cannot see: money in flight when the process is killed
//! (`kill -9`), and a price list that understates the charge. The mock's ledger (what it
//! charged) is the truth in every test.

use std::time::Duration;

use orbatch::mock::{MockConfig, MockServer};
use rust_decimal::Decimal;

use crate::common::*;

/// $0.005 per request plus $1e-6 per token: the worst case is close to the charge.
const SONAR: &str = "perplexity/sonar";

fn args(c: u32, budget: Option<Decimal>) -> Vec<String> {
    let mut a: Vec<String> = ["--model", SONAR, "--concurrency", &c.to_string(), "--yes"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(b) = budget {
        a.extend(["--budget".to_string(), b.to_string()]);
    }
    a
}

/// Starts a run, waits until the mock has seen `n` requests (answers take 3 s), kills it with
/// SIGKILL, and returns how many requests were in flight (sent, no line written).
async fn kill_mid_flight(
    s: &Scratch,
    srv: &MockServer,
    budget: Option<Decimal>,
    n: usize,
) -> usize {
    let mut child = Orb::run(s, srv).args(args(64, budget)).spawn();
    until_requests(srv, n, Duration::from_secs(30)).await;
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert!(status.code().is_none(), "killed by the signal");
    let in_flight = srv.requests().len() - s.lines().len();
    assert!(in_flight >= 32, "{in_flight} in flight at the kill");
    in_flight
}

/// The attempts of unknown cost that the latest lines count, each at a worst case of at least
/// one request fee.
fn unknown_attempts(s: &Scratch) -> usize {
    let lines = latest(&s.lines());
    for l in lines.values().filter(|l| l.unknown_cost_attempts > 0) {
        assert!(
            l.unknown_cost_max_usd.is_some_and(|m| m >= dec("0.005")),
            "counted at its worst case: {:?}",
            l.unknown_cost_max_usd
        );
    }
    lines
        .values()
        .map(|l| l.unknown_cost_attempts as usize)
        .sum()
}

fn slow() -> MockConfig {
    MockConfig {
        latency_ms: 3000,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_capped_run_killed_mid_flight_then_resumed_stays_under_the_cap() {
    let srv = mock(slow()).await;
    let s = Scratch::with_rows(300);
    let cap = dec("0.5");
    let in_flight = kill_mid_flight(&s, &srv, Some(cap), 64).await;
    let charged = srv.spent();
    assert!(
        charged > dec("0.3"),
        "the mock billed the attempts in flight: {charged}"
    );

    let out = Orb::run(&s, &srv).args(args(64, Some(cap))).output().await;
    out.assert_code(3);
    assert!(
        srv.spent() <= cap,
        "the mock charged {} in all, over the cap {cap}",
        srv.spent()
    );
    // The resume counted the attempts in flight at the kill, as attempts of unknown cost.
    assert_eq!(
        unknown_attempts(&s),
        in_flight,
        "each attempt in flight is counted once"
    );
    let summary = s.summary();
    assert_eq!(
        summary["requests"]["unknown_cost_attempts"].as_u64(),
        Some(in_flight as u64),
        "{summary}"
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn attempts_in_flight_without_a_budget_count_against_a_later_budget() {
    let srv = mock(slow()).await;
    let s = Scratch::with_rows(300);
    let in_flight = kill_mid_flight(&s, &srv, None, 64).await;
    // Their worst case was recorded though no budget was set: a budget counts them.
    let cap = dec("0.5");
    let out = Orb::run(&s, &srv).args(args(64, Some(cap))).output().await;
    out.assert_code(3);
    assert!(srv.spent() <= cap, "charged {} over {cap}", srv.spent());
    assert_eq!(
        unknown_attempts(&s),
        in_flight,
        "each attempt in flight is counted once"
    );
    // Every attempt is in results.jsonl now: the in-flight record is empty.
    assert_eq!(s.out().join("inflight.jsonl").metadata().unwrap().len(), 0);
    srv.shutdown().await;
}

/// A mock whose `/models` lists a quarter of the real prices (`lying_calls` times, 0: always),
/// and a capped run of 400 rows at concurrency 256 against it, which must stop at the cap.
async fn capped_run_under_lying_prices(
    seed: u64,
    error_rate: f64,
    lying_calls: u32,
) -> (MockServer, Scratch, Out, Decimal) {
    let srv = mock(MockConfig {
        seed,
        latency_ms: 20,
        latency_jitter_ms: 80,
        error_rate,
        listed_price_divisor: 4,
        listed_price_divisor_calls: lying_calls,
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(400);
    let cap = dec("0.1");
    let out = Orb::run(&s, &srv).args(args(256, Some(cap))).output().await;
    out.assert_code(3);
    (srv, s, out, cap)
}

/// The `$X` of the stop hint "raise --budget to at least $X".
fn budget_hint(stderr: &str) -> Decimal {
    let at = stderr
        .split("raise --budget to at least $")
        .nth(1)
        .unwrap_or_else(|| panic!("no budget hint: {stderr}"));
    let end = at.find(' ').unwrap_or(at.len());
    dec(&at[..end])
}

#[tokio::test]
async fn prices_four_times_below_the_charge_do_not_let_a_run_pass_its_cap() {
    for seed in 1..=3u64 {
        // Seed 3: half the attempts fail (a retry must not stop the run early).
        let error_rate = if seed == 3 { 0.5 } else { 0.05 };
        let (srv, _s, out, cap) = capped_run_under_lying_prices(seed, error_rate, 0).await;
        assert!(
            srv.spent() <= cap,
            "seed {seed}: the mock charged {} over the cap {cap}",
            srv.spent()
        );
        // The cap was used, not given up on at the first surprise: a retry that does not fit
        // yet waits for the attempts in flight to settle, as a first attempt does (it used to
        // stop the run at once, near 0.055 with half the attempts failing).
        assert!(
            srv.spent() >= dec("0.09"),
            "seed {seed}: charged only {}",
            srv.spent()
        );
        // The hint names the cap a resume needs, from what was spent once everything settled
        // and the refused request at the learned ratio: above the cap and what was charged.
        let at_least = budget_hint(&out.stderr);
        assert!(
            at_least > cap && at_least >= srv.spent(),
            "seed {seed}: at least {at_least}, charged {}: {}",
            srv.spent(),
            out.stderr
        );
        assert!(out.stderr.contains("understate"), "{}", out.stderr);
        srv.shutdown().await;
    }
}

#[tokio::test]
async fn an_understated_price_list_is_refreshed_once_and_the_fresh_prices_are_used() {
    // The first /models (the run's table) lists a quarter of the price; later ones the truth.
    let (srv, s, out, cap) = capped_run_under_lying_prices(7, 0.05, 1).await;
    assert!(srv.spent() <= cap, "charged {} over {cap}", srv.spent());
    assert!(out.stderr.contains("understate"), "{}", out.stderr);
    let refreshed = out
        .stderr
        .lines()
        .find(|l| l.contains("prices refreshed from /models: "));
    assert!(
        refreshed.is_some_and(|l| l.contains("perplexity/sonar")),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("re-fetching /models").count(),
        1,
        "once per run: {}",
        out.stderr
    );
    // Answers settled after the refresh carry the fresh table's cost, which matches the charge.
    let lines = latest(&s.lines());
    let fresh = lines
        .values()
        .filter(|l| l.cost_usd.is_some() && l.table_cost_usd == l.cost_usd && !l.cost_mismatch)
        .count();
    assert!(
        fresh >= 10,
        "{fresh} of {} lines priced by the fresh table",
        lines.len()
    );
    // With the fresh table the cap is used, not given up on.
    assert!(srv.spent() >= dec("0.08"), "charged only {}", srv.spent());
    srv.shutdown().await;
}
