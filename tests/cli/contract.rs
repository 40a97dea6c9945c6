//! The CLI contract of docs/contract.md §1 and §4: commands, flags, exit codes, stdout vs stderr,
//! output file names and fields, and what reaches the server.

use crate::summary_fields::SUMMARY_FIELDS;
use std::io::Read;
use std::process::Stdio;

use predicates::prelude::*;
use serde_json::Value;

use crate::common::*;

const COMMANDS: [&str; 7] = [
    "run",
    "estimate",
    "validate",
    "summary",
    "models",
    "credits",
    "mock-server",
];

/// A small two-model job over three rows, output in `out/j`.
fn small_job(wd: &Workdir) {
    wd.create("in.csv", &rows_csv(3));
    wd.create(
        "job.toml",
        "name = \"j\"\ninput = \"in.csv\"\noutput_dir = \"out/j\"\n[request]\nmodels = [\"openai/gpt-4o-mini\", \"anthropic/claude-3.5-haiku\"]\nprompt = \"Label: {{ text }}\"\nmax_tokens = 8\n",
    );
}

#[test]
fn every_command_has_help_with_an_example() {
    let wd = Workdir::new();
    for cmd in COMMANDS {
        wd.command(&[cmd, "--help"])
            .assert()
            .code(0)
            .stdout(predicate::str::contains("Example"))
            .stdout(predicate::str::contains(format!("orbatch {cmd}")))
            // The key in the environment never shows in --help.
            .stdout(predicate::str::contains(KEY).not());
    }
    let a = wd.command(&["--help"]).assert().code(0);
    let top = out(&a).0;
    for cmd in COMMANDS {
        assert!(top.contains(cmd), "--help does not list {cmd}");
    }
}

#[test]
fn the_overrides_exist_on_run_estimate_and_validate() {
    let wd = Workdir::new();
    let shared = [
        "--input",
        "--output-dir",
        "--model",
        "--prompt",
        "--system",
        "--max-tokens",
        "--limit",
        "--base-url",
        "--id-column",
        "--delimiter",
        "--mock",
        "--json",
        "--api-key-file",
    ];
    // The flags of commands that send: not on `validate` (issue 16, item 16).
    let send = [
        "--rpm",
        "--tpm",
        "--concurrency",
        "--max-retries",
        "--timeout",
        "--budget",
        "--temperature",
        "--top-p",
        "--seed",
        "--param",
    ];
    let own: [(&str, &[&str]); 3] = [
        (
            "run",
            &[
                "--fresh",
                "--retry-failed",
                "--no-progress",
                "--yes",
                "--layout",
            ],
        ),
        ("estimate", &["--pilot", "--pilot-seed", "--refresh-prices"]),
        ("validate", &[]),
    ];
    let has = |help: &str, flag: &str| {
        help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n"))
    };
    for (cmd, extra) in own {
        let a = wd.command(&[cmd, "--help"]).assert().code(0);
        let help = out(&a).0;
        for flag in shared.iter().chain(extra.iter()) {
            assert!(has(&help, flag), "{cmd} --help lacks {flag}");
        }
        for flag in send {
            assert_eq!(
                has(&help, flag),
                cmd != "validate",
                "{cmd} --help and {flag}"
            );
        }
        assert!(
            !help.contains("--rate-window-secs"),
            "a test-only flag shows"
        );
    }
}

#[test]
fn output_files_and_their_field_names() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    small_job(&wd);
    wd.run(&mock, &["job.toml"]).assert().code(0);
    for f in ["results.jsonl", "results.csv", "summary.json"] {
        assert!(wd.path().join("out/j").join(f).is_file(), "{f} missing");
    }
    let first: Value =
        serde_json::from_str(wd.read("out/j/results.jsonl").lines().next().unwrap()).unwrap();
    for field in [
        "id",
        "model",
        "status",
        "output",
        "response_model",
        "finish_reason",
        "generation_id",
        "provider",
        "prompt_tokens",
        "completion_tokens",
        "reasoning_tokens",
        "cached_tokens",
        "cost_usd",
        "cost_source",
        "table_cost_usd",
        "cost_mismatch",
        "latency_ms",
        "attempts",
        "unknown_cost_attempts",
        "error",
        "vars",
    ] {
        assert!(first.get(field).is_some(), "results.jsonl lacks {field}");
    }
    assert!(first["cost_usd"].is_number(), "money is a JSON number");
    let s: Value = serde_json::from_str(&wd.read("out/j/summary.json")).unwrap();
    for path in SUMMARY_FIELDS.iter().chain(&["/finished_at"]) {
        assert!(s.pointer(path).is_some(), "summary.json lacks {path}");
    }
}

#[test]
fn run_json_prints_exactly_summary_json_on_stdout() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    small_job(&wd);
    let a = wd.run(&mock, &["job.toml", "--json"]).assert().code(0);
    let (stdout, stderr) = out(&a);
    let mut printed: Value = serde_json::from_str(&stdout).expect("stdout is one JSON document");
    let file: Value = serde_json::from_str(&wd.read("out/j/summary.json")).unwrap();
    // summary.json, plus why the run stopped early (`null`: it did not).
    let stop = printed.as_object_mut().and_then(|o| o.remove("stop"));
    assert_eq!(stop, Some(Value::Null));
    assert_eq!(printed, file);
    assert!(
        stderr.contains("out/j"),
        "where the results are goes to stderr"
    );
}

#[test]
fn stdout_holds_only_the_table_and_logs_go_to_stderr() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    small_job(&wd);
    let a = wd
        .run(&mock, &["job.toml"])
        .env("RUST_LOG", "debug")
        .env_remove("NO_COLOR")
        .assert()
        .code(0);
    let (stdout, stderr) = out(&a);
    assert!(stdout.contains("total cost"), "{stdout}");
    assert!(stdout.contains(MINI) && stdout.contains(HAIKU));
    for noise in ["orbatch:", "DEBUG", "INFO", "WARN", "results in"] {
        assert!(!stdout.contains(noise), "{noise:?} on stdout:\n{stdout}");
    }
    assert!(stderr.contains("results in"), "{stderr}");
    assert!(stderr.contains("DEBUG"), "RUST_LOG=debug is honoured");
    assert!(
        !stderr.contains('\x1b'),
        "colour codes in logs that are not on a terminal"
    );
    assert!(!stderr.contains(KEY), "the key leaked into the logs");
}

#[test]
fn exit_1_when_some_rows_fail() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    let bad = "nobody/no-such-model";
    wd.run_rows(&mock, 3, &["--model", bad, "--allow-unknown-models"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("3 rows failed"));
    let lines = wd.results("out/in");
    assert_eq!(lines.len(), 6);
    for l in lines.iter().filter(|l| l.model == bad) {
        let e = l.error.as_ref().expect("an error");
        assert_eq!(e.status, Some(400));
        assert_eq!(l.attempts, 1, "a 400 is not retried");
        assert_eq!(l.cost_usd, Some(rust_decimal::Decimal::ZERO));
    }
    let s = wd.summary("out/in");
    assert_eq!((s.rows.ok, s.rows.error), (3, 3));
    assert!(s.errors_by_kind.values().map(|k| k.count).sum::<u64>() == 3);
}

#[test]
fn exit_4_when_the_key_is_refused_and_no_result_lines() {
    let wd = Workdir::new();
    let mock = Mock::start(orbatch::mock::MockConfig {
        keys: vec!["sk-or-v1-good".into()],
        ..Default::default()
    });
    small_job(&wd);
    let a = wd
        .run(&mock, &["job.toml"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("authentication"));
    assert!(!out(&a).1.contains(KEY), "the key is never printed");
    let lines = if wd.path().join("out/j/results.jsonl").is_file() {
        wd.results("out/j")
    } else {
        Vec::new()
    };
    assert!(lines.is_empty(), "{} result lines", lines.len());
    assert!(mock.requests().iter().all(|r| r.status == 401));
    assert!(mock.requests().len() <= 16, "kept sending after a 401");
    // GET /key needs the key (GET /models is public, on OpenRouter as on the mock).
    wd.command(&["credits", "--base-url", &mock.url()])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("authentication"));
}

#[test]
fn exit_2_on_usage_errors_with_nothing_sent() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    small_job(&wd);
    let url = mock.url();
    wd.command(&["run", "job.toml", "--no-such-flag"])
        .assert()
        .code(2);
    wd.command(&["run", "--model", MINI, "--base-url", &url])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("input"));
    wd.command(&["run", "missing.toml", "--base-url", &url])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.toml"));
    wd.command(&["summary", "out/none/results.jsonl"])
        .assert()
        .code(2);
    assert!(mock.requests().is_empty());
}

#[test]
fn a_plain_http_base_url_off_loopback_is_refused() {
    let wd = Workdir::new();
    small_job(&wd);
    let url = "http://example.com/api/v1";
    for args in [
        vec!["run", "job.toml", "--base-url", url, "--no-progress"],
        vec!["validate", "job.toml", "--base-url", url],
        vec!["models", "--base-url", url],
        vec!["credits", "--base-url", url],
    ] {
        wd.command(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("http://"));
    }
    // The environment variable too.
    wd.command(&["models"])
        .env("OPENROUTER_BASE_URL", "http://10.1.2.3/api/v1")
        .assert()
        .code(2);
}

#[test]
fn mock_flag_needs_no_key() {
    let wd = Workdir::new();
    small_job(&wd);
    let a = wd
        .command(&["run", "job.toml", "--mock", "--no-progress", "--json"])
        .env_remove("OPENROUTER_API_KEY")
        .assert()
        .code(0);
    let s: Value = serde_json::from_str(&out(&a).0).unwrap();
    assert_eq!(s["rows"]["ok"], 6);
    for cmd in ["models", "credits"] {
        wd.command(&[cmd, "--mock"])
            .env_remove("OPENROUTER_API_KEY")
            .assert()
            .code(0)
            .stdout(predicate::str::is_empty().not());
    }
    // And without --mock or a key, against OpenRouter: a clear refusal, nothing sent.
    wd.command(&["run", "job.toml", "--no-progress"])
        .env_remove("OPENROUTER_API_KEY")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("OPENROUTER_API_KEY"));
}

#[test]
fn a_closed_stdout_is_a_clean_exit() {
    let wd = Workdir::new();
    let bin = assert_cmd::cargo::cargo_bin("orbatch");
    // The pipeline of the contract, with the writer's own exit status.
    let o = std::process::Command::new("bash")
        .current_dir(wd.path())
        .env("ORBATCH_CACHE_DIR", wd.path().join(".cache"))
        .arg("-c")
        .arg(format!(
            "'{}' models --mock 2>err.txt | head -1 >/dev/null; exit ${{PIPESTATUS[0]}}",
            bin.display()
        ))
        .output()
        .unwrap();
    let err = wd.read("err.txt");
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // A reader that is gone before anything is written.
    for args in [
        vec!["models", "--mock"],
        vec!["models", "--mock", "--json"],
        [&["run", "--mock"][..], &PLAIN, &["--no-progress"]].concat(),
    ] {
        wd.create("in.csv", &rows_csv(2));
        let mut child = std::process::Command::new(&bin)
            .current_dir(wd.path())
            .env("ORBATCH_CACHE_DIR", wd.path().join(".cache"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn summary_reproduces_the_run_table_and_summary_json() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    small_job(&wd);
    let a = wd.run(&mock, &["job.toml"]).assert().code(0);
    let table = out(&a).0;
    let a = wd
        .command(&["summary", "out/j/results.jsonl"])
        .assert()
        .code(0);
    let again = out(&a).0;
    // The time lines differ (this run's counts and wall time vs the span of its lines).
    let strip = |t: &str| -> String {
        t.lines()
            .filter(|l| !l.starts_with("time:") && !l.starts_with("this run:"))
            .filter(|l| !l.starts_with("totals") && !l.starts_with("output dir totals"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(strip(&again), strip(&table));

    let a = wd
        .command(&["summary", "out/j/results.jsonl", "--json"])
        .assert()
        .code(0);
    let mut printed: Value = serde_json::from_str(&out(&a).0).unwrap();
    let mut file: Value = serde_json::from_str(&wd.read("out/j/summary.json")).unwrap();
    for v in [&mut printed, &mut file] {
        let o = v.as_object_mut().unwrap();
        for k in ["wall_secs", "started_at", "finished_at"] {
            assert!(o.remove(k).is_some(), "{k}");
        }
    }
    // Only a run has `this_run` (`orbatch summary` is no run).
    let this_run = file.as_object_mut().and_then(|o| o.remove("this_run"));
    assert_eq!(this_run.map(|t| t["sent"].clone()), Some(Value::from(6)));
    assert_eq!(printed, file);
}

#[test]
fn attribution_headers_and_usage_include_reach_the_server() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    small_job(&wd);
    wd.run(&mock, &["job.toml"]).assert().code(0);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 6);
    for r in &reqs {
        let h = |name: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        assert!(h("http-referer").is_some_and(|v| v.starts_with("https://")));
        assert_eq!(h("x-openrouter-title"), Some("orbatch"));
        assert_eq!(h("x-title"), Some("orbatch"));
        assert!(h("authorization").is_some());
        assert!(h("user-agent").is_some_and(|v| v.starts_with("orbatch/")));
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["usage"], serde_json::json!({"include": true}));
        assert_eq!(body["max_tokens"], 8);
        assert!(body.get("stream").is_none_or(|s| s == false));
    }
}

#[test]
fn extra_body_fields_pass_through_unchanged() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    wd.create("in.csv", &rows_csv(2));
    wd.create(
        "job.toml",
        "input = \"in.csv\"\n[request]\nmodels = [\"openai/gpt-4o-mini\"]\nprompt = \"{{ text }}\"\ntemperature = 0.0\nextra = { seed = 7, provider = { sort = \"price\", order = [\"OpenAI\"] }, transforms = [] }\n",
    );
    wd.run(&mock, &["job.toml"]).assert().code(0);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["seed"], 7);
        assert_eq!(
            body["provider"],
            serde_json::json!({"sort": "price", "order": ["OpenAI"]})
        );
        assert_eq!(body["transforms"], serde_json::json!([]));
        assert_eq!(body["temperature"], 0.0);
        assert_eq!(body["model"], MINI);
    }
}
