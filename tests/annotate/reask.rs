//! The re-ask loop against the mock's invalid-reply faults: exactly one re-ask per invalid
//! reply, each attempt's cost in the row, and a `schema` error when re-asks run out.

use std::collections::BTreeMap;

use orbatch::mock::MockConfig;
use orbatch::mock::structured::fault_for;
use orbatch::output::{ErrorKind, ResultLine, Status};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::support::*;

pub const SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "sentiment": {"enum": ["positive", "negative", "neutral"]},
    "topics": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    "sarcastic": {"type": "boolean"}
  },
  "required": ["sentiment", "topics", "sarcastic"],
  "additionalProperties": false
}"#;

/// `in.csv` of `rows` reviews and `schema.json`; the args of a run over them.
pub fn annotate_args(wd: &Workdir, rows: usize) -> Vec<String> {
    annotate_args_max(wd, rows, "200")
}

/// [`annotate_args`] with this `--max-tokens`.
pub fn annotate_args_max(wd: &Workdir, rows: usize, max_tokens: &str) -> Vec<String> {
    let texts = [
        "Great value; love it",
        "Arrived broken; awful",
        "It is a box",
        "Cheap but fine",
    ];
    let mut csv = String::from("id,text\n");
    for i in 1..=rows {
        csv.push_str(&format!("{i},{} {i}\n", texts[i % texts.len()]));
    }
    wd.create("in.csv", &csv);
    wd.create("schema.json", SCHEMA);
    [
        "--input",
        "in.csv",
        "--schema",
        "schema.json",
        "--prompt",
        "Review: {{ text }}",
        "--max-tokens",
        max_tokens,
    ]
    .map(String::from)
    .to_vec()
}

fn run(wd: &Workdir, mock: &Mock, args: &[String], extra: &[&str]) -> assert_cmd::assert::Assert {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend_from_slice(extra);
    wd.run(mock, &all).assert()
}

/// Every stored `parsed` validates against the schema, checked here again.
pub fn assert_parsed_validate(lines: &[ResultLine]) {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let v = jsonschema::draft202012::new(&schema).unwrap();
    for l in lines.iter().filter(|l| l.status == Status::Ok) {
        let parsed = l
            .parsed
            .as_ref()
            .and_then(|p| p.as_ref())
            .expect("ok lines have parsed");
        let value: Value = serde_json::from_str(parsed.get()).unwrap();
        assert!(v.is_valid(&value), "{} x {}: {value}", l.id, l.model);
        assert_eq!(
            value,
            serde_json::from_str::<Value>(l.output.as_deref().unwrap()).unwrap()
        );
    }
}

#[test]
fn every_parsed_validates_and_the_request_asks_for_the_schema() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    let args = annotate_args(&wd, 12);
    run(&wd, &mock, &args, &["--model", MINI, "--model", HAIKU]).code(0);
    let lines = wd.results("out/in");
    assert_eq!(lines.len(), 24);
    assert_parsed_validate(&lines);
    assert!(lines.iter().all(|l| l.schema_attempts == Some(1)));
    for r in mock.requests() {
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["response_format"]["type"], "json_schema");
        assert_eq!(body["response_format"]["json_schema"]["name"], "in");
        assert_eq!(body["response_format"]["json_schema"]["strict"], true);
        assert_eq!(
            body["response_format"]["json_schema"]["schema"]["required"][0],
            "sentiment"
        );
        assert_eq!(body["provider"], json!({"require_parameters": true}));
    }
}

#[test]
fn each_invalid_reply_is_followed_by_exactly_one_reask_and_the_cost_is_the_sum() {
    let wd = Workdir::new();
    let cfg = MockConfig {
        schema_enum_rate: 0.25,
        schema_prose_rate: 0.2,
        schema_truncated_rate: 0.15,
        seed: 11,
        ..MockConfig::default()
    };
    let mock = Mock::start(cfg.clone());
    let args = annotate_args(&wd, 30);
    let out = run(
        &wd,
        &mock,
        &args,
        &["--model", MINI, "--model", HAIKU, "--schema-retries", "6"],
    );
    let lines = wd.results("out/in");
    // Group the mock's requests per pair: (model, the row's prompt), in arrival order.
    let mut per_pair: BTreeMap<(String, String), Vec<(Value, Decimal)>> = BTreeMap::new();
    for r in mock.requests() {
        let body: Value = serde_json::from_str(&r.body).unwrap();
        let first_user = body["messages"][0]["content"].as_str().unwrap().to_string();
        per_pair
            .entry((r.model.clone(), first_user))
            .or_default()
            .push((body["messages"].clone(), r.cost.unwrap()));
    }
    let mut reasked = 0;
    for l in &lines {
        let key = (
            l.model.clone(),
            format!("Review: {}", l.vars.to_map()["text"].as_str().unwrap()),
        );
        let sent = &per_pair[&key];
        let invalid: Vec<bool> = sent
            .iter()
            .map(|(m, _)| fault_for(&cfg, &l.model, m).is_some())
            .collect();
        // Every invalid reply but a last one is followed by exactly one re-ask, and a valid
        // reply by none.
        let (last, earlier) = invalid.split_last().unwrap();
        assert!(earlier.iter().all(|i| *i), "{}: {invalid:?}", l.id);
        assert_eq!(l.status == Status::Ok, !last, "{}: {invalid:?}", l.id);
        for pair in sent.windows(2) {
            assert_eq!(
                pair[1].0.as_array().unwrap().len(),
                pair[0].0.as_array().unwrap().len() + 2
            );
            assert_eq!(
                pair[1].0.as_array().unwrap().iter().rev().nth(1).unwrap()["role"],
                "assistant"
            );
        }
        assert_eq!(l.schema_attempts, Some(sent.len() as u32));
        assert_eq!(l.attempts, sent.len() as u32);
        let billed: Decimal = sent.iter().map(|(_, c)| *c).sum();
        assert_eq!(l.cost_usd, Some(billed), "{} x {}", l.id, l.model);
        reasked += sent.len() - 1;
    }
    assert!(reasked >= 10, "the faults re-asked only {reasked} times");
    assert_parsed_validate(&lines);
    let s = wd.summary("out/in");
    assert_eq!(s.requests.sent, mock.requests().len() as u64);
    assert_eq!(s.cost_usd.total, mock.spent());
    out.code(if lines.iter().all(|l| l.status == Status::Ok) {
        0
    } else {
        1
    });
}

#[test]
fn schema_retries_zero_turns_an_invalid_reply_into_a_schema_error_at_once() {
    let wd = Workdir::new();
    let mock = Mock::start(MockConfig {
        schema_prose_rate: 1.0,
        ..MockConfig::default()
    });
    let args = annotate_args(&wd, 3);
    run(
        &wd,
        &mock,
        &args,
        &["--model", MINI, "--schema-retries", "0"],
    )
    .code(1);
    assert_eq!(mock.requests().len(), 3, "no re-ask");
    for l in wd.results("out/in") {
        assert_eq!(l.status, Status::Error);
        let e = l.error.as_ref().unwrap();
        assert_eq!(e.kind, ErrorKind::Schema);
        assert!(e.message.contains("not JSON"), "{}", e.message);
        assert!(
            l.output.as_deref().unwrap().starts_with("Sure!"),
            "the reply is kept"
        );
        assert_eq!(l.parsed, Some(None));
        assert_eq!(l.schema_attempts, Some(1));
        assert!(l.cost_usd.unwrap() > Decimal::ZERO);
    }
    assert_eq!(wd.summary("out/in").errors_by_kind["schema"].count, 3);
}

#[test]
fn a_reply_cut_by_max_tokens_says_raise_max_tokens_after_every_reask() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    let args = annotate_args_max(&wd, 2, "5");
    run(&wd, &mock, &args, &["--model", MINI]).code(1);
    assert_eq!(mock.requests().len(), 6, "1 + 2 re-asks per row");
    for l in wd.results("out/in") {
        let e = l.error.as_ref().unwrap();
        assert_eq!(e.kind, ErrorKind::Schema);
        assert!(e.message.contains("raise max_tokens"), "{}", e.message);
        assert!(e.message.contains("after 3 attempts"), "{}", e.message);
        assert_eq!(l.finish_reason.as_deref(), Some("length"));
        assert_eq!(l.schema_attempts, Some(3));
    }
}

#[test]
fn an_invalid_schema_is_a_config_error_before_anything_is_sent() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    let mut args = annotate_args(&wd, 2);
    wd.create(
        "schema.json",
        r#"{"type": "object", "properties": {"a": {"type": "nope"}}}"#,
    );
    args.extend(["--model".into(), MINI.into()]);
    let out = run(&wd, &mock, &args, &[]).code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("schema.json: not a valid JSON Schema"),
        "{err}"
    );
    assert!(mock.requests().is_empty());
}

/// `mode = "prompt"` (endpoints without structured outputs): no `response_format` is sent, the
/// schema goes into the system message, and the reply is still validated (the mock's free
/// text fails it: a `schema` error at once with `schema_retries = 0`).
#[test]
fn prompt_mode_puts_the_schema_in_the_system_message_and_still_validates() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    annotate_args(&wd, 3);
    wd.create(
        "job.toml",
        "input = \"in.csv\"\noutput_dir = \"out/pm\"\n[request]\nmodels = [\"openai/gpt-4o-mini\"]\nsystem = \"Annotate.\"\nprompt = \"Review: {{ text }}\"\n[output]\nschema = \"schema.json\"\nmode = \"prompt\"\nschema_retries = 0\n",
    );
    wd.run(&mock, &["job.toml"]).assert().code(1);
    let requests = mock.requests();
    assert_eq!(requests.len(), 3, "one attempt a row, no re-ask");
    for r in requests {
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert!(body.get("response_format").is_none(), "{body}");
        let system = body["messages"][0]["content"].as_str().unwrap();
        assert!(system.starts_with("Annotate."), "{system}");
        assert!(system.contains("\"sentiment\""), "the schema: {system}");
    }
    let lines = wd.results("out/pm");
    assert!(
        lines.iter().all(|l| l
            .error
            .as_ref()
            .is_some_and(|e| e.kind.as_str() == "schema")),
        "{lines:?}"
    );
}
