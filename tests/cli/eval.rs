//! Evaluation end to end on the mock: checks scored on every line, the leaderboard's pass
//! counts equal to counts computed here from the mock's own classifier, `orbatch score`
//! sending nothing, exit 5, and checks that cannot be evaluated refused before sending.

use std::collections::BTreeMap;

use orbatch::mock::classify;

use crate::common::*;

pub(crate) const PROMPT: &str =
    "Review: {{ text }}\nAnswer with one word: positive, negative or neutral.";

pub(crate) fn job(extra: &str) -> String {
    format!(
        "name = \"ev\"\ninput = \"data/reviews.csv\"\nid_column = \"review_id\"\noutput_dir = \"out/ev\"\n\
         [request]\nmodels = [\"{MINI}\", \"{HAIKU}\"]\nprompt = \"\"\"{PROMPT}\"\"\"\nmax_tokens = 8\n\
         [eval]\nexpected = \"{{{{ label }}}}\"\n{extra}\n\
         [[checks]]\nname = \"label\"\ntype = \"equals\"\n"
    )
}

/// The demo's labelled reviews, with gold labels that are the lexicon's reading.
pub(crate) fn setup(wd: &Workdir, extra: &str) -> Vec<(String, String, String)> {
    let data = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/data/reviews-labelled.csv"),
    )
    .unwrap();
    wd.create("jobs/data/reviews.csv", &data);
    wd.create("jobs/ev.toml", &job(extra));
    csv::Reader::from_reader(data.as_bytes())
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string(), r[2].to_string())
        })
        .collect()
}

/// What the mock answers, computed from `orbatch::mock::classify`: passes per model.
fn expected_passes(rows: &[(String, String, String)]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for model in [MINI, HAIKU] {
        let n = rows
            .iter()
            .filter(|(_, text, gold)| {
                let user = PROMPT.replace("{{ text }}", text);
                classify::label_for(model, &user, &user) == gold
            })
            .count();
        out.insert(model.to_string(), n as u64);
    }
    out
}

#[test]
fn pass_counts_per_cell_equal_the_classifiers_and_score_sends_nothing() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    let rows = setup(&wd, "");
    for (_, text, gold) in &rows {
        assert_eq!(
            classify::sentiment(text),
            gold,
            "gold labels are the lexicon's"
        );
    }
    wd.run(&mock, &["jobs/ev.toml"]).assert().code(0);
    let want = expected_passes(&rows);
    let s = wd.summary("out/ev");
    let eval = s.eval.expect("summary.json has eval");
    let got: BTreeMap<String, u64> = eval
        .cells
        .iter()
        .map(|c| (c.model.clone(), c.passed))
        .collect();
    assert_eq!(got, want);
    assert!(
        eval.cells[0].pass_rate >= eval.cells[1].pass_rate,
        "best first"
    );
    assert!(eval.cells.iter().all(|c| c.results == 150 && c.errors == 0));
    let cmp = eval.comparison.expect("two cells are compared");
    assert_eq!(cmp.rows, 150);
    let lines = wd.results("out/ev");
    let passed = lines.iter().filter(|l| l.pass == Some(true)).count() as u64;
    assert_eq!(passed, want.values().sum::<u64>());
    assert!(
        lines
            .iter()
            .all(|l| l.scores.as_ref().is_some_and(|s| s.contains_key("label")))
    );

    // A new non-judge check, then `score`: every line re-scored, nothing sent.
    let sent = mock.requests().len();
    wd.create(
        "jobs/ev.toml",
        &(job("")
            + "[[checks]]\nname = \"short\"\ntype = \"regex\"\npattern = \"^\\\\w+\\\\.?$\"\n"),
    );
    let out = wd
        .command(&[
            "score",
            "jobs/ev.toml",
            "--base-url",
            &mock.url(),
            "--json",
            "--report",
        ])
        .assert()
        .code(0);
    let (stdout, _) = out_text(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["eval"]["cells"][0]["scores"]["short"], 1.0);
    assert_eq!(mock.requests().len(), sent, "score sent no request");
    let report = wd.read("out/ev/report.html");
    assert!(
        report.contains("short"),
        "score --report shows the new check"
    );
    let lines = wd.results("out/ev");
    assert_eq!(lines.len(), 300, "one line per key");
    assert!(
        lines
            .iter()
            .all(|l| l.scores.as_ref().unwrap()["short"] == Some(1.0))
    );
}

pub(crate) fn out_text(a: &assert_cmd::assert::Assert) -> (String, String) {
    let o = a.get_output();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_cell_below_min_pass_rate_exits_5() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    let rows = setup(&wd, "min_pass_rate = 0.99");
    let out = wd.run(&mock, &["jobs/ev.toml"]).assert().code(5);
    let (stdout, stderr) = out_text(&out);
    assert!(stdout.starts_with("leaderboard"), "{stdout}");
    assert!(stderr.contains("below min_pass_rate"), "{stderr}");
    // `score` gives the same verdict; a lower bar passes.
    wd.command(&["score", "jobs/ev.toml", "--base-url", &mock.url()])
        .assert()
        .code(5);
    let worst = *expected_passes(&rows).values().min().unwrap() as f64 / rows.len() as f64;
    wd.create(
        "jobs/ev.toml",
        &job(&format!("min_pass_rate = {}", worst - 0.01)),
    );
    wd.command(&["score", "jobs/ev.toml", "--base-url", &mock.url()])
        .assert()
        .code(0);
}

#[test]
fn checks_that_cannot_be_evaluated_exit_2_before_sending() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    setup(&wd, "");
    let bad = [
        (
            "[[checks]]\nname = \"re\"\ntype = \"regex\"\npattern = \"(\"\n",
            "\"re\"",
        ),
        (
            "[[checks]]\nname = \"sch\"\ntype = \"json_schema\"\nschema = \"nope.json\"\n",
            "nope.json",
        ),
        (
            "[[checks]]\nname = \"typo\"\ntype = \"equals\"\nvalue = \"{{ lable }}\"\n",
            "lable",
        ),
    ];
    for (check, named) in bad {
        wd.create("jobs/ev.toml", &(job("") + check));
        let out = wd.run(&mock, &["jobs/ev.toml"]).assert().code(2);
        let (_, stderr) = out_text(&out);
        assert!(
            stderr.contains("ev.toml") && stderr.contains(named),
            "{stderr}"
        );
    }
    assert!(mock.requests().is_empty(), "nothing was sent");
}

pub(crate) const JUDGE: &str = "[[checks]]\nname = \"grader\"\ntype = \"judge\"\nmodel = \"openai/gpt-4o-mini\"\nrubric = \"\"\"Grade it.\nOutput: {{ output }}\nExpected: {{ expected }}\"\"\"\n";

/// Every dollar the mock charged, judge calls included, is in the summary: completions in
/// `cost_usd`, judges apart in `judge_cost_usd` / `cost_usd.judge_total`, both in the total.
/// With 5xx faults the judge calls are retried like completions; with a budget they are
/// reserved like completions, so the spend stays under it.
#[test]
fn judge_calls_are_costed_retried_and_budgeted() {
    let wd = Workdir::new();
    let mock = Mock::start(orbatch::mock::MockConfig {
        error_rate: 0.2,
        seed: 3,
        ..Default::default()
    });
    let rows = setup(&wd, "");
    wd.create("jobs/ev.toml", &(job("") + JUDGE));
    wd.run(&mock, &["jobs/ev.toml"]).assert().code(0);
    let lines = wd.results("out/ev");
    let s = wd.summary("out/ev");
    assert_eq!(s.cost_usd.total, mock.spent(), "every charge is counted");
    let judge: rust_decimal::Decimal = lines.iter().filter_map(|l| l.judge_cost_usd).sum();
    let completions: rust_decimal::Decimal = lines.iter().filter_map(|l| l.cost_usd).sum();
    assert!(judge > rust_decimal::Decimal::ZERO);
    assert_eq!(s.cost_usd.judge_total, judge);
    assert_eq!(s.cost_usd.total, judge + completions);
    let judged = mock
        .requests()
        .iter()
        .filter(|r| r.user.starts_with("Grade it."))
        .count();
    assert!(
        judged > 2 * rows.len(),
        "faults were retried: {judged} judge requests"
    );
    // The mock grades 1.0 exactly when the answer is the gold label: the judge agrees with
    // the equals check on every line.
    for l in &lines {
        let s = l.scores.as_ref().unwrap();
        assert_eq!(s["grader"] == Some(1.0), s["label"] == Some(1.0), "{l:?}");
    }
    // Re-scoring keeps the recorded grades and sends nothing.
    let sent = mock.requests().len();
    wd.command(&["score", "jobs/ev.toml", "--base-url", &mock.url()])
        .assert()
        .code(0);
    assert_eq!(mock.requests().len(), sent);
    let again = wd.summary("out/ev");
    assert_eq!(again.eval.unwrap().cells, s.eval.unwrap().cells);

    // A budget counts the judges' reservations: the output dir's spend stays under it.
    let wd = Workdir::new();
    let mock = Mock::plain();
    setup(&wd, "");
    wd.create("jobs/ev.toml", &(job("") + JUDGE));
    let out = wd
        .run(&mock, &["jobs/ev.toml", "--budget", "0.001", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "stopped by the budget");
    assert!(mock.spent() <= "0.001".parse().unwrap(), "{}", mock.spent());
    assert_eq!(wd.summary("out/ev").cost_usd.total, mock.spent());
}
