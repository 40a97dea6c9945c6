//! The counters and the result line of one pair's attempts: carried over from earlier runs,
//! added to per attempt, turned into a line (and the line of attempts a crash left in flight).

use crate::output::key::ResultKey;
use rust_decimal::Decimal;
use tokio::time::Instant;

use crate::client::{Completion, Failure};
use crate::output::inflight::Crashed;
use crate::output::line::LineBuilder;
use crate::output::results::Prior;
use crate::output::{CostSource, ErrorKind, RawJson, ResultLine};
use crate::retry::Verdict;

/// The counters of a pair's attempts, carried over from earlier runs.
pub(crate) struct Attempts {
    pub(crate) attempts: u32,
    pub(crate) unknown: u32,
    /// The worst cases of the `unknown` attempts.
    pub(crate) unknown_max: Decimal,
    pub(crate) rate_limited: u32,
    pub(crate) known_cost: Option<Decimal>,
}

impl Attempts {
    /// The counters of a key's earlier runs (zero for a new key).
    pub(crate) fn carried(prior: Option<&Prior>) -> Attempts {
        Attempts {
            attempts: prior.map_or(0, |p| p.attempts),
            unknown: prior.map_or(0, |p| p.unknown_cost_attempts),
            unknown_max: prior
                .and_then(|p| p.unknown_cost_max_usd)
                .unwrap_or_default(),
            rate_limited: prior.map_or(0, |p| p.rate_limited_attempts),
            known_cost: prior.and_then(|p| p.cost_usd),
        }
    }

    /// Adds an attempt's charge; `None` (unknown) counts at its `worst` case.
    pub(crate) fn add_charge(&mut self, charge: Option<Decimal>, worst: Decimal) {
        match charge {
            Some(c) => self.known_cost = Some(self.known_cost.unwrap_or_default() + c),
            None => {
                self.unknown += 1;
                self.unknown_max += worst;
            }
        }
    }
}

/// The line of the attempts that a crash left in flight (found in the in-flight record and
/// not in results.jsonl): they count as attempts of unknown cost at their worst case (or at
/// their charge, when it was recorded), and a re-run sends the pair again.
pub(crate) fn crashed_line(c: &Crashed, prior: Option<&Prior>) -> ResultLine {
    let mut tally = Attempts::carried(prior);
    for a in &c.attempts {
        tally.attempts = tally.attempts.max(a.n);
        tally.add_charge(a.charge, a.worst);
    }
    let mut line = new_line(c.key(), &RawJson::default(), &tally, Instant::now());
    let f = Failure {
        kind: ErrorKind::Network,
        verdict: Verdict::Fail,
        status: None,
        message: "in flight when an earlier run ended abruptly (it may have been billed); a re-run sends it again".into(),
        retry_after: None,
        ambiguous: true,
        partial: None,
    };
    fail(&mut line, &f);
    line.latency_ms = 0;
    line.resumable = true;
    line
}

pub(crate) fn new_line(
    key: ResultKey<'_>,
    vars: &RawJson,
    tally: &Attempts,
    started: Instant,
) -> ResultLine {
    LineBuilder::for_key(key)
        .vars(vars.clone())
        .counts(
            tally.known_cost,
            tally.attempts,
            (tally.unknown, tally.unknown_max),
            tally.rate_limited,
        )
        .latency_ms(started.elapsed().as_millis() as u64)
        .build()
}

pub(crate) fn fail(line: &mut ResultLine, f: &Failure) {
    LineBuilder::mark_error(line, f.kind, f.status, f.message.clone());
    if let Some(p) = &f.partial {
        fill_completion(line, p);
    }
    line.cost_source = line.cost_usd.map(|_| CostSource::Response);
}

/// Fills `line` with what the answer `c` says (its texts moved in).
pub(crate) fn take_completion(line: &mut ResultLine, c: Completion) {
    line.output = c.content;
    line.response_model = c.response_model;
    line.finish_reason = c.finish_reason;
    line.generation_id = c.generation_id;
    line.provider = c.provider;
    line.prompt_tokens = c.prompt_tokens;
    line.completion_tokens = c.completion_tokens;
    line.reasoning_tokens = c.reasoning_tokens;
    line.cached_tokens = c.cached_tokens;
}

/// [`take_completion`] of a borrowed answer.
pub(crate) fn fill_completion(line: &mut ResultLine, c: &Completion) {
    take_completion(line, c.clone());
}
