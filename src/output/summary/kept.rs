//! [`SummaryBuilder`]: the summary (and the leaderboard of a job with checks) built from the
//! lines compaction keeps, as compaction reads them: no pass of its own over the journal.

use std::borrow::Cow;

use super::{Acc, SummaryError, SummaryLine, SummaryMeta};
use crate::eval::cells::Cells;
use crate::output::compact::KeptLines;
use crate::output::view::LineView;
use crate::output::{ResultLine, Summary};

/// Counts the kept lines of a journal into a [`Summary`].
pub(crate) struct SummaryBuilder {
    meta: SummaryMeta,
    acc: Acc,
    cells: Option<Cells>,
}

impl SummaryBuilder {
    /// An empty summary of a run described by `meta`.
    pub(crate) fn new(meta: &SummaryMeta) -> Self {
        SummaryBuilder {
            meta: meta.clone(),
            acc: Acc::new(meta),
            cells: Self::cells(meta),
        }
    }

    /// An empty summary of the run that is starting, described by `meta` but for what only
    /// its end knows (its times, whether it stopped early, what it sent): give those to
    /// [`SummaryBuilder::finish_as`]. The run knows its own times, so the lines' are not read.
    pub(crate) fn for_run(meta: &SummaryMeta) -> Self {
        let mut b = Self::new(meta);
        b.acc.needs_times = false;
        b
    }

    fn cells(meta: &SummaryMeta) -> Option<Cells> {
        meta.eval.map(|min| Cells::new(meta.models.as_deref(), min))
    }

    /// The summary of the lines counted.
    pub(crate) fn finish(self) -> Summary {
        let meta = self.meta.clone();
        self.finish_as(&meta)
    }

    /// The summary of the lines counted, for the run `meta` describes (the same models,
    /// variants and checks as the `meta` it was made with).
    pub(crate) fn finish_as(self, meta: &SummaryMeta) -> Summary {
        let mut summary = self.acc.finish(meta);
        summary.eval = self.cells.map(Cells::finish);
        summary
    }

    /// Counts a line as the journal writer wrote it (`bytes`: its JSON text).
    pub(crate) fn written(&mut self, line: &ResultLine, bytes: &[u8]) {
        if let Some(cells) = self.cells.as_mut() {
            cells.add_json(bytes);
        }
        self.acc.add(&SummaryLine::from(line));
    }
}

impl KeptLines for SummaryBuilder {
    fn line(&mut self, line: &LineView<'_>, bytes: &[u8]) {
        if let Some(cells) = self.cells.as_mut() {
            cells.add_json(bytes);
        }
        self.acc.add(&SummaryLine::from(line));
    }

    fn restart(&mut self) {
        self.acc = Acc::new(&self.meta);
        self.cells = Self::cells(&self.meta);
    }
}

impl<'a> From<&'a LineView<'a>> for SummaryLine<'a> {
    fn from(l: &'a LineView<'a>) -> Self {
        let text = |s: &'a Option<Cow<'a, str>>| s.as_deref().map(Cow::Borrowed);
        SummaryLine {
            status: l.status,
            model: Cow::Borrowed(&l.model),
            variant: text(&l.variant),
            provider: text(&l.provider),
            prompt_tokens: l.prompt_tokens,
            completion_tokens: l.completion_tokens,
            reasoning_tokens: l.reasoning_tokens,
            cached_tokens: l.cached_tokens,
            cost_usd: l.cost_usd,
            table_cost_usd: l.table_cost_usd,
            judge_cost_usd: l.judge_cost_usd,
            cost_mismatch: l.cost_mismatch,
            latency_ms: l.latency_ms,
            attempts: l.attempts,
            unknown_cost_attempts: l.unknown_cost_attempts,
            rate_limited_attempts: l.rate_limited_attempts,
            error: l.error.as_ref().map(|e| SummaryError {
                kind: e.kind,
                message: Cow::Borrowed(&e.message),
            }),
            finished_at: text(&l.finished_at),
            cache_hit: l.cache_hit,
            cached_cost_usd: l.cached_cost_usd,
            finish_reason: text(&l.finish_reason),
            resumable: l.resumable,
        }
    }
}

impl<'a> From<&'a ResultLine> for SummaryLine<'a> {
    fn from(l: &'a ResultLine) -> Self {
        let text = |s: &'a Option<String>| s.as_deref().map(Cow::Borrowed);
        SummaryLine {
            status: l.status,
            model: Cow::Borrowed(&l.model),
            variant: text(&l.variant),
            provider: text(&l.provider),
            prompt_tokens: l.prompt_tokens,
            completion_tokens: l.completion_tokens,
            reasoning_tokens: l.reasoning_tokens,
            cached_tokens: l.cached_tokens,
            cost_usd: l.cost_usd,
            table_cost_usd: l.table_cost_usd,
            judge_cost_usd: l.judge_cost_usd,
            cost_mismatch: l.cost_mismatch,
            latency_ms: l.latency_ms,
            attempts: l.attempts,
            unknown_cost_attempts: l.unknown_cost_attempts,
            rate_limited_attempts: l.rate_limited_attempts,
            error: l.error.as_ref().map(|e| SummaryError {
                kind: e.kind,
                message: Cow::Borrowed(&e.message),
            }),
            finished_at: text(&l.finished_at),
            cache_hit: l.cache_hit,
            cached_cost_usd: l.cached_cost_usd,
            finish_reason: text(&l.finish_reason),
            resumable: l.resumable,
        }
    }
}
