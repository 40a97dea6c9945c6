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

/// `eprintln!` that never panics: a closed or broken stderr (`2>&1 | head -1`, a dead
/// terminal) must not kill the run or swallow a Ctrl-C. Defined before every module, it shadows
/// the standard macro throughout the crate; a failed write is dropped.
#[macro_export]
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr().lock(), $($arg)*);
    }};
}

pub mod annotation;
pub mod api;
pub mod budget;
pub mod client;
pub mod console;
pub mod endpoint;
pub mod eval;
pub mod fsutil;
pub mod input;
pub mod job;
pub mod json;
pub mod limits;
pub mod manifest;
pub mod missing;
pub mod mock;
pub mod money;
pub mod output;
pub mod plan;
pub mod prices;
pub mod progress;
pub mod prompts;
pub mod report;
pub mod request;
pub mod retry;
pub mod runner;
pub mod scan;
pub mod schema;
pub mod shard;
pub mod slugs;
pub mod template;
pub mod tokens;
pub mod transport;

pub mod cli;
/// The version `--version` prints: the crate's, with the commit it was built from when git
/// was there at build time (`build.rs`).
pub const VERSION: &str = env!("ORBATCH_VERSION");
pub mod commands;
pub mod estimate;
pub mod signals;

/// The process exit codes; their table is in [`commands::exit`].
pub use commands::Exit;
