//! Judge calls during a run: each `judge` check of an ok line sends its rubric to the judge
//! model through the run's own attempt loop ([`super::worker::attempts`]): the same
//! concurrency slots, rate limiter, retries and budget reservations as completions. What the
//! calls cost goes to the line's `judge_cost_usd` (never into `cost_usd`). A judge whose call
//! fails, or whose reply does not validate against `{score, reason}`, leaves its grade `null`.
//!
//! A judge's in-flight record is kept under the id `<row id>\u{1f}judge:<check>\u{1f}<judged
//! model>` and the judged line's variant (so it never
//! settles or resumes a completion pair); a clean end of the run empties the record.

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::Decimal;

use super::Ctx;
use super::tally::Attempts;
use super::worker::{End, WorkItem, attempts};
use crate::budget::Worst;
use crate::eval::Scorer;
use crate::eval::judge::{JudgeRecord, inputs_hash, read_reply, request_body};
use crate::job::CheckKind;
use crate::output::{ResultLine, Status};

/// The most tokens a judge's reply may take.
const JUDGE_MAX_TOKENS: u64 = 256;

/// Grades every judge check of `line` (an ok line) whose record is missing or stale.
pub(crate) async fn grade(ctx: &Arc<Ctx>, scorer: &Scorer, line: &mut ResultLine) {
    if line.status != Status::Ok {
        return;
    }
    let mut records = line.judge.take().unwrap_or_default();
    let mut cost = line.judge_cost_usd.unwrap_or_default();
    for c in &scorer.spec().checks {
        let CheckKind::Judge { model, .. } = &c.kind else {
            continue;
        };
        let rubric = match scorer.rubric(c, line) {
            Some(Ok(r)) => r,
            Some(Err(why)) => {
                records.insert(c.name.clone(), failed(String::new(), why));
                continue;
            }
            None => continue,
        };
        let hash = inputs_hash(model, &rubric);
        if records.get(&c.name).is_some_and(|r| r.hash == hash) {
            continue;
        }
        // The in-flight record's key of this call: the judged line's whole key and the check,
        // so two judged answers of one row never share an entry.
        let key = format!("{}\u{1f}judge:{}\u{1f}{}", line.id, c.name, line.model);
        let (record, spent) = call(
            ctx,
            scorer,
            (&key, line.variant.as_deref()),
            model,
            &rubric,
            hash,
        )
        .await;
        cost += spent;
        records.insert(c.name.clone(), record);
    }
    line.judge_cost_usd = Some(cost);
    line.judge = Some(records).filter(|r: &BTreeMap<_, _>| !r.is_empty());
}

fn failed(hash: String, why: String) -> JudgeRecord {
    JudgeRecord {
        hash,
        score: None,
        reason: Some(why),
    }
}

/// One judge call: its record and what it cost.
async fn call(
    ctx: &Arc<Ctx>,
    scorer: &Scorer,
    (key, variant): (&str, Option<&str>),
    model: &str,
    rubric: &str,
    hash: String,
) -> (JudgeRecord, Decimal) {
    let body = request_body(model, rubric, JUDGE_MAX_TOKENS);
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let priced = ctx.prices.current();
    let budget_set = ctx.job.limits.budget_usd.is_some();
    let worst = Worst {
        amount: crate::plan::worst_case(
            &priced,
            model,
            &messages,
            Some(JUDGE_MAX_TOKENS),
            budget_set,
        ),
        generation: priced.generation,
    };
    let table = priced.get(model).cloned();
    drop(priced);
    let Some(first) = ctx.budget.try_reserve(model, worst) else {
        ctx.budget_stop(worst.amount);
        return (failed(hash, "the budget is reached".into()), Decimal::ZERO);
    };
    let permit = ctx.limiter.slot().await;
    let item = WorkItem {
        id: key.to_string(),
        variant: variant.map(str::to_string),
        model: model.to_string(),
        body: bytes::Bytes::from(body.to_string()),
        vars: Default::default(),
        prior: None,
        worst: worst.amount,
        tokens: 0,
        cache_key: None,
        cap: Some(JUDGE_MAX_TOKENS),
    };
    let mut tally = Attempts::carried(None);
    let mut started = None;
    let end = attempts(ctx, &item, &mut tally, first, &mut started, &mut 0).await;
    drop(permit);
    let mut spent = tally.known_cost.unwrap_or_default();
    let record = match end {
        End::Answered(c, reservation) => {
            let table_cost = match (table, c.prompt_tokens, c.completion_tokens) {
                (Some(p), Some(pt), Some(ct)) => Some(p.cost(pt, ct)),
                _ => None,
            };
            let charge = c.cost.or(table_cost);
            ctx.budget.settle(reservation, charge);
            spent += charge.unwrap_or_default();
            match read_reply(c.content.as_deref().unwrap_or(""), scorer.judge_schema()) {
                Ok((score, reason)) => JudgeRecord {
                    hash,
                    score: Some(score),
                    reason: Some(reason),
                },
                Err(why) => failed(hash, why),
            }
        }
        End::Failed(f) | End::Stopped(Some(f)) => {
            failed(hash, format!("the judge call failed: {}", f.message))
        }
        End::Stopped(None) | End::NotSent => {
            failed(hash, "the run stopped before the judge answered".into())
        }
    };
    (record, spent)
}
