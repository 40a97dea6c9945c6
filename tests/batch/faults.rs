//! Failed and expired items, and the budget at batch prices.

use orbatch::output::{ErrorKind, Status};
use rust_decimal::Decimal;

use crate::support::*;
use crate::*;

#[tokio::test]
async fn failed_items_are_error_lines_and_retry_failed_sends_them_again() {
    let srv = mock(batch_mock(200, |b| b.batch_fail_rate = 0.3)).await;
    let s = Scratch::with_rows(60);
    batch_job(&s, &[MINI], 5000, "");
    let out = Orb::run_job(&s, &srv).output().await;
    out.assert_code(1);
    let failed: Vec<String> = latest_lines(&s)
        .values()
        .filter(|l| l.status == Status::Error)
        .map(|l| l.id.clone())
        .collect();
    assert!(!failed.is_empty() && failed.len() < 60, "{}", failed.len());
    assert_eq!(
        rows_sum(&s),
        srv.batch_ledger()[0].cost,
        "failed items are not billed"
    );
    // A plain re-run sends nothing (failed keys wait for --retry-failed).
    Orb::run_job(&s, &srv).output().await.assert_code(1);
    assert_eq!(srv.batch_ledger().len(), 1);
    // --retry-failed in batch mode: one batch of exactly the failed keys.
    let _ = Orb::run_job(&s, &srv)
        .args(["--retry-failed"])
        .output()
        .await;
    let ledger = srv.batch_ledger();
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[1].requests, failed.len());
    // Then live with --mode live: whatever still failed goes through chat completions.
    let still: usize = latest_lines(&s)
        .values()
        .filter(|l| l.status == Status::Error)
        .count();
    Orb::run_job(&s, &srv)
        .args(["--retry-failed", "--mode", "live"])
        .output()
        .await
        .assert_code(0);
    assert_eq!(srv.requests().len(), still);
    let lines = latest_lines(&s);
    assert!(lines.values().all(|l| l.status == Status::Ok));
    let retried = lines.values().find(|l| l.id == failed[0]).unwrap();
    assert!(retried.attempts >= 2, "cumulative attempts");
    // The mock's total charged holds both the batches and the live requests.
    assert_eq!(
        rows_sum(&s),
        srv.spent(),
        "rows sum to every charge, batch and live"
    );
}

#[tokio::test]
async fn expiry_is_reported_and_resumable() {
    let srv = mock(batch_mock(200, |b| b.batch_expire = true)).await;
    let s = Scratch::with_rows(20);
    batch_job(&s, &[MINI], 5000, "");
    let out = Orb::run_job(&s, &srv).output().await;
    assert!(out.stderr.contains("expired"), "{}", out.stderr);
    let lines = latest_lines(&s);
    let expired: Vec<_> = lines
        .values()
        .filter(|l| l.status == Status::Error)
        .collect();
    assert_eq!(expired.len(), 10, "the half that never ran");
    assert!(expired.iter().all(|l| l.resumable));
    assert!(
        expired
            .iter()
            .all(|l| l.error.as_ref().unwrap().kind == ErrorKind::Timeout
                && l.error.as_ref().unwrap().message.contains("expired"))
    );
    assert_eq!(rows_sum(&s), srv.batch_ledger()[0].cost);
    // A plain re-run sends exactly the expired keys again.
    let _ = Orb::run_job(&s, &srv).output().await;
    let ledger = srv.batch_ledger();
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[1].requests, 10);
}

#[tokio::test]
async fn the_budget_is_never_exceeded_at_batch_prices() {
    let srv = mock(batch_mock(100, |_| {})).await;
    let s = Scratch::with_rows(400);
    // A budget for about half the rows' worst case at the batch price.
    batch_job(&s, &[MINI], 50, "[limits]\nbudget_usd = 0.0004");
    // --yes: the pre-flight's high estimate is above the budget; the run must still hold it.
    let out = Orb::run_job(&s, &srv).args(["--yes"]).output().await;
    out.assert_code(3);
    assert!(out.stderr.contains("budget"), "{}", out.stderr);
    let charged: Decimal = srv.batch_ledger().iter().map(|b| b.cost).sum();
    assert!(charged > Decimal::ZERO);
    assert!(charged <= "0.0004".parse().unwrap(), "{charged}");
    assert_eq!(rows_sum(&s), charged);
    let reserved: Decimal = submitted(&s)
        .iter()
        .map(|e| e["worst_usd"].as_str().unwrap().parse::<Decimal>().unwrap())
        .sum();
    assert!(
        reserved <= "0.0004".parse().unwrap(),
        "worst cases reserved: {reserved}"
    );
    let sent: usize = srv.batch_ledger().iter().map(|b| b.requests).sum();
    assert!(sent < 400, "stopped before the whole input");
}

#[tokio::test]
async fn the_pre_flight_prices_batch_mode_at_the_batch_price() {
    let srv = mock(batch_mock(100, |_| {})).await;
    let s = Scratch::with_rows(100);
    // 100 rows' high estimate is about $0.00106 live and $0.00053 at the batch price.
    batch_job(&s, &[MINI], 5000, "[limits]\nbudget_usd = 0.0008");
    let batch = Orb::run_job(&s, &srv).output().await;
    batch.assert_code(0);
    assert_eq!(srv.batch_ledger().len(), 1);
    let t = Scratch::with_rows(100);
    batch_job(&t, &[MINI], 5000, "[limits]\nbudget_usd = 0.0008");
    let live = Orb::run_job(&t, &srv)
        .args(["--mode", "live"])
        .output()
        .await;
    assert!(live.stderr.contains("above budget_usd"), "{}", live.stderr);
    assert!(
        srv.requests().is_empty(),
        "the live run was refused before sending"
    );
}
