//! [`SummaryBuilder`]: the summary (and the leaderboard of a job with checks) built from the
//! lines compaction keeps as compaction reads them, or from a first run's lines as its
//! journal writes them (`output/seen.rs`): no pass of its own over the journal.

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
        let SummaryBuilder { meta, acc, cells } = self;
        Self::summary(&meta, acc, cells)
    }

    /// The summary of the lines counted, for the run `meta` describes (the same models,
    /// variants and checks as the `meta` it was made with).
    pub(crate) fn finish_as(self, meta: &SummaryMeta) -> Summary {
        Self::summary(meta, self.acc, self.cells)
    }

    fn summary(meta: &SummaryMeta, acc: Acc, cells: Option<Cells>) -> Summary {
        let mut summary = acc.finish(meta);
        summary.eval = cells.map(Cells::finish);
        summary
    }

    /// Counts a line as the journal writer wrote it (`bytes`: its JSON text).
    pub(crate) fn written(&mut self, line: &ResultLine, bytes: &[u8]) {
        self.count(&SummaryLine::from(line), bytes);
    }

    /// Counts a line (`bytes`: its JSON text, which the leaderboard reads).
    fn count(&mut self, line: &SummaryLine<'_>, bytes: &[u8]) {
        if let Some(cells) = self.cells.as_mut() {
            cells.add_json(bytes);
        }
        self.acc.add(line);
    }
}

impl KeptLines for SummaryBuilder {
    fn line(&mut self, line: &LineView<'_>, bytes: &[u8]) {
        self.count(&SummaryLine::from(line), bytes);
    }

    fn restart(&mut self) {
        self.acc = Acc::new(&self.meta);
        self.cells = Self::cells(&self.meta);
    }
}

/// A [`SummaryLine`] borrowing from `$l`, a [`LineView`] or a [`ResultLine`] (the same field
/// names; texts are `Option<Cow<str>>` in one, `Option<String>` in the other).
macro_rules! summary_line {
    ($l:expr) => {{
        let l = $l;
        SummaryLine {
            status: l.status,
            model: Cow::Borrowed(&l.model),
            variant: l.variant.as_deref().map(Cow::Borrowed),
            provider: l.provider.as_deref().map(Cow::Borrowed),
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
            finished_at: l.finished_at.as_deref().map(Cow::Borrowed),
            cache_hit: l.cache_hit,
            cached_cost_usd: l.cached_cost_usd,
            finish_reason: l.finish_reason.as_deref().map(Cow::Borrowed),
            resumable: l.resumable,
        }
    }};
}

impl<'a> From<&'a LineView<'a>> for SummaryLine<'a> {
    fn from(l: &'a LineView<'a>) -> Self {
        summary_line!(l)
    }
}

impl<'a> From<&'a ResultLine> for SummaryLine<'a> {
    fn from(l: &'a ResultLine) -> Self {
        summary_line!(l)
    }
}
