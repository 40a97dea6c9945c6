//! Guarantee 12: generation look-ups that still 404 after their back-off are swept once more at
//! the end of the run, before falling back to the price table. The worker's back-off (about a
//! minute) is shortened with the hidden `--lookup-backoff-scale` flag, so that the record's lag
//! (1.5 s) outlasts it and only the end-of-run sweep can find it.

use orbatch::mock::MockConfig;
use orbatch::output::CostSource;
use rust_decimal::Decimal;

use crate::common::*;

#[tokio::test]
async fn lookups_still_missing_after_the_backoff_are_swept_at_the_end() {
    let srv = mock(MockConfig {
        no_cost: true,
        generation_lag_ms: 1500,
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(2);
    let out = Orb::run(&s, &srv)
        .env("RUST_LOG", "orbatch=info")
        .args(["--lookup-backoff-scale", "0.01", "--concurrency", "2"])
        .output()
        .await;
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("sweeping 2 pending generation look-ups"),
        "{}",
        out.stderr
    );
    let lines = s.lines();
    assert_all_ok_once(&lines, 2, &[MODEL]);
    for l in &lines {
        let charged: Decimal = srv
            .requests()
            .iter()
            .filter(|r| r.user == user(&l.id))
            .filter_map(|r| r.cost)
            .sum();
        assert_eq!(l.cost_source, Some(CostSource::Generation), "{l:?}");
        assert_eq!(l.cost_usd, Some(charged), "{l:?}");
        assert_eq!(l.unknown_cost_attempts, 0);
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn a_record_that_never_appears_falls_back_to_the_price_table() {
    let srv = mock(MockConfig {
        no_cost: true,
        no_generation: true,
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(3);
    let t = std::time::Instant::now();
    let out = Orb::run(&s, &srv)
        .env("RUST_LOG", "orbatch=info")
        .args(["--lookup-backoff-scale", "0.01", "--concurrency", "3"])
        .output()
        .await;
    out.assert_code(0);
    // The server has no /generation at all: look-ups are given up, and no sweep waits for them.
    assert!(
        out.stderr.contains("giving up on generation look-ups"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("sweeping"), "{}", out.stderr);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(6),
        "the run took {:?}",
        t.elapsed()
    );
    for l in s.lines() {
        assert_eq!(l.cost_source, Some(CostSource::PriceTable), "{l:?}");
        assert_eq!(l.cost_usd, l.table_cost_usd);
        assert!(l.cost_usd.unwrap() > Decimal::ZERO);
    }
    srv.shutdown().await;
}
