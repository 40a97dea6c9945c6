//! Resume basics: a re-run sends only the pairs with no line.

use predicates::prelude::*;

use crate::common::*;

fn job(models: &[&str]) -> String {
    let models: Vec<String> = models.iter().map(|m| format!("{m:?}")).collect();
    format!(
        "input = \"in.csv\"\noutput_dir = \"out/r\"\n[request]\nmodels = [{}]\nprompt = \"{{{{ text }}}}\"\n",
        models.join(", ")
    )
}

#[test]
fn a_rerun_sends_nothing_and_exits_0() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    wd.create("in.csv", &rows_csv(5));
    wd.create("job.toml", &job(&[MINI, HAIKU]));
    wd.run(&mock, &["job.toml"]).assert().code(0);
    let sent = mock.requests().len();
    assert_eq!(sent, 10);
    let before = wd.summary("out/r");

    wd.run(&mock, &["job.toml"]).assert().code(0);
    assert_eq!(mock.requests().len(), sent, "a re-run sent requests");
    let lines = wd.results("out/r");
    assert_eq!(lines.len(), 10);
    let after = wd.summary("out/r");
    assert_eq!(after.cost_usd, before.cost_usd);
    assert_eq!(after.rows, before.rows);
    assert!(after.complete);

    // --fresh starts over.
    wd.run(&mock, &["job.toml", "--fresh"]).assert().code(0);
    assert_eq!(mock.requests().len(), 2 * sent);
    assert_eq!(wd.results("out/r").len(), 10);
}

#[test]
fn adding_a_model_sends_only_the_new_pairs() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    wd.create("in.csv", &rows_csv(4));
    wd.create("job.toml", &job(&[MINI]));
    wd.run(&mock, &["job.toml"]).assert().code(0);
    assert_eq!(mock.requests().len(), 4);

    wd.create("job.toml", &job(&[MINI, HAIKU]));
    wd.run(&mock, &["job.toml"]).assert().code(0);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 8);
    assert!(reqs[4..].iter().all(|r| r.model == HAIKU));
    let lines = wd.results("out/r");
    assert_one_line_per_pair(&lines, &["1", "2", "3", "4"], &[MINI, HAIKU]);
    let s = wd.summary("out/r");
    assert_eq!((s.rows.total, s.rows.ok), (8, 8));
    assert_eq!(s.cost_usd.total, mock.spent());

    // A changed request shape is refused, naming what changed; nothing is sent.
    wd.run(&mock, &["job.toml", "--prompt", "Other: {{ text }}"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("prompt"));
    assert_eq!(mock.requests().len(), 8);
}
