//! `estimate --pilot N`: calibration on the mock (whose prompt-token count differs from
//! tiktoken's), and resume: pilot rows are not sent again by the following run.

use std::collections::HashSet;

use orbatch::mock::{MockConfig, MockServer};
use orbatch::output::Summary;
use rust_decimal::Decimal;

use super::{CLAUDE, Dir, GPT, estimate, expect_code, job, run, texts, write_csv};

fn summary(dir: &Dir) -> Summary {
    let text = std::fs::read_to_string(dir.out().join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn relative_error(estimate: Decimal, actual: Decimal) -> Decimal {
    ((estimate - actual) / actual).abs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pilot_of_20_brings_the_expected_cost_within_10_percent() {
    let srv = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = Dir::new();
    let input = write_csv(&dir, &texts(200, 400, 11));
    // No max_tokens: without a pilot the completion length is a pure guess.
    let args = job(&srv, &input, &dir.out(), &[GPT, CLAUDE], None);
    let prior = estimate(&dir, &args).await;
    assert!(prior.pilot.is_none() && prior.total.interval.is_none());

    let mut with_pilot = args.clone();
    with_pilot.extend(["--pilot".to_string(), "20".to_string()]);
    let est = estimate(&dir, &with_pilot).await;
    let pilot_spent = srv.spent();
    let pilot = est.pilot.as_ref().unwrap();
    assert_eq!(pilot["rows"], 20);
    assert_eq!(pilot["requests"], 40);
    let reported: Decimal = pilot["spent_usd"].to_string().parse().unwrap();
    assert!((reported - pilot_spent).abs() < Decimal::new(1, 12));

    let out = run(&dir, &args).await;
    expect_code(&out, 0);
    let actual = summary(&dir).cost_usd.total;
    assert_eq!(actual, srv.spent(), "the summary accounts for every cent");

    let (expected, c) = (est.total.cost_usd.expected.unwrap(), &est.total.cost_usd);
    let err = relative_error(expected, actual);
    eprintln!(
        "200 rows x 2 models: actual {actual}; estimate without pilot {} (error {}), with --pilot 20 {expected} (error {err}); low {} high {}; interval {:?}",
        prior.total.cost_usd.expected.unwrap(),
        relative_error(prior.total.cost_usd.expected.unwrap(), actual),
        c.low.unwrap(),
        c.high.unwrap(),
        est.total.interval,
    );
    assert!(
        err < Decimal::new(10, 2),
        "expected {expected} vs actual {actual}"
    );
    assert!(c.low.unwrap() <= actual && actual <= c.high.unwrap());
    let i = est.total.interval.as_ref().unwrap();
    assert_eq!(i.level, 0.9);
    assert!(c.low.unwrap() <= i.low && i.low <= expected && expected <= i.high);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pilot_rows_are_not_sent_again_by_the_following_run() {
    let srv = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = Dir::new();
    let rows = texts(50, 60, 5);
    let distinct: HashSet<&String> = rows.iter().collect();
    let input = write_csv(&dir, &rows);
    let args = job(&srv, &input, &dir.out(), &[GPT, CLAUDE], Some(24));
    let mut with_pilot = args.clone();
    with_pilot.extend(["--pilot".to_string(), "10".to_string()]);
    let est = estimate(&dir, &with_pilot).await;
    assert_eq!(est.pilot.as_ref().unwrap()["requests"], 20);
    assert_eq!(
        srv.requests().len(),
        20,
        "the pilot sends 10 rows x 2 models"
    );

    // The same pilot again picks the same rows (seeded): nothing new is paid for.
    estimate(&dir, &with_pilot).await;
    assert_eq!(srv.requests().len(), 20);

    let out = run(&dir, &args).await;
    expect_code(&out, 0);
    let sent = srv.requests();
    assert_eq!(sent.len(), 100, "50 rows x 2 models, each sent once");
    let pairs: HashSet<(String, String)> = sent
        .iter()
        .map(|r| (r.model.clone(), r.user.clone()))
        .collect();
    assert_eq!(
        pairs.len(),
        2 * distinct.len(),
        "no (row, model) pair was sent twice"
    );
    let s = summary(&dir);
    assert_eq!((s.rows.ok, s.rows.total), (100, 100));
}
