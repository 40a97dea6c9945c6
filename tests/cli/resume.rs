//! Resume basics: a re-run sends only the pairs with no line.

use predicates::prelude::*;

use crate::common::*;

fn job(models: &[&str]) -> String {
    let models: Vec<String> = models.iter().map(|m| format!("{m:?}")).collect();
    format!(
        "input = \"in.csv\"\noutput_dir = \"out/r\"\n[request]\nmodels = [{}]\nprompt = \"{{{{ text }}}}\"\n",
        models.join(", ")
    )
}

#[test]
fn a_rerun_sends_nothing_and_exits_0() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    wd.create("in.csv", &rows_csv(5));
    wd.create("job.toml", &job(&[MINI, HAIKU]));
    wd.run(&mock, &["job.toml"]).assert().code(0);
    let sent = mock.requests().len();
    assert_eq!(sent, 10);
    let before = wd.summary("out/r");

    wd.run(&mock, &["job.toml"]).assert().code(0);
    assert_eq!(mock.requests().len(), sent, "a re-run sent requests");
    let lines = wd.results("out/r");
    assert_eq!(lines.len(), 10);
    let after = wd.summary("out/r");
    assert_eq!(after.cost_usd, before.cost_usd);
    assert_eq!(after.rows, before.rows);
    assert!(after.complete);

    // --fresh starts over: the response cache answers it (nothing sent) ...
    wd.run(&mock, &["job.toml", "--fresh"]).assert().code(0);
    assert_eq!(
        mock.requests().len(),
        sent,
        "--fresh is answered by the cache"
    );
    assert!(wd.results("out/r").iter().all(|l| l.cache_hit));
    // ... and with --no-cache every pair is sent again.
    wd.run(&mock, &["job.toml", "--fresh", "--no-cache"])
        .assert()
        .code(0);
    assert_eq!(mock.requests().len(), 2 * sent);
    assert_eq!(wd.results("out/r").len(), 10);
}

#[test]
fn adding_a_model_sends_only_the_new_pairs() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    wd.create("in.csv", &rows_csv(4));
    wd.create("job.toml", &job(&[MINI]));
    wd.run(&mock, &["job.toml"]).assert().code(0);
    assert_eq!(mock.requests().len(), 4);

    wd.create("job.toml", &job(&[MINI, HAIKU]));
    wd.run(&mock, &["job.toml"]).assert().code(0);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 8);
    assert!(reqs[4..].iter().all(|r| r.model == HAIKU));
    let lines = wd.results("out/r");
    assert_one_line_per_pair(&lines, &["1", "2", "3", "4"], &[MINI, HAIKU]);
    let s = wd.summary("out/r");
    assert_eq!((s.rows.total, s.rows.ok), (8, 8));
    assert_eq!(s.cost_usd.total, mock.spent());

    // A changed request shape is refused, naming what changed; nothing is sent.
    wd.run(&mock, &["job.toml", "--prompt", "Other: {{ text }}"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("prompt"));
    assert_eq!(mock.requests().len(), 8);
}

#[test]
fn retry_failed_resends_only_the_failed_pairs() {
    let wd = Workdir::new();
    let flaky = "acme/flaky-model";
    wd.create("in.csv", &rows_csv(3));
    wd.create("job.toml", &job(&[MINI, flaky]));
    // Unknown to the first server (400, not retried): those rows fail.
    let first = Mock::plain();
    wd.run(&first, &["job.toml", "--allow-unknown-models"])
        .assert()
        .code(1);
    // Known to the second: a plain re-run keeps the failures, --retry-failed sends them again.
    let second = Mock::start(orbatch::mock::MockConfig {
        unlisted_models: vec![flaky.to_string()],
        ..Default::default()
    });
    wd.run(&second, &["job.toml", "--allow-unknown-models"])
        .assert()
        .code(1);
    assert!(second.requests().is_empty());
    wd.run(
        &second,
        &["job.toml", "--retry-failed", "--allow-unknown-models"],
    )
    .assert()
    .code(0);
    let reqs = second.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs.iter().all(|r| r.model == flaky));
    let lines = wd.results("out/r");
    assert_one_line_per_pair(&lines, &["1", "2", "3"], &[MINI, flaky]);
    assert!(
        lines
            .iter()
            .all(|l| l.status == orbatch::output::Status::Ok)
    );
    // The failed attempts are still counted.
    assert_eq!(wd.summary("out/r").requests.sent, 9);
}

#[test]
fn a_second_run_into_the_same_output_dir_is_refused() {
    let wd = Workdir::new();
    let mock = Mock::start(orbatch::mock::MockConfig {
        latency_ms: 300,
        ..Default::default()
    });
    wd.create("in.csv", &rows_csv(8));
    wd.create("job.toml", &job(&[MINI]));
    let bin = assert_cmd::cargo::cargo_bin("orbatch");
    let first = std::process::Command::new(bin)
        .current_dir(wd.path())
        .env("OPENROUTER_API_KEY", KEY)
        .env("ORBATCH_CACHE_DIR", wd.path().join(".cache"))
        .args(["run", "job.toml", "--no-progress", "--concurrency", "1"])
        .args(["--base-url", &mock.url()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while mock.requests().is_empty() && t.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    wd.run(&mock, &["job.toml"]).assert().code(2);
    let o = first.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(mock.requests().len(), 8, "the refused run sent nothing");
}
