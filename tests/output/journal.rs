//! results.jsonl: repair, recovery, compaction, shard merging.

use super::*;

#[test]
fn journal_appends_and_recovers_state() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("results.jsonl");
    let (mut j, rec) = Journal::open(&p).unwrap();
    assert_eq!(rec.lines, 0);
    assert!(rec.torn.is_none());
    j.append(&ok("1", "m", Some("0.0000001"))).unwrap();
    let mut failed = err("2", "m", Some("0.25"), ErrorKind::Timeout, "slow");
    failed.attempts = 3;
    failed.unknown_cost_attempts = 1;
    failed.rate_limited_attempts = 2;
    j.append(&failed).unwrap();
    j.sync().unwrap();
    drop(j);
    let (_, rec) = Journal::open(&p).unwrap();
    assert_eq!(rec.lines, 2);
    assert!(rec.done.contains(&key_hash("1", "m")));
    let prior = rec.failed.get(&key_hash("2", "m")).unwrap();
    assert_eq!(prior.cost_usd, Some(dec("0.25")));
    assert_eq!(
        (
            prior.attempts,
            prior.unknown_cost_attempts,
            prior.rate_limited_attempts
        ),
        (3, 1, 2)
    );
    assert_eq!(rec.spent, dec("0.2500001"));
}

#[test]
fn torn_line_is_cut_and_every_complete_line_kept() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("results.jsonl");
    let good = jsonl(&[ok("1", "m", Some("0.1")), ok("2", "m", Some("0.2"))]);
    fs::write(&p, format!("{good}{{\"id\":\"3\",\"mod")).unwrap();
    let (mut j, rec) = Journal::open(&p).unwrap();
    let torn = rec.torn.clone().unwrap();
    assert_eq!((torn.line, torn.bytes, torn.kept), (3, 14, false));
    assert_eq!(torn.prefix, "{\"id\":\"3\",\"mod");
    assert_eq!(rec.lines, 2);
    assert_eq!(rec.done.len(), 2);
    assert_eq!(rec.spent, dec("0.3"));
    assert_eq!(fs::read_to_string(&p).unwrap(), good);
    j.append(&ok("3", "m", None)).unwrap();
    drop(j);
    let (_, rec) = Journal::open(&p).unwrap();
    assert_eq!((rec.lines, rec.done.len()), (3, 3));
    assert!(rec.torn.is_none() && rec.bad_lines.is_empty());
}

#[test]
fn torn_line_that_is_whole_is_completed_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("results.jsonl");
    let all = jsonl(&[ok("1", "m", Some("0.1")), ok("2", "m", Some("0.2"))]);
    fs::write(&p, all.trim_end()).unwrap();
    let (_, rec) = Journal::open(&p).unwrap();
    assert!(rec.torn.as_ref().unwrap().kept);
    assert_eq!(rec.done.len(), 2);
    assert_eq!(fs::read_to_string(&p).unwrap(), all);
}

#[test]
fn bad_lines_are_kept_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("results.jsonl");
    let a = jsonl(&[ok("1", "m", Some("0.1"))]);
    let b = jsonl(&[ok("2", "m", Some("0.2"))]);
    let content = format!("{a}not json\n\n{{\"id\":\"x\"}}\n{b}");
    fs::write(&p, &content).unwrap();
    let (_, rec) = Journal::open(&p).unwrap();
    let lines: Vec<u64> = rec.bad_lines.iter().map(|(n, _)| *n).collect();
    assert_eq!(lines, [2, 3, 4]);
    assert_eq!(rec.bad_line_count, 3);
    assert_eq!(rec.bad_lines[1].1, "empty line");
    assert_eq!((rec.lines, rec.done.len()), (5, 2));
    assert_eq!(fs::read_to_string(&p).unwrap(), content);
}

/// Lines are cumulative per key: only the latest line of a key counts.
#[test]
fn spent_counts_the_latest_line_of_each_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("results.jsonl");
    let lines = [
        err("a", "m", Some("0.1"), ErrorKind::Timeout, "t"),
        ok("b", "m", Some("0.2")),
        ok("a", "m", Some("0.3")),
        ok("b", "m", Some("0.25")),
        err("c", "m", None, ErrorKind::Network, "reset"),
    ];
    fs::write(&p, jsonl(&lines)).unwrap();
    let (_, rec) = Journal::open(&p).unwrap();
    assert_eq!(rec.spent, dec("0.55"));
    assert_eq!(rec.done.len(), 2);
    assert_eq!(rec.failed.len(), 1);
    assert!(rec.failed.get(&key_hash("c", "m")).is_some());
}

#[test]
fn compaction_keeps_the_latest_line_and_every_cent() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("results.jsonl");
    let lines = [
        err("a", "m1", Some("0.1"), ErrorKind::Timeout, "t"),
        ok("b", "m1", Some("0.0000002")),
        err("a", "m1", Some("0.15"), ErrorKind::Timeout, "t"),
        ok("a", "m2", Some("0.5")),
        ok("a", "m1", Some("0.3")),
    ];
    fs::write(&p, format!("{}garbage\n", jsonl(&lines))).unwrap();
    let spent_before = Journal::open(&p).unwrap().1.spent;
    let stats = compact(&p).unwrap();
    assert_eq!((stats.kept, stats.dropped, stats.bad_kept), (3, 2, 1));
    assert_eq!(files_in(dir.path()), ["results.jsonl"]);
    let (_, rec) = Journal::open(&p).unwrap();
    assert_eq!(rec.spent, spent_before);
    assert_eq!(rec.spent, dec("0.8000002"));
    // In the order of each key's latest line; the bad line stays where it was.
    let latest = [lines[1].clone(), lines[3].clone(), lines[4].clone()];
    let expected = format!("{}garbage\n", jsonl(&latest));
    assert_eq!(fs::read_to_string(&p).unwrap(), expected);
    // Compacting again changes nothing.
    let again = compact(&p).unwrap();
    assert_eq!((again.kept, again.dropped), (3, 0));
    assert_eq!(fs::read_to_string(&p).unwrap(), expected);
}

#[test]
fn compaction_completes_a_whole_torn_line_and_drops_an_unreadable_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("results.jsonl");
    let whole = jsonl(&[ok("1", "m", Some("0.1")), ok("2", "m", Some("0.2"))]);
    fs::write(&p, whole.trim_end()).unwrap();
    let stats = compact(&p).unwrap();
    assert_eq!((stats.kept, stats.torn_dropped), (2, 0));
    assert_eq!(fs::read_to_string(&p).unwrap(), whole);
    fs::write(&p, format!("{whole}{{\"id\":")).unwrap();
    let stats = compact(&p).unwrap();
    assert_eq!((stats.kept, stats.torn_dropped), (2, 1));
    assert_eq!(fs::read_to_string(&p).unwrap(), whole);
}

#[test]
fn for_each_latest_merges_shards_later_file_wins() {
    let dir = tempfile::tempdir().unwrap();
    let s1 = dir.path().join("shard1.jsonl");
    let s2 = dir.path().join("shard2.jsonl");
    fs::write(
        &s1,
        jsonl(&[
            err("1", "m", Some("0.1"), ErrorKind::Http, "x"),
            ok("2", "m", Some("0.2")),
        ]) + "{bad\n",
    )
    .unwrap();
    fs::write(&s2, jsonl(&[ok("1", "m", Some("0.4")), ok("3", "m", None)])).unwrap();
    let mut seen = Vec::new();
    let stats = for_each_latest(&[s1.clone(), s2], |l| {
        seen.push((l.id, l.status, l.cost_usd))
    })
    .unwrap();
    assert_eq!(
        seen,
        [
            ("2".to_string(), Status::Ok, Some(dec("0.2"))),
            ("1".to_string(), Status::Ok, Some(dec("0.4"))),
            ("3".to_string(), Status::Ok, None),
        ]
    );
    assert_eq!((stats.lines, stats.latest, stats.superseded), (5, 3, 1));
    assert_eq!(stats.bad_lines, 1);
    assert!(stats.bad_examples[0].starts_with(&format!("{}:3: ", s1.display())));
}

#[test]
fn compaction_and_recovery_agree_on_a_later_unreadable_line_of_a_key() {
    // A paid `ok` line, then a line of the same key that has a key but does not parse as a
    // result line (recovery skips it): compaction must keep the paid line, like recovery.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("results.jsonl");
    let paid = jsonl(&[ok("1", "m", Some("0.5")), ok("2", "m", Some("0.25"))]);
    let unreadable = r#"{"id":"1","model":"m","status":"maybe","cost_usd":"x"}"#;
    fs::write(&p, format!("{paid}{unreadable}\n")).unwrap();
    let (_, before) = Journal::open(&p).unwrap();
    assert!(before.done.contains(&key_hash("1", "m")));
    assert_eq!(before.spent, dec("0.75"));

    let stats = compact(&p).unwrap();
    assert_eq!((stats.kept, stats.dropped, stats.bad_kept), (2, 0, 1));
    let (_, after) = Journal::open(&p).unwrap();
    assert!(
        after.done.contains(&key_hash("1", "m")),
        "the paid line is kept"
    );
    assert_eq!(after.spent, dec("0.75"), "no money lost");
    assert!(
        fs::read_to_string(&p).unwrap().contains(unreadable),
        "the bad line is kept"
    );

    let mut seen = Vec::new();
    let read =
        for_each_latest(std::slice::from_ref(&p), |l| seen.push((l.id, l.cost_usd))).unwrap();
    assert_eq!(read.bad_lines, 1);
    assert_eq!(
        seen,
        vec![
            ("1".to_string(), Some(dec("0.5"))),
            ("2".to_string(), Some(dec("0.25")))
        ]
    );
}

#[test]
fn a_symlinked_journal_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("precious.txt");
    fs::write(&target, "line one\nhalf a line").unwrap();
    let p = dir.path().join("results.jsonl");
    std::os::unix::fs::symlink(&target, &p).unwrap();
    let err = Journal::open(&p).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("results.jsonl"), "{err}");
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "line one\nhalf a line"
    );
}

#[test]
fn a_journal_removed_during_the_run_fails_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("results.jsonl");
    let (mut j, _) = Journal::open(&p).unwrap();
    j.append(&ok("1", "m", None)).unwrap();
    fs::remove_file(&p).unwrap();
    let err = j.append(&ok("2", "m", None)).unwrap_err();
    assert!(err.to_string().contains("removed during the run"), "{err}");
}

/// What a line's judge calls cost is spent money too: a resumed run's budget starts from it,
/// also when a key's line was written again (a re-score keeps one line per key).
#[test]
fn recovered_spend_counts_judge_costs_once_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("results.jsonl");
    let mut judged = ok("1", "m", Some("0.1"));
    judged.judge_cost_usd = Some(dec("0.02"));
    let again = judged.clone();
    fs::write(&p, jsonl(&[judged, again, ok("2", "m", Some("0.2"))])).unwrap();
    let (_, rec) = Journal::open(&p).unwrap();
    assert_eq!(rec.spent, dec("0.32"));
}

/// Recovery folds every line's key in one sorted list: a key's latest line decides whether it
/// is done or failed (and its prior), wherever its earlier lines are, and each superseded
/// line's spend and worst case are taken back out exactly.
#[test]
fn recovery_uses_each_keys_latest_line_wherever_its_earlier_lines_are() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("results.jsonl");
    let mut first = err("a", "m", Some("0.1"), ErrorKind::Timeout, "t");
    first.attempts = 2;
    first.unknown_cost_max_usd = Some(dec("0.04"));
    let mut second = err("a", "m", Some("0.15"), ErrorKind::Timeout, "t");
    second.attempts = 5;
    second.unknown_cost_max_usd = Some(dec("0.06"));
    let lines = [
        ok("b", "m", Some("0.2")),
        first,
        err("b", "m", Some("0.3"), ErrorKind::Network, "reset"),
        ok("c", "m", Some("0.01")),
        second,
        ok("b", "m", Some("0.35")),
    ];
    fs::write(&p, jsonl(&lines)).unwrap();
    let (_, rec) = Journal::open(&p).unwrap();
    assert_eq!(rec.spent, dec("0.51"));
    assert_eq!(rec.unknown_max, dec("0.06"));
    assert_eq!(rec.done.len(), 2);
    assert!(rec.done.contains(&key_hash("b", "m")) && rec.done.contains(&key_hash("c", "m")));
    assert_eq!(rec.failed.len(), 1);
    let prior = rec.failed.get(&key_hash("a", "m")).unwrap();
    assert_eq!((prior.attempts, prior.cost_usd), (5, Some(dec("0.15"))));
}
