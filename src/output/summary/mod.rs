//! `summary.json`: the aggregate of one or more result files (shards merge: the latest line of
//! each key wins), built in one streaming pass over the latest lines.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::results::for_each_latest_read;
use super::{
    CacheTotals, CostTotals, ErrorCount, ErrorKind, GroupTotals, KindTotals, Latency, LeftOut,
    RequestCounts, RowCounts, Status, Summary, TokenCounts, truncate_chars,
};
use crate::fsutil::replace_file;

/// Distinct (kind, message) pairs counted for `top_errors`; later new messages are not counted.
const MAX_DISTINCT_MESSAGES: usize = 1000;
/// Characters of a message kept for `top_errors`.
const MESSAGE_CHARS: usize = 200;
/// Entries in `top_errors`.
const TOP_ERRORS: usize = 5;

/// What the result lines cannot tell: the job, its size and the run's times.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SummaryMeta {
    /// The job's name.
    pub job: String,
    /// Rows x models; `None` for `orbatch summary` without a job (then total = lines).
    pub total_pairs: Option<u64>,
    /// The run was stopped before every pair was sent (budget, 402, Ctrl-C).
    pub stopped_early: bool,
    /// When the run started (RFC 3339); `None`: derived from the lines.
    pub started_at: Option<String>,
    /// When the run ended (RFC 3339); `None`: derived from the lines.
    pub finished_at: Option<String>,
    /// The run's wall time; `None`: the span between `started_at` and `finished_at`.
    pub wall_secs: Option<f64>,
    /// The job's models: lines of other models go to `left_out`, not the totals. `None`:
    /// every line counts (`orbatch summary`).
    pub models: Option<Vec<String>>,
    /// The job's prompt variants (`[None]` without variants): lines of others go to
    /// `left_out`. `None`: every line counts.
    pub variants: Option<Vec<Option<String>>>,
    /// What this run sent (`None` for `orbatch summary`).
    pub this_run: Option<super::ThisRun>,
    /// The job has checks: build the leaderboard (`eval`), with this `min_pass_rate`.
    pub eval: Option<Option<f64>>,
}

/// Builds the summary of the result files `paths` (merged, latest line per key wins).
pub fn summarize(paths: &[PathBuf], meta: &SummaryMeta) -> io::Result<Summary> {
    let mut acc = Acc::new(meta);
    for_each_latest_read(paths, |scanner| {
        if let Ok(line) = scanner.view() {
            acc.add(&SummaryLine::from(&line));
        }
    })?;
    Ok(acc.finish(meta))
}

/// Writes `summary` as pretty JSON to `path` (temp file + rename).
pub fn write_summary_json(summary: &Summary, path: &Path) -> io::Result<()> {
    replace_file(path, |w| {
        serde_json::to_writer_pretty(&mut *w, summary)?;
        w.write_all(b"\n")
    })
}

/// The fields of a result line that the summary counts, borrowed where they are text.
struct SummaryLine<'a> {
    status: Status,
    model: Cow<'a, str>,
    variant: Option<Cow<'a, str>>,
    provider: Option<Cow<'a, str>>,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
    cached_tokens: Option<u64>,
    cost_usd: Option<Decimal>,
    table_cost_usd: Option<Decimal>,
    judge_cost_usd: Option<Decimal>,
    cost_mismatch: bool,
    latency_ms: u64,
    attempts: u32,
    unknown_cost_attempts: u32,
    rate_limited_attempts: u32,
    error: Option<SummaryError<'a>>,
    finished_at: Option<Cow<'a, str>>,
    cache_hit: bool,
    cached_cost_usd: Option<Decimal>,
    finish_reason: Option<Cow<'a, str>>,
    resumable: bool,
}

/// `error` of a [`SummaryLine`].
struct SummaryError<'a> {
    kind: ErrorKind,
    message: Cow<'a, str>,
}

/// The running totals.
#[derive(Default)]
struct Acc {
    rows: RowCounts,
    requests: RequestCounts,
    tokens: TokenCounts,
    cost: CostTotals,
    cache: CacheTotals,
    errors_by_kind: BTreeMap<String, KindTotals>,
    messages: HashMap<(ErrorKind, String), u64>,
    latencies: Vec<u32>,
    models: BTreeMap<String, GroupTotals>,
    variants: BTreeMap<String, GroupTotals>,
    providers: BTreeMap<String, GroupTotals>,
    first_start: Option<OffsetDateTime>,
    last_finish: Option<OffsetDateTime>,
    /// The lines' own times are read only when the caller does not know the run's.
    needs_times: bool,
    /// The job's models, when lines of others are left out.
    only: Option<std::collections::HashSet<String>>,
    /// The job's variants, when lines of others are left out.
    only_variants: Option<Vec<Option<String>>>,
    left_out: LeftOut,
}

/// The entry of `key` in `map`, allocating the key only the first time it is seen.
fn entry<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    match map.get_mut(key) {
        Some(v) => v,
        None => unreachable!("inserted above"),
    }
}

impl Acc {
    fn new(meta: &SummaryMeta) -> Acc {
        Acc {
            needs_times: meta.started_at.is_none()
                || meta.finished_at.is_none()
                || meta.wall_secs.is_none(),
            only: meta.models.as_ref().map(|m| m.iter().cloned().collect()),
            only_variants: meta.variants.clone(),
            ..Acc::default()
        }
    }

    fn add(&mut self, line: &SummaryLine<'_>) {
        let cost = line.cost_usd.unwrap_or_default();
        let other_model = self
            .only
            .as_ref()
            .is_some_and(|only| !only.contains(line.model.as_ref()));
        let other_variant = self
            .only_variants
            .as_ref()
            .is_some_and(|only| !only.iter().any(|v| v.as_deref() == line.variant.as_deref()));
        if other_model || other_variant {
            let l = &mut self.left_out;
            l.rows += 1;
            l.cost_usd += cost;
            let (list, name) = match (other_model, line.variant.as_deref()) {
                (true, _) => (&mut l.models, line.model.as_ref()),
                (false, Some(v)) => (&mut l.variants, v),
                (false, None) => return,
            };
            if let Err(at) = list.binary_search_by(|m| m.as_str().cmp(name)) {
                list.insert(at, name.to_string());
            }
            return;
        }
        match line.status {
            Status::Ok => self.rows.ok += 1,
            // Only the spend of a pair the run stopped: a plain re-run sends it again.
            Status::Error if line.resumable => self.rows.unfinished += 1,
            Status::Error => self.rows.error += 1,
        }
        if line.status == Status::Ok && line.finish_reason.as_deref() == Some("length") {
            self.rows.truncated += 1;
        }
        self.add_requests(line);
        self.add_tokens(line);
        let judge = line.judge_cost_usd.unwrap_or_default();
        self.cost.total += cost + judge;
        self.cost.judge_total += judge;
        self.cost.table_total += line.table_cost_usd.unwrap_or_default();
        self.cost.mismatched_rows += u64::from(line.cost_mismatch);
        self.cost.unknown_rows += u64::from(line.cost_usd.is_none());
        if line.cache_hit {
            self.cache.hits += 1;
            self.cache.saved_usd += line.cached_cost_usd.unwrap_or_default();
        }
        let provider = line.provider.as_deref().unwrap_or("unknown");
        *entry(&mut self.cost.by_model, &line.model) += cost;
        *entry(&mut self.cost.by_provider, provider) += cost;
        add_group(entry(&mut self.models, &line.model), line);
        add_group(entry(&mut self.providers, provider), line);
        if let Some(variant) = line.variant.as_deref() {
            *entry(&mut self.cost.by_variant, variant) += cost;
            add_group(entry(&mut self.variants, variant), line);
        }
        if line.status == Status::Error && !line.resumable {
            self.add_error(line, cost);
        }
        self.latencies
            .push(u32::try_from(line.latency_ms).unwrap_or(u32::MAX));
        if self.needs_times {
            self.add_times(line);
        }
    }

    fn add_requests(&mut self, line: &SummaryLine<'_>) {
        let r = &mut self.requests;
        r.sent += u64::from(line.attempts);
        r.retried += u64::from(line.attempts.saturating_sub(1));
        r.rate_limited += u64::from(line.rate_limited_attempts);
        r.unknown_cost_attempts += u64::from(line.unknown_cost_attempts);
    }

    fn add_tokens(&mut self, line: &SummaryLine<'_>) {
        let t = &mut self.tokens;
        t.prompt += line.prompt_tokens.unwrap_or(0);
        t.completion += line.completion_tokens.unwrap_or(0);
        t.reasoning += line.reasoning_tokens.unwrap_or(0);
        t.cached += line.cached_tokens.unwrap_or(0);
    }

    fn add_error(&mut self, line: &SummaryLine<'_>, cost: Decimal) {
        let kind = line.error.as_ref().map_or("unknown", |e| e.kind.as_str());
        let totals = self.errors_by_kind.entry(kind.to_string()).or_default();
        totals.count += 1;
        totals.cost_usd += cost;
        let Some(err) = &line.error else { return };
        let key = (err.kind, truncate_chars(&err.message, MESSAGE_CHARS));
        if let Some(n) = self.messages.get_mut(&key) {
            *n += 1;
        } else if self.messages.len() < MAX_DISTINCT_MESSAGES {
            self.messages.insert(key, 1);
        }
    }

    fn add_times(&mut self, line: &SummaryLine<'_>) {
        let Some(finished) = line.finished_at.as_deref().and_then(parse_time) else {
            return;
        };
        let latency = Duration::milliseconds(i64::try_from(line.latency_ms).unwrap_or(i64::MAX));
        let started = finished.checked_sub(latency).unwrap_or(finished);
        self.first_start = Some(self.first_start.map_or(started, |t| t.min(started)));
        self.last_finish = Some(self.last_finish.map_or(finished, |t| t.max(finished)));
    }

    fn finish(mut self, meta: &SummaryMeta) -> Summary {
        let sent = self.rows.ok + self.rows.error + self.rows.unfinished;
        self.rows.total = meta.total_pairs.unwrap_or(sent);
        self.rows.not_sent = self.rows.total.saturating_sub(sent);
        let started_at = meta
            .started_at
            .clone()
            .or_else(|| self.first_start.and_then(format_time));
        let finished_at = meta
            .finished_at
            .clone()
            .or_else(|| self.last_finish.and_then(format_time));
        let wall_secs = meta.wall_secs.unwrap_or_else(|| {
            let start = started_at.as_deref().and_then(parse_time);
            let end = finished_at.as_deref().and_then(parse_time);
            match (start, end) {
                (Some(s), Some(e)) => ((e - s).as_seconds_f64() * 1000.0).round() / 1000.0,
                _ => 0.0,
            }
        });
        Summary {
            job: meta.job.clone(),
            complete: !meta.stopped_early && self.rows.not_sent == 0,
            latency_ms: percentiles(&mut self.latencies),
            top_errors: top_errors(self.messages),
            rows: self.rows,
            requests: self.requests,
            tokens: self.tokens,
            cost_usd: self.cost,
            errors_by_kind: self.errors_by_kind,
            models: self.models,
            variants: self.variants,
            providers: self.providers,
            this_run: meta.this_run.clone(),
            wall_secs,
            started_at,
            finished_at,
            cache: self.cache,
            left_out: (self.left_out.rows > 0).then_some(self.left_out),
            eval: None,
            annotation: None,
        }
    }
}

fn add_group(g: &mut GroupTotals, line: &SummaryLine<'_>) {
    g.rows += 1;
    match line.status {
        Status::Ok => g.ok += 1,
        Status::Error => g.error += 1,
    }
    match line.cost_usd {
        Some(c) => g.cost_usd += c,
        None => g.unknown_cost_rows += 1,
    }
    g.prompt_tokens += line.prompt_tokens.unwrap_or(0);
    g.completion_tokens += line.completion_tokens.unwrap_or(0);
}

/// p50, p95 (nearest rank) and max; zeros when there are no lines.
fn percentiles(latencies: &mut [u32]) -> Latency {
    latencies.sort_unstable();
    let rank = |p: u64| -> u64 {
        let n = latencies.len() as u64;
        if n == 0 {
            return 0;
        }
        let r = (p * n).div_ceil(100).clamp(1, n);
        usize::try_from(r - 1)
            .ok()
            .and_then(|i| latencies.get(i))
            .map_or(0, |&v| u64::from(v))
    };
    Latency {
        p50: rank(50),
        p95: rank(95),
        max: latencies.last().map_or(0, |&v| u64::from(v)),
    }
}

/// The most frequent (kind, message) pairs: count descending, then message, then kind.
fn top_errors(messages: HashMap<(ErrorKind, String), u64>) -> Vec<ErrorCount> {
    let mut all: Vec<ErrorCount> = messages
        .into_iter()
        .map(|((kind, message), count)| ErrorCount {
            kind,
            message,
            count,
        })
        .collect();
    all.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.message.cmp(&b.message))
            .then_with(|| a.kind.cmp(&b.kind))
    });
    all.truncate(TOP_ERRORS);
    all
}

/// Now, as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    format_time(OffsetDateTime::now_utc()).unwrap_or_default()
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn format_time(t: OffsetDateTime) -> Option<String> {
    t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).ok()
}

mod kept;
pub(crate) use kept::SummaryBuilder;

#[cfg(test)]
mod tests;
