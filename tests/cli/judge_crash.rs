//! `kill -9` while judge calls are in flight, in `run` and in `score`: the next run or score
//! never turns a judge attempt into a line of its own; the money of the attempts a kill left in
//! flight goes onto the judged pair (at its worst case), every ok line ends up graded, and the
//! output dir's spend covers what the mock charged, over-counted by at most the attempts in
//! flight at the kill.

use rust_decimal::Decimal;

use crate::common::*;
use crate::eval::{JUDGE, job, setup};
use crate::support::{latest, signal};

/// The judged lines: the latest per (id, model).
fn latest_lines(wd: &Workdir) -> Vec<orbatch::output::ResultLine> {
    latest(&wd.results("out/ev")).into_values().collect()
}

fn judge_calls(mock: &Mock, prefix: &str) -> usize {
    let needle = format!("\"content\":\"{prefix}");
    mock.requests()
        .iter()
        .filter(|r| r.body.contains(&needle))
        .count()
}

/// The worst cases of the killed process's attempts (its in-flight record) whose pair (for a
/// judge call: the judged pair) has no line among results.jsonl's lines from `since` on: the
/// attempts in flight at the kill, and the answers no line recorded.
fn unwritten_worst(wd: &Workdir, since: usize) -> Decimal {
    let written: std::collections::HashSet<(String, String)> = wd.results("out/ev")[since..]
        .iter()
        .map(|l| (l.id.clone(), l.model.clone()))
        .collect();
    let mut sum = Decimal::ZERO;
    for l in wd.read("out/ev/inflight.jsonl").lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        let worst = match &v["worst"] {
            serde_json::Value::String(s) => s.parse::<Decimal>().unwrap(),
            serde_json::Value::Number(n) => n.to_string().parse::<Decimal>().unwrap(),
            _ => continue,
        };
        let id = v["id"].as_str().unwrap();
        let key = match id.split_once("\u{1f}judge:") {
            Some((row, rest)) => (
                row.to_string(),
                rest.rsplit_once('\u{1f}').unwrap().1.to_string(),
            ),
            None => (id.to_string(), v["model"].as_str().unwrap().to_string()),
        };
        if !written.contains(&key) {
            sum += worst;
        }
    }
    sum
}

/// What `lines` count: known spend plus the worst case of the attempts of unknown charge.
fn counted(lines: &[orbatch::output::ResultLine]) -> Decimal {
    lines
        .iter()
        .map(|l| {
            l.cost_usd.unwrap_or_default()
                + l.judge_cost_usd.unwrap_or_default()
                + l.unknown_cost_max_usd.unwrap_or_default()
        })
        .sum()
}

/// Starts `args` on the binary and returns once the mock has seen `calls` judge requests whose
/// rubric starts with `prefix`.
fn start_judging(
    wd: &Workdir,
    mock: &Mock,
    args: &[&str],
    prefix: &str,
    calls: usize,
) -> std::process::Child {
    let child = wd
        .std_command()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while judge_calls(mock, prefix) < calls {
        assert!(t.elapsed().as_secs() < 30, "no judge call was sent");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child
}

/// [`start_judging`], then SIGKILL.
fn kill_during_judging(wd: &Workdir, mock: &Mock, args: &[&str], prefix: &str, calls: usize) {
    let mut child = start_judging(wd, mock, args, prefix, calls);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(status.code().is_none(), "killed by the signal");
}

/// What the output dir counts after a finished run or score: no judge-key line, one row per
/// (row, model), every ok line graded, its spend (known + worst case of the unknown) at least
/// what the mock charged and over by at most `slack`.
fn check_accounts(wd: &Workdir, mock: &Mock, rows: usize, slack: Decimal) {
    let all = wd.results("out/ev");
    assert!(
        all.iter().all(|l| !l.id.contains("judge:")),
        "a judge attempt became a line: {:?}",
        all.iter().find(|l| l.id.contains("judge:")).map(|l| &l.id)
    );
    let lines = latest_lines(wd);
    assert_eq!(lines.len(), rows * 2);
    let summary = wd.summary("out/ev");
    assert_eq!(summary.rows.total, (rows * 2) as u64, "{:?}", summary.rows);
    assert_eq!(summary.rows.ok + summary.rows.error, (rows * 2) as u64);
    for l in lines
        .iter()
        .filter(|l| l.status == orbatch::output::Status::Ok)
    {
        let grade = l.judge.as_ref().and_then(|j| j.get("grader"));
        assert!(
            grade.is_some_and(|g| g.score.is_some()),
            "{} {} has no grade: {grade:?}",
            l.id,
            l.model
        );
    }
    let known: Decimal = lines
        .iter()
        .map(|l| l.cost_usd.unwrap_or_default() + l.judge_cost_usd.unwrap_or_default())
        .sum();
    assert_eq!(summary.cost_usd.total, known);
    let counted = counted(&lines);
    let spent = mock.spent();
    assert!(counted >= spent, "counted {counted} < charged {spent}");
    assert!(
        counted - spent <= slack,
        "over-counted {} (at most {slack}: the attempts in flight at the kill)",
        counted - spent
    );
}

/// A job with a judge check on a mock that answers after `latency_ms`: the dir, the mock, the
/// number of input rows.
fn judged(latency_ms: u64) -> (Workdir, Mock, usize) {
    let wd = Workdir::new();
    let mock = Mock::start(orbatch::mock::MockConfig {
        latency_ms,
        ..Default::default()
    });
    let rows = setup(&wd, "").len();
    wd.create("jobs/ev.toml", &(job("") + JUDGE));
    (wd, mock, rows)
}

/// Changes the judge's rubric (every grade is stale) and returns `score`'s arguments.
fn change_rubric<'a>(wd: &Workdir, url: &'a str, concurrency: &'a str) -> [&'a str; 6] {
    let changed = JUDGE.replace("Grade it.", "Grade it again.");
    wd.create("jobs/ev.toml", &(job("") + &changed));
    let dir = "jobs/ev.toml";
    [
        "score",
        dir,
        "--base-url",
        url,
        "--concurrency",
        concurrency,
    ]
}

#[test]
fn kill_9_while_judging_in_run_and_in_score_leaves_no_phantom_line_and_loses_no_money() {
    let (wd, mock, rows) = judged(60);
    let url = mock.url();
    let concurrency = 4;
    let c = concurrency.to_string();
    let run = [
        "run",
        "jobs/ev.toml",
        "--base-url",
        &url,
        "--no-progress",
        "--concurrency",
        &c,
    ];
    kill_during_judging(&wd, &mock, &run, "Grade it.", 24);
    let slack = unwritten_worst(&wd, 0);
    assert!(slack > Decimal::ZERO, "the attempts were priced");
    wd.run(&mock, &["jobs/ev.toml"]).assert().code(0);
    wd.command(&["score", "jobs/ev.toml", "--base-url", &url])
        .assert()
        .code(0);
    check_accounts(&wd, &mock, rows, slack);
    let unknown = |wd: &Workdir| -> u32 {
        latest_lines(wd)
            .iter()
            .map(|l| l.unknown_cost_attempts)
            .sum()
    };
    let after_run = unknown(&wd);
    assert!(
        after_run > 0,
        "the attempts in flight count at their worst case"
    );

    // The rubric changed: `score` re-grades every ok line, killed mid-way, then again.
    let score = change_rubric(&wd, &url, &c);
    let before = wd.results("out/ev").len();
    kill_during_judging(&wd, &mock, &score, "Grade it again.", 24);
    let slack = slack + unwritten_worst(&wd, before);
    wd.command(&["score", "jobs/ev.toml", "--base-url", &url])
        .assert()
        .code(0);
    check_accounts(&wd, &mock, rows, slack);
    assert!(
        unknown(&wd) > after_run,
        "the judge calls in flight at the kill count on their judged lines"
    );
}

/// Two SIGTERMs during `score`: the second aborts the judge calls in flight. Their charge is
/// unknown: the judged lines count them at their worst case, so the output dir's spend covers
/// what the mock charged.
#[test]
fn judge_calls_aborted_by_a_second_sigterm_count_at_their_worst_case() {
    let (wd, mock, rows) = judged(400);
    let url = mock.url();
    wd.run(&mock, &["jobs/ev.toml", "--concurrency", "64"])
        .assert()
        .code(0);
    let score = change_rubric(&wd, &url, "8");
    let child = start_judging(&wd, &mock, &score, "Grade it again.", 8);
    signal(child.id(), "TERM");
    std::thread::sleep(std::time::Duration::from_millis(20));
    signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let lines = latest_lines(&wd);
    assert!(
        lines.iter().any(|l| l.unknown_cost_attempts > 0),
        "an aborted judge call counts as an attempt of unknown cost"
    );
    let counted = counted(&lines);
    assert!(
        counted >= mock.spent(),
        "counted {counted} < charged {}",
        mock.spent()
    );
    assert_eq!(lines.len(), rows * 2);
}
