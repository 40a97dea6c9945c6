//! The record of accepted batches: `kill -9` or Ctrl-C while polling, then a re-run collects
//! the recorded batches and submits no recorded chunk again.

use std::time::Duration;

use orbatch::output::Status;
use rust_decimal::Decimal;

use crate::support::*;
use crate::*;

#[tokio::test]
async fn kill_9_while_polling_then_rerun_creates_no_new_batch_for_recorded_chunks() {
    let srv = mock(batch_mock(5000, |_| {})).await;
    let s = Scratch::with_rows(120);
    batch_job(&s, &[MINI, LLAMA], 50, "");
    let mut child = Orb::run_job(&s, &srv).spawn();
    // Every chunk is submitted (2 models x 3 chunks) and the run is polling.
    let _stderr = until_stderr(&mut child, "in_progress", Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.start_kill().unwrap(); // SIGKILL
    assert!(child.wait().await.unwrap().code().is_none(), "killed");
    let recorded = submitted(&s);
    let created = srv.batch_ledger().len();
    assert_eq!(created, 6);
    assert_eq!(
        recorded.len(),
        created,
        "every accepted batch was recorded at once"
    );
    assert!(
        s.lines().is_empty(),
        "killed before any batch finished: {:?}",
        s.lines().first()
    );

    let out = Orb::run_job(&s, &srv).output().await;
    out.assert_code(0);
    assert_eq!(
        srv.batch_ledger().len(),
        created,
        "no new batch: the recorded ones were polled"
    );
    assert!(out.stderr.contains("still to collect"), "{}", out.stderr);
    let lines = latest_lines(&s);
    assert_eq!(lines.len(), 240);
    assert!(
        lines
            .values()
            .all(|l| l.status == Status::Ok && l.attempts == 1)
    );
    let charged: Decimal = srv.batch_ledger().iter().map(|b| b.cost).sum();
    assert_eq!(rows_sum(&s), charged);
    // A third run has nothing to do.
    let again = Orb::run_job(&s, &srv).output().await;
    again.assert_code(0);
    assert_eq!(srv.batch_ledger().len(), created);
    assert_eq!(s.lines().len(), 240, "nothing written twice");
}

#[tokio::test]
async fn ctrl_c_while_polling_exits_3_and_the_next_run_collects() {
    let srv = mock(batch_mock(4000, |_| {})).await;
    let s = Scratch::with_rows(40);
    batch_job(&s, &[MINI], 5000, "");
    let mut child = Orb::run_job(&s, &srv).spawn();
    let stderr = until_stderr(&mut child, "submitted", Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(child.id().unwrap(), "INT");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    let err = rest_of(stderr).await;
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("keep running server-side"), "{err}");
    let out = Orb::run_job(&s, &srv).output().await;
    out.assert_code(0);
    assert_eq!(srv.batch_ledger().len(), 1);
    assert_eq!(s.lines().len(), 40);
}
