//! Money a crash left in flight: at the start of a run, the attempts of the in-flight record
//! ([`crate::output::inflight`]) that results.jsonl does not account for become result lines
//! (unknown cost at their worst case), before anything is sent.

use rust_decimal::Decimal;

use super::crashed_judge::{JudgeCalls, JudgeCounts};
use super::prepare::Prepared;
use super::tally::crashed_line;
use super::{RunError, RunOptions};
use crate::output::finalize::RESULTS;
use crate::output::inflight::{self, Inflight};
use crate::output::priors::PriorsBuilder;
use crate::output::results::{Journal, Prior, Recovered, for_each_latest};
use crate::output::{ResultLine, Status};

/// Reads the in-flight record an earlier run left (unless `--fresh`), turns the attempts that
/// results.jsonl does not account for into result lines (unknown cost at their worst case, so
/// the budget and the summary count them), then starts the record afresh.
pub(crate) fn start_inflight(p: &mut Prepared, opts: &RunOptions) -> Result<Inflight, RunError> {
    open_inflight(
        &p.job.output_dir,
        &mut p.journal,
        &mut p.recovered,
        opts.fresh,
    )
}

/// The in-flight record of the output dir `dir` started afresh, after the attempts an earlier
/// process left unsettled became lines of `journal` (and of `recovered`), unless `fresh`.
pub(crate) fn open_inflight(
    dir: &std::path::Path,
    journal: &mut Journal,
    recovered: &mut Recovered,
    fresh: bool,
) -> Result<Inflight, RunError> {
    let path = dir.join(inflight::FILE_NAME);
    let io = |what: &str, e: std::io::Error| {
        RunError::Other(anyhow::anyhow!("{what} {}: {e}", path.display()))
    };
    if !fresh {
        let lines = absorb_unsettled(&path, recovered).map_err(|e| io("cannot read", e))?;
        if !lines.is_empty() {
            tracing::warn!(
                "{} pairs had attempts in flight when an earlier run ended abruptly: counted at their worst case",
                lines.len()
            );
            journal
                .append_all(&lines)
                .and_then(|()| journal.sync())
                .map_err(|e| RunError::Other(anyhow::anyhow!("cannot write results.jsonl: {e}")))?;
        }
    }
    Inflight::create(&path).map_err(|e| io("cannot create", e))
}

/// What earlier runs recorded in the output dir `dir`, read without changing anything:
/// results.jsonl's latest line per key, plus the attempts the in-flight record holds that
/// results.jsonl does not account for (as `run` absorbs them before sending). Empty when
/// there is no results.jsonl.
pub fn recorded(dir: &std::path::Path) -> std::io::Result<Recovered> {
    let mut r = Recovered::default();
    let results = dir.join(RESULTS);
    let mut done = Vec::new();
    let mut failed = PriorsBuilder::default();
    if results.is_file() {
        for_each_latest(&[results], |line| {
            r.spent += line.spend();
            r.unknown_max += line.unknown_cost_max_usd.unwrap_or_default();
            let key = line.key().hash();
            match line.status {
                Status::Ok => done.push(key),
                Status::Error => failed.push(key, &Prior::of(&line)),
            }
        })?;
    }
    r.done = done.into();
    r.failed = failed.finish();
    absorb_unsettled(&dir.join(inflight::FILE_NAME), &mut r)?;
    Ok(r)
}

/// Reads the in-flight record at `path` (absent = empty) and adds the attempts results.jsonl
/// (next to it) does not account for to `r` (unknown cost at their worst case); returns their
/// lines, for the journal. A judge call's attempts go onto the line it judges, never onto a
/// line of their own (`crashed_judge.rs`). Writes nothing: `run`'s pre-flight counts them as
/// the dispatcher will.
pub(crate) fn absorb_unsettled(
    path: &std::path::Path,
    r: &mut Recovered,
) -> std::io::Result<Vec<ResultLine>> {
    let results = path.with_file_name(RESULTS);
    let counts = JudgeCounts::read(path, &results)?;
    let crashed = inflight::unsettled(path, |key| {
        if let Some(n) = counts.accounted(key) {
            return n;
        }
        let key = key.hash();
        if r.done.contains(&key) {
            u32::MAX
        } else {
            r.failed.get(&key).map_or(0, |f| f.attempts)
        }
    })?;
    let (pairs, mut judges) = JudgeCalls::split(crashed);
    let mut lines = absorb_crashed(r, &pairs, &mut judges);
    lines.extend(judges.into_lines(&results, r)?);
    Ok(lines)
}

/// The lines of the crash-time attempts (with the judge calls on their pairs), and what they
/// add to the recovered spend.
fn absorb_crashed(
    r: &mut Recovered,
    crashed: &[inflight::Crashed],
    judges: &mut JudgeCalls,
) -> Vec<ResultLine> {
    let mut lines = Vec::with_capacity(crashed.len());
    for c in crashed {
        let key = c.key().hash();
        let prior = r.failed.get(&key);
        let mut line = crashed_line(c, prior.as_ref());
        judges.onto_crash_line(key, &mut line);
        let before = prior.map_or((Decimal::ZERO, Decimal::ZERO), |p| {
            (
                p.cost_usd.unwrap_or_default(),
                p.unknown_cost_max_usd.unwrap_or_default(),
            )
        });
        r.spent += line.cost_usd.unwrap_or_default() - before.0;
        r.unknown_max += line.unknown_cost_max_usd.unwrap_or_default() - before.1;
        r.failed.insert(key, Prior::of(&line));
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recorded_reads_the_journal_and_the_in_flight_record_without_writing() {
        use crate::output::inflight::{FILE_NAME, Inflight};
        use crate::output::line::LineBuilder;
        let dir = tempfile::tempdir().unwrap();
        let half = Decimal::new(5, 1);
        let mut ok = LineBuilder::new("1", "m").build();
        ok.cost_usd = Some(Decimal::ONE);
        let mut stopped = LineBuilder::new("2", "m").build();
        LineBuilder::mark_error(
            &mut stopped,
            crate::output::ErrorKind::Network,
            None,
            "x".into(),
        );
        stopped.resumable = true;
        stopped.unknown_cost_max_usd = Some(half);
        let text = [&ok, &stopped]
            .iter()
            .map(|l| serde_json::to_string(l).unwrap() + "\n")
            .collect::<String>();
        std::fs::write(dir.path().join("results.jsonl"), &text).unwrap();
        // A crash left an attempt of row 3 in flight, at most $0.5.
        Inflight::create(&dir.path().join(FILE_NAME))
            .unwrap()
            .sent(crate::output::key::ResultKey::new("3", "m"), 1, half)
            .await
            .unwrap();
        let inflight = std::fs::read(dir.path().join(FILE_NAME)).unwrap();

        let r = recorded(dir.path()).unwrap();
        assert_eq!((r.spent, r.unknown_max), (Decimal::ONE, Decimal::ONE));
        let plan = crate::plan::Plan::with_models(vec!["m".into()], false).resuming(&r, false);
        assert!(plan.pending("1", None, "m").is_none());
        assert!(plan.pending("2", None, "m").is_some() && plan.pending("3", None, "m").is_some());
        assert_eq!(plan.committed(), Decimal::TWO);
        // Nothing was written.
        let journal = std::fs::read_to_string(dir.path().join("results.jsonl")).unwrap();
        assert_eq!(journal, text);
        assert_eq!(std::fs::read(dir.path().join(FILE_NAME)).unwrap(), inflight);
    }

    #[test]
    fn recorded_counts_what_the_judges_cost() {
        use crate::output::line::LineBuilder;
        let dir = tempfile::tempdir().unwrap();
        let mut ok = LineBuilder::new("1", "m").ok("a").build();
        ok.cost_usd = Some(Decimal::ONE);
        ok.judge_cost_usd = Some(Decimal::TWO);
        let text = serde_json::to_string(&ok).unwrap() + "\n";
        std::fs::write(dir.path().join("results.jsonl"), text).unwrap();
        assert_eq!(recorded(dir.path()).unwrap().spent, Decimal::from(3));
    }

    #[tokio::test]
    async fn a_crashed_variant_is_counted_under_its_own_key() {
        use crate::output::inflight::{FILE_NAME, Inflight};
        use crate::output::key::ResultKey;
        use crate::output::line::LineBuilder;
        let dir = tempfile::tempdir().unwrap();
        let mut ok = LineBuilder::new("1", "m").ok("a").build();
        ok.cost_usd = Some(Decimal::ONE);
        let text = serde_json::to_string(&ok).unwrap() + "\n";
        std::fs::write(dir.path().join("results.jsonl"), &text).unwrap();
        // The same row and model under the variant "v" was in flight, at most $2.
        Inflight::create(&dir.path().join(FILE_NAME))
            .unwrap()
            .sent(ResultKey::of("1", Some("v"), "m"), 1, Decimal::TWO)
            .await
            .unwrap();
        let r = recorded(dir.path()).unwrap();
        assert_eq!((r.spent, r.unknown_max), (Decimal::ONE, Decimal::TWO));
        let plan = crate::plan::Plan::with_models(vec!["m".into()], false).resuming(&r, false);
        assert!(plan.pending("1", None, "m").is_none());
        let crashed = plan.pending("1", Some("v"), "m").expect("pending");
        assert_eq!(crashed.carried_worst(), Decimal::TWO);
    }
}
