//! Judge calls: each `judge` check of an ok line sends its rubric to the judge model through
//! the run's own attempt loop ([`super::worker::attempts`]): the same concurrency slots, rate
//! limiter (RPM, and TPM with the rubric's token upper bound), retries and budget reservations
//! as completions. `run` grades each line before it is written; `score` grades the lines whose
//! grades are missing or stale ([`needs_grading`]). What the calls cost goes to the line's
//! `judge_cost_usd` (never into `cost_usd`).
//!
//! A reply that does not validate against `{score, reason}` is re-asked once, with the reply
//! and the validation error in the conversation (as `[output]` schemas are); one that still
//! does not validate, or a call that fails, leaves the grade `null`. A grade (or a reply that
//! never validated) records the hash of its inputs, so it is not paid for again while they
//! stay the same; a call that failed or was never sent records no hash, so the next `score`
//! sends it again.
//!
//! A judge's in-flight record is kept under the id `<row id>\u{1f}judge:<check>\u{1f}<judged
//! model>` ([`call_key`]) and the judged line's variant, so it never settles or resumes a
//! completion pair. A check's attempts are numbered on from the count its record keeps
//! (`JudgeRecord::attempts`), so the judged line settles them: an attempt numbered above the
//! count of the judged key's latest line was in flight at a crash, and the next run puts its
//! worst case on the judged pair (`runner/crashed_judge.rs`), never on a line of its own. An
//! attempt of unknown charge (aborted, ambiguous) counts on the judged line at its worst case
//! (`unknown_cost_attempts`, `unknown_cost_max_usd`).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use rust_decimal::Decimal;

use super::Ctx;
use super::reserve::{Refused, Turn};
use super::structured::{Run, reask_body};
use super::tally::Attempts;
use super::worker::{End, WorkItem, attempts};
use crate::budget::Worst;
use crate::eval::Scorer;
use crate::eval::judge::{JudgeRecord, inputs_hash, read_reply, request_body};
use crate::job::{CheckKind, CheckSpec};
use crate::output::{ResultLine, Status};

/// The most tokens a judge's reply may take.
const JUDGE_MAX_TOKENS: u64 = 256;
/// Re-asks after a judge reply that does not validate.
const JUDGE_REASKS: u32 = 1;

/// What a check of a line asks of its judge.
enum Want {
    /// Not a judge check, or its grade is of the current inputs.
    Nothing,
    /// The rubric cannot be rendered (no call can grade it): why.
    Broken(String),
    /// A call: the rendered rubric and the hash of the inputs.
    Send(String, String),
}

fn want(scorer: &Scorer, c: &CheckSpec, line: &ResultLine) -> Want {
    let CheckKind::Judge { model, .. } = &c.kind else {
        return Want::Nothing;
    };
    let rubric = match scorer.rubric(c, line) {
        Some(Ok(r)) => r,
        Some(Err(why)) => return Want::Broken(why),
        None => return Want::Nothing,
    };
    let hash = inputs_hash(model, &rubric);
    let recorded = line.judge.as_ref().and_then(|j| j.get(&c.name));
    match recorded {
        Some(r) if r.hash == hash => Want::Nothing,
        _ => Want::Send(rubric, hash),
    }
}

/// Whether `line` is ok and has a judge check whose grade is missing or stale (its model,
/// rubric or judged output changed, or its last call failed): a judge call to send.
pub(crate) fn needs_grading(scorer: &Scorer, line: &ResultLine) -> bool {
    line.status == Status::Ok
        && scorer
            .spec()
            .checks
            .iter()
            .any(|c| matches!(want(scorer, c, line), Want::Send(..)))
}

/// Grades every judge check of `line` (an ok line) whose record is missing or stale.
pub(crate) async fn grade(ctx: &Arc<Ctx>, scorer: &Scorer, line: &mut ResultLine) {
    if line.status != Status::Ok {
        return;
    }
    let mut records = line.judge.clone().unwrap_or_default();
    let mut cost = line.judge_cost_usd.unwrap_or_default();
    for c in &scorer.spec().checks {
        let before = records.get(&c.name).map_or(0, |r| r.attempts);
        let (rubric, hash) = match want(scorer, c, line) {
            Want::Nothing => continue,
            Want::Broken(why) => {
                let record = failed(String::new(), why, before);
                records.insert(c.name.clone(), record);
                continue;
            }
            Want::Send(rubric, hash) => (rubric, hash),
        };
        let CheckKind::Judge { model, .. } = &c.kind else {
            continue;
        };
        // The in-flight record's key of this call: the judged line's whole key and the check,
        // so two judged answers of one row never share an entry.
        let call = Call {
            key: call_key(&line.id, &c.name, &line.model),
            variant: line.variant.clone(),
            model: model.clone(),
        };
        let graded = call.grade(ctx, scorer, &rubric, hash, before).await;
        cost += graded.known;
        if graded.unknown > 0 {
            line.unknown_cost_attempts += graded.unknown;
            line.unknown_cost_max_usd =
                Some(line.unknown_cost_max_usd.unwrap_or_default() + graded.unknown_max);
        }
        records.insert(c.name.clone(), graded.record);
    }
    line.judge_cost_usd = Some(cost);
    line.judge = Some(records).filter(|r: &BTreeMap<_, _>| !r.is_empty());
}

/// The in-flight record's id of check `check`'s judge calls on the line of `row` and `model`.
pub(crate) fn call_key(row: &str, check: &str, model: &str) -> String {
    format!("{row}{SEP}{MARK}{check}{SEP}{model}")
}

/// The judged line's row id, the check and the judged model of an in-flight record's id made by
/// [`call_key`]; `None` for a completion's id. Check names and model slugs hold no `\u{1f}`.
pub(crate) fn judged_by(id: &str) -> Option<(&str, &str, &str)> {
    let (rest, model) = id.rsplit_once(SEP)?;
    let (row, check) = rest.rsplit_once(&format!("{SEP}{MARK}"))?;
    (!check.contains(SEP)).then_some((row, check, model))
}

const SEP: char = '\u{1f}';
const MARK: &str = "judge:";

/// A record without a grade: why, and the attempts its check has made on the line so far.
pub(crate) fn failed(hash: String, why: String, attempts: u32) -> JudgeRecord {
    JudgeRecord {
        hash,
        score: None,
        reason: Some(why),
        attempts,
    }
}

/// What one check's call on one line gave.
struct Graded {
    record: JudgeRecord,
    /// What its attempts are known to have cost.
    known: Decimal,
    /// Its attempts of unknown charge, and their worst cases.
    unknown: u32,
    unknown_max: Decimal,
}

/// One judge check's call on one line.
struct Call {
    /// The in-flight record's id.
    key: String,
    variant: Option<String>,
    /// The judge model.
    model: String,
}

impl Call {
    /// Asks the judge (and re-asks once after a reply that does not validate): the record,
    /// and what the attempts cost. `before`: the attempts the check made on the line earlier
    /// (this call's are numbered on from it).
    async fn grade(
        &self,
        ctx: &Arc<Ctx>,
        scorer: &Scorer,
        rubric: &str,
        hash: String,
        before: u32,
    ) -> Graded {
        let first = request_body(&self.model, rubric, JUDGE_MAX_TOKENS);
        let mut messages = first["messages"].as_array().cloned().unwrap_or_default();
        let mut body = Bytes::from(first.to_string());
        let mut tally = Attempts::carried(None);
        tally.attempts = before;
        let (mut started, mut this_run) = (None, 0u32);
        let mut answered = Decimal::ZERO;
        let mut asks = 0u32;
        let record = loop {
            asks += 1;
            let mut run = Run {
                tally: &mut tally,
                started: &mut started,
                this_run: &mut this_run,
            };
            let content = match self.send(ctx, body.clone(), &messages, &mut run).await {
                Ok((content, charge)) => {
                    answered += charge;
                    content
                }
                Err(why) => break failed(String::new(), why, 0),
            };
            match read_reply(&content, scorer.judge_schema()) {
                Ok((score, reason)) => {
                    break JudgeRecord {
                        hash,
                        score: Some(score),
                        reason: Some(reason),
                        attempts: 0,
                    };
                }
                Err(why) if asks > JUDGE_REASKS => {
                    break failed(hash, format!("{why} (after {asks} attempts)"), 0);
                }
                Err(why) => match reask_body(&body, &content, &why) {
                    Some((b, m)) => (body, messages) = (b, m),
                    None => break failed(hash, why, 0),
                },
            }
        };
        Graded {
            record: JudgeRecord {
                attempts: tally.attempts,
                ..record
            },
            known: tally.known_cost.unwrap_or_default() + answered,
            unknown: tally.unknown,
            unknown_max: tally.unknown_max,
        }
    }

    /// One request through the attempt loop: the reply's content and charge, or why none.
    async fn send(
        &self,
        ctx: &Arc<Ctx>,
        body: Bytes,
        messages: &[serde_json::Value],
        run: &mut Run<'_>,
    ) -> Result<(String, Decimal), String> {
        let model = self.model.as_str();
        let priced = ctx.prices.current();
        let budget_set = ctx.job.limits.budget_usd.is_some();
        let cap = Some(JUDGE_MAX_TOKENS);
        let worst = Worst {
            amount: crate::plan::worst_case(&priced, model, messages, cap, budget_set),
            generation: priced.generation,
        };
        let table = priced.get(model).cloned();
        drop(priced);
        // The slot before the reservation, as for a row (a reservation never waits for a
        // slot). A first ask waits for reservations in flight to settle, as a row does; a
        // re-ask follows an attempt that went out (no one-at-a-time rule) and waits the same
        // way.
        let permit = ctx.limiter.slot().await;
        let turn = match *run.this_run {
            0 => Turn::First,
            _ => Turn::Again,
        };
        let first = match ctx.reserve(model, worst, turn).await {
            Ok(r) => r,
            Err(Refused::Stopped) => {
                return Err("the run stopped before the judge was asked".into());
            }
            Err(Refused::Budget) => return Err("the budget is reached".into()),
        };
        let tokens = ctx.job.limits.tokens_per_minute.map_or(0, |_| {
            crate::prices::prompt_tokens_upper_bound(messages) + JUDGE_MAX_TOKENS
        });
        let item = WorkItem {
            id: self.key.clone(),
            variant: self.variant.clone(),
            model: model.to_string(),
            body,
            vars: Default::default(),
            prior: None,
            worst: worst.amount,
            tokens,
            cache_key: None,
            cap,
        };
        let end = attempts(ctx, &item, run.tally, first, run.started, run.this_run).await;
        drop(permit);
        match end {
            End::Answered(c, reservation) => {
                let table_cost = match (table, c.prompt_tokens, c.completion_tokens) {
                    (Some(p), Some(pt), Some(ct)) => Some(p.cost(pt, ct)),
                    _ => None,
                };
                let charge = c.cost.or(table_cost);
                ctx.budget.settle(reservation, charge);
                Ok((c.content.unwrap_or_default(), charge.unwrap_or_default()))
            }
            End::Failed(f) | End::Stopped(Some(f)) => {
                Err(format!("the judge call failed: {}", f.message))
            }
            End::Stopped(None) | End::NotSent => {
                Err("the run stopped before the judge answered".into())
            }
        }
    }
}
