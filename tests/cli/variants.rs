//! Prompt variants (`[[variants]]`): every row x variant x model is sent once, the key is
//! (id, variant, model) in every file, and a resume sends only new triples and refuses a
//! changed variant by name.

use std::collections::BTreeSet;

use predicates::prelude::*;

use crate::common::*;

/// The `[[variants]]` tables of `names` (each: `(name, prompt, extra lines)`).
fn job(models: &[&str], variants: &[(&str, &str, &str)]) -> String {
    let models: Vec<String> = models.iter().map(|m| format!("{m:?}")).collect();
    let mut s = format!(
        "input = \"in.csv\"\noutput_dir = \"out/v\"\n[request]\nmodels = [{}]\nprompt = \"{{{{ text }}}}\"\nmax_tokens = 5\n",
        models.join(", ")
    );
    for (name, prompt, more) in variants {
        s.push_str(&format!(
            "\n[[variants]]\nname = \"{name}\"\nprompt = \"{prompt}\"\n{more}\n"
        ));
    }
    s
}

/// A workdir with `in.csv` of `rows` rows and `job.toml` of [`job`], and a mock.
fn setup(rows: usize, models: &[&str], variants: &[(&str, &str, &str)]) -> (Workdir, Mock) {
    let wd = Workdir::new();
    wd.create("in.csv", &rows_csv(rows));
    wd.create("job.toml", &job(models, variants));
    (wd, Mock::plain())
}

const TERSE: (&str, &str, &str) = ("terse", "Label: {{ text }}", "");
const EXPLAINED: (&str, &str, &str) = (
    "explained",
    "Explain: {{ text }}",
    "system = \"You are careful.\"\nmax_tokens = 7",
);

/// The (id, variant, model) keys of `lines`, checking each is there once.
fn keys(lines: &[orbatch::output::ResultLine]) -> BTreeSet<(String, String, String)> {
    let keys: BTreeSet<_> = lines
        .iter()
        .map(|l| {
            let v = l.variant.clone().unwrap_or_default();
            (l.id.clone(), v, l.model.clone())
        })
        .collect();
    assert_eq!(keys.len(), lines.len(), "a key has two lines");
    keys
}

#[test]
fn every_row_is_sent_for_every_variant_and_model() {
    let (wd, mock) = setup(3, &[MINI, HAIKU], &[TERSE, EXPLAINED]);
    wd.run(&mock, &["job.toml"]).assert().code(0);

    // 3 rows x 2 variants x 2 models, each request shaped by its variant.
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 12);
    for r in &reqs {
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let has_system = body["messages"][0]["role"] == "system";
        if r.user.starts_with("Label: ") {
            assert_eq!((body["max_tokens"].as_u64(), has_system), (Some(5), false));
        } else {
            assert!(r.user.starts_with("Explain: "), "{}", r.user);
            assert_eq!((body["max_tokens"].as_u64(), has_system), (Some(7), true));
        }
    }
    let lines = wd.results("out/v");
    let keys = keys(&lines);
    for id in ["1", "2", "3"] {
        for v in ["terse", "explained"] {
            for m in [MINI, HAIKU] {
                assert!(
                    keys.contains(&(id.into(), v.into(), m.into())),
                    "{id} {v} {m}"
                );
            }
        }
    }
    // Each line is its own request's answer (found by its generation id).
    for l in &lines {
        let prefix = match l.variant.as_deref() {
            Some("terse") => "Label: ",
            _ => "Explain: ",
        };
        let r = reqs
            .iter()
            .find(|r| r.generation_id.is_some() && r.generation_id == l.generation_id)
            .expect("the line's request");
        assert_eq!(r.user, format!("{prefix}review number {}", l.id));
        assert_eq!(r.model, l.model);
    }
    assert_costs_are_the_mocks(&lines, &mock);
    let s = wd.summary("out/v");
    assert_eq!((s.rows.total, s.rows.ok, s.rows.not_sent), (12, 12, 0));
    assert_summary_sums(&s, &lines);
    let by_variant = &s.cost_usd.by_variant;
    assert_eq!(by_variant.len(), 2);
    for (v, total) in by_variant {
        let own: rust_decimal::Decimal = lines
            .iter()
            .filter(|l| l.variant.as_deref() == Some(v))
            .filter_map(|l| l.cost_usd)
            .sum();
        assert_eq!(*total, own, "{v}");
    }
    assert_eq!(
        by_variant.values().sum::<rust_decimal::Decimal>(),
        s.cost_usd.total
    );
    assert_eq!(s.variants["terse"].rows, 6);

    // results.csv: a `variant` column after `model`, input x variant x model order.
    let csv = wd.csv("out/v");
    let model_at = csv[0].iter().position(|c| c == "model").unwrap();
    assert_eq!(csv[0][model_at + 1], "variant");
    assert_eq!(csv.len(), 13);
    let first: Vec<(&str, &str, &str)> = csv[1..5]
        .iter()
        .map(|r| {
            (
                r[0].as_str(),
                r[model_at + 1].as_str(),
                r[model_at].as_str(),
            )
        })
        .collect();
    assert_eq!(
        first,
        [
            ("1", "terse", MINI),
            ("1", "terse", HAIKU),
            ("1", "explained", MINI),
            ("1", "explained", HAIKU)
        ]
    );
    assert!(csv[1..].iter().all(|r| r[model_at + 2] == "ok"));
    // The printed table shows the variants.
    wd.command(&["summary", "out/v/results.jsonl"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("variant").and(predicate::str::contains("explained")));

    // The wide layout: one record per row, columns per variant and model.
    wd.run(&mock, &["job.toml", "--layout", "wide"])
        .assert()
        .code(0);
    assert_eq!(mock.requests().len(), 12, "a re-run sent requests");
    let wide = wd.csv("out/v");
    assert_eq!(wide.len(), 4);
    let at = |name: &str| {
        wide[0]
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("{name}: {:?}", wide[0]))
    };
    let cell = at(&format!("explained/{HAIKU}.status"));
    assert!(at(&format!("terse/{MINI}.output")) < cell);
    assert!(wide[1..].iter().all(|r| r[cell] == "ok"));
}

#[test]
fn without_variants_every_line_has_a_null_variant_and_no_variant_column() {
    let (wd, mock) = setup(2, &[MINI], &[]);
    wd.run(&mock, &["job.toml"]).assert().code(0);
    let text = wd.read("out/v/results.jsonl");
    assert_eq!(text.lines().count(), 2);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v.get("variant"), Some(&serde_json::Value::Null), "{line}");
    }
    assert!(!wd.csv("out/v")[0].iter().any(|c| c == "variant"));
    let summary: serde_json::Value = serde_json::from_str(&wd.read("out/v/summary.json")).unwrap();
    assert!(summary["cost_usd"].get("by_variant").is_none());
}

#[test]
fn adding_a_variant_or_a_model_sends_only_the_new_triples() {
    let (wd, mock) = setup(3, &[MINI], &[TERSE]);
    wd.run(&mock, &["job.toml"]).assert().code(0);
    assert_eq!(mock.requests().len(), 3);

    wd.create("job.toml", &job(&[MINI], &[TERSE, EXPLAINED]));
    wd.run(&mock, &["job.toml"]).assert().code(0);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 6);
    assert!(
        reqs[3..]
            .iter()
            .all(|r| r.user.starts_with("Explain: ") && r.model == MINI)
    );

    wd.create("job.toml", &job(&[MINI, HAIKU], &[TERSE, EXPLAINED]));
    wd.run(&mock, &["job.toml"]).assert().code(0);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 12);
    assert!(reqs[6..].iter().all(|r| r.model == HAIKU));
    let sent: BTreeSet<(String, String)> = reqs[6..]
        .iter()
        .map(|r| (r.user.clone(), r.model.clone()))
        .collect();
    assert_eq!(sent.len(), 6, "a triple was sent twice");
    let lines = wd.results("out/v");
    assert_eq!(keys(&lines).len(), 12);
    let s = wd.summary("out/v");
    assert_eq!((s.rows.total, s.rows.ok), (12, 12));
    assert_eq!(s.cost_usd.total, mock.spent());
}

#[test]
fn a_changed_variant_is_refused_naming_it() {
    let (wd, mock) = setup(2, &[MINI], &[TERSE, EXPLAINED]);
    wd.run(&mock, &["job.toml"]).assert().code(0);
    assert_eq!(mock.requests().len(), 4);

    let changed = ("terse", "Label it: {{ text }}", "");
    wd.create("job.toml", &job(&[MINI], &[changed, EXPLAINED]));
    wd.run(&mock, &["job.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("variant terse: prompt"));
    // An overridden sampling field is part of the variant too.
    let hotter = (
        "explained",
        EXPLAINED.1,
        "system = \"You are careful.\"\nmax_tokens = 8",
    );
    wd.create("job.toml", &job(&[MINI], &[TERSE, hotter]));
    wd.run(&mock, &["job.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("variant explained: max_tokens"));
    // Left out of one run, then brought back changed: still refused.
    wd.create("job.toml", &job(&[MINI], &[EXPLAINED]));
    wd.run(&mock, &["job.toml"]).assert().code(0);
    wd.create("job.toml", &job(&[MINI], &[changed, EXPLAINED]));
    wd.run(&mock, &["job.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("variant terse"));
    assert_eq!(mock.requests().len(), 4, "a refused run sent requests");
    // A new name is a new variant: sent.
    let renamed = ("terse2", "Label it: {{ text }}", "");
    wd.create("job.toml", &job(&[MINI], &[renamed, TERSE, EXPLAINED]));
    wd.run(&mock, &["job.toml"]).assert().code(0);
    assert_eq!(mock.requests().len(), 6);
    // --fresh starts over with the changed definition.
    wd.create("job.toml", &job(&[MINI], &[changed]));
    wd.run(&mock, &["job.toml", "--fresh"]).assert().code(0);
    let lines = wd.results("out/v");
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l.variant.as_deref() == Some("terse")));
}

#[test]
fn an_output_dir_from_before_variants_resumes() {
    let (wd, mock) = setup(3, &[MINI], &[]);
    wd.run(&mock, &["job.toml", "--limit", "2"])
        .assert()
        .code(0);
    // Lines written before variants existed have no `variant` field.
    let old = wd
        .read("out/v/results.jsonl")
        .replace("\"variant\":null,", "");
    assert!(!old.contains("variant"));
    wd.create("out/v/results.jsonl", &old);
    wd.run(&mock, &["job.toml"]).assert().code(0);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 3, "only the row not done was sent");
    assert!(reqs[2].user.ends_with("number 3"));
    let s = wd.summary("out/v");
    assert_eq!((s.rows.total, s.rows.ok), (3, 3));
}

#[test]
fn validate_and_estimate_count_triples_and_render_every_variant() {
    let (wd, mock) = setup(3, &[MINI, HAIKU], &[TERSE, EXPLAINED]);
    let url = mock.url();
    let out = wd
        .command(&["validate", "job.toml", "--base-url", &url, "--json"])
        .assert()
        .code(0);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["requests"], 12);
    assert_eq!(v["variants"], serde_json::json!(["terse", "explained"]));
    let out = wd
        .command(&["estimate", "job.toml", "--base-url", &url, "--json"])
        .assert()
        .code(0);
    let e: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let per_model: Vec<u64> = e["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["rows"].as_u64().unwrap())
        .collect();
    assert_eq!(per_model, [6, 6], "{e}");
    assert_eq!(mock.requests().len(), 0);

    // The second variant's template is rendered for every row too.
    let broken = ("broken", "{{ text }} {{ lang }}", "");
    wd.create("job.toml", &job(&[MINI], &[TERSE, broken]));
    wd.command(&["validate", "job.toml", "--base-url", &url])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("'lang' is missing from 3 rows"));
    let syntax = ("bad", "{{ text ", "");
    wd.create("job.toml", &job(&[MINI], &[TERSE, syntax]));
    wd.run(&mock, &["job.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("variant bad: prompt template"));
    assert_eq!(mock.requests().len(), 0);
}

#[test]
fn the_pre_flight_counts_the_triples_still_to_send() {
    let (wd, mock) = setup(3, &[MINI, HAIKU], &[TERSE, EXPLAINED]);
    let tiny = ["job.toml", "--budget", "0.0000001"];
    let refused = wd.run(&mock, &tiny).assert();
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(stderr.contains("pre-flight: the 12 requests"), "{stderr}");
    assert_eq!(mock.requests().len(), 0);
    // With one variant done, only the other's triples are still to send.
    wd.create("job.toml", &job(&[MINI, HAIKU], &[TERSE]));
    wd.run(&mock, &["job.toml"]).assert().code(0);
    wd.create("job.toml", &job(&[MINI, HAIKU], &[TERSE, EXPLAINED]));
    let refused = wd.run(&mock, &tiny).assert();
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(stderr.contains("pre-flight: the 6 requests"), "{stderr}");
    assert_eq!(mock.requests().len(), 6);
}

#[test]
fn results_of_a_variant_left_out_of_the_job_are_kept_apart() {
    let (wd, mock) = setup(2, &[MINI], &[TERSE, EXPLAINED]);
    wd.run(&mock, &["job.toml"]).assert().code(0);
    wd.create("job.toml", &job(&[MINI], &[TERSE]));
    wd.run(&mock, &["job.toml"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains(
            "2 earlier results of variants not in this job (variant explained;",
        ));
    assert_eq!(mock.requests().len(), 4);
    let s = wd.summary("out/v");
    assert_eq!((s.rows.total, s.rows.ok, s.rows.not_sent), (2, 2, 0));
    let left = s.left_out.expect("left_out");
    assert_eq!(
        (left.rows, left.variants),
        (2, vec!["explained".to_string()])
    );
    assert_eq!(left.cost_usd + s.cost_usd.total, mock.spent());
    assert_eq!(s.cost_usd.by_variant.keys().collect::<Vec<_>>(), ["terse"]);
    // Still in results.jsonl, not in results.csv.
    assert_eq!(wd.results("out/v").len(), 4);
    assert_eq!(wd.csv("out/v").len(), 3);
}
