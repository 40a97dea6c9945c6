use super::*;
use crate::output::line::LineBuilder;

fn spec(toml_checks: &str) -> EvalSpec {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j.toml");
    std::fs::write(
        &p,
        format!("input = \"d.csv\"\n[eval]\nexpected = \"{{{{ label }}}}\"\n{toml_checks}"),
    )
    .unwrap();
    let job = crate::job::Job::resolve(Some(&p), Default::default(), None).unwrap();
    job.eval.unwrap()
}

fn ok(output: &str, label: &str) -> ResultLine {
    let mut vars = Map::new();
    vars.insert("label".into(), Value::String(label.into()));
    LineBuilder::new("1", "m")
        .vars(vars.into())
        .ok(output)
        .build()
}

#[test]
fn equals_against_the_expected_label_scores_and_passes() {
    let s = Scorer::compile(&spec("[[checks]]\nname = \"label\"\ntype = \"equals\"\n")).unwrap();
    let mut line = ok(" Positive.", "positive");
    s.apply(&mut line, &|_| None);
    assert_eq!(line.scores.as_ref().unwrap()["label"], Some(1.0));
    assert_eq!((line.score, line.pass), (Some(1.0), Some(true)));
    let mut wrong = ok("negative", "positive");
    s.apply(&mut wrong, &|_| None);
    assert_eq!((wrong.score, wrong.pass), (Some(0.0), Some(false)));
}

#[test]
fn weights_threshold_and_a_zero_weight() {
    let s = Scorer::compile(&spec(
        "threshold = 0.5\n[[checks]]\nname = \"a\"\ntype = \"contains\"\nvalue = \"pos\"\nweight = 3\n[[checks]]\nname = \"b\"\ntype = \"equals\"\nvalue = \"x\"\n[[checks]]\nname = \"c\"\ntype = \"json_valid\"\nweight = 0\n",
    ))
    .unwrap();
    let r = s.score(&ok("positive", "positive"), &|_| None);
    assert_eq!(r.score, Some(0.75));
    assert!(r.pass);
    assert_eq!(r.scores["c"], Some(0.0), "recorded, not counted");
}

#[test]
fn an_error_line_fails_with_no_score() {
    let s = Scorer::compile(&spec("[[checks]]\nname = \"label\"\ntype = \"equals\"\n")).unwrap();
    let mut line = LineBuilder::new("1", "m")
        .error(crate::output::ErrorKind::Timeout, None, "t")
        .build();
    s.apply(&mut line, &|_| None);
    assert_eq!(
        (line.pass, line.score, line.scores.is_none()),
        (Some(false), None, true)
    );
}

#[test]
fn a_field_check_reads_parsed_and_says_why_when_absent() {
    let s = Scorer::compile(&spec(
        "[[checks]]\nname = \"s\"\ntype = \"equals\"\nfield = \"sentiment\"\n",
    ))
    .unwrap();
    let mut line = ok("{}", "negative");
    let r = s.score(&line, &|_| None);
    assert_eq!(r.scores["s"], None);
    assert!(r.unscored["s"].contains("parsed"), "{:?}", r.unscored);
    assert!(!r.pass);
    line.parsed = Some(Some(crate::output::RawJson::of(
        &serde_json::json!({"sentiment": "Negative"}),
    )));
    assert!(s.score(&line, &|_| None).pass);
}

#[test]
fn json_schema_number_limits_and_judge_grades() {
    let s = Scorer::compile(&spec(
        "[[checks]]\nname = \"shape\"\ntype = \"json_schema\"\nschema = { type = \"object\", required = [\"n\"] }\n[[checks]]\nname = \"n\"\ntype = \"number\"\nvalue = \"42\"\ntolerance = 0.5\n[[checks]]\nname = \"fast\"\ntype = \"max_latency_ms\"\nvalue = 10\n[[checks]]\nname = \"g\"\ntype = \"judge\"\nmodel = \"j/m\"\nrubric = \"Is {{ output }} {{ expected }}?\"\n",
    ))
    .unwrap();
    let line = ok(r#"{"n": 42.3}"#, "x");
    let r = s.score(&line, &|_| Some(0.5));
    assert_eq!(r.scores["shape"], Some(1.0));
    assert_eq!(r.scores["n"], Some(1.0));
    assert_eq!(r.scores["fast"], Some(1.0));
    assert_eq!(r.scores["g"], Some(0.5));
    let violation = s.score(&ok(r#"{"m": 1}"#, "x"), &|_| None);
    assert_eq!(violation.scores["shape"], Some(0.0));
    assert_eq!(
        violation.scores["g"], None,
        "a failed judge leaves the check unscored"
    );
    assert!(!violation.pass);
    let check = &s.spec().checks[3];
    assert_eq!(
        s.rubric(check, &line).unwrap().unwrap(),
        r#"Is {"n": 42.3} x?"#
    );
}

#[test]
fn checks_that_cannot_be_evaluated_are_config_errors() {
    let bad = |checks: &str| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.toml");
        std::fs::write(&p, format!("input = \"d.csv\"\n{checks}")).unwrap();
        crate::job::Job::resolve(Some(&p), Default::default(), None)
            .unwrap_err()
            .0
    };
    let e = bad("[[checks]]\nname = \"r\"\ntype = \"regex\"\npattern = \"(unclosed\"\n");
    assert!(
        e.contains("j.toml") && e.contains("\"r\"") && e.contains("regex"),
        "{e}"
    );
    let e = bad("[[checks]]\nname = \"s\"\ntype = \"json_schema\"\nschema = \"missing.json\"\n");
    assert!(e.contains("\"s\"") && e.contains("missing.json"), "{e}");
    let e = bad("[[checks]]\nname = \"e\"\ntype = \"equals\"\n");
    assert!(e.contains("\"e\"") && e.contains("value"), "{e}");
    let e = bad("[[checks]]\nname = \"t\"\ntype = \"equals\"\nvalue = \"{{ x \"\n");
    assert!(e.contains("\"t\"") && e.contains("template"), "{e}");
    let e = bad(
        "[[checks]]\nname = \"a\"\ntype = \"json_valid\"\n[[checks]]\nname = \"a\"\ntype = \"json_valid\"\n",
    );
    assert!(e.contains("twice"), "{e}");
    let e = bad("[[checks]]\nname = \"k\"\ntype = \"levenshtein\"\n");
    assert!(e.contains("unknown type"), "{e}");
}

#[test]
fn an_unknown_template_variable_is_named() {
    let s = Scorer::compile(&spec("[[checks]]\nname = \"label\"\ntype = \"equals\"\n")).unwrap();
    let cols = vec!["id".to_string(), "text".to_string(), "lable".to_string()];
    let e = s.check_columns(&cols).unwrap_err();
    assert!(e.contains("`label`") && e.contains("lable"), "{e}");
    assert!(s.check_columns(&["label".to_string()]).is_ok());
}
