//! report.html: opened in a real headless Chromium (sections, charts, leaderboard, filters,
//! no request, no console error), markup in replies shown as text, a bounded size for 100,000
//! results, and `run --report`.

#[path = "../support/mod.rs"]
mod support;

mod browser;
mod fixture;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use support::Scratch;

/// The fixture's lines, parsed.
fn lines(s: &Scratch) -> Vec<Value> {
    s.read("out/results.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Ids with a failed result (an error or checks not passed), and ids whose answers differ.
fn expected_filters(lines: &[Value]) -> (usize, usize) {
    let mut failed = BTreeSet::new();
    let mut answers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in lines {
        let id = l["id"].as_str().unwrap().to_string();
        if l["status"] == "error" || l["pass"] == Value::Bool(false) {
            failed.insert(id.clone());
        }
        if l["status"] == "ok" {
            let v = l["parsed"]["sentiment"].as_str().unwrap().to_string();
            answers.entry(id).or_default().insert(v);
        }
    }
    (
        failed.len(),
        answers.values().filter(|v| v.len() > 1).count(),
    )
}

fn report_of_fixture(rows: usize) -> Scratch {
    let s = Scratch::new();
    fixture::write(&s.path("out"), rows);
    s.command(&["report", "out"]).assert().success();
    s
}

#[test]
fn the_report_opens_in_chromium_with_every_section_and_working_filters() {
    let Some(chromium) = browser::chromium("the_report_opens_in_chromium") else {
        return;
    };
    let s = report_of_fixture(60);
    let page = browser::open(
        &chromium,
        &s.path("out/report.html"),
        "#selftest=review%20number%2017",
        &["--dump-dom".into()],
    );
    let dom = &page.dom;
    for id in [
        "job",
        "cost",
        "eval",
        "annotation",
        "timing",
        "errors",
        "rows",
    ] {
        assert!(
            dom.contains(&format!("<section id=\"{id}\">")),
            "section {id} missing"
        );
    }
    let board = &dom[dom.find("<table id=\"leaderboard\">").unwrap()..];
    let board = &board[..board.find("</table>").unwrap()];
    for m in fixture::MODELS {
        assert!(board.contains(m), "the leaderboard names {m}");
    }
    assert!(board.contains("explained") && board.contains("terse"));
    let st = browser::selftest(dom);
    let (failed, disagree) = expected_filters(&lines(&s));
    assert_eq!(
        st["rows"], 60,
        "every row of a small run is in the table: {st}"
    );
    assert_eq!(st["failed"], failed, "the failed filter: {st}");
    assert_eq!(st["disagree"], disagree, "the disagreement filter: {st}");
    assert!(
        failed > 0 && failed < 60 && disagree > 0 && disagree < 60,
        "{failed} {disagree}"
    );
    assert_eq!(st["search"], 1, "the text search finds one row: {st}");
    // 3 cost charts, the scatter, value distribution, heat map, latency, timeline.
    assert_eq!(st["charts"], 8, "{st}");
    assert_eq!(st["resources"], 0, "the page requested something: {st}");
    assert_eq!(st["errors"], serde_json::json!([]), "{st}");
    assert_eq!(st["violations"], serde_json::json!([]), "{st}");
    let console = browser::console_lines(&page.log);
    assert!(console.is_empty(), "console messages: {console:#?}");
}

#[test]
fn replies_names_and_messages_that_are_markup_render_as_text() {
    let s = report_of_fixture(12);
    let html = s.read("out/report.html");
    for evil in [
        "<img src=x",
        "<script>alert",
        "</script><script>",
        "onerror=alert(4)>",
    ] {
        assert!(!html.contains(evil), "{evil:?} reached the page unescaped");
    }
    assert!(html.contains("review-sentiment &lt;script&gt;alert(5)&lt;&#x2f;script&gt;"));
    let Some(chromium) = browser::chromium("replies_render_as_text") else {
        return;
    };
    let page = browser::open(
        &chromium,
        &s.path("out/report.html"),
        "#selftest",
        &["--dump-dom".into()],
    );
    let dom = &page.dom;
    assert!(!dom.contains("<img"), "an <img> element was created");
    assert!(
        dom.contains(
            "&lt;script&gt;alert(1)&lt;/script&gt;\"&gt;&lt;img src=x onerror=alert(2)&gt;"
        ),
        "the reply is shown as text"
    );
    assert!(
        dom.contains("&lt;/script&gt;&lt;script&gt;alert(3)&lt;/script&gt;&lt;!--"),
        "the variable is shown as text"
    );
    assert!(dom.contains("upstream &lt;img src=x onerror=alert(4)&gt; failed"));
    let st = browser::selftest(dom);
    assert_eq!(st["rows"], 12, "the data block was not broken out of: {st}");
    assert_eq!(st["errors"], serde_json::json!([]), "{st}");
    assert_eq!(st["violations"], serde_json::json!([]), "{st}");
}

#[test]
fn a_report_of_100k_results_stays_under_3_mb() {
    let s = Scratch::new();
    fixture::write(&s.path("out"), 25_000);
    assert_eq!(s.read("out/results.jsonl").lines().count(), 100_000);
    s.command(&["report", "out", "--output", "big.html"])
        .assert()
        .success();
    let html = s.read("big.html");
    assert!(
        html.len() < 3_000_000,
        "report.html is {} bytes",
        html.len()
    );
    assert!(
        html.contains("of 100000 results"),
        "the page says it shows a part"
    );
    assert!(
        !s.path("out/report.html").exists(),
        "--output chose the file"
    );
}

#[test]
fn run_report_writes_the_page_at_the_end_of_a_mock_run() {
    let s = Scratch::with_rows(5);
    s.command(&[
        "run",
        "--mock",
        "--no-progress",
        "--input",
        "in.csv",
        "--output-dir",
        "out",
        "--model",
        support::MINI,
        "--model",
        support::HAIKU,
        "--prompt",
        support::PROMPT,
        "--report",
    ])
    .assert()
    .success();
    let html = s.read("out/report.html");
    for id in ["job", "cost", "timing", "rows"] {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "section {id} missing"
        );
    }
    assert!(
        !html.contains("<section id=\"eval\">") && !html.contains("<section id=\"annotation\">"),
        "no eval or annotation data, no section"
    );
    assert!(html.contains(support::HAIKU));
}

#[test]
fn a_dir_without_results_is_a_usage_error() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.path("empty")).unwrap();
    let out = s.command(&["report", "empty"]).assert().code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("no results.jsonl"), "{err}");
}
