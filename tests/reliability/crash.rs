//! Guarantee 3: crash safety. `kill -9` at any moment loses at most the requests in flight; the
//! next run repairs a torn last line (says so, drops it), keeps every complete line, and sends
//! exactly the keys that had no complete line.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use orbatch::mock::MockConfig;
use orbatch::output::Status;

use crate::common::*;

const ROWS: usize = 80;

#[tokio::test]
async fn kill_9_at_any_moment_then_resume_sends_exactly_the_unfinished_keys() {
    // (kill after, append a torn half-line before the re-run)
    for (kill_after_ms, tear) in [(300u64, false), (1000, true), (2000, false)] {
        let srv = mock(MockConfig {
            latency_ms: 100,
            ..Default::default()
        })
        .await;
        let s = Scratch::with_rows(ROWS);
        let mut child = Orb::run(&s, &srv).args(["--concurrency", "3"]).spawn();
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        child.start_kill().unwrap(); // SIGKILL
        let status = child.wait().await.unwrap();
        assert!(status.code().is_none(), "killed by a signal, not finished");
        let sent_before = srv.requests().len();

        // What a complete line says is finished.
        let finished: BTreeSet<String> = s
            .lines()
            .into_iter()
            .filter(|l| l.status == Status::Ok)
            .map(|l| l.id)
            .collect();
        assert!(
            finished.len() < ROWS,
            "the kill at {kill_after_ms} ms came after the end; make the run slower"
        );
        let missing: Vec<String> = (1..=ROWS)
            .map(|i| i.to_string())
            .filter(|id| !finished.contains(id))
            .collect();

        if tear {
            assert!(!finished.is_empty(), "no line yet at {kill_after_ms} ms");
            // A crash mid-write: the first half of the line of a key that has no line.
            let id = &missing[0];
            let whole = format!(
                "{{\"id\":\"{id}\",\"model\":\"{MODEL}\",\"status\":\"ok\",\"output\":\"the mock answer is\",\"cost_usd\":0.000001}}"
            );
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(s.out().join("results.jsonl"))
                .unwrap();
            f.write_all(&whole.as_bytes()[..whole.len() / 2]).unwrap();
        }

        let out = Orb::run(&s, &srv)
            .args(["--concurrency", "3"])
            .output()
            .await;
        out.assert_code(0);
        if tear {
            assert!(
                out.stderr.contains("dropped a torn last line"),
                "the repair is reported:\n{}",
                out.stderr
            );
        }
        let resent = sorted(users_since(&srv, sent_before));
        let want = sorted(missing.iter().map(user).collect());
        assert_eq!(
            resent, want,
            "kill at {kill_after_ms} ms: the re-run sends exactly the keys without a complete line"
        );
        let lines = s.lines();
        assert_all_ok_once(&lines, ROWS, &[MODEL]);
        assert!(!s.journal_text().contains("the mock answer is\""));
        srv.shutdown().await;
    }
}
