//! Judge attempts a crash left in flight. A judge call is recorded in the in-flight record
//! under a key of its own ([`super::judge::call_key`]), numbered on from the attempts its
//! check's record on the judged line counts (`JudgeRecord::attempts`). Such an attempt never
//! becomes a line of its own: it is settled once the judged key's latest line counts it, and
//! otherwise its money goes onto the judged key:
//! - when the judged completion was itself in flight (its crash line is being made), onto that
//!   line;
//! - else onto an amended copy of the judged key's latest line: its unknown cost raised by the
//!   attempts' worst cases (a known charge goes to `judge_cost_usd`), and the check's grade
//!   replaced by an ungraded record (no hash), so the next `score` grades it again;
//! - when the judged key has no line at all, onto a crash line of the judged key.
//!
//! Reading the judged keys' latest lines takes a pass over results.jsonl, only when the record
//! holds judge calls ([`JudgeCounts::read`], 64-bit hashes per judged key), and another only
//! when some are unsettled; memory holds those unsettled calls and the lines they amend.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rust_decimal::Decimal;

use super::judge::{call_key, failed, judged_by};
use super::tally::crashed_line;
use crate::output::inflight::{Crashed, Unsettled, for_each_key};
use crate::output::key::ResultKey;
use crate::output::results::{Prior, Recovered, for_each_latest};
use crate::output::{ResultLine, Status};

/// Why an amended line's check has no grade.
const UNGRADED: &str = "the judge was in flight when an earlier run ended abruptly (it may have been billed); the next score asks it again";

/// What the judged keys' latest lines count of the judge calls in an in-flight record.
#[derive(Debug, Default)]
pub(crate) struct JudgeCounts {
    /// Per judge call ([`call_hash`]): the attempts its check's record on the judged line counts.
    counts: HashMap<u64, u32>,
}

impl JudgeCounts {
    /// Reads the in-flight record at `inflight` and, when it holds judge calls, the latest
    /// lines of the keys they judge in `results` (results.jsonl).
    pub(crate) fn read(inflight: &Path, results: &Path) -> std::io::Result<JudgeCounts> {
        let mut judged = HashSet::new();
        for_each_key(inflight, |k| {
            if let Some((row, _, model)) = judged_by(k.id) {
                judged.insert(ResultKey::of(row, k.variant, model).hash());
            }
        })?;
        let mut counts = HashMap::new();
        if judged.is_empty() || !results.is_file() {
            return Ok(JudgeCounts { counts });
        }
        for_each_latest(&[results.to_path_buf()], |line| {
            if !judged.contains(&line.key().hash()) {
                return;
            }
            for (check, record) in line.judge.iter().flatten() {
                let call = call_key(&line.id, check, &line.model);
                counts.insert(call_hash(&call, line.variant.as_deref()), record.attempts);
            }
        })?;
        Ok(JudgeCounts { counts })
    }

    /// The attempts of `key` (an in-flight record's key) that results.jsonl accounts for, when
    /// it is a judge call's; `None` for a completion's.
    pub(crate) fn accounted(&self, key: ResultKey<'_>) -> Option<u32> {
        judged_by(key.id)?;
        Some(
            self.counts
                .get(&call_hash(key.id, key.variant))
                .copied()
                .unwrap_or(0),
        )
    }
}

/// A judge call's hash in [`JudgeCounts`]: its in-flight id and variant (the judged line does
/// not name the judge model).
fn call_hash(id: &str, variant: Option<&str>) -> u64 {
    ResultKey::of(id, variant, "").hash()
}

/// The judge calls a crash left unsettled, by the key of the line they judge.
#[derive(Debug, Default)]
pub(crate) struct JudgeCalls {
    by_key: HashMap<u64, Judged>,
}

/// One judged key's unsettled judge calls.
#[derive(Debug)]
struct Judged {
    id: String,
    variant: Option<String>,
    model: String,
    /// Per check: its unsettled attempts.
    checks: Vec<(String, Vec<Unsettled>)>,
}

impl Judged {
    fn key(&self) -> ResultKey<'_> {
        ResultKey::of(&self.id, self.variant.as_deref(), &self.model)
    }
}

impl JudgeCalls {
    /// Splits the unsettled keys of the in-flight record: the completions' are returned, the
    /// judge calls' are kept, grouped by the key of the line they judge.
    pub(crate) fn split(crashed: Vec<Crashed>) -> (Vec<Crashed>, JudgeCalls) {
        let mut calls = JudgeCalls::default();
        let mut pairs = Vec::with_capacity(crashed.len());
        for c in crashed {
            let Some((row, check, judged)) = judged_by(&c.id) else {
                pairs.push(c);
                continue;
            };
            let key = ResultKey::of(row, c.variant.as_deref(), judged).hash();
            let entry = calls.by_key.entry(key).or_insert_with(|| Judged {
                id: row.to_string(),
                variant: c.variant.clone(),
                model: judged.to_string(),
                checks: Vec::new(),
            });
            entry.checks.push((check.to_string(), c.attempts));
        }
        (pairs, calls)
    }

    /// Puts the judge calls on `line`, the crash line of the judged key `key` (its completion
    /// was in flight too, so no line counts them).
    pub(crate) fn onto_crash_line(&mut self, key: u64, line: &mut ResultLine) {
        if let Some(j) = self.by_key.remove(&key) {
            for (check, attempts) in &j.checks {
                charge(line, check, attempts.iter());
            }
        }
    }

    /// The lines of the judge calls left (see the module doc), read against `results`
    /// (results.jsonl) and added to `r`'s spend, worst case and keys.
    pub(crate) fn into_lines(
        mut self,
        results: &Path,
        r: &mut Recovered,
    ) -> std::io::Result<Vec<ResultLine>> {
        if self.by_key.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        if results.is_file() {
            for_each_latest(&[results.to_path_buf()], |line| {
                let key = line.key().hash();
                if let Some(j) = self.by_key.remove(&key)
                    && let Some(amended) = amend(&line, &j)
                {
                    out.push((Some(line), amended));
                }
            })?;
        }
        // Judged keys without a line: a crash line of their own carries the judges' money.
        for j in self.by_key.into_values() {
            let pair = Crashed {
                id: j.id.clone(),
                model: j.model.clone(),
                variant: j.variant.clone(),
                attempts: Vec::new(),
            };
            let mut line = crashed_line(&pair, r.failed.get(&j.key().hash()).as_ref());
            for (check, attempts) in &j.checks {
                charge(&mut line, check, attempts.iter());
            }
            out.push((None, line));
        }
        Ok(out
            .into_iter()
            .map(|(before, after)| {
                account(r, before.as_ref(), &after);
                after
            })
            .collect())
    }
}

/// The amended copy of `line` (the judged key's latest line), when it does not count some of
/// `j`'s attempts that may have cost something.
fn amend(line: &ResultLine, j: &Judged) -> Option<ResultLine> {
    let mut out = line.clone();
    let mut changed = false;
    for (check, attempts) in &j.checks {
        let counted = line
            .judge
            .as_ref()
            .and_then(|g| g.get(check))
            .map_or(0, |g| g.attempts);
        let mut left = attempts.iter().filter(|a| a.n > counted).peekable();
        if left.peek().is_some() {
            changed |= charge(&mut out, check, left);
        }
    }
    changed.then_some(out)
}

/// Adds judge attempts of check `check` to `line`: a known charge to `judge_cost_usd` (to
/// `cost_usd` on an error line, which a re-sent pair carries), an unknown one at its worst
/// case. An ok line's record of the check becomes ungraded, numbered past the attempts.
/// Returns whether anything was added.
fn charge<'a>(
    line: &mut ResultLine,
    check: &str,
    attempts: impl Iterator<Item = &'a Unsettled>,
) -> bool {
    let ok = line.status == Status::Ok;
    let mut last = 0;
    let mut added = false;
    for a in attempts {
        last = last.max(a.n);
        match a.charge {
            Some(c) if c.is_zero() => continue,
            Some(c) if ok => {
                line.judge_cost_usd = Some(line.judge_cost_usd.unwrap_or_default() + c);
            }
            Some(c) => line.cost_usd = Some(line.cost_usd.unwrap_or_default() + c),
            None => {
                line.unknown_cost_attempts += 1;
                line.unknown_cost_max_usd =
                    Some(line.unknown_cost_max_usd.unwrap_or_default() + a.worst);
            }
        }
        added = true;
    }
    if ok && last > 0 {
        let record = failed(String::new(), UNGRADED.into(), last);
        line.judge
            .get_or_insert_with(Default::default)
            .insert(check.to_string(), record);
        if let Some(score) = line.scores.as_mut().and_then(|s| s.get_mut(check)) {
            *score = None;
        }
    }
    added
}

/// Counts `after` (which replaces `before`, the key's latest line, if any) in `r`.
fn account(r: &mut Recovered, before: Option<&ResultLine>, after: &ResultLine) {
    let key = after.key().hash();
    let (spent, unknown) = before.map_or_else(
        || {
            r.failed
                .get(&key)
                .map_or((Decimal::ZERO, Decimal::ZERO), |p| {
                    (
                        p.cost_usd.unwrap_or_default(),
                        p.unknown_cost_max_usd.unwrap_or_default(),
                    )
                })
        },
        |b| (b.spend(), b.unknown_cost_max_usd.unwrap_or_default()),
    );
    r.spent += after.spend() - spent;
    r.unknown_max += after.unknown_cost_max_usd.unwrap_or_default() - unknown;
    if after.status == Status::Error {
        r.failed.insert(key, Prior::of(after));
    }
}

#[cfg(test)]
mod tests {
    use super::super::crashed::{absorb_unsettled, recorded};
    use super::super::judge::call_key;
    use super::*;
    use crate::eval::judge::JudgeRecord;
    use crate::output::inflight::{FILE_NAME, Inflight};
    use crate::output::line::LineBuilder;

    const RESULTS_NAME: &str = crate::output::finalize::RESULTS;

    fn at(id: &str) -> ResultKey<'_> {
        ResultKey::new(id, "j")
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// An ok line of row `id` on "m", graded by "grader" after `attempts` judge attempts.
    fn graded(id: &str, attempts: u32) -> ResultLine {
        let mut l = LineBuilder::new(id, "m").ok("a").build();
        l.cost_usd = Some(d("1"));
        l.judge_cost_usd = Some(d("0.1"));
        let record = JudgeRecord {
            hash: "h".into(),
            score: Some(0.5),
            reason: Some("fine".into()),
            attempts,
        };
        l.judge = Some([("grader".to_string(), record)].into());
        l.scores = Some([("grader".to_string(), Some(0.5))].into());
        l
    }

    #[tokio::test]
    async fn judge_calls_in_flight_go_onto_the_judged_pair_never_onto_a_line_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let text = [graded("1", 1), graded("2", 1)]
            .iter()
            .map(|l| serde_json::to_string(l).unwrap() + "\n")
            .collect::<String>();
        std::fs::write(dir.path().join(RESULTS_NAME), &text).unwrap();
        let path = dir.path().join(FILE_NAME);
        let rec = Inflight::create(&path).unwrap();
        let judge = |row: &str| call_key(row, "grader", "m");
        let (j1, j2, j3, j4) = (judge("1"), judge("2"), judge("3"), judge("4"));
        // Row 1: its line counts attempt 1 of the judge, not attempts 2 (failed, charged
        // $0.05) and 3 (in flight).
        rec.sent(at(&j1), 1, d("0.3")).await.unwrap();
        rec.sent(at(&j1), 2, d("0.3")).await.unwrap();
        rec.charged(at(&j1), 2, d("0.05")).unwrap();
        rec.sent(at(&j1), 3, d("0.3")).await.unwrap();
        // Row 2: settled by its line.
        rec.sent(at(&j2), 1, d("0.3")).await.unwrap();
        // Row 3: the completion and then its judge were in flight (no line).
        rec.sent(ResultKey::new("3", "m"), 1, d("1")).await.unwrap();
        rec.sent(at(&j3), 1, d("0.3")).await.unwrap();
        // Row 4: no line at all, only a judge attempt in flight.
        rec.sent(at(&j4), 1, d("0.3")).await.unwrap();
        drop(rec);

        // Settled judge calls are told apart with hashes, before any is held in memory.
        let counts = JudgeCounts::read(&path, &dir.path().join(RESULTS_NAME)).unwrap();
        assert_eq!(counts.accounted(at(&j2)), Some(1));
        assert_eq!(counts.accounted(at(&j1)), Some(1));
        assert_eq!(counts.accounted(at(&j4)), Some(0));
        assert_eq!(counts.accounted(ResultKey::new("3", "m")), None);

        let r = recorded(dir.path()).unwrap();
        // Known: 2 x ($1 + $0.1) + row 1's failed judge attempt.
        assert_eq!(r.spent, d("2.25"));
        // Worst cases: row 1's attempt 3, row 3's completion and judge, row 4's judge.
        assert_eq!(r.unknown_max, d("1.9"));

        // As `run` does: the journal's view, then the record absorbed.
        let mut j = Recovered::default();
        for_each_latest(&[dir.path().join(RESULTS_NAME)], |l| {
            j.spent += l.spend();
            j.done.insert(l.key().hash());
        })
        .unwrap();
        let lines = absorb_unsettled(&path, &mut j).unwrap();
        assert_eq!((j.spent, j.unknown_max), (r.spent, r.unknown_max));
        assert!(lines.iter().all(|l| !l.id.contains("judge:")), "{lines:?}");
        let by_id = |id: &str| lines.iter().find(|l| l.id == id);
        assert!(by_id("2").is_none(), "row 2 is settled");
        let one = by_id("1").expect("row 1 amended");
        assert_eq!(one.status, Status::Ok);
        assert_eq!(one.cost_usd, Some(d("1")));
        assert_eq!(one.judge_cost_usd, Some(d("0.15")));
        assert_eq!(
            (one.unknown_cost_attempts, one.unknown_cost_max_usd),
            (1, Some(d("0.3")))
        );
        let record = &one.judge.as_ref().unwrap()["grader"];
        assert_eq!((record.hash.as_str(), record.score), ("", None));
        assert_eq!(record.attempts, 3, "the next call is numbered past them");
        assert_eq!(one.scores.as_ref().unwrap()["grader"], None);
        let three = by_id("3").expect("row 3's crash line");
        assert_eq!(three.status, Status::Error);
        assert!(three.resumable);
        assert_eq!(
            (three.unknown_cost_attempts, three.unknown_cost_max_usd),
            (2, Some(d("1.3")))
        );
        let four = by_id("4").expect("row 4's crash line");
        assert_eq!((four.model.as_str(), four.variant.as_deref()), ("m", None));
        assert_eq!(four.unknown_cost_max_usd, Some(d("0.3")));
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn a_judge_key_is_read_back_and_a_row_id_is_not_one() {
        let id = call_key("a\u{1f}judge:x", "grader", "openai/gpt-4o");
        assert_eq!(
            judged_by(&id),
            Some(("a\u{1f}judge:x", "grader", "openai/gpt-4o"))
        );
        assert_eq!(judged_by("row 7"), None);
        assert_eq!(judged_by("a\u{1f}b"), None);
    }
}
