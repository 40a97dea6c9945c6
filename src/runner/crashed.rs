//! Money a crash left in flight: at the start of a run, the attempts of the in-flight record
//! ([`crate::output::inflight`]) that results.jsonl does not account for become result lines
//! (unknown cost at their worst case), before anything is sent.

use rust_decimal::Decimal;

use super::prepare::Prepared;
use super::tally::crashed_line;
use super::{RunError, RunOptions};
use crate::output::ResultLine;
use crate::output::inflight::{self, Inflight};
use crate::output::results::{Prior, Recovered, key_hash};

/// Reads the in-flight record an earlier run left (unless `--fresh`), turns the attempts that
/// results.jsonl does not account for into result lines (unknown cost at their worst case, so
/// the budget and the summary count them), then starts the record afresh.
pub(crate) fn start_inflight(p: &mut Prepared, opts: &RunOptions) -> Result<Inflight, RunError> {
    let path = p.job.output_dir.join(inflight::FILE_NAME);
    let io = |what: &str, e: std::io::Error| {
        RunError::Other(anyhow::anyhow!("{what} {}: {e}", path.display()))
    };
    if !opts.fresh {
        let lines = absorb_unsettled(&path, &mut p.recovered).map_err(|e| io("cannot read", e))?;
        if !lines.is_empty() {
            tracing::warn!(
                "{} pairs had attempts in flight when an earlier run ended abruptly: counted at their worst case",
                lines.len()
            );
            p.journal
                .append_all(&lines)
                .and_then(|()| p.journal.sync())
                .map_err(|e| RunError::Other(anyhow::anyhow!("cannot write results.jsonl: {e}")))?;
        }
    }
    Inflight::create(&path).map_err(|e| io("cannot create", e))
}

/// Reads the in-flight record at `path` (absent = empty) and adds the attempts results.jsonl
/// does not account for to `r` (unknown cost at their worst case); returns their lines, for
/// the journal. Writes nothing: `run`'s pre-flight counts them as the dispatcher will.
pub(crate) fn absorb_unsettled(
    path: &std::path::Path,
    r: &mut Recovered,
) -> std::io::Result<Vec<ResultLine>> {
    let crashed = inflight::unsettled(path, |id, model| {
        let key = key_hash(id, model);
        if r.done.contains(&key) {
            u32::MAX
        } else {
            r.failed.get(&key).map_or(0, |f| f.attempts)
        }
    })?;
    Ok(absorb_crashed(r, &crashed))
}

/// The lines of the crash-time attempts, and what they add to the recovered spend.
fn absorb_crashed(r: &mut Recovered, crashed: &[inflight::Crashed]) -> Vec<ResultLine> {
    let mut lines = Vec::with_capacity(crashed.len());
    for c in crashed {
        let key = key_hash(&c.id, &c.model);
        let prior = r.failed.get(&key);
        let line = crashed_line(c, prior);
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
