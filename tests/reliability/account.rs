//! Guarantee 6: account errors. 402 stops dispatching and exits 3 (resumable, no row marked
//! failed for it); 401 exits 4 with a clear message and no result lines; a moderation 403 fails
//! only its own row.

use std::collections::BTreeSet;

use orbatch::mock::MockConfig;
use orbatch::output::{ErrorKind, Status};

use crate::common::*;

#[tokio::test]
async fn credits_exhausted_stops_with_exit_3_and_a_rerun_completes() {
    let srv = mock(MockConfig {
        credit_limit: Some(dec("0.00003")),
        latency_ms: 10,
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(30);
    // The key's remaining credit is below the high estimate: the pre-flight wants --yes.
    let out = Orb::run(&s, &srv)
        .args(["--concurrency", "2"])
        .output()
        .await;
    out.assert_code(2);
    assert!(srv.requests().is_empty());
    let out = Orb::run(&s, &srv)
        .args(["--concurrency", "2", "--yes"])
        .output()
        .await;
    out.assert_code(3);
    assert!(out.stderr.contains("credits exhausted"), "{}", out.stderr);
    let reqs = srv.requests();
    let first_402 = reqs.iter().position(|r| r.status == 402).expect("a 402");
    assert!(
        reqs.len() - first_402 <= 2,
        "dispatch stopped at the first 402 (only in-flight requests after it): {} after",
        reqs.len() - first_402
    );
    let lines = s.lines();
    assert!(!lines.is_empty() && lines.len() < 30);
    assert!(
        lines.iter().all(|l| l.status == Status::Ok),
        "no row is marked failed for a 402"
    );
    assert_eq!(s.summary()["complete"], false);

    let more = mock(MockConfig::default()).await;
    Orb::run(&s, &more).output().await.assert_code(0);
    let done: BTreeSet<String> = lines.iter().map(|l| user(&l.id)).collect();
    let resent = users_since(&more, 0);
    assert_eq!(resent.len(), 30 - done.len());
    assert!(resent.iter().all(|u| !done.contains(u)));
    assert_all_ok_once(&s.lines(), 30, &[MODEL]);
    srv.shutdown().await;
    more.shutdown().await;
}

#[tokio::test]
async fn refused_key_exits_4_with_a_clear_message_and_no_result_lines() {
    let srv = mock(MockConfig {
        keys: vec!["sk-or-v1-mock-another-key".into()],
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(30);
    let out = Orb::run(&s, &srv)
        .args(["--concurrency", "4"])
        .output()
        .await;
    out.assert_code(4);
    assert!(
        out.stderr.contains("authentication refused"),
        "{}",
        out.stderr
    );
    assert!(
        s.lines().is_empty(),
        "no row failed for the key: {:?}",
        s.lines()
    );
    assert!(
        srv.requests().len() <= 4,
        "stopped at once, not 30 refused requests: {}",
        srv.requests().len()
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn a_moderation_403_fails_only_its_row() {
    let srv = mock(MockConfig {
        moderation_rate: 0.3,
        seed: 3,
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(20);
    let out = Orb::run(&s, &srv).output().await;
    out.assert_code(1);
    let flagged: BTreeSet<String> = srv
        .requests()
        .iter()
        .filter(|r| r.outcome == "moderation")
        .map(|r| r.user.clone())
        .collect();
    assert!(!flagged.is_empty() && flagged.len() < 20, "{flagged:?}");
    let lines = s.lines();
    assert_eq!(lines.len(), 20, "every row has its line");
    for l in &lines {
        if flagged.contains(&user(&l.id)) {
            let e = l.error.as_ref().expect("flagged row failed");
            assert_eq!(
                (e.kind, e.status, l.attempts),
                (ErrorKind::Moderation, Some(403), 1)
            );
            assert!(e.message.contains("flagged"), "{}", e.message);
        } else {
            assert_eq!(l.status, Status::Ok, "{l:?}");
        }
    }
    assert_eq!(srv.requests().len(), 20, "a moderation 403 is not retried");
    srv.shutdown().await;
}
