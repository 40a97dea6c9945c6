//! summary.json and the table.

use super::*;
use crate::summary_fields::SUMMARY_FIELDS;

/// The hand-made set used by the summary tests: 2 models, 2 providers, 4 latest lines (one key
/// superseded), 2 errors.
fn sample(dir: &Path) -> PathBuf {
    let p = dir.join("results.jsonl");
    let mut a = ok("1", "m1", Some("0.0000001"));
    a.latency_ms = 100;
    a.finished_at = Some("2024-05-01T10:00:01Z".to_string());
    let mut b = ok("2", "m1", None);
    b.provider = None;
    b.latency_ms = 300;
    b.attempts = 3;
    b.rate_limited_attempts = 2;
    b.unknown_cost_attempts = 1;
    b.reasoning_tokens = Some(5);
    b.cached_tokens = Some(4);
    b.finished_at = Some("2024-05-01T10:00:30Z".to_string());
    let mut c = err("3", "m2", Some("0.02"), ErrorKind::Timeout, "timed out");
    c.provider = Some("Anthropic".to_string());
    c.latency_ms = 200;
    c.attempts = 2;
    c.cost_mismatch = true;
    c.table_cost_usd = Some(dec("0.03"));
    c.finished_at = Some("2024-05-01T10:00:10Z".to_string());
    let mut d = err("4", "m2", None, ErrorKind::Timeout, "timed out");
    d.provider = None;
    d.latency_ms = 400;
    d.prompt_tokens = None;
    d.completion_tokens = None;
    let old = err("1", "m1", Some("9"), ErrorKind::Http, "superseded");
    fs::write(&p, jsonl(&[old, a, b, c, d])).unwrap();
    p
}

#[test]
fn summary_arithmetic_on_a_hand_made_set() {
    let dir = tempfile::tempdir().unwrap();
    let p = sample(dir.path());
    let meta = SummaryMeta {
        job: "j".to_string(),
        total_pairs: Some(6),
        ..SummaryMeta::default()
    };
    let s = summarize(&[p], &meta).unwrap();
    assert_eq!(
        (s.rows.total, s.rows.ok, s.rows.error, s.rows.not_sent),
        (6, 2, 2, 2)
    );
    assert!(!s.complete);
    let q = &s.requests;
    assert_eq!(
        (q.sent, q.retried, q.rate_limited, q.unknown_cost_attempts),
        (7, 3, 2, 1)
    );
    let t = &s.tokens;
    assert_eq!(
        (t.prompt, t.completion, t.reasoning, t.cached),
        (30, 6, 5, 4)
    );
    let c = &s.cost_usd;
    assert_eq!(c.total, dec("0.0200001"));
    assert_eq!(c.table_total, dec("0.0300001"));
    assert_eq!((c.mismatched_rows, c.unknown_rows), (1, 2));
    assert_eq!(c.by_model["m1"], dec("0.0000001"));
    assert_eq!(c.by_model["m2"], dec("0.02"));
    assert_eq!(c.by_provider["OpenAI"], dec("0.0000001"));
    assert_eq!(c.by_provider["Anthropic"], dec("0.02"));
    assert_eq!(c.by_provider["unknown"], Decimal::ZERO);
    assert_eq!(s.models["m2"].error, 2);
    assert_eq!(s.providers["unknown"].rows, 2);
    let timeout = &s.errors_by_kind["timeout"];
    assert_eq!((timeout.count, timeout.cost_usd), (2, dec("0.02")));
    assert_eq!(s.errors_by_kind.len(), 1);
    assert_eq!(s.top_errors.len(), 1);
    assert_eq!(
        (s.top_errors[0].message.as_str(), s.top_errors[0].count),
        ("timed out", 2)
    );
    assert_eq!(
        (s.latency_ms.p50, s.latency_ms.p95, s.latency_ms.max),
        (200, 400, 400)
    );
    assert_eq!(s.started_at.as_deref(), Some("2024-05-01T10:00:00.9Z"));
    assert_eq!(s.finished_at.as_deref(), Some("2024-05-01T10:00:30Z"));
    assert_eq!(s.wall_secs, 29.1);

    // Without a job: total = lines; meta times win.
    let meta = SummaryMeta {
        job: "j".to_string(),
        started_at: Some("2024-05-01T09:00:00Z".to_string()),
        wall_secs: Some(5.0),
        ..SummaryMeta::default()
    };
    let s = summarize(&[dir.path().join("results.jsonl")], &meta).unwrap();
    assert_eq!((s.rows.total, s.rows.not_sent), (4, 0));
    assert!(s.complete);
    assert_eq!(s.started_at.as_deref(), Some("2024-05-01T09:00:00Z"));
    assert_eq!(s.wall_secs, 5.0);
}

#[test]
fn summary_json_has_the_contract_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let p = sample(dir.path());
    let meta = SummaryMeta {
        job: "j".to_string(),
        total_pairs: Some(4),
        ..SummaryMeta::default()
    };
    let s = summarize(&[p], &meta).unwrap();
    let out = dir.path().join("summary.json");
    write_summary_json(&s, &out).unwrap();
    assert_eq!(files_in(dir.path()), ["results.jsonl", "summary.json"]);
    let text = fs::read_to_string(&out).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    // The contract's fields, and inside the maps the entries of this set of lines.
    let deeper = [
        "/finished_at",
        "/cost_usd/by_model/m1",
        "/cost_usd/by_provider/OpenAI",
        "/errors_by_kind/timeout/count",
        "/errors_by_kind/timeout/cost_usd",
    ];
    for path in SUMMARY_FIELDS.iter().chain(&deeper) {
        assert!(v.pointer(path).is_some(), "summary.json lacks {path}");
    }
    assert_eq!(v["complete"], json!(true));
    // Money is an exact JSON number, not a string or a float round-trip.
    assert!(text.contains("\"total\": 0.0200001"), "{text}");
    assert!(text.contains("\"m1\": 0.0000001"), "{text}");
    let back: orbatch::output::Summary = serde_json::from_str(&text).unwrap();
    assert_eq!(back, s);
}

#[test]
fn table_contains_the_totals() {
    let dir = tempfile::tempdir().unwrap();
    let p = sample(dir.path());
    let meta = SummaryMeta {
        job: "review".to_string(),
        total_pairs: Some(6),
        stopped_early: true,
        ..SummaryMeta::default()
    };
    let s = summarize(&[p], &meta).unwrap();
    let t = render_table_plain(&s);
    for needle in [
        "job review: stopped early",
        "rows: 2 ok, 2 error, 2 not sent (of 6)",
        "requests: 7 sent, 3 retried, 2 rate-limited (429)",
        "time: 29.1 s span of the results",
        "total cost: $0.0200001 (price table: $0.0300001; 1 row differs by more than 1%)",
        "cost unknown for 2 rows",
        "1 attempt may have been billed",
        "$0.0000001 + 1 unknown",
        "Anthropic",
        "timeout",
        "timed out",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
    assert!(!t.contains('\u{1b}'), "no escape codes in plain output");
}
