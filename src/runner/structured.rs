//! Structured output in a pair's attempts: each answer is checked against the job's schema;
//! one that does not validate (not JSON, a schema violation, cut at max_tokens) is re-asked,
//! up to `schema_retries` times, with the reply (an assistant message) and what was wrong (a
//! user message) added to the conversation.
//!
//! A re-ask is an attempt like any other: its worst case (of the longer conversation) is
//! reserved from the budget, it waits for the limiter and is in the in-flight record before it
//! leaves ([`super::worker::attempts`]), and its tokens and cost add to the pair's line.

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::Ctx;
use super::tally::{Attempts, new_line};
use super::worker::{End, WorkItem, attempts, settle_answer};
use crate::budget::Worst;
use crate::job::output_schema::OutputSpec;
use crate::output::line::LineBuilder;
use crate::output::{ErrorKind, RawJson, ResultLine};
use crate::schema::Invalid;

/// The pair's counters the re-asks add to.
pub(crate) struct Run<'a> {
    pub tally: &'a mut Attempts,
    pub started: &'a mut Option<Instant>,
    pub this_run: &'a mut u32,
}

/// How a pair's structured output ended.
pub(crate) struct Structured {
    /// The validated object (`None`: never validated, or no answer).
    pub parsed: Option<Value>,
    /// Attempts that got an answer or were sent for one: 1 + re-asks.
    pub attempts: u32,
    /// Why the last answer did not validate, when it did not.
    pub invalid: Option<Invalid>,
    /// Prompt and completion tokens of the answers before the last.
    pub earlier_tokens: (u64, u64),
}

impl Structured {
    /// Writes `parsed` and `schema_attempts` into the pair's line, adds the earlier answers'
    /// tokens, and turns a reply that never validated into a `schema` error.
    pub fn fill(self, line: &mut ResultLine) {
        line.parsed = Some(self.parsed.as_ref().map(RawJson::of));
        line.schema_attempts = Some(self.attempts);
        let (p, c) = self.earlier_tokens;
        if p > 0 {
            line.prompt_tokens = Some(line.prompt_tokens.unwrap_or(0) + p);
        }
        if c > 0 {
            line.completion_tokens = Some(line.completion_tokens.unwrap_or(0) + c);
        }
        if let Some(inv) = self.invalid {
            let n = self.attempts;
            let message = format!(
                "{} (after {n} attempt{})",
                inv.message,
                if n == 1 { "" } else { "s" }
            );
            LineBuilder::mark_error(line, ErrorKind::Schema, None, message);
        }
    }
}

/// Checks `end`'s answer and re-asks while it does not validate and re-asks are left.
pub(crate) async fn reask(
    ctx: &Ctx,
    item: &mut WorkItem,
    spec: &OutputSpec,
    run: &mut Run<'_>,
    mut end: End,
) -> (End, Structured) {
    let mut out = Structured {
        parsed: None,
        attempts: 1,
        invalid: None,
        earlier_tokens: (0, 0),
    };
    loop {
        let End::Answered(c, res) = end else {
            return (end, out);
        };
        let invalid = match spec
            .compiled
            .check(c.content.as_deref(), c.finish_reason.as_deref())
        {
            Ok(v) => {
                out.parsed = Some(v);
                return (End::Answered(c, res), out);
            }
            Err(inv) if out.attempts > spec.schema_retries => {
                out.invalid = Some(inv);
                return (End::Answered(c, res), out);
            }
            Err(inv) => inv,
        };
        tracing::debug!(id = %item.id, model = %item.model, "re-asking: {}", invalid.message);
        out.earlier_tokens.0 += c.prompt_tokens.unwrap_or(0);
        out.earlier_tokens.1 += c.completion_tokens.unwrap_or(0);
        let reply = c.content.clone().unwrap_or_default();
        let mut scratch = new_line(item.key(), &item.vars, run.tally, Instant::now());
        settle_answer(ctx, item, run.tally, &mut scratch, c, res, false).await;
        let Some((body, messages)) = reask_body(&item.body, &reply, &invalid.message) else {
            out.invalid = Some(invalid);
            return (End::Failed(unreadable_body()), out);
        };
        let priced = ctx.prices.current();
        let budget_set = ctx.job.limits.budget_usd.is_some();
        item.worst = crate::plan::worst_case(&priced, &item.model, &messages, item.cap, budget_set);
        item.body = body;
        let worst = Worst {
            amount: item.worst,
            generation: priced.generation,
        };
        let reserved = ctx.reserve(&item.model, worst, super::reserve::Turn::Again);
        let Ok(reservation) = reserved.await else {
            out.invalid = Some(invalid);
            return (End::Stopped(None), out);
        };
        out.attempts += 1;
        end = attempts(ctx, item, run.tally, reservation, run.started, run.this_run).await;
        if let End::NotSent = end {
            // The pair's earlier answers were paid: it keeps a line.
            out.attempts -= 1;
            out.invalid = Some(invalid);
            end = End::Stopped(None);
        }
    }
}

/// `body` with the assistant's `reply` and a user message naming what was wrong (`invalid`)
/// appended to its messages; and those messages (for the worst case). Judge re-asks use it
/// too.
pub(super) fn reask_body(body: &Bytes, reply: &str, invalid: &str) -> Option<(Bytes, Vec<Value>)> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let messages = v.get_mut("messages")?.as_array_mut()?;
    messages.push(json!({"role": "assistant", "content": reply}));
    messages.push(json!({"role": "user", "content": format!(
        "Your reply is not valid: {}. Answer again with only the JSON object, valid against the schema.",
        invalid
    )}));
    let list = messages.clone();
    Some((Bytes::from(serde_json::to_vec(&v).ok()?), list))
}

/// The failure of a pair whose own request body cannot be read back (never expected: orbatch
/// wrote it).
fn unreadable_body() -> crate::client::Failure {
    crate::client::Failure {
        kind: ErrorKind::Schema,
        verdict: crate::retry::Verdict::Fail,
        status: None,
        message: "cannot re-ask: the request body could not be read back".into(),
        retry_after: None,
        ambiguous: false,
        partial: None,
    }
}
