//! Exit 3: stopped early and resumable (credits exhausted, budget reached).

use orbatch::mock::MockConfig;
use predicates::prelude::*;
use rust_decimal::Decimal;

use crate::common::*;

const JOB: &str = "input = \"in.csv\"\noutput_dir = \"out/s\"\n[request]\nmodels = [\"anthropic/claude-3.5-haiku\"]\nprompt = \"{{ text }}\"\nmax_tokens = 8\n[limits]\nconcurrency = 1\n";

#[test]
fn credits_exhausted_exits_3_and_a_rerun_resumes() {
    let wd = Workdir::new();
    wd.create("in.csv", &rows_csv(10));
    wd.create("job.toml", JOB);
    // About three answers' worth of credit.
    let mock = Mock::start(MockConfig {
        credit_limit: Some(Decimal::new(12, 5)),
        ..Default::default()
    });
    // The key's remaining credit is below the job's high estimate: the pre-flight asks for --yes.
    wd.run(&mock, &["job.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--yes"));
    assert!(mock.requests().is_empty());
    wd.run(&mock, &["job.toml", "--yes"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("402"));
    let done = wd.results("out/s");
    assert!(!done.is_empty() && done.len() < 10, "{} lines", done.len());
    assert!(done.iter().all(|l| l.status == orbatch::output::Status::Ok));
    let s = wd.summary("out/s");
    assert!(!s.complete);
    assert_eq!(s.rows.not_sent, 10 - done.len() as u64);

    // Credits topped up: the re-run sends only the rest.
    let mock2 = Mock::plain();
    wd.run(&mock2, &["job.toml"]).assert().code(0);
    assert_eq!(mock2.requests().len(), 10 - done.len());
    let s = wd.summary("out/s");
    assert!(s.complete);
    assert_eq!(s.rows.ok, 10);
}

#[test]
fn the_budget_caps_the_spend_exits_3_and_holds_across_resumes() {
    let wd = Workdir::new();
    wd.create("in.csv", &rows_csv(10));
    wd.create("job.toml", JOB);
    let mock = Mock::plain();
    let budget = Decimal::new(2, 4); // $0.0002: a few rows of haiku
    wd.run(&mock, &["job.toml", "--budget", "0.0002", "--yes"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("budget"));
    let s = wd.summary("out/s");
    assert!(s.cost_usd.total <= budget, "{}", s.cost_usd.total);
    assert!(mock.spent() <= budget, "the mock charged {}", mock.spent());
    assert!(s.rows.ok > 0 && s.rows.not_sent > 0);

    // The same budget again: still capped across the resume.
    wd.run(&mock, &["job.toml", "--budget", "0.0002", "--yes"])
        .assert()
        .code(3);
    assert!(mock.spent() <= budget, "the mock charged {}", mock.spent());

    // A larger budget finishes the job.
    wd.run(&mock, &["job.toml", "--budget", "1"])
        .assert()
        .code(0);
    let s = wd.summary("out/s");
    assert_eq!(s.rows.ok, 10);
    assert_eq!(s.cost_usd.total, mock.spent());
}

#[test]
fn ctrl_c_stops_dispatching_exits_3_and_a_rerun_resumes() {
    let wd = Workdir::new();
    wd.create("in.csv", &rows_csv(30));
    wd.create("job.toml", JOB);
    let mock = Mock::start(MockConfig {
        latency_ms: 200,
        ..Default::default()
    });
    let bin = assert_cmd::cargo::cargo_bin("orbatch");
    let child = std::process::Command::new(bin)
        .current_dir(wd.path())
        .env("OPENROUTER_API_KEY", KEY)
        .env("ORBATCH_CACHE_DIR", wd.path().join(".cache"))
        .args([
            "run",
            "job.toml",
            "--no-progress",
            "--base-url",
            &mock.url(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until a few answers are in, then interrupt.
    let t = std::time::Instant::now();
    while mock.requests().len() < 3 && t.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let sent = mock.requests().len();
    assert!(sent < 30, "sent {sent}: did not stop");
    let lines = wd.results("out/s");
    assert_eq!(
        lines.len(),
        sent,
        "every request in flight finished and was kept"
    );
    let s = wd.summary("out/s");
    assert!(!s.complete);

    wd.run(&mock, &["job.toml"]).assert().code(0);
    assert_eq!(mock.requests().len(), 30, "the re-run sent only the rest");
    assert_eq!(wd.summary("out/s").rows.ok, 30);
}
