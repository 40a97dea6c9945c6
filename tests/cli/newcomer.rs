//! A newcomer's first hour (issue 16): mock results never leak into a real run, model names are
//! checked before sending, results of models no longer in the job stop counting, over-long
//! prompts are flagged, and a refused run leaves nothing behind.

use predicates::prelude::*;

use crate::common::*;

/// `job.toml` named `demo`, with no output dir: its default is `out/demo` (or `out/demo-mock`).
fn demo_job(wd: &Workdir, rows: usize) {
    wd.create("in.csv", &rows_csv(rows));
    wd.create(
        "job.toml",
        "name = \"demo\"\ninput = \"in.csv\"\n[request]\nmodels = [\"openai/gpt-4o-mini\"]\nprompt = \"{{ text }}\"\nmax_tokens = 8\n",
    );
}

/// `--input in.csv --prompt "{{ text }}" --model MODEL`, then `extra`.
fn args<'a>(model: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--input",
        "in.csv",
        "--prompt",
        "{{ text }}",
        "--model",
        model,
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn mock_runs_have_their_own_output_dir() {
    let wd = Workdir::new();
    demo_job(&wd, 3);
    wd.command(&["run", "job.toml", "--mock", "--no-progress"])
        .assert()
        .code(0);
    assert!(wd.path().join("out/demo-mock/results.jsonl").exists());
    assert!(!wd.path().join("out/demo").exists());
    wd.command(&["estimate", "job.toml", "--mock", "--pilot", "2"])
        .assert()
        .code(0);
    assert!(!wd.path().join("out/demo").exists(), "the pilot too");
    let manifest = wd.read("out/demo-mock/manifest.json");
    assert!(manifest.contains("\"mock\": true"), "{manifest}");
}

#[test]
fn a_resume_against_another_endpoint_is_refused_naming_both() {
    let wd = Workdir::new();
    demo_job(&wd, 3);
    wd.command(&[
        "run",
        "job.toml",
        "--mock",
        "--output-dir",
        "out/demo",
        "--no-progress",
    ])
    .assert()
    .code(0);
    let mock = Mock::plain();
    wd.run(&mock, &["job.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the built-in mock (--mock)"))
        .stderr(predicate::str::contains(mock.url()));
    assert!(mock.requests().is_empty(), "nothing is sent");
    // The same (loopback) server again, even on another port, resumes.
    let other = Mock::plain();
    demo_job(&wd, 3);
    wd.run(&other, &["job.toml", "--output-dir", "out/real"])
        .assert()
        .code(0);
    let again = Mock::plain();
    wd.run(&again, &["job.toml", "--output-dir", "out/real"])
        .assert()
        .code(0);
    assert!(again.requests().is_empty(), "finished rows are not re-sent");
}

#[test]
fn an_unknown_model_is_refused_before_sending_with_a_suggestion() {
    let wd = Workdir::new();
    wd.create("in.csv", &rows_csv(5));
    let mock = Mock::plain();
    let args = args("openai/gpt4o-mini", &[]);
    wd.run(&mock, &args)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "unknown model openai/gpt4o-mini: did you mean openai/gpt-4o-mini?",
        ));
    let mut validate = wd.command(&["validate", "--base-url", &mock.url()]);
    validate
        .args(&args)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean openai/gpt-4o-mini?"));
    assert!(mock.requests().is_empty(), "nothing is sent");
    assert!(
        !wd.path().join("out/in/.orbatch.lock").exists(),
        "no lock left behind"
    );
}

#[test]
fn allow_unknown_models_sends_and_the_breaker_stops_a_model_that_always_fails() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    wd.create("in.csv", &rows_csv(50));
    let unknown = ["--allow-unknown-models", "--concurrency", "1"];
    wd.run(&mock, &args("nobody/no-such-model", &unknown))
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "model nobody/no-such-model: its first 20 requests all failed with the same error",
        ))
        .stderr(predicate::str::contains("not a valid model ID"));
    // The 21st may have been on its way when the 20th failed.
    let sent = mock.requests().len() as u64;
    assert!(
        (20..=21).contains(&sent),
        "{sent} sent: the rest is not sent"
    );
    let s = wd.summary("out/in");
    assert_eq!((s.rows.error, s.rows.not_sent), (sent, 50 - sent));
}

#[test]
fn bare_batch_model_names_map_to_their_slug_and_say_so() {
    let wd = Workdir::new();
    let line = |id: u32| {
        format!(
            "{{\"custom_id\":\"r{id}\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{{\"model\":\"gpt-4o-mini\",\"max_tokens\":8,\"messages\":[{{\"role\":\"user\",\"content\":\"hi {id}\"}}]}}}}\n"
        )
    };
    wd.create("batch.jsonl", &(line(1) + &line(2)));
    let mock = Mock::plain();
    wd.run(&mock, &["--input", "batch.jsonl"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains(
            "model gpt-4o-mini is sent as openai/gpt-4o-mini",
        ));
    let sent: Vec<String> = mock.requests().iter().map(|r| r.model.clone()).collect();
    assert_eq!(sent, vec![MINI.to_string(), MINI.to_string()]);
    let lines = wd.results("out/batch");
    assert!(lines.iter().all(|l| l.model == MINI), "{lines:?}");
}

#[test]
fn results_of_a_model_no_longer_in_the_job_stop_counting() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    wd.run_rows(
        &mock,
        4,
        &["--model", "openai/gpt4o-mini", "--allow-unknown-models"],
    )
    .assert()
    .code(1);
    // The typo fixed: the old failures no longer count.
    wd.run_rows(&mock, 4, &[])
        .assert()
        .code(0)
        .stderr(predicate::str::contains(
            "4 earlier results of models not in this job (openai/gpt4o-mini",
        ));
    let s = wd.summary("out/in");
    assert_eq!((s.rows.total, s.rows.ok, s.rows.error), (4, 4, 0));
    assert!(s.complete);
    assert!(!s.cost_usd.by_model.contains_key("openai/gpt4o-mini"));
    let csv = wd.read("out/in/results.csv");
    assert!(!csv.contains("gpt4o-mini"), "{csv}");
    let kept = wd.results("out/in");
    assert_eq!(
        kept.iter()
            .filter(|l| l.model == "openai/gpt4o-mini")
            .count(),
        4,
        "kept in results.jsonl"
    );
}

/// A row of about 140,000 tokens: longer than every mock model's context but one.
fn huge_row_job(wd: &Workdir) {
    let mut text = String::from("id,text\n1,short\n2,");
    text.push_str(&"hello ".repeat(140_000));
    text.push('\n');
    wd.create("in.csv", &text);
}

#[test]
fn a_prompt_longer_than_the_context_is_flagged_and_refused_by_the_mock() {
    let wd = Workdir::new();
    huge_row_job(&wd);
    let mock = Mock::plain();
    let args = args(MINI, &["--max-tokens", "8"]);
    let flagged = "1 request has a prompt longer than the model's context length";
    let mut validate = wd.command(&["validate", "--base-url", &mock.url()]);
    validate
        .args(&args)
        .assert()
        .code(0)
        .stderr(predicate::str::contains(flagged))
        .stderr(predicate::str::contains("in.csv:3: openai/gpt-4o-mini"));
    let mut estimate = wd.command(&["estimate", "--base-url", &mock.url()]);
    // The estimate says its warnings once, in its report on stdout.
    estimate
        .args(&args)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(flagged));
    wd.run(&mock, &args)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(flagged));
    let lines = wd.results("out/in");
    let long = lines.iter().find(|l| l.id == "2").unwrap();
    let err = long.error.as_ref().unwrap();
    assert_eq!(err.kind.as_str(), "context_length");
    assert!(
        err.message
            .contains("maximum context length is 128000 tokens"),
        "{}",
        err.message
    );
}

#[test]
fn a_run_that_fails_validation_leaves_no_lock_and_no_dir() {
    let wd = Workdir::new();
    wd.create("in.csv", "id,text\n1,fine\n2,too,many\n");
    let mock = Mock::plain();
    wd.run(&mock, &args(MINI, &[])).assert().code(2);
    assert!(!wd.path().join("out/in").exists());
    std::fs::create_dir_all(wd.path().join("kept")).unwrap();
    wd.run(&mock, &args(MINI, &["--output-dir", "kept"]))
        .assert()
        .code(2);
    assert!(wd.path().join("kept").is_dir(), "the user's dir stays");
    assert!(!wd.path().join("kept/.orbatch.lock").exists());
}

#[test]
fn a_missing_key_is_named_before_anything_happens() {
    let wd = Workdir::new();
    demo_job(&wd, 2);
    wd.command(&["run", "job.toml", "--no-progress"])
        .env_remove("OPENROUTER_API_KEY")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("OPENROUTER_API_KEY is not set"));
    assert!(!wd.path().join("out").exists());
}

#[test]
fn mock_runs_leave_no_price_cache() {
    let wd = Workdir::new();
    demo_job(&wd, 2);
    let home = wd.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    for args in [
        vec!["run", "job.toml", "--mock", "--no-progress"],
        vec!["estimate", "job.toml", "--mock"],
        vec!["validate", "job.toml", "--mock"],
    ] {
        wd.command(&args)
            .env("HOME", &home)
            .env_remove("ORBATCH_CACHE_DIR")
            .env_remove("XDG_CACHE_HOME")
            .assert()
            .code(0);
    }
    assert!(
        !home.join(".cache/orbatch").exists(),
        "a --mock run wrote the price cache"
    );
}
