//! Injected faults: every row still ends ok, and the ambiguous attempts are counted, not guessed.

use orbatch::mock::MockConfig;
use orbatch::output::{CostSource, Status};
use rust_decimal::Decimal;

use crate::common::*;

#[test]
fn every_row_ends_ok_through_5xx_errors_in_200_resets_and_malformed_bodies() {
    let wd = Workdir::new();
    let mock = Mock::start(MockConfig {
        error_rate: 0.10,
        error200_rate: 0.05,
        reset_rate: 0.02,
        malformed_rate: 0.02,
        seed: 3,
        ..Default::default()
    });
    let rows = 80;
    wd.create("in.csv", &rows_csv(rows));
    wd.run(
        &mock,
        &[
            "--input",
            "in.csv",
            "--model",
            MINI,
            "--prompt",
            "Label: {{ text }}",
        ],
    )
    .assert()
    .code(0);

    let reqs = mock.requests();
    let count = |o: &str| reqs.iter().filter(|r| r.outcome == o).count() as u64;
    // The seed gives every fault at least once (the dice are deterministic per request).
    for o in ["server_error", "error200", "reset", "malformed"] {
        assert!(count(o) > 0, "no {o} in {:?}", reqs.len());
    }
    assert_eq!(count("ok"), rows as u64, "exactly one good answer per row");

    let lines = wd.results("out/in");
    let ids: Vec<String> = (1..=rows).map(|i| i.to_string()).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_one_line_per_pair(&lines, &ids, &[MINI]);
    assert!(lines.iter().all(|l| l.status == Status::Ok));
    assert!(
        lines
            .iter()
            .all(|l| l.cost_source == Some(CostSource::Response))
    );

    let s = wd.summary("out/in");
    assert_eq!((s.rows.ok, s.rows.error), (rows as u64, 0));
    assert!(s.complete);
    assert_summary_sums(&s, &lines);
    assert_eq!(s.requests.sent, reqs.len() as u64);
    assert_eq!(s.requests.retried, reqs.len() as u64 - rows as u64);
    assert_eq!(
        s.requests.unknown_cost_attempts,
        count("reset") + count("malformed")
    );
    // The known charges are exactly what the mock billed, less the ambiguous attempts'
    // (billed by the mock, never seen by the client).
    let ambiguous: Decimal = reqs
        .iter()
        .filter(|r| r.outcome == "reset" || r.outcome == "malformed")
        .filter_map(|r| r.cost)
        .sum();
    assert_eq!(s.cost_usd.total, mock.spent() - ambiguous);
    // Each row's cost is its own answer's charge (failed attempts were free or unknown).
    let charges = mock.charges();
    for l in &lines {
        assert_eq!(
            l.cost_usd.as_ref(),
            charges.get(l.generation_id.as_deref().unwrap())
        );
    }
}

#[test]
fn hung_requests_time_out_and_are_retried() {
    let wd = Workdir::new();
    let mock = Mock::start(MockConfig {
        hang_rate: 0.15,
        seed: 11,
        ..Default::default()
    });
    wd.run_rows(&mock, 20, &["--timeout", "1"]).assert().code(0);
    let reqs = mock.requests();
    let hangs = reqs.iter().filter(|r| r.outcome == "hang").count() as u64;
    assert!(hangs > 0);
    let lines = wd.results("out/in");
    assert_eq!(lines.len(), 20);
    assert!(lines.iter().all(|l| l.status == Status::Ok));
    let s = wd.summary("out/in");
    assert_eq!(s.requests.sent, reqs.len() as u64);
    // A timed-out attempt may have been billed: it is counted, not guessed.
    assert_eq!(s.requests.unknown_cost_attempts, hangs);
    assert_eq!(s.cost_usd.total, mock.spent());
}
