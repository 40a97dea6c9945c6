//! Bad input is refused with `FILE:LINE` and exit 2, before any request reaches the server.

use predicates::prelude::*;

use crate::common::*;

/// `validate` and `run` both refuse `args` with exit 2 and `want` on stderr; nothing is sent.
fn refused(wd: &Workdir, args: &[&str], want: &str) {
    let mock = Mock::plain();
    let mut validate = wd.command(&["validate"]);
    validate.args(args);
    validate
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(want));
    wd.run(&mock, args)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(want));
    assert!(mock.requests().is_empty(), "a request was sent");
}

#[test]
fn a_csv_row_with_the_wrong_field_count_is_refused_with_file_and_line() {
    let wd = Workdir::new();
    wd.create("in.csv", "id,text\n1,fine\n2,too,many\n3,fine\n");
    refused(&wd, &PLAIN, "in.csv:3:");
}

#[test]
fn a_non_json_jsonl_line_is_refused_with_file_and_line() {
    let wd = Workdir::new();
    wd.create(
        "data/in.jsonl",
        "{\"id\":1,\"prompt\":\"a\"}\nthis is not json\n{\"id\":3,\"prompt\":\"c\"}\n",
    );
    wd.create(
        "job.toml",
        "input = \"data/in.jsonl\"\n[request]\nmodels = [\"openai/gpt-4o-mini\"]\n",
    );
    refused(&wd, &["job.toml"], "in.jsonl:2:");
}

#[test]
fn a_template_variable_missing_from_a_row_is_refused_before_sending() {
    let wd = Workdir::new();
    wd.create("in.jsonl", "{\"id\":1,\"text\":\"a\"}\n{\"id\":2}\n");
    refused(
        &wd,
        &[
            "--input",
            "in.jsonl",
            "--model",
            MINI,
            "--prompt",
            "{{ text }}",
        ],
        "in.jsonl:2:",
    );
}

#[test]
fn a_job_file_typo_names_the_file_line_and_key() {
    let wd = Workdir::new();
    wd.create("in.csv", "id,text\n1,a\n");
    wd.create(
        "jobs/typo.toml",
        "input = \"../in.csv\"\n\n[request]\nmodels = [\"openai/gpt-4o-mini\"]\n\n[limits]\nconcurency = 3\n",
    );
    let mock = Mock::plain();
    for cmd in ["validate", "run"] {
        let mut c = wd.command(&[cmd, "jobs/typo.toml", "--base-url", &mock.url()]);
        c.assert()
            .code(2)
            .stderr(predicate::str::contains("jobs/typo.toml:7:"))
            .stderr(predicate::str::contains("concurency"));
    }
    assert!(mock.requests().is_empty());
}

#[test]
fn validate_a_good_job_exits_0_and_prints_the_row_count() {
    let wd = Workdir::new();
    wd.create("in.csv", &rows_csv(7));
    wd.create(
        "job.toml",
        "input = \"in.csv\"\n[request]\nmodels = [\"openai/gpt-4o-mini\", \"anthropic/claude-3.5-haiku\"]\nprompt = \"{{ text }}\"\n",
    );
    // validate reads the model list of the endpoint (the mock's), and sends nothing.
    let mock = Mock::plain();
    wd.command(&["validate", "job.toml", "--base-url", &mock.url()])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("7 rows"))
        .stdout(predicate::str::contains("14 requests"));
    let a = wd
        .command(&["validate", "job.toml", "--json", "--base-url", &mock.url()])
        .assert()
        .code(0);
    let v: serde_json::Value = serde_json::from_str(&out(&a).0).unwrap();
    assert_eq!(v["rows"], 7);
    assert_eq!(v["requests"], 14);
    assert!(
        !wd.path().join("out").exists(),
        "validate writes no output dir"
    );
}
