//! Several shard processes under one rate limit, then `orbatch merge`: the same files and
//! totals as one process; a shard stopped by SIGTERM resumes; merge refuses a missing or a
//! foreign shard unless told `--partial`.

use std::time::{Duration, Instant};

use orbatch::mock::MockConfig;
use orbatch::output::Summary;

use super::support::*;
use super::{run_ok, shard_run};

fn summary_of(s: &Scratch, dir: &str) -> Summary {
    serde_json::from_str(&s.read(&format!("{dir}/summary.json"))).unwrap()
}

fn merge(s: &Scratch, args: &[&str]) -> std::process::Command {
    let mut cmd = s.std_command();
    cmd.arg("merge").args(args);
    cmd
}

/// Three shards at once against a mock limited to the job's own RPM (30 per 3 s): no 429, no
/// rolling window over the limit on the server's clock; the merge equals one process's run.
#[test]
fn three_shards_at_once_keep_the_jobs_rpm_and_merge_to_a_single_runs_files() {
    let s = Scratch::with_rows(60);
    let limited = Mock::start(MockConfig {
        rpm_limit: Some(30),
        rpm_window_ms: 3000,
        ..Default::default()
    });
    let rate = ["--rpm", "30", "--rate-window-secs", "3"];
    let children: Vec<_> = (0..3)
        .map(|k| {
            let shard = format!("{k}/3");
            let mut args = vec!["--shard", &shard];
            args.extend(rate);
            shard_run(&s, &limited.url(), "out/job", &args).output_spawned()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        expect_code(&out, 0);
    }
    let reqs = limited.requests();
    assert_eq!(reqs.len(), 60, "one request per row");
    assert_eq!(reqs.iter().filter(|r| r.status == 429).count(), 0, "no 429");
    let at: Vec<f64> = reqs.iter().map(|r| r.at_ms).collect();
    let busiest = max_in_window(&at, 3000.0);
    assert!(
        busiest <= 30,
        "{busiest} arrivals in one 3 s window, limit 30"
    );

    run_ok(merge(&s, &["out/job"]), 0);
    let single = Mock::plain();
    run_ok(shard_run(&s, &single.url(), "out/single", &[]), 0);
    assert_eq!(
        s.read("out/job/results.csv"),
        s.read("out/single/results.csv")
    );
    let (m, one) = (summary_of(&s, "out/job"), summary_of(&s, "out/single"));
    assert_eq!(m.rows, one.rows);
    assert_eq!(m.cost_usd, one.cost_usd);
    assert_eq!(m.tokens, one.tokens);
    assert!(m.complete);
    let merged = read_lines(&s.path("out/job/results.jsonl"));
    assert_all_ok_once(&merged, 60, &[MODEL]);
    assert_costs_are_the_mocks(&merged, &limited);
    // `orbatch summary` over the shard dirs agrees with the merge.
    let mut cmd = s.std_command();
    cmd.args([
        "summary",
        "out/job/shard-0-of-3",
        "out/job/shard-1-of-3",
        "out/job/shard-2-of-3",
        "--json",
    ]);
    let o = run_ok(cmd, 0);
    let by_summary: Summary = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(by_summary.cost_usd, m.cost_usd);
    assert_eq!(
        (by_summary.rows.ok, by_summary.tokens),
        (m.rows.ok, m.tokens)
    );
}

/// Spawns a command with piped output (a test helper trait on `Command`).
trait SpawnOut {
    fn output_spawned(self) -> std::process::Child;
}

impl SpawnOut for std::process::Command {
    fn output_spawned(mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

#[test]
fn a_shard_stopped_by_sigterm_resumes_and_merge_refuses_missing_or_foreign_shards() {
    let s = Scratch::with_rows(30);
    let slow = Mock::start(MockConfig {
        latency_ms: 150,
        ..Default::default()
    });
    let mut child = shard_run(
        &s,
        &slow.url(),
        "out",
        &["--shard", "0/2", "--concurrency", "2"],
    )
    .output_spawned();
    let t = Instant::now();
    while slow.requests().len() < 3 {
        if let Ok(Some(status)) = child.try_wait() {
            let out = child.wait_with_output().unwrap();
            panic!("exited {status}: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no request reached the mock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    expect_code(&out, 3);
    let dir = s.path("out/shard-0-of-2");
    let before = read_lines(&dir.join("results.jsonl")).len();
    // The shard's share, computed as the binary does.
    let mine = (1..=30)
        .filter(|i| orbatch::shard::Shard::of(&i.to_string(), 2) == 0)
        .count();
    assert!(before < mine, "stopped early: {before} of {mine}");

    // Shard 1 never ran, shard 0 stopped: merge refuses (3), --partial merges what there is.
    let o = run_ok(merge(&s, &["out"]), 3);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("shard 1/2 is missing") && err.contains("shard 0/2 finished"),
        "{err}"
    );
    run_ok(merge(&s, &["out", "--partial"]), 0);
    let partial = summary_of(&s, "out");
    assert!(!partial.complete);
    assert_eq!(partial.rows.ok, before as u64);

    // Restarted, the shard sends only what is left.
    let sent = slow.requests().len();
    run_ok(shard_run(&s, &slow.url(), "out", &["--shard", "0/2"]), 0);
    let lines = read_lines(&dir.join("results.jsonl"));
    let want: Vec<String> = (1..=30)
        .map(|i| i.to_string())
        .filter(|id| orbatch::shard::Shard::of(id, 2) == 0)
        .collect();
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_one_line_per_pair(&lines, &want, &[MODEL]);
    assert!(
        lines
            .iter()
            .all(|l| l.status == orbatch::output::Status::Ok)
    );
    assert!(slow.requests().len() - sent <= mine - before + 2);

    // A shard 1 of another job (another system prompt) is refused, naming what differs.
    let plain = Mock::plain();
    let mut foreign = shard_run(&s, &plain.url(), "other", &["--shard", "1/2"]);
    foreign.args(["--system", "Another job."]);
    run_ok(foreign, 0);
    let o = run_ok(
        merge(
            &s,
            &[
                "out/shard-0-of-2",
                "other/shard-1-of-2",
                "--output-dir",
                "merged",
            ],
        ),
        2,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not a shard of the same job") && err.contains("request.system"),
        "{err}"
    );
    assert!(!s.path("merged/results.jsonl").exists(), "nothing written");
    // The same shard dir twice overlaps.
    std::fs::create_dir_all(s.path("twice")).unwrap();
    run_ok(shard_run(&s, &plain.url(), "out", &["--shard", "1/2"]), 0);
    let o = run_ok(
        merge(
            &s,
            &[
                "out/shard-1-of-2",
                "out/shard-1-of-2",
                "--output-dir",
                "twice",
            ],
        ),
        2,
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("both shard 1"));
    // Both shards there and finished: the merge is complete.
    run_ok(merge(&s, &["out"]), 0);
    let full = summary_of(&s, "out");
    assert!(full.complete, "{full:?}");
    assert_eq!(full.rows.ok, 30);
    assert_all_ok_once(&read_lines(&s.path("out/results.jsonl")), 30, &[MODEL]);
}
