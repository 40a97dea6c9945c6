//! Agreement across three models: disagreements.csv lists exactly the rows whose answers
//! differ, consensus.csv every row in input order, and summary.json's agreement matches the
//! lines.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::reask::annotate_args;
use crate::support::*;

const GEMINI: &str = "google/gemini-2.0-flash-001";

#[test]
fn disagreements_list_exactly_the_differing_ids_and_agreement_matches_the_lines() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    let args = annotate_args(&wd, 40);
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["--model", MINI, "--model", HAIKU, "--model", GEMINI]);
    let out = wd.run(&mock, &all).assert().code(0);
    let table = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let mut by_id: BTreeMap<u32, Vec<Value>> = BTreeMap::new();
    for model in [MINI, HAIKU, GEMINI] {
        for l in wd
            .results("out/in")
            .into_iter()
            .filter(|l| l.model == model)
        {
            let p = l.parsed.unwrap().unwrap();
            by_id
                .entry(l.id.parse().unwrap())
                .or_default()
                .push(serde_json::from_str(p.get()).unwrap());
        }
    }
    let differs = |vals: &[Value], f: &str| vals.iter().any(|v| v[f] != vals[0][f]);
    let expected: Vec<String> = by_id
        .iter()
        .filter(|(_, v)| differs(v, "sentiment") || differs(v, "sarcastic"))
        .map(|(id, _)| id.to_string())
        .collect();
    assert!(!expected.is_empty() && expected.len() < 40, "{expected:?}");
    let read = |name: &str| -> Vec<Vec<String>> {
        csv::Reader::from_path(wd.path().join("out/in").join(name))
            .unwrap()
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect()
    };
    let listed: Vec<String> = read("disagreements.csv")
        .iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(
        listed, expected,
        "exactly the differing ids, in input order"
    );
    let consensus = read("consensus.csv");
    let ids: Vec<String> = consensus.iter().map(|r| r[0].clone()).collect();
    assert_eq!(ids, (1..=40).map(|i| i.to_string()).collect::<Vec<_>>());
    for r in &consensus {
        assert_eq!(
            r[3] == "true",
            !expected.contains(&r[0]),
            "agree of {}",
            r[0]
        );
    }
    let s: Value = serde_json::from_str(&wd.read("out/in/summary.json")).unwrap();
    let f = &s["annotation"]["fields"]["sentiment"];
    let agree = by_id.values().filter(|v| !differs(v, "sentiment")).count() as f64 / 40.0;
    assert_eq!(
        f["agreement"].as_f64().unwrap(),
        (agree * 10_000.0).round() / 10_000.0
    );
    assert_eq!(f["kappa_method"], "fleiss");
    // The printed table shows each field's agreement and kappa.
    let row = table
        .lines()
        .find(|l| l.contains("sentiment") && l.contains("fleiss"))
        .unwrap_or_else(|| panic!("no agreement row in {table}"));
    assert!(row.contains(&format!("{:.1}%", agree * 100.0)), "{row}");
    assert!(table.contains("agreement between 3 raters"), "{table}");
    assert_eq!(f["rows"], 40);
    let mini_pos = by_id
        .values()
        .filter(|v| v[0]["sentiment"] == "positive")
        .count() as u64;
    assert_eq!(
        f["counts"]["positive"][MINI].as_u64().unwrap_or(0),
        mini_pos
    );
    assert!(
        s["annotation"]["fields"].get("topics").is_none(),
        "arrays are not rated"
    );
}
