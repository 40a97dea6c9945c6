//! Judge calls end to end on the mock: `orbatch score` sends the judge calls whose inputs
//! changed (and only those), records each graded line before it acknowledges it, keeps under
//! `--budget`; judge calls share the rate limit with completions; a reply that does not
//! validate is re-asked once, then left unscored.

use rust_decimal::Decimal;

use crate::common::*;
use crate::eval::{JUDGE, job, out_text, setup};
use crate::support::signal;

/// The mock's judge requests: their rubric (the job's) starts with `prefix`.
fn judge_requests(mock: &Mock, prefix: &str) -> Vec<orbatch::mock::RequestRecord> {
    mock.requests()
        .into_iter()
        .filter(|r| r.body.contains(&format!("\"content\":\"{prefix}")))
        .collect()
}

fn charged(reqs: &[orbatch::mock::RequestRecord]) -> Decimal {
    reqs.iter().filter_map(|r| r.cost).sum()
}

fn score(wd: &Workdir, mock: &Mock, extra: &[&str]) -> assert_cmd::assert::Assert {
    let url = mock.url();
    let mut args = vec!["score", "jobs/ev.toml", "--base-url", &url];
    args.extend(extra);
    wd.command(&args).assert()
}

#[test]
fn score_sends_only_the_judge_calls_whose_inputs_changed() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    let rows = setup(&wd, "");
    wd.create("jobs/ev.toml", &(job("") + JUDGE));
    wd.run(&mock, &["jobs/ev.toml"]).assert().code(0);
    let ok = wd
        .results("out/ev")
        .iter()
        .filter(|l| l.status == orbatch::output::Status::Ok)
        .count();
    assert_eq!(ok, 2 * rows.len());
    let after_run = mock.requests().len();

    // A new non-judge check: every line re-scored, no request.
    let regex = "[[checks]]\nname = \"short\"\ntype = \"regex\"\npattern = \"^\\\\w+\\\\.?$\"\n";
    wd.create("jobs/ev.toml", &(job("") + JUDGE + regex));
    score(&wd, &mock, &[]).code(0);
    assert_eq!(
        mock.requests().len(),
        after_run,
        "no request for a new check"
    );

    // The rubric changed: exactly one judge call per ok line, no completion.
    let changed = JUDGE.replace("Grade it.", "Grade it again.");
    wd.create("jobs/ev.toml", &(job("") + &changed + regex));
    // Without a key, the judge calls needed are refused before anything is sent.
    let url = mock.url();
    let args = ["score", "jobs/ev.toml", "--base-url", &url];
    let out = wd
        .command(&args)
        .env_remove("OPENROUTER_API_KEY")
        .assert()
        .code(2);
    assert!(out_text(&out).1.contains("need judge calls"));
    assert_eq!(mock.requests().len(), after_run);
    let out = score(&wd, &mock, &["--json"]).code(0);
    let (stdout, stderr) = out_text(&out);
    let sent = &mock.requests()[after_run..];
    assert_eq!(sent.len(), ok, "one request per ok line");
    let regraded = judge_requests(&mock, "Grade it again.");
    assert_eq!(regraded.len(), ok, "every request is a judge call");
    assert!(
        stderr.contains(&format!("{ok} judge calls sent")),
        "{stderr}"
    );
    let summary: orbatch::output::Summary = serde_json::from_str(&stdout).unwrap();
    let judges = charged(&judge_requests(&mock, "Grade it"));
    assert_eq!(summary.cost_usd.judge_total, judges);
    assert_eq!(summary.cost_usd.total, mock.spent());
    assert_eq!(wd.summary("out/ev").cost_usd.total, mock.spent());
    let lines = wd.results("out/ev");
    assert_eq!(lines.len(), ok, "compacted: one line per key");
    for l in &lines {
        let s = l.scores.as_ref().unwrap();
        assert_eq!(s["grader"] == Some(1.0), s["label"] == Some(1.0), "{l:?}");
    }

    // Nothing changed since: nothing sent.
    score(&wd, &mock, &[]).code(0);
    assert_eq!(mock.requests().len(), after_run + ok);
}

/// `score --budget` below the judges' worst case stops with exit 3 under the cap; what was
/// graded is in results.jsonl, so the next `score` sends only the rest.
#[test]
fn score_keeps_under_its_budget_and_keeps_what_it_graded() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    setup(&wd, "");
    wd.create("jobs/ev.toml", &(job("") + JUDGE));
    wd.run(&mock, &["jobs/ev.toml"]).assert().code(0);
    let ok = wd.results("out/ev").len();
    // Room for a quarter of what the run's judges cost: a few worst cases at a time.
    let judges = wd.summary("out/ev").cost_usd.judge_total;
    let cap = mock.spent() + judges / Decimal::from(4);
    let changed = JUDGE.replace("Grade it.", "Grade it again.");
    wd.create("jobs/ev.toml", &(job("") + &changed));
    let out = score(&wd, &mock, &["--budget", &cap.to_string()]).code(3);
    let (_, stderr) = out_text(&out);
    assert!(stderr.contains("budget"), "{stderr}");
    assert!(mock.spent() <= cap, "{} > {cap}", mock.spent());
    let first = judge_requests(&mock, "Grade it again.").len();
    assert!(first > 0 && first < ok, "{first} of {ok} graded");
    assert_eq!(wd.summary("out/ev").cost_usd.total, mock.spent());
    // Without the cap the rest are sent, none twice.
    score(&wd, &mock, &[]).code(0);
    assert_eq!(judge_requests(&mock, "Grade it again.").len(), ok);
    assert_eq!(wd.summary("out/ev").cost_usd.total, mock.spent());
}

/// Completions and judge calls share one RPM window: the mock, enforcing the same limit on
/// its own clock, answers no 429 and no window holds more than the limit.
#[test]
fn judge_calls_and_completions_share_the_rate_limit() {
    let wd = Workdir::new();
    let (rpm, window_ms) = (10u32, 1000u64);
    let mock = Mock::start(orbatch::mock::MockConfig {
        rpm_limit: Some(rpm),
        rpm_window_ms: window_ms,
        ..Default::default()
    });
    setup(&wd, "");
    wd.create("jobs/ev.toml", &(job("") + JUDGE));
    let args = [
        "jobs/ev.toml",
        "--limit",
        "6",
        "--rpm",
        "10",
        "--rate-window-secs",
        "1",
    ];
    wd.run(&mock, &args).assert().code(0);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 24, "6 rows x 2 models x (completion + judge)");
    assert_eq!(judge_requests(&mock, "Grade it.").len(), 12);
    assert_within_rpm(&reqs, rpm, window_ms);
}

/// A judge reply that is prose is re-asked once, with the reply and the error in the
/// conversation; the re-ask's cost is in `judge_cost_usd`. One that never validates leaves the
/// grade null (unscored, not passed) and is not paid for again by `score`.
#[test]
fn an_invalid_judge_reply_is_re_asked_once_then_left_unscored() {
    for (fault_turns, valid) in [(1u32, true), (0, false)] {
        let wd = Workdir::new();
        let mock = Mock::start(orbatch::mock::MockConfig {
            schema_prose_rate: 1.0,
            schema_fault_turns: fault_turns,
            ..Default::default()
        });
        setup(&wd, "");
        wd.create("jobs/ev.toml", &(job("") + JUDGE));
        wd.run(&mock, &["jobs/ev.toml", "--limit", "5"])
            .assert()
            .code(0);
        let lines = wd.results("out/ev");
        let judged = judge_requests(&mock, "Grade it.");
        assert_eq!(judged.len(), 2 * lines.len(), "one re-ask per judged line");
        let reasks: Vec<_> = judged
            .iter()
            .filter(|r| r.body.contains("\"role\":\"assistant\""))
            .collect();
        assert_eq!(reasks.len(), lines.len());
        assert!(reasks.iter().all(|r| r.body.contains("not valid")));
        let s = wd.summary("out/ev");
        assert_eq!(s.cost_usd.judge_total, charged(&judged));
        assert_eq!(s.cost_usd.total, mock.spent());
        for l in &lines {
            let grade = l.scores.as_ref().unwrap()["grader"];
            assert_eq!(grade.is_some(), valid, "{l:?}");
            if !valid {
                assert_eq!(l.pass, Some(false));
            }
        }
        let sent = mock.requests().len();
        score(&wd, &mock, &[]).code(0);
        assert_eq!(
            mock.requests().len(),
            sent,
            "a recorded reply is not paid again"
        );
    }
}

/// SIGTERM during `score`: exit 3, every judge answer that came back is in results.jsonl
/// (the summary counts what the mock charged), and the next `score` sends only the rest.
#[test]
fn sigterm_during_score_keeps_every_paid_grade() {
    let wd = Workdir::new();
    let mock = Mock::start(orbatch::mock::MockConfig {
        latency_ms: 40,
        ..Default::default()
    });
    setup(&wd, "");
    wd.create("jobs/ev.toml", &(job("") + JUDGE));
    wd.run(&mock, &["jobs/ev.toml"]).assert().code(0);
    let ok = wd.results("out/ev").len();
    let changed = JUDGE.replace("Grade it.", "Grade it again.");
    wd.create("jobs/ev.toml", &(job("") + &changed));
    let url = mock.url();
    let args = [
        "score",
        "jobs/ev.toml",
        "--base-url",
        &url,
        "--concurrency",
        "2",
    ];
    let child = wd
        .std_command()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while judge_requests(&mock, "Grade it again.").len() < 10 {
        assert!(t.elapsed().as_secs() < 30, "score sent no judge call");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let first = judge_requests(&mock, "Grade it again.").len();
    assert!(first < ok, "stopped early: {first} of {ok}");
    assert_eq!(wd.summary("out/ev").cost_usd.total, mock.spent());
    score(&wd, &mock, &[]).code(0);
    assert_eq!(
        judge_requests(&mock, "Grade it again.").len(),
        ok,
        "none twice"
    );
    assert_eq!(wd.summary("out/ev").cost_usd.total, mock.spent());
}
