use serde_json::json;

use super::page::script_json;
use super::scan::scan;
use super::view::View;

#[test]
fn script_json_cannot_close_its_script_block() {
    let evil = "</script><script>alert(1)</script><!-- & \u{2028}";
    let text = script_json(&json!({ "t": evil })).unwrap();
    assert!(!text.contains(['<', '>', '&', '\u{2028}']), "{text}");
    let back: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back["t"], evil, "the data reads back the same");
}

fn write_lines(dir: &std::path::Path, lines: &[serde_json::Value]) -> std::path::PathBuf {
    let path = dir.join("results.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text + "not json\n").unwrap();
    path
}

fn answer(id: &str, model: &str, label: &str) -> serde_json::Value {
    json!({"id": id, "model": model, "status": "ok", "output": label,
           "parsed": {"sentiment": label}, "latency_ms": 10})
}

#[test]
fn the_scan_finds_failed_and_disagreeing_rows_and_agreement_per_pair() {
    let dir = tempfile::tempdir().unwrap();
    let mut failed = answer("3", "c", "x");
    failed["status"] = json!("error");
    let mut not_passed = answer("4", "a", "pos");
    not_passed["pass"] = json!(false);
    let path = write_lines(
        dir.path(),
        &[
            answer("1", "a", "pos"),
            answer("2", "a", "pos"),
            answer("1", "b", "pos"),
            answer("2", "b", "neg"),
            answer("1", "c", "pos"),
            answer("2", "c", "neg"),
            answer("3", "a", "pos"),
            answer("3", "b", "pos"),
            failed,
            not_passed,
        ],
    );
    let view = View::from_json(&json!({
        "annotation": {"fields": {"sentiment": {"values": {"pos": {"a": 1, "b": 1, "c": 1}}}}}
    }));
    let s = scan(&path, &view).unwrap();
    assert_eq!((s.lines, s.bad_lines), (10, 1));
    assert_eq!(s.raters, ["a", "b", "c"]);
    assert_eq!(s.failed.ids, ["3", "4"]);
    assert_eq!(
        s.disagree.ids,
        ["2"],
        "row 3 lacks c's answer but a and b agree"
    );
    let m = &s.pairs[0].matrix;
    // a-b: rows 1, 2, 3 compared, 1 and 3 agree; b-c: rows 1, 2, both agree; a-c: 1 of 2.
    assert_eq!((m[0][1], m[1][0]), ((2, 3), (2, 3)));
    assert_eq!(m[1][2], (2, 2));
    assert_eq!(m[0][2], (1, 2));
}

#[test]
fn a_summary_without_latency_or_times_draws_no_histogram_or_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_lines(dir.path(), &[answer("1", "a", "pos")]);
    let s = scan(&path, &View::from_json(&json!({}))).unwrap();
    assert!(s.latency.is_none() && s.timeline.is_none());
    assert!(s.pairs.is_empty() && s.disagree.ids.is_empty());
    assert_eq!(s.sample, ["1"]);
}
