//! The output-dir guarantees: a journal that cannot be written stops the run (exit 3,
//! naming the answers it could not record), the lock cannot be deleted from under a run, a
//! symlinked journal is refused, and temp files of a killed end phase are removed.

use std::time::Duration;

use orbatch::mock::MockConfig;

use crate::common::*;

/// A small tmpfs mounted at a path (unmounted on drop); `None` when the OS does not let this
/// process mount one (not root, no mount namespace).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: std::path::PathBuf, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(&at).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk(at))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The number N in "N finished answer(s) ... could not be recorded".
fn unrecorded(stderr: &str) -> u64 {
    let at = stderr
        .find(" finished answer")
        .unwrap_or_else(|| panic!("no count of unrecorded answers in:\n{stderr}"));
    let digits: String = stderr[..at]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.chars().rev().collect::<String>().parse().unwrap()
}

#[tokio::test]
async fn a_full_disk_stops_the_run_and_names_every_unrecorded_answer() {
    let s = Scratch::with_rows(400);
    let Some(_disk) = SmallDisk::mount(s.path("disk"), "24k") else {
        eprintln!("skipped: this process cannot mount a tmpfs (needs root)");
        return;
    };
    let srv = mock(MockConfig::default()).await;
    let out = Orb::run(&s, &srv)
        .args(["--output-dir", "disk/out", "--concurrency", "4"])
        .output()
        .await;
    out.assert_code(3);
    let sent = srv.requests().len();
    assert!(
        sent < 400,
        "dispatching stopped at the full disk ({sent} sent)"
    );
    let recorded = read_lines(&s.path("disk/out/results.jsonl")).len();
    let lost = unrecorded(&out.stderr);
    assert!(out.stderr.contains("No space left"), "{}", out.stderr);
    assert_eq!(
        recorded as u64 + lost,
        sent as u64,
        "every paid answer is recorded or counted as lost\n{}",
        out.stderr
    );
}

#[tokio::test]
async fn an_output_dir_removed_during_the_run_stops_it_with_exit_3() {
    let s = Scratch::with_rows(60);
    let srv = mock(MockConfig {
        latency_ms: 50,
        ..Default::default()
    })
    .await;
    let child = Orb::run(&s, &srv).args(["--concurrency", "2"]).spawn();
    until_requests(&srv, 6, Duration::from_secs(20)).await;
    std::fs::remove_dir_all(s.out()).unwrap();
    let out = wait(child, Duration::from_secs(60)).await;
    out.assert_code(3);
    assert!(
        out.stderr.contains("removed during the run"),
        "{}",
        out.stderr
    );
    let sent = srv.requests().len();
    assert!(sent < 60, "dispatching stopped ({sent} sent)");
    assert!(unrecorded(&out.stderr) >= 1, "{}", out.stderr);
}

#[tokio::test]
async fn deleting_the_lock_file_does_not_let_a_second_run_in() {
    let s = Scratch::with_rows(40);
    let srv = mock(MockConfig {
        latency_ms: 100,
        ..Default::default()
    })
    .await;
    let mut first = Orb::run(&s, &srv).args(["--concurrency", "1"]).spawn();
    until_requests(&srv, 1, Duration::from_secs(20)).await;
    std::fs::remove_file(s.out().join(".orbatch.lock")).unwrap();

    let other = mock(MockConfig::default()).await;
    let second = Orb::run(&s, &other).output().await;
    second.assert_code(2);
    assert!(
        second.stderr.contains("another orbatch run"),
        "{}",
        second.stderr
    );
    assert!(other.requests().is_empty(), "the second run sent nothing");
    first.start_kill().unwrap();
    let _ = first.wait().await;
}

#[tokio::test]
async fn a_symlinked_journal_is_refused_with_nothing_sent() {
    let s = Scratch::with_rows(3);
    let precious = s.write("precious.txt", b"line one\nhalf a line");
    std::fs::create_dir_all(s.out()).unwrap();
    std::os::unix::fs::symlink(&precious, s.out().join("results.jsonl")).unwrap();
    let srv = mock(MockConfig::default()).await;
    let out = Orb::run(&s, &srv).output().await;
    out.assert_code(2);
    assert!(
        out.stderr.contains("results.jsonl") && out.stderr.contains("symbolic link"),
        "{}",
        out.stderr
    );
    assert!(srv.requests().is_empty(), "nothing sent");
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "line one\nhalf a line"
    );
}

#[tokio::test]
async fn temp_files_of_a_killed_end_phase_are_removed_at_the_next_start() {
    let s = Scratch::with_rows(2);
    std::fs::create_dir_all(s.out()).unwrap();
    // A PID above the kernel's maximum: that process is surely gone.
    let stale = s.out().join(".results.jsonl.tmp-999999999");
    std::fs::write(&stale, b"half a compaction").unwrap();
    let srv = mock(MockConfig::default()).await;
    Orb::run(&s, &srv).output().await.assert_code(0);
    assert!(!stale.exists(), "the stale temp file was removed");
}
