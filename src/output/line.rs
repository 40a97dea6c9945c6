//! [`LineBuilder`]: the one place a [`ResultLine`] is put together (the worker, the end-of-run
//! sweep and the tests build lines through it).

use rust_decimal::Decimal;

use super::{ErrorKind, RawJson, ResultLine, RowError, Status};

/// Builds a [`ResultLine`]: a pair's key first, then what is known about it.
#[derive(Debug, Clone)]
pub struct LineBuilder {
    line: ResultLine,
}

impl LineBuilder {
    /// An `ok` line of (id, model) with nothing known yet (no attempts, no cost).
    pub fn new(id: impl Into<String>, model: impl Into<String>) -> Self {
        LineBuilder {
            line: ResultLine {
                id: id.into(),
                model: model.into(),
                variant: None,
                status: Status::Ok,
                output: None,
                response_model: None,
                finish_reason: None,
                generation_id: None,
                provider: None,
                prompt_tokens: None,
                completion_tokens: None,
                reasoning_tokens: None,
                cached_tokens: None,
                cost_usd: None,
                cost_source: None,
                table_cost_usd: None,
                cost_mismatch: false,
                latency_ms: 0,
                attempts: 0,
                unknown_cost_attempts: 0,
                unknown_cost_max_usd: None,
                rate_limited_attempts: 0,
                error: None,
                vars: RawJson::default(),
                finished_at: None,
                resumable: false,
                cache_hit: false,
                cached_cost_usd: None,
                parsed: None,
                schema_attempts: None,
                cache_ticket: None,
                scores: None,
                score: None,
                pass: None,
                unscored: None,
                judge_cost_usd: None,
                judge: None,
            },
        }
    }

    /// An `ok` line of `key` (id, variant, model) with nothing known yet.
    pub fn for_key(key: super::key::ResultKey<'_>) -> Self {
        let mut b = LineBuilder::new(key.id, key.model);
        b.line.variant = key.variant.map(str::to_owned);
        b
    }

    /// The row's template variables.
    pub fn vars(mut self, vars: RawJson) -> Self {
        self.line.vars = vars;
        self
    }

    /// The cumulative counters: known cost, attempts, ambiguous attempts and their worst case
    /// (zero: none), 429 attempts.
    pub fn counts(
        mut self,
        cost_usd: Option<Decimal>,
        attempts: u32,
        unknown: (u32, Decimal),
        rate_limited: u32,
    ) -> Self {
        self.line.cost_usd = cost_usd;
        self.line.attempts = attempts;
        self.line.unknown_cost_attempts = unknown.0;
        self.line.unknown_cost_max_usd = (!unknown.1.is_zero()).then_some(unknown.1);
        self.line.rate_limited_attempts = rate_limited;
        self
    }

    /// Wall time from the first attempt to the outcome.
    pub fn latency_ms(mut self, ms: u64) -> Self {
        self.line.latency_ms = ms;
        self
    }

    /// An answered pair with this output.
    pub fn ok(mut self, output: impl Into<String>) -> Self {
        self.line.status = Status::Ok;
        self.line.output = Some(output.into());
        self.line.error = None;
        self
    }

    /// A failed pair.
    pub fn error(
        mut self,
        kind: ErrorKind,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> Self {
        Self::mark_error(&mut self.line, kind, status, message.into());
        self
    }

    /// Turns `line` into a failed line (its counters and the partial answer stay).
    pub fn mark_error(
        line: &mut ResultLine,
        kind: ErrorKind,
        status: Option<u16>,
        message: String,
    ) {
        line.status = Status::Error;
        line.error = Some(RowError {
            kind,
            status,
            message,
        });
    }

    /// The line.
    pub fn build(self) -> ResultLine {
        self.line
    }
}

impl ResultLine {
    /// What the key has cost: its completions (`cost_usd`, unknown = 0) and its judge calls
    /// (`judge_cost_usd`), both cumulative on the line.
    pub fn spend(&self) -> Decimal {
        self.cost_usd.unwrap_or_default() + self.judge_cost_usd.unwrap_or_default()
    }
}
