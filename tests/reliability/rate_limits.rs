//! Guarantee 7: rate limits. Against a server whose limit is lower than the job's `--rpm`
//! (shortened windows): every row completes, 429s stay a small fraction, `Retry-After` is
//! honoured by every worker, and dispatch does not flood when a pause ends.

use orbatch::mock::MockConfig;

use crate::common::*;

#[tokio::test]
async fn a_server_limit_below_the_job_rpm_costs_few_429s_and_no_flood() {
    // The server takes 10 per second; the job asks for 20 per second.
    let srv = mock(MockConfig {
        rpm_limit: Some(10),
        rpm_window_ms: 1000,
        retry_after_secs: 1,
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(40);
    let out = Orb::run(&s, &srv)
        .args([
            "--rpm",
            "20",
            "--rate-window-secs",
            "1",
            "--concurrency",
            "8",
        ])
        .output()
        .await;
    out.assert_code(0);
    assert_all_ok_once(&s.lines(), 40, &[MODEL]);

    let reqs = srv.requests();
    let limited: Vec<f64> = reqs
        .iter()
        .filter(|r| r.status == 429)
        .map(|r| r.at_ms)
        .collect();
    eprintln!("{} requests, {} 429s", reqs.len(), limited.len());
    assert!(
        !limited.is_empty(),
        "the test needs the server to push back"
    );
    let share = limited.len() as f64 / reqs.len() as f64;
    assert!(
        share < 0.2,
        "{} of {} requests were 429s",
        limited.len(),
        reqs.len()
    );

    // Retry-After: 1 s. After a 429, every worker waits it out (the first ms may still bring
    // a request that was already on its way).
    let arrivals: Vec<f64> = reqs.iter().map(|r| r.at_ms).collect();
    for &t in &limited {
        let early: Vec<f64> = arrivals
            .iter()
            .filter(|&&a| a > t + 250.0 && a < t + 950.0)
            .map(|a| a - t)
            .collect();
        assert!(
            early.is_empty(),
            "requests {early:?} ms after a 429 at {t} ms with Retry-After: 1"
        );
    }
    // No flood: never more than 3 arrivals within 100 ms (the job's pace is one per 50 ms).
    for (i, &a) in arrivals.iter().enumerate() {
        let burst = arrivals[i..].iter().take_while(|&&b| b < a + 100.0).count();
        assert!(burst <= 3, "{burst} arrivals within 100 ms from {a} ms");
    }
    assert_eq!(
        s.summary()["requests"]["rate_limited"].as_u64().unwrap(),
        limited.len() as u64
    );
    srv.shutdown().await;
}
