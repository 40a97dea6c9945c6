//! Guarantee 2: resume. A re-run sends only the keys with no line; `--retry-failed` re-sends the
//! failed ones and their line carries the cumulative attempts and cost; `--fresh` starts over;
//! a new model sends only its pairs; a changed request shape is refused naming the change; a
//! second run on a busy output dir exits 2.

use std::time::Duration;

use orbatch::mock::MockConfig;
use orbatch::output::{ErrorKind, Status};
use rust_decimal::Decimal;

use crate::common::*;

#[tokio::test]
async fn rerun_sends_only_missing_keys_fresh_starts_over_new_model_only_new_pairs() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(8);
    // First run: the first 3 rows only.
    Orb::run(&s, &srv)
        .args(["--limit", "3"])
        .output()
        .await
        .assert_code(0);
    assert_eq!(
        sorted(users_since(&srv, 0)),
        sorted((1..=3).map(user).collect())
    );

    // Re-run: only rows 4..=8.
    let n = srv.requests().len();
    Orb::run(&s, &srv).output().await.assert_code(0);
    assert_eq!(
        sorted(users_since(&srv, n)),
        sorted((4..=8).map(user).collect())
    );
    assert_all_ok_once(&s.lines(), 8, &[MODEL]);

    // Nothing left: a re-run sends nothing.
    let n = srv.requests().len();
    Orb::run(&s, &srv).output().await.assert_code(0);
    assert_eq!(srv.requests().len(), n);

    // A second model: only its 8 pairs.
    let other = "meta-llama/llama-3.3-70b-instruct";
    Orb::run(&s, &srv)
        .args(["--model", MODEL, "--model", other])
        .output()
        .await
        .assert_code(0);
    let new = &srv.requests()[n..];
    assert_eq!(new.len(), 8);
    assert!(new.iter().all(|r| r.model == other), "only the new model");
    assert_all_ok_once(&s.lines(), 8, &[MODEL, other]);

    // --fresh without the response cache (which would answer it): everything again.
    let n = srv.requests().len();
    Orb::run(&s, &srv)
        .args(["--fresh", "--no-cache"])
        .output()
        .await
        .assert_code(0);
    assert_eq!(
        sorted(users_since(&srv, n)),
        sorted((1..=8).map(user).collect())
    );
    assert_all_ok_once(&s.lines(), 8, &[MODEL]);
    srv.shutdown().await;
}

#[tokio::test]
async fn retry_failed_resends_errors_with_cumulative_attempts_and_cost() {
    // Run 1: every attempt ends in a billed `finish_reason: "error"`; 2 attempts per row.
    let bad = mock(MockConfig {
        finish_error_rate: 1.0,
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(4);
    Orb::run(&s, &bad)
        .args(["--max-retries", "1"])
        .output()
        .await
        .assert_code(1);
    let first = latest(&s.lines());
    assert_eq!(first.len(), 4);
    for l in first.values() {
        assert_eq!(l.status, Status::Error);
        assert_eq!(l.attempts, 2);
        assert!(
            l.cost_usd.unwrap() > Decimal::ZERO,
            "partial replies are billed"
        );
    }

    // Run 2 without --retry-failed: nothing is re-sent.
    let good = mock(MockConfig::default()).await;
    Orb::run(&s, &good).output().await.assert_code(1);
    assert_eq!(good.requests().len(), 0);

    // Run 3 with --retry-failed: each failed row once more, and its line adds up both runs.
    Orb::run(&s, &good)
        .args(["--retry-failed"])
        .output()
        .await
        .assert_code(0);
    assert_eq!(
        sorted(users_since(&good, 0)),
        sorted((1..=4).map(user).collect())
    );
    let lines = s.lines();
    assert_all_ok_once(&lines, 4, &[MODEL]);
    for l in &lines {
        let charged = |srv: &orbatch::mock::MockServer| -> Decimal {
            srv.requests()
                .iter()
                .filter(|r| r.user == user(&l.id))
                .filter_map(|r| r.cost)
                .sum()
        };
        assert_eq!(l.attempts, 3, "{l:?}");
        assert_eq!(l.cost_usd, Some(charged(&bad) + charged(&good)), "{l:?}");
    }
    assert_eq!(recorded_spend(&lines), bad.spent() + good.spent());
    bad.shutdown().await;
    good.shutdown().await;
}

#[tokio::test]
async fn non_retryable_error_rows_are_resent_by_retry_failed_only() {
    // An unknown model: 400, one attempt, then a re-run against a mock that knows it.
    let unknown = "acme/new-model";
    let s = Scratch::with_rows(3);
    let srv = mock(MockConfig::default()).await;
    Orb::run(&s, &srv)
        .args(["--model", unknown, "--allow-unknown-models"])
        .output()
        .await
        .assert_code(1);
    for l in s.lines() {
        let e = l.error.as_ref().unwrap();
        assert_eq!(
            (e.kind, e.status, l.attempts),
            (ErrorKind::Http, Some(400), 1)
        );
    }
    let knows = mock(MockConfig {
        unlisted_models: vec![unknown.into()],
        ..Default::default()
    })
    .await;
    Orb::run(&s, &knows)
        .args([
            "--model",
            unknown,
            "--retry-failed",
            "--allow-unknown-models",
        ])
        .output()
        .await
        .assert_code(0);
    assert_eq!(knows.requests().len(), 3);
    assert_all_ok_once(&s.lines(), 3, &[unknown]);
    assert!(s.lines().iter().all(|l| l.attempts == 2));
    srv.shutdown().await;
    knows.shutdown().await;
}

/// Edits the scratch dir's job or input file.
type Change<'a> = Box<dyn Fn(&Scratch) + 'a>;

#[tokio::test]
async fn a_changed_request_shape_is_refused_naming_the_change() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(3);
    let job = |extra: &str, system: &str| {
        format!(
            "input = \"in.csv\"\noutput_dir = \"out\"\n[request]\nmodels = [\"{MODEL}\"]\nsystem = \"{system}\"\nprompt = \"Q: {{{{ text }}}}\"\nmax_tokens = 8\nextra = {{ seed = {extra} }}\n"
        )
    };
    s.write("job.toml", job("7", "Be brief.").as_bytes());
    let run = |s: &Scratch| Orb::run_job(s, &srv);
    run(&s).args(["--limit", "1"]).output().await.assert_code(0);
    let n = srv.requests().len();

    // (what changed, how, the word the refusal must name)
    let cases: Vec<(&str, Change, Vec<&str>, &str)> = vec![
        (
            "extra",
            Box::new(|s: &Scratch| {
                s.write("job.toml", job("8", "Be brief.").as_bytes());
            }),
            vec![],
            "request.extra",
        ),
        (
            "system",
            Box::new(|s: &Scratch| {
                s.write("job.toml", job("7", "Be long.").as_bytes());
            }),
            vec![],
            "request.system",
        ),
        (
            "prompt",
            Box::new(|_| {}),
            vec!["--prompt", "Z: {{ text }}"],
            "request.prompt",
        ),
        (
            "input",
            // A row changed (rows only appended are accepted: see `newcomer`).
            Box::new(|s: &Scratch| {
                s.write("in.csv", csv(3).replace("t2", "t2x").as_bytes());
            }),
            vec![],
            "input file",
        ),
    ];
    for (case, change, flags, named) in cases {
        s.write("job.toml", job("7", "Be brief.").as_bytes());
        s.write("in.csv", csv(3).as_bytes());
        change(&s);
        let out = run(&s).args(flags).output().await;
        out.assert_code(2);
        assert!(
            out.stderr.contains(named),
            "{case}: the refusal names `{named}`:\n{}",
            out.stderr
        );
        assert_eq!(srv.requests().len(), n, "{case}: nothing sent");
    }
    // Limits, retries and budget are not part of the shape.
    s.write("job.toml", job("7", "Be brief.").as_bytes());
    s.write("in.csv", csv(3).as_bytes());
    run(&s)
        .args(["--concurrency", "2", "--max-retries", "0", "--rpm", "6000"])
        .output()
        .await
        .assert_code(0);
    assert_eq!(srv.requests().len(), n + 2);
    srv.shutdown().await;
}

#[tokio::test]
async fn a_second_run_on_a_busy_output_dir_exits_2() {
    let srv = mock(MockConfig {
        latency_ms: 1500,
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(2);
    let first = Orb::run(&s, &srv).args(["--concurrency", "1"]).spawn();
    until_requests(&srv, 1, Duration::from_secs(20)).await;
    let out = Orb::run(&s, &srv).output().await;
    out.assert_code(2);
    assert!(out.stderr.contains("another orbatch run"), "{}", out.stderr);
    assert_eq!(srv.requests().len(), 1, "the second run sent nothing");
    // The first run is not disturbed.
    wait(first, Duration::from_secs(30)).await.assert_code(0);
    assert_all_ok_once(&s.lines(), 2, &[MODEL]);
    srv.shutdown().await;
}
