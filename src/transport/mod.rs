//! The seam between "an attempt to make" and "its outcome".
//!
//! The runner's retry and budget loop sees only a [`Transport`]: it hands over a request body
//! and gets an [`Attempt`] back (an answer, or a classified [`Failure`]). Two HTTP
//! implementations share their caps, body read, fault classification and redaction
//! ([`wire`]): [`direct::Direct`] over hyper (the default for chat) and [`live::Live`] over
//! reqwest (when a proxy applies, or `ORBATCH_HTTP=reqwest`); a response cache can wrap one, a
//! batch-API executor can replace it, and tests can script one (no sockets).

pub mod batch;
pub mod cache;
pub mod direct;
pub mod live;
pub mod parse;
mod redact;
pub mod roots;
pub mod wire;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use rust_decimal::Decimal;

use crate::output::ErrorKind;
use crate::retry::Verdict;

pub use parse::parse_chat;
pub use redact::Redactor;

/// The largest response body read by default (32 MiB); `[limits] max_response_bytes`.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 32 << 20;

/// A boxed, sendable future (what a [`Transport`] returns, so it can be a trait object).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Makes one chat-completion attempt. Never retries: every outcome, including a transport
/// error, becomes an [`Attempt`]; retries, the limiter and the budget live above it.
pub trait Transport: Send + Sync {
    /// Sends one chat request (`body` is the JSON request) and classifies the outcome.
    fn chat(&self, body: Bytes) -> BoxFuture<'_, Attempt>;
}

/// A model's reply (also what the response cache keeps of an ok answer, with `cost` the
/// charge when it was paid).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Completion {
    /// The generation id.
    pub generation_id: Option<String>,
    /// The model that answered.
    pub response_model: Option<String>,
    /// The provider that served it.
    pub provider: Option<String>,
    /// `message.content`, verbatim.
    pub content: Option<String>,
    /// The finish reason.
    pub finish_reason: Option<String>,
    /// Prompt tokens.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens.
    pub completion_tokens: Option<u64>,
    /// Reasoning tokens.
    pub reasoning_tokens: Option<u64>,
    /// Cached prompt tokens.
    pub cached_tokens: Option<u64>,
    /// `usage.cost` (`None`: absent or unusable, so unknown).
    #[serde(with = "crate::money::opt")]
    pub cost: Option<Decimal>,
}

/// A failed attempt, classified.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The kind recorded when the row fails with it.
    pub kind: ErrorKind,
    /// What to do next.
    pub verdict: Verdict,
    /// The HTTP status (or the embedded error's code).
    pub status: Option<u16>,
    /// The provider's message, or ours (the API key redacted).
    pub message: String,
    /// The server's minimum wait before a retry (already capped).
    pub retry_after: Option<Duration>,
    /// The attempt may have been billed and its charge is unknown.
    pub ambiguous: bool,
    /// What the failed attempt reported (a billed error inside a 200 carries usage).
    pub partial: Option<Completion>,
}

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub enum Attempt {
    /// The model answered.
    Answered(Completion),
    /// It did not.
    Failed(Failure),
}

impl Failure {
    /// A retryable failure with no answer (a transport fault or an unreadable body).
    pub fn retryable(kind: ErrorKind, message: String, ambiguous: bool) -> Failure {
        Failure {
            kind,
            verdict: Verdict::Retry,
            status: None,
            message,
            retry_after: None,
            ambiguous,
            partial: None,
        }
    }
}
