//! The output files of a run: `results.jsonl` (the journal, one line per finished (row, model)),
//! `results.csv` (input order), `summary.json` and the summary table.

pub mod batches;
mod compact;
pub mod csv;
mod csv_cells;
pub mod finalize;
pub mod inflight;
pub mod key;
pub mod line;
mod line_json;
pub(crate) mod lines;
pub mod priors;
pub mod results;
pub(crate) mod seen;
pub mod summary;
mod summary_json;
pub mod table;
pub(crate) mod view;

pub use csv::Layout;
pub use lines::truncate_chars;
pub use summary_json::*;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Whether a (row, model) pair succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The model answered.
    Ok,
    /// Every attempt failed, or the failure was not worth retrying.
    Error,
}

/// Where a row's `cost_usd` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// `usage.cost` of the completion response.
    Response,
    /// `GET /generation?id=`.
    Generation,
    /// The price table of `GET /models` x the reported tokens.
    PriceTable,
    /// A response-cache hit: nothing was sent or paid (`cached_cost_usd` says what it cost
    /// when it was first paid).
    Cache,
    /// The provider's Batch API: the item's own cost, or its share of the batch's charge.
    Batch,
}

/// The kind of a row's failure (the contract's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The row could not be turned into a request.
    Input,
    /// An HTTP status not covered by a more precise kind.
    Http,
    /// 429 after every retry.
    RateLimited,
    /// The attempt timed out.
    Timeout,
    /// Connection refused, reset or closed.
    Network,
    /// The provider failed after routing (an error inside a 200, 5xx).
    Provider,
    /// The body could not be understood (malformed JSON, no choices).
    InvalidResponse,
    /// Refused by moderation or a content policy.
    Moderation,
    /// The prompt does not fit the model's context.
    ContextLength,
    /// 402: credits exhausted.
    Credits,
    /// 401, or a 403 of type authentication/permission_denied.
    Auth,
    /// The reply never validated against the job's JSON Schema (`[output]`).
    Schema,
}

impl ErrorKind {
    /// The snake_case name used in the files.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Input => "input",
            ErrorKind::Http => "http",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Network => "network",
            ErrorKind::Provider => "provider",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::Moderation => "moderation",
            ErrorKind::ContextLength => "context_length",
            ErrorKind::Credits => "credits",
            ErrorKind::Auth => "auth",
            ErrorKind::Schema => "schema",
        }
    }
}

/// Why a row failed: `{"kind","status","message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// The failure's kind.
    pub kind: ErrorKind,
    /// The HTTP status of the last attempt, when there was one.
    pub status: Option<u16>,
    /// The provider's message (or ours), verbatim.
    pub message: String,
}

/// One line of `results.jsonl`: the outcome of one (row, model) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultLine {
    /// The row's id (with `model`, the resume key).
    pub id: String,
    /// The requested model slug.
    pub model: String,
    /// The prompt variant (`[[variants]]`; `null` when the job defines none). With `id` and
    /// `model`, the resume key.
    #[serde(default)]
    pub variant: Option<String>,
    /// `ok` or `error`.
    pub status: Status,
    /// `message.content`, verbatim.
    pub output: Option<String>,
    /// The model that answered (the response's `model`).
    pub response_model: Option<String>,
    /// The normalised finish reason.
    pub finish_reason: Option<String>,
    /// The generation id (`gen-...`) of the last attempt that got one.
    pub generation_id: Option<String>,
    /// The provider that served the answer.
    pub provider: Option<String>,
    /// Prompt tokens of the answering attempt.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens of the answering attempt.
    pub completion_tokens: Option<u64>,
    /// Reasoning tokens (part of the completion tokens).
    pub reasoning_tokens: Option<u64>,
    /// Prompt tokens read from a cache.
    pub cached_tokens: Option<u64>,
    /// The sum of the known charges of this row's attempts; `null` only when truly unknown.
    #[serde(with = "crate::money::opt", default)]
    pub cost_usd: Option<Decimal>,
    /// Where `cost_usd` came from.
    pub cost_source: Option<CostSource>,
    /// The same row priced from `/models` (prompt, completion and request prices).
    #[serde(with = "crate::money::opt", default)]
    pub table_cost_usd: Option<Decimal>,
    /// True when `cost_usd` and `table_cost_usd` differ by more than 1% + $1e-9.
    #[serde(default)]
    pub cost_mismatch: bool,
    /// Wall time from the first attempt to the final outcome.
    pub latency_ms: u64,
    /// Attempts sent (1 + retries).
    pub attempts: u32,
    /// Attempts whose outcome was ambiguous (may have been billed, charge unknown).
    #[serde(default)]
    pub unknown_cost_attempts: u32,
    /// (Added.) The most those ambiguous attempts may have cost (the worst case reserved for
    /// each, so only when a budget is set); the budget keeps counting it across resumes.
    /// Absent when there were none.
    #[serde(
        with = "crate::money::opt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub unknown_cost_max_usd: Option<Decimal>,
    /// Attempts answered with 429.
    #[serde(default)]
    pub rate_limited_attempts: u32,
    /// Why the row failed (`status = error`), else `null`.
    pub error: Option<RowError>,
    /// The row's template variables, kept as the JSON text they were written as (parsing a
    /// result line never builds them; `RawJson::to_map` does on demand).
    #[serde(default)]
    pub vars: RawJson,
    /// When the outcome was recorded (RFC 3339, UTC).
    #[serde(default)]
    pub finished_at: Option<String>,
    /// An `error` line written only to record the spend of a pair the run stopped early
    /// (budget, credits): a plain re-run sends the pair again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resumable: bool,
    /// The answer came from the response cache: nothing was sent for it this time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cache_hit: bool,
    /// A hit's cost when it was first paid (what the hit saved); absent on other lines.
    #[serde(
        with = "crate::money::opt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cached_cost_usd: Option<Decimal>,
    /// (Structured output.) The reply as a validated JSON object; `null` when it never
    /// validated; absent when the job has no schema.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub parsed: Option<Option<RawJson>>,
    /// (Structured output.) Attempts including the first (1: the first reply validated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_attempts: Option<u32>,
    /// Where this answer goes in the response cache once its line is written (never in the
    /// file: the writer inserts it after the line is in results.jsonl).
    #[serde(skip)]
    pub cache_ticket: Option<CacheTicket>,
    // --- Evaluation (`[eval]`, `[[checks]]`): absent on lines of jobs without checks. ---
    /// Each check's score (0..1; `null`: it could not be scored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<std::collections::BTreeMap<String, Option<f64>>>,
    /// The weighted mean of the scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Whether the row passed (`false` on an error line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<bool>,
    /// Why a check could not be scored, per check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unscored: Option<std::collections::BTreeMap<String, String>>,
    /// What the judge calls of this row cost (apart from `cost_usd`).
    #[serde(
        with = "crate::money::opt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub judge_cost_usd: Option<Decimal>,
    /// Each judge check's grade and the hash of what it judged (a re-score sends again only
    /// the judge checks whose inputs changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<std::collections::BTreeMap<String, crate::eval::judge::JudgeRecord>>,
}

/// A field that is present (`null` included) is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<RawJson>>, D::Error> {
    Option::<RawJson>::deserialize(d).map(Some)
}

/// A paid answer's cache key and its charge, carried by its line to the writer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheTicket {
    /// The key of the request that was answered.
    pub key: crate::transport::cache::Key,
    /// What the answering attempt cost (`None`: unknown).
    pub cost: Option<Decimal>,
}

/// A JSON value kept as its text: cheap to clone, to write and to skip when reading.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<serde_json::value::RawValue>);

impl RawJson {
    /// The JSON text of `value`.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> RawJson {
        serde_json::value::to_raw_value(value)
            .map(RawJson)
            .unwrap_or_default()
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The value as an object (empty when it is not one).
    pub fn to_map(&self) -> Map<String, Value> {
        serde_json::from_str(self.get()).unwrap_or_default()
    }
}

impl Default for RawJson {
    fn default() -> Self {
        match serde_json::value::RawValue::from_string("{}".to_string()) {
            Ok(v) => RawJson(v),
            Err(_) => unreachable!("{{}} is valid JSON"),
        }
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl std::fmt::Debug for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.get())
    }
}

impl From<Map<String, Value>> for RawJson {
    fn from(map: Map<String, Value>) -> Self {
        RawJson::of(&map)
    }
}
