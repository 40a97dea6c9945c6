//! Conventions users expect of a command-line tool (issue 16, items 15 and 16): sampling flags,
//! shell completions, a man page, `--version` with the commit, defaults in `--help`, and a
//! `validate --help` with only its own flags.

use predicates::prelude::*;
use serde_json::Value;

use crate::common::*;

#[test]
fn sampling_flags_and_params_reach_every_request_body() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    let extra = [
        "--temperature",
        "0.2",
        "--top-p",
        "0.9",
        "--seed",
        "7",
        "--param",
        "top_k=40",
        "--param",
        "stop=[\"END\"]",
        "--param",
        "user=\"me\"",
    ];
    wd.run_rows(&mock, 2, &extra).assert().code(0);
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    for r in requests {
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["temperature"], 0.2, "{body}");
        assert_eq!(body["top_p"], 0.9);
        assert_eq!(body["seed"], 7);
        assert_eq!(body["top_k"], 40);
        assert_eq!(body["stop"], serde_json::json!(["END"]));
        assert_eq!(body["user"], "me");
    }
}

#[test]
fn a_param_that_is_not_json_or_reserved_is_refused_before_sending() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    wd.run_rows(&mock, 1, &["--param", "user=me"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("a string needs quotes"));
    wd.run_rows(&mock, 1, &["--param", "model=\"x\""])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("model"));
    assert!(mock.requests().is_empty());
}

#[test]
fn completions_and_the_man_page_cover_every_command() {
    let wd = Workdir::new();
    for shell in ["bash", "zsh", "fish"] {
        wd.command(&["completions", shell]).assert().code(0).stdout(
            predicate::str::contains("retry-failed").and(predicate::str::contains("estimate")),
        );
    }
    wd.command(&["completions", "tcsh"]).assert().code(2);
    wd.command(&["man"]).assert().code(0).stdout(
        predicate::str::starts_with(".ie")
            .or(predicate::str::contains(".TH orbatch"))
            .and(predicate::str::contains("ORBATCH RUN"))
            .and(predicate::str::contains("retry\\-failed")),
    );
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let wd = Workdir::new();
    let out = wd
        .command(&["--version"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("orbatch {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(commit) = commit {
        // Built from this repository: build.rs reruns when HEAD moves, so the binary the
        // tests run names the current commit.
        assert!(
            text.contains(&format!(" ({commit}")),
            "{commit} not in {text}"
        );
    }
}

#[test]
fn help_shows_defaults_and_validate_lists_only_its_flags() {
    let wd = Workdir::new();
    wd.command(&["run", "--help"]).assert().code(0).stdout(
        predicate::str::contains("[default: 16]")
            .and(predicate::str::contains("[default: 6]"))
            .and(predicate::str::contains("[default: 180]"))
            .and(predicate::str::contains("[default: long]")),
    );
    let out = wd
        .command(&["validate", "--help"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in ["--input", "--prompt", "--delimiter", "--limit", "--json"] {
        assert!(help.contains(flag), "{flag} missing from {help}");
    }
    for flag in [
        "--rpm",
        "--tpm",
        "--concurrency",
        "--budget",
        "--max-retries",
        "--timeout",
        "--temperature",
        "--fresh",
        "--retry-failed",
        "--layout",
        "--yes",
    ] {
        assert!(!help.contains(flag), "{flag} in validate --help:\n{help}");
    }
    // Flags a command does not have are refused, not ignored.
    wd.command(&["validate", "--input", "x.csv", "--budget", "1"])
        .assert()
        .code(2);
}

#[test]
fn no_color_leaves_help_and_errors_plain() {
    let wd = Workdir::new();
    let out = wd
        .command(&["run", "--no-such-flag"])
        .env("NO_COLOR", "1")
        .env("CLICOLOR_FORCE", "1")
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(
        !out.stderr.contains(&0x1b),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The control: without NO_COLOR, forced colour is coloured.
    let out = wd
        .command(&["run", "--no-such-flag"])
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(out.stderr.contains(&0x1b));
}
