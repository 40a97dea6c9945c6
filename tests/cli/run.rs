//! `orbatch run` end to end: one line per (row, model), exact costs, summary totals,
//! results.csv in input order.

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::common::*;

const REVIEWS: &str = "id,text,note\n\
r1,\"Great blender, loud.\",=SUM(A1:A2)\n\
r2,\"Two lines:\nand \"\"quotes\"\"\",-5\n\
r3,Prix élevé mais qualité 👍,+cmd\n\
r4,@home use,@x\n";

const JOB: &str = r#"name = "reviews"
input = "data/reviews.csv"
output_dir = "out/reviews"

[request]
models = ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"]
system = "You label product reviews."
prompt = "Review: {{ text }} ({{ note }})"
max_tokens = 8
"#;

#[test]
fn csv_job_one_line_per_pair_exact_costs_and_summary() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    wd.create("jobs/data/reviews.csv", REVIEWS);
    wd.create("jobs/reviews.toml", JOB);
    wd.run(&mock, &["jobs/reviews.toml"]).assert().code(0);

    let lines = wd.results("out/reviews");
    assert_one_line_per_pair(&lines, &["r1", "r2", "r3", "r4"], &[MINI, HAIKU]);
    assert!(
        lines
            .iter()
            .all(|l| l.status == orbatch::output::Status::Ok)
    );
    assert_costs_are_the_mocks(&lines, &mock);
    for l in &lines {
        assert_eq!(l.cost_source, Some(orbatch::output::CostSource::Response));
        assert_eq!(l.attempts, 1);
        assert_eq!(l.response_model.as_deref(), Some(l.model.as_str()));
    }

    // The mock saw the rendered templates, verbatim (multi-line cell, non-ASCII, formulas).
    let mut users: Vec<String> = mock.requests().into_iter().map(|r| r.user).collect();
    users.sort();
    users.dedup();
    let mut want = vec![
        "Review: Great blender, loud. (=SUM(A1:A2))".to_string(),
        "Review: Two lines:\nand \"quotes\" (-5)".to_string(),
        "Review: Prix élevé mais qualité 👍 (+cmd)".to_string(),
        "Review: @home use (@x)".to_string(),
    ];
    want.sort();
    assert_eq!(users, want);

    let s = wd.summary("out/reviews");
    assert_eq!(s.job, "reviews");
    assert!(s.complete);
    assert_eq!((s.rows.total, s.rows.ok, s.rows.error), (8, 8, 0));
    assert_eq!(s.rows.not_sent, 0);
    assert_eq!(s.requests.sent, mock.requests().len() as u64);
    assert_eq!(s.cost_usd.total, mock.spent());
    assert_eq!(s.cost_usd.mismatched_rows, 0);
    assert_eq!(s.cost_usd.unknown_rows, 0);
    assert_summary_sums(&s, &lines);
    assert_eq!(
        s.cost_usd.by_provider.keys().collect::<Vec<_>>(),
        ["Anthropic", "OpenAI"]
    );
    assert_eq!(s.cost_usd.by_provider["OpenAI"], s.cost_usd.by_model[MINI]);
    assert_eq!(
        s.cost_usd.by_provider["Anthropic"],
        s.cost_usd.by_model[HAIKU]
    );

    // results.csv: input order x model order, the input's columns, formulas escaped.
    let csv = wd.csv("out/reviews");
    assert_eq!(
        csv[0],
        [
            "id",
            "text",
            "note",
            "model",
            "status",
            "output",
            "cost_usd",
            "prompt_tokens",
            "completion_tokens",
            "error",
            "finish_reason"
        ]
    );
    let order: Vec<(&str, &str)> = csv[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[3].as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("r1", MINI),
            ("r1", HAIKU),
            ("r2", MINI),
            ("r2", HAIKU),
            ("r3", MINI),
            ("r3", HAIKU),
            ("r4", MINI),
            ("r4", HAIKU)
        ]
    );
    let cells = |id: &str| csv.iter().find(|r| r[0] == id).unwrap().clone();
    assert_eq!(cells("r1")[2], "'=SUM(A1:A2)");
    assert_eq!(cells("r2")[1], "Two lines:\nand \"quotes\"");
    assert_eq!(cells("r2")[2], "-5", "a number is not a formula");
    assert_eq!(cells("r3")[1], "Prix élevé mais qualité 👍");
    assert_eq!(cells("r3")[2], "'+cmd");
    assert_eq!(cells("r4")[1], "'@home use");
    assert_eq!(cells("r4")[2], "'@x");
    for r in &csv[1..] {
        let line = lines
            .iter()
            .find(|l| l.id == r[0] && l.model == r[3])
            .unwrap();
        assert_eq!(r[4], "ok");
        assert_eq!(Decimal::from_str(&r[6]).ok(), line.cost_usd, "{r:?}");
        assert_eq!(r[7], line.prompt_tokens.unwrap().to_string());
        assert_eq!(r[8], line.completion_tokens.unwrap().to_string());
        assert_eq!(r[9], "");
    }
}

const SHAPES: &str = concat!(
    r#"{"id":"p1","prompt":"Summarise: cats are great"}"#,
    "\n",
    r#"{"id":"m1","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello from messages"}]}"#,
    "\n",
    r#"{"id":7,"prompt":"Numeric id row","lang":"fr","meta":{"k":[1,2]}}"#,
    "\n",
    r#"{"custom_id":"b1","method":"POST","url":"/v1/chat/completions","body":{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"Batch line one"}],"max_tokens":5}}"#,
    "\n",
    r#"{"custom_id":"b2","method":"POST","url":"/v1/chat/completions","body":{"model":"anthropic/claude-3.5-haiku","messages":[{"role":"user","content":"Batch line two"}]}}"#,
    "\n",
);

#[test]
fn jsonl_job_every_shape_one_line_per_pair_exact_costs() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    wd.create("shapes.jsonl", SHAPES);
    wd.run(
        &mock,
        &[
            "--input",
            "shapes.jsonl",
            "--model",
            MINI,
            "--model",
            HAIKU,
            "--output-dir",
            "out/shapes",
        ],
    )
    .assert()
    .code(0);

    let lines = wd.results("out/shapes");
    assert_one_line_per_pair(&lines, &["p1", "m1", "7", "b1", "b2"], &[MINI, HAIKU]);
    assert_costs_are_the_mocks(&lines, &mock);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 10);
    // --model overrides a batch line's own model: each line went to both models.
    for text in [
        "Summarise: cats are great",
        "Hello from messages",
        "Numeric id row",
        "Batch line one",
        "Batch line two",
    ] {
        let mut models: Vec<&str> = reqs
            .iter()
            .filter(|r| r.user == text)
            .map(|r| r.model.as_str())
            .collect();
        models.sort();
        assert_eq!(models, [HAIKU, MINI], "{text}");
    }
    // A batch line's body is the request: its max_tokens went along.
    let b1: serde_json::Value = serde_json::from_str(
        &reqs
            .iter()
            .find(|r| r.user == "Batch line one")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(b1["max_tokens"], 5);

    let s = wd.summary("out/shapes");
    assert_eq!((s.rows.total, s.rows.ok), (10, 10));
    assert_eq!(s.job, "shapes");
    assert_summary_sums(&s, &lines);
    assert_eq!(s.cost_usd.total, mock.spent());

    // results.csv: the union of top-level keys in first-seen order, nested values as JSON.
    let csv = wd.csv("out/shapes");
    assert_eq!(
        csv[0][..9],
        [
            "id",
            "prompt",
            "messages",
            "lang",
            "meta",
            "custom_id",
            "method",
            "url",
            "body"
        ]
    );
    assert_eq!(csv.len(), 11);
    let row7 = csv.iter().find(|r| r[0] == "7").unwrap();
    assert_eq!(row7[3], "fr");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&row7[4]).unwrap(),
        serde_json::json!({"k": [1, 2]})
    );
    let ids: Vec<&str> = csv[1..]
        .iter()
        .map(|r| if r[0].is_empty() { &r[5] } else { &r[0] }.as_str())
        .collect();
    assert_eq!(
        ids,
        ["p1", "p1", "m1", "m1", "7", "7", "b1", "b1", "b2", "b2"]
    );
}

#[test]
fn jsonl_template_variables_and_batch_lines_with_their_own_models() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    wd.create(
        "vars.jsonl",
        "{\"id\":1,\"question\":\"Why?\",\"n\":3}\n{\"id\":2,\"question\":\"How?\",\"n\":2.50}\n",
    );
    wd.run(
        &mock,
        &[
            "--input",
            "vars.jsonl",
            "--model",
            MINI,
            "--prompt",
            "Q{{ n }}: {{ question }}",
            "--system",
            "Answer briefly.",
        ],
    )
    .assert()
    .code(0);
    let mut users: Vec<String> = mock.requests().into_iter().map(|r| r.user).collect();
    users.sort();
    // Numbers render as written: 2.50 stays 2.50.
    assert_eq!(users, ["Q2.50: How?", "Q3: Why?"]);
    let body: serde_json::Value = serde_json::from_str(&mock.requests()[0].body).unwrap();
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][0]["content"], "Answer briefly.");
    assert_costs_are_the_mocks(&wd.results("out/vars"), &mock);

    // Without --model, each batch line goes to the model its body names.
    let batch: String = SHAPES.lines().skip(3).map(|l| format!("{l}\n")).collect();
    wd.create("batch.jsonl", &batch);
    let mock2 = Mock::plain();
    wd.run(&mock2, &["--input", "batch.jsonl"]).assert().code(0);
    let lines = wd.results("out/batch");
    let mut pairs: Vec<(String, String)> = lines
        .iter()
        .map(|l| (l.id.clone(), l.model.clone()))
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("b1".to_string(), MINI.to_string()),
            ("b2".into(), HAIKU.into())
        ]
    );
    assert_costs_are_the_mocks(&lines, &mock2);
    let s = wd.summary("out/batch");
    assert_eq!((s.rows.total, s.rows.ok), (2, 2));
}

#[test]
fn stdin_input_and_limit() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    let mut cmd = wd.run(
        &mock,
        &[
            "--input",
            "-",
            "--model",
            MINI,
            "--prompt",
            "{{ text }}",
            "--output-dir",
            "out/stdin",
            "--limit",
            "3",
        ],
    );
    cmd.write_stdin(rows_csv(5)).assert().code(0);
    let lines = wd.results("out/stdin");
    assert_one_line_per_pair(&lines, &["1", "2", "3"], &[MINI]);
    assert_eq!(mock.requests().len(), 3);
    let s = wd.summary("out/stdin");
    assert_eq!((s.rows.total, s.rows.ok), (3, 3));
    assert!(s.complete);
    // validate reads stdin too.
    wd.command(&[
        "validate",
        "--input",
        "-",
        "--model",
        MINI,
        "--prompt",
        "{{ text }}",
        "--base-url",
        &mock.url(),
    ])
    .write_stdin(rows_csv(4))
    .assert()
    .code(0)
    .stdout(predicates::str::contains("4 rows"));
}
