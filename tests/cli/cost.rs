//! Where each row's cost comes from (docs/contract.md §6): the response, `/generation` (with its
//! record lag), the price table, or unknown; never a failure.

use std::time::Instant;

use orbatch::mock::{self, MockConfig};
use orbatch::output::{CostSource, Status};

use crate::common::*;

fn job(source: &str, models: &[&str]) -> String {
    let models: Vec<String> = models.iter().map(|m| format!("{m:?}")).collect();
    format!(
        "input = \"in.csv\"\noutput_dir = \"out/c\"\n[request]\nmodels = [{}]\nprompt = \"{{{{ text }}}}\"\nmax_tokens = 6\n[cost]\nsource = \"{source}\"\n",
        models.join(", ")
    )
}

#[test]
fn generation_lookups_survive_a_two_second_record_lag() {
    let wd = Workdir::new();
    let mock = Mock::start(MockConfig {
        no_cost: true,
        generation_lag_ms: 2000,
        ..Default::default()
    });
    wd.create("in.csv", &rows_csv(6));
    wd.create("job.toml", &job("auto", &[MINI]));
    wd.run(&mock, &["job.toml"]).assert().code(0);

    let lines = wd.results("out/c");
    assert_eq!(lines.len(), 6);
    let charges = mock.charges();
    for l in &lines {
        assert_eq!(l.status, Status::Ok);
        assert_eq!(l.cost_source, Some(CostSource::Generation), "{}", l.id);
        assert_eq!(
            l.cost_usd.as_ref(),
            charges.get(l.generation_id.as_deref().unwrap())
        );
        assert_eq!(l.provider.as_deref(), Some("OpenAI"));
    }
    let s = wd.summary("out/c");
    assert_eq!(s.cost_usd.total, mock.spent());
    assert_eq!(s.cost_usd.unknown_rows, 0);
}

#[test]
fn cost_source_generation_always_looks_up() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    wd.create("in.csv", &rows_csv(3));
    wd.create("job.toml", &job("generation", &[MINI, HAIKU]));
    wd.run(&mock, &["job.toml"]).assert().code(0);
    let lines = wd.results("out/c");
    assert_eq!(lines.len(), 6);
    assert!(
        lines
            .iter()
            .all(|l| l.cost_source == Some(CostSource::Generation))
    );
    assert_costs_are_the_mocks(&lines, &mock);
    assert_summary_sums(&wd.summary("out/c"), &lines);
}

#[test]
fn no_cost_and_no_generation_degrade_to_the_price_table_or_unknown() {
    let wd = Workdir::new();
    let unlisted = "acme/unlisted-model";
    let mock = Mock::start(MockConfig {
        no_cost: true,
        no_generation: true,
        unlisted_models: vec![unlisted.to_string()],
        ..Default::default()
    });
    wd.create("in.csv", &rows_csv(4));
    wd.create("job.toml", &job("auto", &[MINI, unlisted]));
    let t = Instant::now();
    wd.run(&mock, &["job.toml", "--allow-unknown-models"])
        .assert()
        .code(0);
    let took = t.elapsed().as_secs_f64();

    let lines = wd.results("out/c");
    assert_eq!(lines.len(), 8);
    for l in &lines {
        assert_eq!(l.status, Status::Ok, "a missing cost is never a failure");
        if l.model == MINI {
            assert_eq!(l.cost_source, Some(CostSource::PriceTable));
            let p = mock::price(MINI).unwrap();
            let want = p.cost(l.prompt_tokens.unwrap(), l.completion_tokens.unwrap());
            assert_eq!(l.cost_usd, Some(want));
        } else {
            assert_eq!(l.cost_source, None);
            assert_eq!(l.cost_usd, None);
            assert_eq!(l.table_cost_usd, None);
        }
    }
    let s = wd.summary("out/c");
    assert_eq!(s.rows.ok, 8);
    assert_eq!(s.cost_usd.unknown_rows, 4);
    assert_summary_sums(&s, &lines);
    // The known part is exact: the mock billed the same as the table says.
    let listed: rust_decimal::Decimal = mock
        .requests()
        .iter()
        .filter(|r| r.model == MINI)
        .filter_map(|r| r.cost)
        .sum();
    assert_eq!(s.cost_usd.total, listed);
    // A server without /generation must not stall the run (nor sweep every row at the end).
    assert!(took < 20.0, "the run took {took:.1} s");
}
