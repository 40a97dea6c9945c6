//! [`SummaryBuilder`]: the summary (and the leaderboard of a job with checks) built from the
//! lines compaction keeps, as compaction reads them: no pass of its own over the journal.

use std::borrow::Cow;

use super::{Acc, SummaryError, SummaryLine, SummaryMeta};
use crate::eval::cells::Cells;
use crate::output::Summary;
use crate::output::compact::KeptLines;
use crate::output::view::LineView;

/// Counts the kept lines of a journal into a [`Summary`].
pub(crate) struct SummaryBuilder<'m> {
    meta: &'m SummaryMeta,
    acc: Acc,
    cells: Option<Cells>,
}

impl<'m> SummaryBuilder<'m> {
    /// An empty summary of a run described by `meta`.
    pub(crate) fn new(meta: &'m SummaryMeta) -> Self {
        SummaryBuilder {
            meta,
            acc: Acc::new(meta),
            cells: Self::cells(meta),
        }
    }

    fn cells(meta: &SummaryMeta) -> Option<Cells> {
        meta.eval.map(|min| Cells::new(meta.models.as_deref(), min))
    }

    /// The summary of the lines counted.
    pub(crate) fn finish(self) -> Summary {
        let mut summary = self.acc.finish(self.meta);
        summary.eval = self.cells.map(Cells::finish);
        summary
    }
}

impl KeptLines for SummaryBuilder<'_> {
    fn line(&mut self, line: &LineView<'_>, bytes: &[u8]) {
        if let Some(cells) = self.cells.as_mut() {
            cells.add_json(bytes);
        }
        self.acc.add(&SummaryLine::from(line));
    }

    fn restart(&mut self) {
        self.acc = Acc::new(self.meta);
        self.cells = Self::cells(self.meta);
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
