//! Guarantee 4: Ctrl-C, SIGTERM and SIGHUP. The first stop signal stops dispatching, lets
//! in-flight requests finish, writes `summary.json` with `complete: false` and exits 3; a re-run
//! completes the rest. A second signal (of any of the three) aborts the requests in flight and
//! exits 3 at once.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use orbatch::mock::MockConfig;

use crate::common::*;

/// The first `sig` lets the requests in flight finish and records them; a re-run sends only
/// the rest.
async fn first_signal_finishes_in_flight_then_exits_3_and_a_rerun_completes(sig: &str) {
    let srv = mock(MockConfig {
        latency_ms: 400,
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(30);
    let child = Orb::run(&s, &srv).args(["--concurrency", "4"]).spawn();
    until_requests(&srv, 4, Duration::from_secs(20)).await;
    signal(child.id().unwrap(), sig);
    let out = wait(child, Duration::from_secs(20)).await;
    out.assert_code(3);
    assert!(out.stderr.contains("interrupted"), "{}", out.stderr);
    assert_eq!(s.summary()["complete"], false);

    // Every request the mock received was answered and has its line: none was lost.
    let answered: BTreeSet<String> = srv.requests().iter().map(|r| r.user.clone()).collect();
    let recorded: BTreeSet<String> = s.lines().iter().map(|l| user(&l.id)).collect();
    assert!(answered.len() < 30, "stopped early");
    assert_eq!(
        answered, recorded,
        "in-flight rows finished and were written"
    );
    let lines = s.lines();
    assert!(
        lines.iter().all(|l| l.unknown_cost_attempts == 0),
        "{lines:?}"
    );

    let n = srv.requests().len();
    Orb::run(&s, &srv)
        .args(["--concurrency", "4"])
        .output()
        .await
        .assert_code(0);
    assert_eq!(srv.requests().len() - n, 30 - answered.len());
    assert_all_ok_once(&s.lines(), 30, &[MODEL]);
    assert_eq!(s.summary()["complete"], true);
    srv.shutdown().await;
}

#[tokio::test]
async fn first_sigint_finishes_in_flight_then_exits_3_and_a_rerun_completes() {
    first_signal_finishes_in_flight_then_exits_3_and_a_rerun_completes("INT").await;
}

#[tokio::test]
async fn sigterm_is_a_first_ctrl_c_in_flight_answers_are_recorded() {
    first_signal_finishes_in_flight_then_exits_3_and_a_rerun_completes("TERM").await;
}

#[tokio::test]
async fn sighup_is_a_first_ctrl_c_in_flight_answers_are_recorded() {
    first_signal_finishes_in_flight_then_exits_3_and_a_rerun_completes("HUP").await;
}

#[tokio::test]
async fn first_sigint_sends_nothing_new_even_when_pairs_wait_for_the_rate_limiter() {
    // 4 requests per (shortened) 1 s window: pairs holding a concurrency slot queue at the
    // rate limiter. Ctrl-C must not let them out.
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(20);
    let child = Orb::run(&s, &srv)
        .args([
            "--concurrency",
            "8",
            "--rpm",
            "4",
            "--rate-window-secs",
            "1",
        ])
        .spawn();
    until_requests(&srv, 2, Duration::from_secs(20)).await;
    signal(child.id().unwrap(), "INT");
    let at_signal = srv.requests().len();
    let out = wait(child, Duration::from_secs(20)).await;
    out.assert_code(3);
    let after = srv.requests().len() - at_signal;
    assert!(
        after <= 1,
        "{after} requests were sent after the first Ctrl-C (at most one could be on its way)"
    );
    let recorded: BTreeSet<String> = s.lines().iter().map(|l| user(&l.id)).collect();
    let answered: BTreeSet<String> = srv.requests().iter().map(|r| r.user.clone()).collect();
    assert_eq!(answered, recorded);
    srv.shutdown().await;
}

#[tokio::test]
async fn second_sigint_aborts_in_flight_and_exits_3_quickly() {
    second_signal_aborts_in_flight_and_exits_3_quickly("INT", "INT").await;
}

#[tokio::test]
async fn sigterm_then_sighup_aborts_in_flight_and_exits_3_quickly() {
    second_signal_aborts_in_flight_and_exits_3_quickly("TERM", "HUP").await;
}

/// `first` stops dispatching; once orbatch has said so, `second` aborts what is in flight.
async fn second_signal_aborts_in_flight_and_exits_3_quickly(first: &str, second: &str) {
    let srv = mock(MockConfig {
        latency_ms: 30_000,
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(10);
    let mut child = Orb::run(&s, &srv).args(["--concurrency", "4"]).spawn();
    until_requests(&srv, 4, Duration::from_secs(20)).await;
    let pid = child.id().unwrap();
    signal(pid, first);
    // The second signal goes once the first has been handled, not after a guessed delay.
    let stderr = until_stderr(
        &mut child,
        orbatch::signals::STOPPING,
        Duration::from_secs(20),
    )
    .await;
    let t = Instant::now();
    signal(pid, second);
    let out = wait(child, Duration::from_secs(20)).await;
    let stderr = rest_of(stderr).await;
    out.assert_code(3);
    assert!(stderr.contains("aborting"), "{stderr}");
    // Said once; the aborted rows are not failures (a plain re-run sends them).
    assert!(!stderr.contains("stopping"), "said again: {stderr}");
    assert!(!stderr.contains("--retry-failed"), "{stderr}");
    assert!(!stderr.contains("rows failed"), "{stderr}");
    assert_eq!(s.summary()["rows"]["error"], 0);
    assert_eq!(s.summary()["rows"]["unfinished"], 4);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the abort took {:?}",
        t.elapsed()
    );
    assert_eq!(s.summary()["complete"], false);
    assert_eq!(
        srv.requests().len(),
        4,
        "nothing sent after the first Ctrl-C"
    );
    // The aborted attempts may have been billed: each is counted as an unknown-cost attempt.
    let lines = s.lines();
    let unknown: u32 = lines.iter().map(|l| l.unknown_cost_attempts).sum();
    assert_eq!(unknown, 4, "{lines:?}");
    srv.shutdown().await;

    // A plain re-run sends the aborted rows again (their lines are marked resumable), completes
    // every row, and the aborted attempts stay counted.
    assert!(lines.iter().all(|l| l.resumable), "{lines:?}");
    let fast = mock(MockConfig::default()).await;
    Orb::run(&s, &fast).output().await.assert_code(0);
    assert_eq!(fast.requests().len(), 10);
    let lines = s.lines();
    assert_all_ok_once(&lines, 10, &[MODEL]);
    let unknown: u32 = lines.iter().map(|l| l.unknown_cost_attempts).sum();
    assert_eq!(unknown, 4);
}
