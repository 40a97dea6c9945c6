//! A newcomer's first hour: honest counts (this run apart from the output dir's totals, cut
//! replies), budget stops that say what to do, `--fresh` that keeps what was paid for, inputs
//! that grew, and machine-readable stops.

use orbatch::mock::MockConfig;

use crate::common::*;

/// Rows appended to the input are accepted on resume and only they are sent; `this_run` counts
/// them alone while `requests` totals every run, and the table says which is which.
#[tokio::test]
async fn appended_rows_are_sent_on_resume_and_this_run_counts_only_them() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(6);
    Orb::run(&s, &srv).output().await.assert_code(0);
    assert_eq!(s.summary()["this_run"]["sent"], 6);

    s.write("in.csv", csv(10).as_bytes());
    let out = Orb::run(&s, &srv).output().await;
    out.assert_code(0);
    assert!(out.stderr.contains("grew"), "{}", out.stderr);
    assert_eq!(srv.requests().len(), 10, "only the 4 new rows were sent");
    assert_all_ok_once(&s.lines(), 10, &[MODEL]);
    let summary = s.summary();
    assert_eq!(summary["this_run"]["sent"], 4);
    assert_eq!(summary["this_run"]["retried"], 0);
    assert_eq!(summary["requests"]["sent"], 10);
    assert!(
        out.stdout.contains("this run: 4 requests sent"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("output dir totals"), "{}", out.stdout);

    // A finished job run again sends nothing: no rate made of a zero-length run.
    let out = Orb::run(&s, &srv).output().await;
    out.assert_code(0);
    let summary = s.summary();
    assert_eq!(summary["this_run"]["sent"], 0);
    assert!(summary["this_run"]["requests_per_min"].is_null());
    assert!(
        out.stdout.contains("this run: 0 requests sent"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("- req/min"), "{}", out.stdout);
    srv.shutdown().await;
}

/// A row changed (not appended) is still refused, and so is a last line that was extended.
#[tokio::test]
async fn a_changed_input_is_still_refused() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(3);
    Orb::run(&s, &srv).output().await.assert_code(0);
    let changed = csv(4).replace("t2", "t2 changed");
    s.write("in.csv", changed.as_bytes());
    let out = Orb::run(&s, &srv).output().await;
    out.assert_code(2);
    assert!(out.stderr.contains("input file"), "{}", out.stderr);

    // An input without its final line break whose last row grows is a change too.
    let s = Scratch::new();
    s.write("in.csv", b"id,text\n1,t1\n2,t2");
    Orb::run(&s, &srv).output().await.assert_code(0);
    s.write("in.csv", b"id,text\n1,t1\n2,t22\n3,t3\n");
    Orb::run(&s, &srv).output().await.assert_code(2);
    srv.shutdown().await;
}

/// Replies cut at max_tokens are counted (`rows.truncated`), shown in results.csv's
/// `finish_reason` and warned about at the end; `--max-tokens 0` is refused.
#[tokio::test]
async fn replies_cut_at_max_tokens_are_counted_and_warned_about() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(5);
    let out = Orb::run(&s, &srv)
        .args(["--max-tokens", "1"])
        .output()
        .await;
    out.assert_code(0);
    let lines = s.lines();
    let cut = lines
        .iter()
        .filter(|l| l.finish_reason.as_deref() == Some("length"))
        .count();
    assert!(cut > 0, "{lines:?}");
    assert_eq!(s.summary()["rows"]["truncated"], cut);
    assert!(
        out.stderr
            .contains(&format!("{cut} replies were cut at max_tokens")),
        "{}",
        out.stderr
    );
    let csv = s.read("out/results.csv");
    let header = csv.lines().next().unwrap_or_default();
    assert!(header.ends_with(",finish_reason"), "{header}");
    assert_eq!(csv.matches(",length").count(), cut, "{csv}");

    let out = Orb::run(&s, &srv)
        .args(["--max-tokens", "0", "--output-dir", "out0"])
        .output()
        .await;
    out.assert_code(2);
    assert!(out.stderr.contains("max_tokens"), "{}", out.stderr);
    srv.shutdown().await;
}

/// A budget stop says to raise `--budget`, and to at least what; `run --json` carries the stop.
#[tokio::test]
async fn a_budget_stop_says_how_far_to_raise_the_budget() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(20);
    let out = Orb::run(&s, &srv)
        .args(["--budget", "0.00002", "--yes", "--json"])
        .output()
        .await;
    out.assert_code(3);
    assert!(
        !out.stderr.contains("run the same command again"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("raise --budget to at least $"),
        "{}",
        out.stderr
    );
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["stop"]["reason"], "budget_reached");
    let at_least = dec(v["stop"]["budget_at_least_usd"].as_str().unwrap());
    assert!(at_least > dec("0.00002"), "{at_least}");
    // With the budget raised to that, the next request goes.
    let n = srv.requests().len();
    let raised = at_least.to_string();
    Orb::run(&s, &srv)
        .args(["--budget", &raised, "--yes"])
        .output()
        .await;
    assert!(srv.requests().len() > n, "the raised budget sent more");

    // A run that ends normally has `"stop": null`.
    let s = Scratch::with_rows(2);
    let out = Orb::run(&s, &srv).args(["--json"]).output().await;
    out.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(v["stop"].is_null(), "{v}");
    srv.shutdown().await;
}

/// `--fresh` keeps the previous results as `results.jsonl.<timestamp>` and says so, and their
/// spend keeps counting against the budget, unless `--fresh --forget-spend`.
#[tokio::test]
async fn fresh_keeps_the_previous_results_and_counts_their_spend() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(6);
    Orb::run(&s, &srv).output().await.assert_code(0);
    let spent = recorded_spend(&s.lines());
    assert!(spent > rust_decimal::Decimal::ZERO);
    let budget = (spent * dec("1.5")).to_string();

    let out = Orb::run(&s, &srv)
        // Without the response cache: --fresh must really send (and pay) again.
        .args(["--fresh", "--no-cache", "--budget", &budget, "--yes"])
        .output()
        .await;
    // The first run's spend still counts: only about half the rows fit.
    out.assert_code(3);
    assert!(out.stderr.contains("kept as"), "{}", out.stderr);
    let kept = |s: &Scratch| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(s.out())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("results.jsonl."))
            .collect()
    };
    let archived = kept(&s);
    assert_eq!(archived.len(), 1, "{archived:?}");
    assert_eq!(
        read_lines(&archived[0]).len(),
        6,
        "the paid results are all kept"
    );
    let second = recorded_spend(&s.lines());
    assert!(spent + second <= spent * dec("1.5"), "{spent} + {second}");
    assert!(s.lines().len() < 6);

    // --forget-spend: the budget counts this run alone.
    let out = Orb::run(&s, &srv)
        .args([
            "--fresh",
            "--forget-spend",
            "--no-cache",
            "--budget",
            &budget,
            "--yes",
        ])
        .output()
        .await;
    out.assert_code(0);
    assert_eq!(kept(&s).len(), 2);
    assert_all_ok_once(&s.lines(), 6, &[MODEL]);
    srv.shutdown().await;
}

/// `validate --json` gives its errors as JSON; `summary` on a file that is not a results file
/// and `models FILTER` matching nothing exit non-zero with a message; the estimate's table
/// fits 80 columns.
#[tokio::test]
async fn machine_readable_errors_and_honest_exits() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(3);
    let out = Orb::new(&s)
        .args(["validate", "--input", "in.csv", "--model", MODEL])
        .args(["--prompt", "{{ missing }}", "--json"])
        .output()
        .await;
    out.assert_code(2);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["valid"], false, "{v}");
    // One error for the variable, naming the rows it affects.
    assert_eq!(v["errors"], 1, "{v}");
    assert_eq!(v["error_list"][0]["line"], 2, "{v}");
    assert!(
        v["error_list"][0]["message"]
            .as_str()
            .unwrap()
            .contains("missing"),
        "{v}"
    );

    let out = Orb::new(&s).args(["summary", "in.csv"]).output().await;
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("not a results file"), "{}", out.stderr);

    let url = srv.base_url();
    let out = Orb::new(&s)
        .args(["models", "no-such-model-xyz", "--base-url", &url])
        .output()
        .await;
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("no model matches"), "{}", out.stderr);

    let out = Orb::new(&s)
        .args(["estimate", "--input", "in.csv", "--prompt", PROMPT])
        .args(["--model", "anthropic/claude-3.5-haiku", "--model", MODEL])
        .args(["--max-tokens", "100000", "--base-url", &url])
        .output()
        .await;
    out.assert_code(0);
    for line in out.stdout.lines().filter(|l| !l.starts_with("note:")) {
        assert!(line.chars().count() <= 80, "{line:?} in\n{}", out.stdout);
    }
    srv.shutdown().await;
}
