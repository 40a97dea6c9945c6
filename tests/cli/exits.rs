//! Exit paths beyond the plain ones (0, 1, 4 and the usage errors are in `contract.rs`, the
//! resumable stops in `stops.rs`): failures that come after requests were sent are never
//! "nothing was sent" (2) nor "some rows failed" (1), and say how to resume.

use std::io::{Seek, SeekFrom, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use orbatch::mock::MockConfig;

use crate::common::*;

/// `n` JSONL rows `{"id":"N","text":"review number N ..."}` of about 1 kB, row N on line N.
fn jsonl_rows(n: usize) -> String {
    let pad = "and more ".repeat(110);
    (1..=n)
        .map(|i| format!("{{\"id\":\"{i}\",\"text\":\"review number {i} {pad}\"}}\n"))
        .collect()
}

/// The rows of `jsonl_rows`, and the line a test changes: far enough from the start that the
/// reader (about 1,200 rows and 64 kB ahead of the dispatcher) has not reached it when the
/// first request arrives.
const ROWS: usize = 1600;
const CHANGED_LINE: usize = 1551;

/// A mock slow enough (10 ms a request, one at a time) for the test to change the input
/// while the run is going.
fn slow_mock() -> Mock {
    Mock::start(MockConfig {
        latency_ms: 10,
        ..Default::default()
    })
}

/// `CMD --input INPUT --model MINI --prompt "{{ text }}" EXTRA --base-url MOCK`.
fn job_args(cmd: &str, input: &str, mock: &Mock, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        cmd,
        "--input",
        input,
        "--model",
        MINI,
        "--prompt",
        "{{ text }}",
    ];
    args.extend_from_slice(extra);
    let url = mock.url();
    args.extend(["--base-url", &url]);
    args.into_iter().map(str::to_string).collect()
}

/// Spawns `orbatch ARGS`, waits for its first request to reach `mock`, then writes `to` over
/// `from` in line [`CHANGED_LINE`] of in.jsonl (same length, in place, as a program that
/// rewrites the file would). The run must stop there with exit 3, naming the line and saying
/// the input changed; returns its stderr.
fn stop_by_changing_a_line(
    wd: &Workdir,
    mock: &Mock,
    args: &[String],
    from: &str,
    to: &str,
) -> String {
    assert_eq!(from.len(), to.len());
    let text = wd.read("in.jsonl");
    let start: usize = text
        .split_inclusive('\n')
        .take(CHANGED_LINE - 1)
        .map(str::len)
        .sum();
    let at = start + text[start..].find(from).unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = wd
        .std_command()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while mock.requests().is_empty() && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(wd.path().join("in.jsonl"))
        .unwrap();
    f.seek(SeekFrom::Start(at as u64)).unwrap();
    f.write_all(to.as_bytes()).unwrap();
    drop(f);
    let o = child.wait_with_output().unwrap();
    let sent = mock.requests().len();
    assert!(
        sent < CHANGED_LINE,
        "sent {sent} requests: the reader had passed line {CHANGED_LINE} before the change, the test proves nothing"
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains(&format!("in.jsonl:{CHANGED_LINE}")), "{err}");
    assert!(err.contains("changed during the run"), "{err}");
    err
}

#[test]
fn an_internal_error_before_sending_exits_2_not_1() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    // results.jsonl cannot be opened: the run fails before its first request.
    std::fs::create_dir_all(wd.path().join("out/in/results.jsonl")).unwrap();
    let a = wd.run_rows(&mock, 3, &[]).assert().code(2);
    assert!(out(&a).1.contains("results.jsonl"), "{}", out(&a).1);
    assert!(mock.requests().is_empty());
}

#[test]
fn an_internal_error_after_sending_exits_3_and_a_rerun_resumes() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    // results.csv cannot be written: the run fails at its end, after every request was sent.
    let csv = wd.path().join("out/in/results.csv");
    std::fs::create_dir_all(&csv).unwrap();
    let a = wd.run_rows(&mock, 3, &[]).assert().code(3);
    let err = out(&a).1;
    assert!(err.contains("results.csv"), "{err}");
    assert!(err.contains("requests were sent"), "{err}");
    assert!(err.contains("run the same command again"), "{err}");
    assert_eq!(mock.requests().len(), 3);
    assert_eq!(wd.results("out/in").len(), 3, "every answer was kept");

    std::fs::remove_dir(&csv).unwrap();
    wd.run_rows(&mock, 3, &[]).assert().code(0);
    assert_eq!(mock.requests().len(), 3, "the re-run sent nothing again");
}

#[test]
fn a_pilot_that_spent_then_failed_exits_3_not_1() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    wd.create("in.csv", &rows_csv(4));
    std::fs::create_dir_all(wd.path().join("out/in/results.csv")).unwrap();
    let args = job_args("estimate", "in.csv", &mock, &["--pilot", "2"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = wd.command(&args).assert().code(3);
    let err = out(&a).1;
    assert!(err.contains("requests were sent"), "{err}");
    assert_eq!(mock.requests().len(), 2, "the pilot sent its rows");
}

#[test]
fn a_row_that_stops_rendering_mid_run_exits_3_naming_it_not_interrupted() {
    let wd = Workdir::new();
    let mock = slow_mock();
    let original = jsonl_rows(ROWS);
    wd.create("in.jsonl", &original);
    let extra = ["--concurrency", "1", "--no-progress"];
    let args = job_args("run", "in.jsonl", &mock, &extra);
    // The row loses its `text` field: it parses, but its prompt no longer renders.
    let err = stop_by_changing_a_line(&wd, &mock, &args, "\"text\"", "\"txet\"");
    assert!(!err.contains("interrupted"), "{err}");
    let sent = mock.requests().len();
    assert_eq!(wd.results("out/in").len(), sent, "every answer was kept");
    assert!(!wd.summary("out/in").complete);

    // With the input as it was, the same command resumes and sends only the rest.
    wd.create("in.jsonl", &original);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    wd.command(&args).assert().code(0);
    assert_eq!(mock.requests().len(), ROWS);
}

#[test]
fn a_pilot_whose_input_breaks_after_it_spent_exits_3_not_2() {
    let wd = Workdir::new();
    let mock = slow_mock();
    wd.create("in.jsonl", &jsonl_rows(ROWS));
    // A pilot of every row sends like a run.
    let extra = ["--concurrency", "1", "--pilot", "100000"];
    let args = job_args("estimate", "in.jsonl", &mock, &extra);
    // The line stops being JSON: the reader fails on it.
    stop_by_changing_a_line(&wd, &mock, &args, "{\"id\"", "[\"id\"");
    assert!(!mock.requests().is_empty());
}

#[test]
fn a_pilot_exits_as_run_does_4_for_a_refused_key_1_for_failed_rows() {
    let wd = Workdir::new();
    let good = "sk-or-v1-good";
    let mock = Mock::start(MockConfig {
        keys: vec![good.into()],
        ..Default::default()
    });
    wd.create("in.csv", &rows_csv(4));
    let args = job_args("estimate", "in.csv", &mock, &["--pilot", "2"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = wd.command(&args).assert().code(4);
    let (stdout, stderr) = out(&a);
    assert!(
        stdout.is_empty(),
        "no estimate from a refused pilot: {stdout}"
    );
    assert!(stderr.contains("authentication refused"), "{stderr}");

    let bad = "nobody/no-such-model";
    let args = job_args(
        "estimate",
        "in.csv",
        &mock,
        &["--pilot", "2", "--model", bad, "--allow-unknown-models"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = wd
        .command(&args)
        .env("OPENROUTER_API_KEY", good)
        .assert()
        .code(1);
    assert!(out(&a).0.contains(bad), "the estimate is printed");
    // The summary of those results says the same.
    wd.command(&["summary", "out/in/results.jsonl"])
        .assert()
        .code(1);
}
