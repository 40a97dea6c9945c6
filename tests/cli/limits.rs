//! Rate limits as the server sees them (the mock's own arrival log), and Retry-After.

use std::collections::HashMap;

use orbatch::mock::MockConfig;
use orbatch::output::Status;

use crate::common::*;

/// Runs `rows` rows against a mock limited to `rpm` per `window_ms`, with the runner told the
/// same limit and window; checks no 429, no rolling window over the limit, and the throughput.
fn rpm_run(rpm: u32, window_ms: u64, rows: usize, min_share: f64) {
    let wd = Workdir::new();
    let mock = Mock::start(MockConfig {
        rpm_limit: Some(rpm),
        rpm_window_ms: window_ms,
        ..Default::default()
    });
    let rpm_s = rpm.to_string();
    let window_s = (window_ms as f64 / 1000.0).to_string();
    let mut args = vec!["--rpm", &rpm_s];
    if window_ms != 60_000 {
        args.extend(["--rate-window-secs", &window_s]);
    }
    wd.run_rows(&mock, rows, &args).assert().code(0);

    let reqs = mock.requests();
    assert_eq!(reqs.len(), rows, "one request per row, no retries");
    assert_within_rpm(&reqs, rpm, window_ms);
    let at: Vec<f64> = reqs.iter().map(|r| r.at_ms).collect();
    // Throughput: (rows - 1) gaps in the span from first to last arrival.
    let span = at[rows - 1] - at[0];
    let per_window = (rows - 1) as f64 / span * window_ms as f64;
    assert!(
        per_window >= min_share * rpm as f64,
        "{per_window:.2} per window of {window_ms} ms, limit {rpm}"
    );
    let s = wd.summary("out/in");
    assert_eq!((s.rows.ok, s.requests.rate_limited), (rows as u64, 0));
    let ideal_secs = rows as f64 / rpm as f64 * window_ms as f64 / 1000.0;
    assert!(
        s.wall_secs < ideal_secs + 3.0,
        "wall {} s for an ideal {ideal_secs} s",
        s.wall_secs
    );
}

/// A shortened window: 20 per 4 s, 50 rows (~10 s). The runner's 50 ms margin costs ~1.2%
/// of a 4 s window, hence 97%.
#[test]
fn rpm_short_window_no_429_and_no_window_over_the_limit() {
    rpm_run(20, 4000, 50, 0.97);
}

/// LONG (~65 s): the real 60-second window, 120 per minute, 130 rows. The only long test.
#[test]
fn rpm_real_minute_120_no_429_and_at_least_99_percent_of_the_limit() {
    rpm_run(120, 60_000, 130, 0.99);
}

#[test]
fn retry_after_is_the_minimum_wait_before_the_retry() {
    let wd = Workdir::new();
    // 4 per 2 s; every 429 says Retry-After: 3 (the window alone would say <= 2).
    let mock = Mock::start(MockConfig {
        rpm_limit: Some(4),
        rpm_window_ms: 2000,
        retry_after_secs: 3,
        ..Default::default()
    });
    wd.run_rows(&mock, 8, &["--concurrency", "4"])
        .assert()
        .code(0);

    let reqs = mock.requests();
    let limited: Vec<_> = reqs.iter().filter(|r| r.status == 429).collect();
    assert!(!limited.is_empty(), "the runner never hit the limit");
    let mut by_user: HashMap<&str, Vec<f64>> = HashMap::new();
    for r in &reqs {
        by_user.entry(r.user.as_str()).or_default().push(r.at_ms);
    }
    for r in &limited {
        let next = by_user[r.user.as_str()]
            .iter()
            .copied()
            .find(|&t| t > r.at_ms)
            .unwrap_or_else(|| panic!("{:?} was never retried", r.user));
        let gap = next - r.at_ms;
        assert!(gap >= 3000.0, "retried {:?} after {gap:.0} ms", r.user);
    }
    let lines = wd.results("out/in");
    assert!(lines.iter().all(|l| l.status == Status::Ok));
    let s = wd.summary("out/in");
    assert_eq!(s.requests.rate_limited, limited.len() as u64);
    assert_eq!(s.requests.sent, reqs.len() as u64);
}
