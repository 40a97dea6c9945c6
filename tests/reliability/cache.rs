//! Guarantee: never pay twice. The response cache answers a request already paid for (in any
//! output dir, by any process on the host) without sending it, reserving budget or waiting for
//! the limiter; it holds only answers whose result line was written; a broken cache is
//! bypassed, never fatal.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use orbatch::mock::MockConfig;
use orbatch::output::{CostSource, ResultLine, Status};
use rust_decimal::Decimal;

use crate::common::*;

const ROWS: usize = 20;

/// `orbatch run` into `out` with the cache in `cache/`.
fn run_into(s: &Scratch, srv: &orbatch::mock::MockServer, out: &str) -> Orb {
    Orb::run(s, srv).args(["--output-dir", out, "--cache-dir", "cache"])
}

fn lines_of(s: &Scratch, out: &str) -> Vec<ResultLine> {
    read_lines(&s.path(out).join("results.jsonl"))
}

fn by_key(lines: &[ResultLine]) -> BTreeMap<(String, String), ResultLine> {
    latest(lines)
}

#[tokio::test]
async fn a_second_run_into_a_new_output_dir_sends_nothing_and_every_line_is_a_hit() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(ROWS);
    run_into(&s, &srv, "out1").output().await.assert_code(0);
    let first = by_key(&lines_of(&s, "out1"));
    assert_eq!(srv.requests().len(), ROWS);

    let out = run_into(&s, &srv, "out2").output().await;
    out.assert_code(0);
    assert_eq!(srv.requests().len(), ROWS, "the second run sent nothing");
    let second = by_key(&lines_of(&s, "out2"));
    assert_eq!(second.len(), ROWS);
    let mut saved = Decimal::ZERO;
    for (k, l) in &second {
        let paid = &first[k];
        assert_eq!(l.status, Status::Ok);
        assert!(l.cache_hit, "{k:?} is a hit");
        assert_eq!(l.cost_usd, Some(Decimal::ZERO));
        assert_eq!(l.cost_source, Some(CostSource::Cache));
        assert_eq!(l.attempts, 0, "nothing sent");
        assert_eq!(l.cached_cost_usd, paid.cost_usd, "the first run's cost");
        assert_eq!(l.output, paid.output);
        saved += paid.cost_usd.unwrap();
    }
    let summary: serde_json::Value = serde_json::from_str(&s.read("out2/summary.json")).unwrap();
    assert_eq!(summary["cache"]["hits"], ROWS as u64);
    assert_eq!(dec(&summary["cache"]["saved_usd"].to_string()), saved);
    assert_eq!(
        dec(&summary["cost_usd"]["total"].to_string()),
        Decimal::ZERO
    );
    assert!(
        out.stdout.contains(&format!("cache: {ROWS} rows answered")),
        "the table shows the hits:\n{}",
        out.stdout
    );

    // --no-cache sends everything again.
    run_into(&s, &srv, "out3")
        .args(["--no-cache"])
        .output()
        .await
        .assert_code(0);
    assert_eq!(srv.requests().len(), 2 * ROWS);
    assert!(lines_of(&s, "out3").iter().all(|l| !l.cache_hit));
}

#[tokio::test]
async fn failed_rows_are_not_cached_and_a_second_run_resends_exactly_them() {
    // Plain failures (5xx) and billed answers cut by an error (`finish_reason: error`).
    let srv = mock(MockConfig {
        error_rate: 0.2,
        finish_error_rate: 0.2,
        seed: 7,
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(ROWS);
    let first = run_into(&s, &srv, "out1")
        .args(["--max-retries", "0"])
        .output()
        .await;
    first.assert_code(1);
    let failed: BTreeSet<String> = lines_of(&s, "out1")
        .into_iter()
        .filter(|l| l.status == Status::Error)
        .map(|l| user(&l.id))
        .collect();
    assert!(!failed.is_empty() && failed.len() < ROWS, "{failed:?}");
    let sent_before = srv.requests().len();

    let _ = run_into(&s, &srv, "out2")
        .args(["--max-retries", "0"])
        .output()
        .await;
    let resent: BTreeSet<String> = users_since(&srv, sent_before).into_iter().collect();
    assert_eq!(resent, failed, "exactly the failed rows are sent again");
    let hits = lines_of(&s, "out2").iter().filter(|l| l.cache_hit).count();
    assert_eq!(hits, ROWS - failed.len());
}

#[tokio::test]
async fn two_processes_sharing_a_cache_finish_with_every_line_intact() {
    let srv = mock(MockConfig {
        latency_ms: 5,
        ..Default::default()
    })
    .await;
    const N: usize = 120;
    let s = Scratch::with_rows(N);
    let a = run_into(&s, &srv, "a").args(["--concurrency", "8"]).spawn();
    let b = run_into(&s, &srv, "b").args(["--concurrency", "8"]).spawn();
    let (a, b) = tokio::join!(
        wait(a, Duration::from_secs(90)),
        wait(b, Duration::from_secs(90))
    );
    a.assert_code(0);
    b.assert_code(0);
    for out in ["a", "b"] {
        assert_all_ok_once(&lines_of(&s, out), N, &[MODEL]);
        let text = s.read(&format!("{out}/results.jsonl"));
        assert!(
            text.lines()
                .all(|l| serde_json::from_str::<ResultLine>(l).is_ok())
        );
    }
    // Every answer either process paid for is in the cache: a third run sends nothing.
    let sent = srv.requests().len();
    run_into(&s, &srv, "c").output().await.assert_code(0);
    assert_eq!(srv.requests().len(), sent);
    assert!(lines_of(&s, "c").iter().all(|l| l.cache_hit));
}

#[tokio::test]
async fn a_corrupt_cache_is_bypassed_with_one_warning() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(ROWS);
    s.write("cache/responses.sqlite3", &[0x5a; 16384]);
    let out = run_into(&s, &srv, "out").output().await;
    out.assert_code(0);
    assert_eq!(
        out.stderr.matches("response cache").count(),
        1,
        "one warning:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("responses.sqlite3"), "{}", out.stderr);
    assert_all_ok_once(&lines_of(&s, "out"), ROWS, &[MODEL]);
    assert_eq!(srv.requests().len(), ROWS);
    // `orbatch cache stats` says what is wrong, with the file's name (exit 2).
    let st = s
        .command(&["cache", "stats", "--cache-dir", "cache"])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&st.stderr).contains("responses.sqlite3"));
}

#[tokio::test]
async fn the_mocks_answers_are_never_hits_for_a_real_endpoint() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(3);
    let mocked = Orb::new(&s)
        .args(["run", "--mock", "--no-progress", "--input", "in.csv"])
        .args(["--model", MODEL, "--prompt", PROMPT, "--max-tokens", "8"])
        .args(["--output-dir", "m1", "--cache-dir", "cache"])
        .output()
        .await;
    mocked.assert_code(0);
    // The same requests to another endpoint are sent: they are not hits.
    run_into(&s, &srv, "real").output().await.assert_code(0);
    assert_eq!(srv.requests().len(), 3);
    assert!(lines_of(&s, "real").iter().all(|l| !l.cache_hit));
}

#[tokio::test]
async fn kill_9_after_answers_were_paid_leaves_no_hit_without_its_result_line() {
    let srv = mock(MockConfig {
        latency_ms: 100,
        ..Default::default()
    })
    .await;
    const N: usize = 80;
    let s = Scratch::with_rows(N);
    let mut child = run_into(&s, &srv, "out1")
        .args(["--concurrency", "4"])
        .spawn();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    child.start_kill().unwrap(); // SIGKILL
    assert!(child.wait().await.unwrap().code().is_none(), "killed");
    let written: BTreeSet<String> = lines_of(&s, "out1")
        .into_iter()
        .filter_map(|l| l.generation_id)
        .collect();
    assert!(written.len() < N, "the kill came after the end");
    let paid = srv.requests().len();
    assert!(paid > written.len() || paid > 0);

    run_into(&s, &srv, "out2").output().await.assert_code(0);
    let lines = lines_of(&s, "out2");
    let hits: Vec<&ResultLine> = lines.iter().filter(|l| l.cache_hit).collect();
    for h in &hits {
        let g = h.generation_id.as_deref().unwrap_or("");
        assert!(
            written.contains(g),
            "hit {g} has no line in the killed run's results"
        );
    }
    assert!(
        !hits.is_empty(),
        "the killed run wrote answers: they are hits"
    );
    // Whatever the killed run wrote is a hit now; nothing else is.
    assert!(hits.len() <= written.len());
    assert_eq!(srv.requests().len() - paid, N - hits.len());
}
