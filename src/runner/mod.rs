//! The pipeline of `orbatch run`:
//!
//! ```text
//! reader thread --rows--> dispatcher --spawn--> workers --lines--> writer task
//!   (bounded)        (resume, budget,      (attempts, retries,   (results.jsonl,
//!                     slot, limiter)        cost, look-ups)        progress)
//! ```
//!
//! Every channel is bounded, so a slow API never makes memory grow; the rows read ahead are
//! bounded by bytes too (`reader.rs`: each row's share is held until its lines reach the
//! writer), so large rows do not either. The reader reads only the bytes the scan validated.
//! Only the writer touches
//! the output files while the run is going; the summary, compaction and `results.csv` come
//! after it.

mod batch;
mod breaker;
mod cached;
mod context;
mod crashed;
mod crashed_judge;
mod dispatch;
mod fresh;
mod judge;
mod lookup;
#[cfg(test)]
mod loop_tests;
mod prepare;
mod reader;
mod rejudge;
mod reserve;
mod rows;
mod structured;
mod sweep;
mod tally;
mod worker;
mod writer;

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::budget::Budget;
use crate::client::Client;
use crate::input::InputError;
use crate::job::Job;
use crate::limits::Limiter;
use crate::output::{ResultLine, Summary};
use crate::prices::LivePrices;

pub use crashed::recorded;
pub use fresh::spend_to_carry;
pub use prepare::{check_slugs, scan_job, spool_stdin, warn_too_long};
pub use rejudge::{Rejudged, rejudge};

/// How `run` behaves beyond the job itself.
#[derive(Clone)]
pub struct RunOptions {
    /// The API key (`OPENROUTER_API_KEY` or `--api-key-file`).
    pub api_key: Option<SecretString>,
    /// `--fresh`: set earlier results aside (kept as `results.jsonl.<timestamp>`).
    pub fresh: bool,
    /// `--forget-spend` (with `--fresh`): stop counting the spend of earlier results against
    /// `budget_usd`.
    pub forget_spend: bool,
    /// `--retry-failed`: also re-send pairs whose latest line is an error.
    pub retry_failed: bool,
    /// Show the progress bar on a TTY (`--no-progress` clears it).
    pub progress: bool,
    /// `--yes`: go on when the pre-flight check finds the high estimate above the budget or
    /// the key's remaining credit.
    pub yes: bool,
    /// The rate-limit window (60 s; shorter only in tests).
    pub rate_window: Duration,
    /// Multiplies the generation look-up back-off (1; shorter only in tests).
    pub lookup_backoff_scale: f64,
    /// Send only the rows with these 0-based indexes (the estimate's pilot).
    pub only_rows: Option<std::sync::Arc<std::collections::HashSet<u64>>>,
    /// The client to use (built once per command); `None`: `run` builds one for the job.
    pub client: Option<crate::client::Client>,
    /// The response cache to use: its dir and the endpoint's identity (`None`: no cache).
    pub cache: Option<CacheSetup>,
    /// The endpoint is the built-in mock (`--mock`): recorded in the manifest.
    pub mock: bool,
    /// `--allow-unknown-models`: send to models `/models` does not list.
    pub allow_unknown_models: bool,
}

/// Where the response cache is and whose answers it holds.
#[derive(Debug, Clone)]
pub struct CacheSetup {
    /// The cache dir.
    pub dir: PathBuf,
    /// The endpoint identity in every key: the base URL, or
    /// [`crate::transport::cache::MOCK_IDENTITY`] for the built-in mock.
    pub identity: String,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            api_key: None,
            fresh: false,
            forget_spend: false,
            retry_failed: false,
            progress: true,
            yes: false,
            rate_window: Duration::from_secs(60),
            lookup_backoff_scale: 1.0,
            only_rows: None,
            client: None,
            cache: None,
            mock: false,
            allow_unknown_models: false,
        }
    }
}

/// Stop dispatching (first Ctrl-C) and abort in-flight requests (second Ctrl-C).
#[derive(Clone, Default)]
pub struct Control {
    /// Stop dispatching; in-flight requests finish.
    pub stop: CancellationToken,
    /// Abort in-flight requests too.
    pub abort: CancellationToken,
}

/// Why a run ended before every pair was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Ctrl-C.
    Interrupted,
    /// The next request could not fit under `budget_usd`: the smallest cap that would have
    /// let it go (what is spent plus its worst case), when known.
    BudgetReached(Option<rust_decimal::Decimal>),
    /// 402: credits exhausted.
    CreditsExhausted(String),
    /// The key was refused.
    AuthRefused(String),
    /// results.jsonl could not be written (or its writer died): why, and how many answers
    /// could not be recorded.
    JournalFailed(String),
    /// The input no longer reads or renders as it did when it was validated (`FILE:LINE:
    /// message`): it changed during the run.
    InputChanged(String),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Interrupted => write!(f, "interrupted"),
            StopReason::BudgetReached(_) => write!(
                f,
                "budget reached: the next request could not fit under budget_usd"
            ),
            StopReason::CreditsExhausted(m) => write!(f, "credits exhausted (HTTP 402): {m}"),
            StopReason::AuthRefused(m) => write!(f, "authentication refused: {m}"),
            StopReason::JournalFailed(m) => write!(f, "{m}"),
            StopReason::InputChanged(m) => write!(f, "the input changed during the run: {m}"),
        }
    }
}

/// What a finished (or stopped) run reports.
#[derive(Debug)]
pub struct RunReport {
    /// The summary (also written to summary.json).
    pub summary: Summary,
    /// Why the run stopped early, if it did.
    pub stop: Option<StopReason>,
    /// The output dir.
    pub output_dir: PathBuf,
    /// Pairs sent by this run.
    pub sent_this_run: u64,
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad rows: nothing was sent.
    #[error("{}", format_input_errors(.errors, *.count))]
    Input {
        /// The first errors.
        errors: Vec<InputError>,
        /// How many in all.
        count: u64,
    },
    /// A configuration problem: nothing was sent.
    #[error("{0}")]
    Config(String),
    /// Stopped with no summary (results.jsonl could not be written, then not read back):
    /// resumable (exit 3).
    #[error("{0}")]
    Stopped(String),
    /// An I/O or other failure before anything was sent.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
    /// A failure after requests may have been sent: the results so far are in the output
    /// dir, and a re-run resumes.
    #[error(transparent)]
    AfterSend(anyhow::Error),
}

/// `FILE:LINE: message` lines, then how many more there were.
pub fn format_input_errors(errors: &[InputError], count: u64) -> String {
    let mut s: String = errors.iter().map(|e| format!("{e}\n")).collect();
    let shown = errors.len() as u64;
    if count > shown {
        s.push_str(&format!("... and {} more errors\n", count - shown));
    }
    s.push_str(&format!(
        "{count} input error{}; nothing was sent",
        if count == 1 { "" } else { "s" }
    ));
    s
}

/// State shared by the dispatcher and the workers.
pub(crate) struct Ctx {
    pub job: Job,
    pub client: Client,
    pub limiter: Limiter,
    pub budget: Budget,
    /// The in-flight record (money sent but not in results.jsonl yet).
    pub inflight: crate::output::inflight::Inflight,
    /// The price table (refreshed once when a charge shows it understates).
    pub prices: std::sync::Arc<LivePrices>,
    pub stop: CancellationToken,
    pub abort: CancellationToken,
    pub stop_reason: Mutex<Option<StopReason>>,
    /// The model and worst case of the first request the budget refused (`budget_stop`).
    pub refused_worst: Mutex<Option<(String, crate::budget::Worst)>>,
    pub lookups: Lookups,
    pub deferred: Mutex<Vec<Deferred>>,
    /// Multiplies [`lookup::LOOKUP_SCHEDULE`] (1; shorter only in tests).
    pub lookup_scale: f64,
    /// The response cache (`None`: off, or unusable).
    pub cache: Option<std::sync::Arc<crate::transport::cache::ResponseCache>>,
    /// Per-model circuit breakers: a model whose first pairs all fail alike is not sent to.
    pub breakers: breaker::Breakers,
    /// The attempts this run sent.
    pub sent: SentThisRun,
}

/// The attempts a run sent, and how many of them were retries (`summary.json`'s `this_run`).
#[derive(Default)]
pub(crate) struct SentThisRun {
    sent: AtomicU64,
    retried: AtomicU64,
}

impl SentThisRun {
    /// Counts an attempt, the `nth` of its pair in this run.
    pub fn count(&self, nth: u32) {
        use std::sync::atomic::Ordering::Relaxed;
        self.sent.fetch_add(1, Relaxed);
        if nth > 1 {
            self.retried.fetch_add(1, Relaxed);
        }
    }

    /// `this_run` for a run of `wall_secs`.
    pub fn this_run(&self, wall_secs: f64) -> crate::output::ThisRun {
        use std::sync::atomic::Ordering::Relaxed;
        let sent = self.sent.load(Relaxed);
        crate::output::ThisRun {
            sent,
            retried: self.retried.load(Relaxed),
            wall_secs: (wall_secs * 1000.0).round() / 1000.0,
            requests_per_min: (sent > 0 && wall_secs > 0.0)
                .then(|| (sent as f64 * 60.0 / wall_secs * 10.0).round() / 10.0),
        }
    }
}

/// The generation look-up budget and its circuit breaker.
pub(crate) struct Lookups {
    /// The look-up rate (`lookup::lookup_rate`).
    pub rate: lookup::LookupRate,
    pub found: AtomicU64,
    pub exhausted: AtomicU64,
    pub disabled: AtomicBool,
}

/// A line whose generation record was not there yet: swept again at the end of the run.
pub(crate) struct Deferred {
    pub line: ResultLine,
    pub generation_id: String,
    pub table: Option<rust_decimal::Decimal>,
}

impl Ctx {
    /// Records why the run stops (the first reason wins) and stops dispatching.
    pub fn request_stop(&self, reason: StopReason) {
        let mut r = self.stop_reason.lock().unwrap_or_else(|e| e.into_inner());
        if (r.is_none() || matches!(reason, StopReason::AuthRefused(_)))
            && !matches!(*r, Some(StopReason::AuthRefused(_)))
        {
            *r = Some(reason);
        }
        self.stop.cancel();
    }

    /// Stops the run because a request of `model` of worst case `worst` does not fit under
    /// the budget. The cap that would let it go is stated once every attempt in flight has
    /// settled ([`Ctx::settle_end`]): what is spent then, plus what `worst` counts then.
    pub fn budget_stop(&self, model: &str, worst: impl Into<crate::budget::Worst>) {
        {
            let mut w = self.refused_worst.lock().unwrap_or_else(|e| e.into_inner());
            w.get_or_insert_with(|| (model.to_string(), worst.into()));
        }
        self.request_stop(StopReason::BudgetReached(None));
    }

    pub fn defer(
        &self,
        line: ResultLine,
        generation_id: String,
        table: Option<rust_decimal::Decimal>,
    ) {
        self.deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Deferred {
                line,
                generation_id,
                table,
            });
    }
}

/// Runs a job: validates the whole input first (nothing is sent when a row is bad), then
/// sends every pending (row, model) pair and writes results, `results.csv` and `summary.json`.
pub async fn run(job: &Job, opts: RunOptions, control: Control) -> Result<RunReport, RunError> {
    let prepared = prepare::prepare(job, &opts).await?;
    dispatch::execute(prepared, opts, control)
        .await
        .map_err(RunError::after_send)
}

impl RunError {
    /// The error as one that came once requests may have been sent.
    fn after_send(self) -> RunError {
        match self {
            RunError::Input { .. } => RunError::AfterSend(anyhow::anyhow!(self.to_string())),
            RunError::Config(msg) => RunError::AfterSend(anyhow::anyhow!(msg)),
            RunError::Other(e) | RunError::AfterSend(e) => RunError::AfterSend(e),
            stopped @ RunError::Stopped(_) => stopped,
        }
    }
}
