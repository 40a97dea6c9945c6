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

#[tokio::test]
async fn a_row_that_fails_to_render_mid_run_stops_resumably_not_as_an_interruption() {
    // The input passes validation, then its last row is changed in place (same length) so
    // that it no longer renders.
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::new();
    let rows: String = (1..=3000)
        .map(|i| format!("{{\"id\":\"{i}\",\"text\":\"t{i}\"}}\n"))
        .collect();
    s.write("in.jsonl", rows.as_bytes());
    let child = Orb::run(&s, &srv)
        .args(["--input", "in.jsonl", "--concurrency", "2"])
        .spawn();
    until_requests(&srv, 1, Duration::from_secs(20)).await;
    let changed = rows.replace(
        "{\"id\":\"3000\",\"text\":\"t3000\"}",
        "{\"id\":\"3000\",\"txet\":\"t3000\"}",
    );
    assert_eq!(changed.len(), rows.len());
    let mut input = std::fs::OpenOptions::new()
        .write(true)
        .open(s.path("in.jsonl"))
        .unwrap();
    input.write_all(changed.as_bytes()).unwrap();
    drop(input);
    let out = wait(child, Duration::from_secs(60)).await;
    // The input changed under the run: stopped and resumable (3), not "rows failed" (1).
    out.assert_code(3);
    assert!(
        out.stderr
            .contains("in.jsonl:3000: template variable 'text' is missing"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("interrupted"), "{}", out.stderr);
    assert_eq!(s.summary()["complete"], false);
    assert_eq!(
        s.lines().len(),
        srv.requests().len(),
        "every answer recorded"
    );
    srv.shutdown().await;
}

/// The child's peak resident memory so far (VmHWM), in MB.
fn peak_rss_mb(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = text
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    kb.unwrap_or(0) / 1024
}

#[tokio::test]
async fn memory_stays_bounded_with_rows_of_a_megabyte() {
    // 200 rows of 1 MB each and a mock that does not answer: the rows read ahead while the
    // first request waits are bounded by bytes, not only by their number (about 1,000 rows).
    let srv = mock(MockConfig {
        latency_ms: 60_000,
        ..Default::default()
    })
    .await;
    let s = Scratch::new();
    let cell = "x".repeat(1 << 20);
    let mut text = String::from("id,text\n");
    for i in 1..=200 {
        text.push_str(&format!("{i},{cell}\n"));
    }
    s.write("in.csv", text.as_bytes());
    drop(text);
    let mut child = Orb::run(&s, &srv)
        .args(["--concurrency", "1", "--prompt", "{{ text | length }}"])
        .spawn();
    until_requests(&srv, 1, Duration::from_secs(60)).await;
    let pid = child.id().unwrap();
    // Let the reader run ahead until its memory stops growing (or passes the bound).
    let (mut peak, mut still) = (peak_rss_mb(pid), 0);
    while still < 30 && peak < 200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = peak_rss_mb(pid);
        still = if now > peak { 0 } else { still + 1 };
        peak = now;
    }
    signal(pid, "INT");
    let stderr = until_stderr(
        &mut child,
        orbatch::signals::STOPPING,
        Duration::from_secs(20),
    )
    .await;
    signal(pid, "INT");
    // The end phase writes a 200 MB results.csv: slow in a debug build on a loaded machine.
    wait(child, Duration::from_secs(180)).await.assert_code(3);
    drop(stderr);
    assert!(peak > 0, "VmHWM was read");
    assert!(peak < 100, "peak RSS {peak} MB while the reader ran ahead");
    srv.shutdown().await;
}
