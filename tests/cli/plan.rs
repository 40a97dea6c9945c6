//! The work a run still has to do is counted once (the plan): the pre-flight counts exactly
//! the pairs the dispatcher then sends, and carries the worst case of earlier attempts of
//! unknown charge, as the run's budget does.

use orbatch::output::{ErrorKind, RowError, Status};
use predicates::prelude::*;
use rust_decimal::Decimal;

use crate::common::*;

const JOB: &str = "input = \"in.csv\"\noutput_dir = \"out/p\"\n[request]\nmodels = [\"anthropic/claude-3.5-haiku\"]\nprompt = \"{{ text }}\"\nmax_tokens = 8\n[limits]\nconcurrency = 1\n";

/// The word of the pre-flight's message after `marker`, parsed.
fn preflight_word<T: std::str::FromStr>(stderr: &str, marker: &str) -> T
where
    T::Err: std::fmt::Display,
{
    let at = stderr
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {stderr}"));
    let word = stderr[at + marker.len()..]
        .split(' ')
        .next()
        .unwrap_or_default();
    word.parse()
        .unwrap_or_else(|e| panic!("{e}: {word:?} in {stderr}"))
}

/// The `N` of "the N requests ... still has to send" in the pre-flight's refusal.
fn preflight_count(stderr: &str) -> u64 {
    preflight_word(stderr, "pre-flight: the ")
}

#[test]
fn the_preflight_counts_resumable_pairs_and_the_carried_worst_case() {
    let wd = Workdir::new();
    wd.create("in.csv", &rows_csv(10));
    wd.create("job.toml", JOB);
    let mock = Mock::plain();
    // A capped run stops on the budget with some rows not sent.
    wd.run(&mock, &["job.toml", "--budget", "0.0002", "--yes"])
        .assert()
        .code(3);
    let lines = wd.results("out/p");
    let ok = lines.len() as u64;
    assert!((3..10).contains(&ok), "{ok} lines");
    // Three of them were then stopped mid-attempt by a later run: resumable, each with an
    // attempt of unknown charge of at most $0.5 (1.5 in all).
    let mut text = wd.read("out/p/results.jsonl");
    for l in lines.iter().take(3) {
        let mut l = l.clone();
        l.status = Status::Error;
        l.output = None;
        l.resumable = true;
        l.attempts += 1;
        l.unknown_cost_attempts = 1;
        l.unknown_cost_max_usd = Some(Decimal::new(5, 1));
        l.error = Some(RowError {
            kind: ErrorKind::Network,
            status: None,
            message: "aborted".into(),
        });
        text.push_str(&serde_json::to_string(&l).unwrap());
        text.push('\n');
    }
    wd.create("out/p/results.jsonl", &text);

    // A budget of $1: what was spent plus every reply at its cap fits, but not with the
    // $1.5 the unknown-charge attempts may have cost (the run's budget counts it).
    let out = wd
        .run(&mock, &["job.toml", "--budget", "1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("1.5"));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let counted = preflight_count(&stderr);
    // The rows never sent plus the three resumable ones.
    assert_eq!(counted, 10 - ok + 3, "{stderr}");

    // The dispatcher then sends exactly what the pre-flight counted.
    let mock2 = Mock::plain();
    wd.run(&mock2, &["job.toml"]).assert().code(0);
    assert_eq!(mock2.requests().len() as u64, counted);
}

/// The "could cost up to $X" of the pre-flight's refusal.
fn preflight_high(stderr: &str) -> Decimal {
    preflight_word(stderr, "could cost up to $")
}

/// `--fresh` carries the earlier spend into the run's budget, so the pre-flight counts it too:
/// a budget that covers the fresh run's high estimate but not that plus the carried spend is
/// refused before anything is sent (the run's cap would stop it part way).
#[test]
fn the_preflight_counts_the_spend_fresh_carries() {
    let wd = Workdir::new();
    wd.create("in.csv", &rows_csv(10));
    wd.create("job.toml", JOB);
    let mock = Mock::plain();
    wd.run(&mock, &["job.toml", "--no-cache"]).assert().code(0);
    let spent: Decimal = wd.results("out/p").iter().filter_map(|l| l.cost_usd).sum();
    assert!(spent > Decimal::ZERO);
    let refused = |budget: &str, extra: &[&str]| {
        let args = [
            &["job.toml", "--fresh", "--no-cache", "--budget", budget][..],
            extra,
        ]
        .concat();
        let out = wd.run(&mock, &args).assert().code(2);
        String::from_utf8_lossy(&out.get_output().stderr).to_string()
    };
    let high = preflight_high(&refused("0.0000001", &[]));
    let budget = (high + spent / Decimal::TWO).to_string();
    let stderr = refused(&budget, &[]);
    assert!(stderr.contains("already spent"), "{stderr}");
    let sent = mock.requests().len();
    // --forget-spend: the budget covers this run alone, and it goes on.
    wd.run(
        &mock,
        &[
            "job.toml",
            "--fresh",
            "--forget-spend",
            "--no-cache",
            "--budget",
            &budget,
        ],
    )
    .assert()
    .code(0);
    assert_eq!(mock.requests().len(), sent + 10);
}
