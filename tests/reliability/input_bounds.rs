//! The run reads only what the scan validated, and memory stays bounded by bytes as well as
//! by rows.

use std::io::Write;
use std::time::Duration;

use orbatch::mock::MockConfig;

use crate::common::*;

#[tokio::test]
async fn rows_appended_during_a_run_are_not_sent() {
    // 3,000 rows: the reader is bounded, so it is far from the end of the file when the first
    // request arrives; the rows appended then (one good, one bad) were never validated.
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(3000);
    let child = Orb::run(&s, &srv).args(["--concurrency", "2"]).spawn();
    until_requests(&srv, 1, Duration::from_secs(20)).await;
    let mut input = std::fs::OpenOptions::new()
        .append(true)
        .open(s.path("in.csv"))
        .unwrap();
    input.write_all(b"9001,appended\n9002\n").unwrap();
    drop(input);
    let out = wait(child, Duration::from_secs(60)).await;
    out.assert_code(0);
    assert_eq!(srv.requests().len(), 3000);
    assert!(
        srv.requests().iter().all(|r| r.user != user("appended")),
        "an appended row was sent"
    );
    assert_all_ok_once(&s.lines(), 3000, &[MODEL]);
    srv.shutdown().await;
}
