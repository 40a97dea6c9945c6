//! orbatch: run large batches of LLM prompts through OpenRouter (or any OpenAI-compatible
//! endpoint), within strict rate limits and a hard budget, and account for every cent.
//!
//! The pipeline (see ARCHITECTURE.md):
//!
//! ```text
//! input (reader thread) -> dispatcher (resume, budget, limits) -> workers (HTTP, retries, cost)
//!                                                                       |
//!                                  results.jsonl / results.csv / summary.json <- writer
//! ```

pub mod api;
pub mod budget;
pub mod client;
pub mod fsutil;
pub mod input;
pub mod job;
pub mod limits;
pub mod manifest;
pub mod mock;
pub mod money;
pub mod output;
pub mod prices;
pub mod progress;
pub mod request;
pub mod retry;
pub mod runner;
pub mod scan;
pub mod template;
pub mod tokens;

/// Process exit codes (docs/contract.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every row ok.
    Ok = 0,
    /// The run finished but some rows failed.
    RowsFailed = 1,
    /// Usage, config or input error (nothing was sent).
    Usage = 2,
    /// Stopped early and resumable (budget, credits, interrupted).
    Stopped = 3,
    /// Authentication refused.
    Auth = 4,
}
pub mod cli;
pub mod commands;
pub mod estimate;
pub mod signals;
