//! results.csv: order, not_sent rows, escaping, variables.

use super::*;

fn row(index: u64, id: &str, vars: Value) -> Row {
    Row {
        id: id.to_string(),
        line: index + 2,
        index,
        vars: vars.as_object().cloned().unwrap_or_default(),
        body: RowBody::Vars,
        raw_numbers: Vec::new(),
    }
}

#[test]
fn results_csv_in_input_order_with_not_sent_and_escaping() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    let out = dir.path().join("results.csv");
    let mut e = err(
        "2",
        "m1",
        Some("0.0000001"),
        ErrorKind::Http,
        "=bad, \"quoted\"",
    );
    e.prompt_tokens = None;
    let mut formula = ok("1", "m2", Some("0.002"));
    formula.output = Some("=SUM(A1)".to_string());
    let mut neg = ok("1", "m1", Some("0.001"));
    neg.output = Some("-3.5".to_string());
    // Completion order differs from input order; "1"/"m1" has an older line.
    let lines = [
        e,
        formula,
        err("1", "m1", Some("0.0005"), ErrorKind::Timeout, "t"),
        neg,
    ];
    fs::write(&results, jsonl(&lines)).unwrap();
    let rows = vec![
        row(
            0,
            "1",
            json!({"id": "1", "text": "@x", "meta": {"a": [1, 2]}}),
        ),
        row(1, "2", json!({"id": "2", "text": "+1", "n": 7})),
        row(2, "3", json!({"id": "3", "text": "\t=x"})),
    ];
    let columns: Vec<String> = ["id", "text", "meta", "n"].map(String::from).to_vec();
    let models: Vec<String> = ["m1", "m2"].map(String::from).to_vec();
    let n = write_results_csv(&results, rows.into_iter(), &columns, &models, &out).unwrap();
    assert_eq!(n, 6);
    assert_eq!(files_in(dir.path()), ["results.csv", "results.jsonl"]);
    let mut r = csv::Reader::from_path(&out).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "id",
            "text",
            "meta",
            "n",
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
    let recs: Vec<Vec<String>> = r
        .records()
        .map(|x| x.unwrap().iter().map(String::from).collect())
        .collect();
    let want: [&[&str]; 6] = [
        &[
            "1",
            "'@x",
            r#"{"a":[1,2]}"#,
            "",
            "m1",
            "ok",
            "-3.5",
            "0.001",
            "10",
            "2",
            "",
            "stop",
        ],
        &[
            "1",
            "'@x",
            r#"{"a":[1,2]}"#,
            "",
            "m2",
            "ok",
            "'=SUM(A1)",
            "0.002",
            "10",
            "2",
            "",
            "stop",
        ],
        &[
            "2",
            "+1",
            "",
            "7",
            "m1",
            "error",
            "",
            "0.0000001",
            "",
            "2",
            "http: =bad, \"quoted\"",
            "stop",
        ],
        &["2", "+1", "", "7", "m2", "not_sent", "", "", "", "", "", ""],
        &[
            "3", "'\t=x", "", "", "m1", "not_sent", "", "", "", "", "", "",
        ],
        &[
            "3", "'\t=x", "", "", "m2", "not_sent", "", "", "", "", "", "",
        ],
    ];
    assert_eq!(
        recs,
        want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    );
}

#[test]
fn results_csv_without_a_results_file_is_all_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.csv");
    let rows = vec![row(0, "1", json!({"q": "x"}))];
    let cols = vec!["q".to_string()];
    let n = write_results_csv(
        &dir.path().join("missing.jsonl"),
        rows.into_iter(),
        &cols,
        &["m".to_string()],
        &out,
    )
    .unwrap();
    assert_eq!(n, 1);
    let text = fs::read_to_string(&out).unwrap();
    assert_eq!(
        text,
        "q,model,status,output,cost_usd,prompt_tokens,completion_tokens,error,finish_reason\nx,m,not_sent,,,,,,\n"
    );
}
