//! Guarantees 8, 9 and 10: every failure kind is handled (fails the row with the right kind when
//! it persists, ends ok when it is occasional, non-retryable errors fail at once with the
//! provider's message); ambiguous attempts are counted per row and in the summary, and
//! `retry_ambiguous = false` fails instead of re-sending; `summary.json` breaks errors down by
//! kind with their cost, and the table shows the top messages.

use futures_util::future::join_all;
use orbatch::mock::MockConfig;
use orbatch::output::{ErrorKind, Status};
use rust_decimal::Decimal;

use crate::common::*;

const ROWS: usize = 3;

/// (fault, mock, kind of the failed row, may the attempts have been billed unknowingly,
/// is a charge known)
fn persistent_faults() -> Vec<(&'static str, MockConfig, ErrorKind, bool, bool)> {
    let d = MockConfig::default;
    vec![
        (
            "5xx",
            MockConfig {
                error_rate: 1.0,
                ..d()
            },
            ErrorKind::Provider,
            false,
            false,
        ),
        (
            "200 with error",
            MockConfig {
                error200_rate: 1.0,
                ..d()
            },
            ErrorKind::Provider,
            false,
            false,
        ),
        (
            "finish_reason error",
            MockConfig {
                finish_error_rate: 1.0,
                ..d()
            },
            ErrorKind::Provider,
            false,
            true,
        ),
        (
            "empty, null finish",
            MockConfig {
                empty_rate: 1.0,
                ..d()
            },
            ErrorKind::Provider,
            false,
            true,
        ),
        (
            "hang",
            MockConfig {
                hang_rate: 1.0,
                hang_secs: 30,
                ..d()
            },
            ErrorKind::Timeout,
            true,
            false,
        ),
        (
            "reset",
            MockConfig {
                reset_rate: 1.0,
                ..d()
            },
            ErrorKind::Network,
            true,
            false,
        ),
        (
            "malformed JSON",
            MockConfig {
                malformed_rate: 1.0,
                ..d()
            },
            ErrorKind::InvalidResponse,
            true,
            false,
        ),
    ]
}

#[tokio::test]
async fn every_persistent_fault_fails_its_rows_with_the_right_kind() {
    let cases =
        persistent_faults()
            .into_iter()
            .map(|(name, cfg, kind, ambiguous, billed)| async move {
                let srv = mock(cfg).await;
                let s = Scratch::with_rows(ROWS);
                let out = Orb::run(&s, &srv)
                    .args(["--max-retries", "1", "--timeout", "1", "--concurrency", "3"])
                    .output()
                    .await;
                assert_eq!(out.code, Some(1), "{name}: {}", out.stderr);
                let lines = s.lines();
                assert_eq!(lines.len(), ROWS, "{name}");
                for l in &lines {
                    let e = l.error.as_ref().unwrap_or_else(|| panic!("{name}: {l:?}"));
                    assert_eq!(e.kind, kind, "{name}: {e:?}");
                    assert_eq!(l.attempts, 2, "{name}: retried once");
                    assert_eq!(
                        l.unknown_cost_attempts,
                        if ambiguous { 2 } else { 0 },
                        "{name}"
                    );
                    if billed {
                        let charged: Decimal = srv
                            .requests()
                            .iter()
                            .filter(|r| r.user == user(&l.id))
                            .filter_map(|r| r.cost)
                            .sum();
                        assert!(charged > Decimal::ZERO);
                        assert_eq!(
                            l.cost_usd,
                            Some(charged),
                            "{name}: the failed attempts' charges"
                        );
                    }
                }
                let sum = s.summary();
                assert_eq!(sum["rows"]["error"], ROWS as u64, "{name}");
                assert_eq!(
                    sum["requests"]["unknown_cost_attempts"],
                    if ambiguous { 2 * ROWS as u64 } else { 0 },
                    "{name}: {sum}"
                );
                assert_eq!(srv.requests().len(), 2 * ROWS, "{name}");
                srv.shutdown().await;
            });
    join_all(cases).await;
}

#[tokio::test]
async fn occasional_faults_of_every_kind_end_ok() {
    let srv = mock(MockConfig {
        seed: 11,
        hang_rate: 0.03,
        hang_secs: 30,
        reset_rate: 0.05,
        error_rate: 0.05,
        error200_rate: 0.05,
        finish_error_rate: 0.05,
        empty_rate: 0.05,
        malformed_rate: 0.05,
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(30);
    let out = Orb::run(&s, &srv)
        .args(["--timeout", "1", "--concurrency", "6"])
        .output()
        .await;
    out.assert_code(0);
    assert_all_ok_once(&s.lines(), 30, &[MODEL]);
    let faults = srv.requests().iter().filter(|r| r.outcome != "ok").count();
    assert!(faults >= 3, "the mock injected {faults} faults");
    // The retried rows say how many attempts they took; ambiguous ones are counted.
    let attempts: u32 = s.lines().iter().map(|l| l.attempts).sum();
    assert_eq!(attempts as usize, srv.requests().len());
    let ambiguous = srv
        .requests()
        .iter()
        .filter(|r| matches!(r.outcome.as_str(), "hang" | "reset" | "malformed"))
        .count();
    assert_eq!(
        s.summary()["requests"]["unknown_cost_attempts"],
        ambiguous as u64
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn a_non_retryable_error_fails_at_once_with_the_providers_message() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(ROWS);
    let out = Orb::run(&s, &srv)
        .args(["--model", "nope/unknown-model", "--allow-unknown-models"])
        .output()
        .await;
    out.assert_code(1);
    for l in s.lines() {
        let e = l.error.unwrap();
        assert_eq!(
            (e.kind, e.status, l.attempts),
            (ErrorKind::Http, Some(400), 1)
        );
        assert!(
            e.message
                .contains("nope/unknown-model is not a valid model ID"),
            "{}",
            e.message
        );
    }
    assert_eq!(srv.requests().len(), ROWS);
    srv.shutdown().await;
}

#[tokio::test]
async fn retry_ambiguous_false_fails_instead_of_resending() {
    let srv = mock(MockConfig {
        reset_rate: 1.0,
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(ROWS);
    s.write(
        "job.toml",
        format!(
            "input = \"in.csv\"\noutput_dir = \"out\"\n[request]\nmodels = [\"{MODEL}\"]\nprompt = \"Q: {{{{ text }}}}\"\nmax_tokens = 8\n[limits]\nmax_retries = 3\nretry_ambiguous = false\n"
        )
        .as_bytes(),
    );
    let out = Orb::run_job(&s, &srv).output().await;
    out.assert_code(1);
    for l in s.lines() {
        assert_eq!((l.attempts, l.unknown_cost_attempts), (1, 1), "{l:?}");
        let e = l.error.unwrap();
        assert_eq!(e.kind, ErrorKind::Network);
        assert!(e.message.contains("retry_ambiguous"), "{}", e.message);
    }
    assert_eq!(srv.requests().len(), ROWS, "nothing re-sent");
    assert_eq!(
        s.summary()["requests"]["unknown_cost_attempts"],
        ROWS as u64
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn summary_breaks_errors_down_by_kind_and_the_table_shows_top_messages() {
    // Every answer of the known model ends in a billed finish_reason error; the unknown model
    // is refused (400, not billed).
    let srv = mock(MockConfig {
        finish_error_rate: 1.0,
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(ROWS);
    let out = Orb::run(&s, &srv)
        .args([
            "--model",
            MODEL,
            "--model",
            "nope/unknown-model",
            "--allow-unknown-models",
            "--max-retries",
            "0",
        ])
        .output()
        .await;
    out.assert_code(1);
    let sum = s.summary();
    let by_kind = &sum["errors_by_kind"];
    assert_eq!(by_kind["provider"]["count"], ROWS as u64, "{sum}");
    assert_eq!(by_kind["http"]["count"], ROWS as u64, "{sum}");
    assert_eq!(by_kind["http"]["cost_usd"].as_f64(), Some(0.0));
    let provider_cost: Decimal = s
        .lines()
        .iter()
        .filter(|l| l.status == Status::Error && l.model == MODEL)
        .map(|l| l.cost_usd.unwrap())
        .sum();
    assert_eq!(provider_cost, srv.spent());
    let shown: Decimal = by_kind["provider"]["cost_usd"].to_string().parse().unwrap();
    assert_eq!(shown, srv.spent(), "{sum}");
    // The table (stdout) names the top error messages.
    assert!(
        out.stdout.contains("Upstream provider stopped generating"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("not a valid model ID"),
        "{}",
        out.stdout
    );
    srv.shutdown().await;
}
