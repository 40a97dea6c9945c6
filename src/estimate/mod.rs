//! Know the cost before you spend it: `orbatch estimate` (tokens x prices, optionally
//! calibrated by a real pilot), `run`'s pre-flight check, and the `credits` table.
//!
//! ```text
//! scan (validate) -> first pass: tiktoken counts per model (+ each row's count for a pilot)
//!                 -> [pilot: pick N rows by length strata -> runner::run(only_rows) -> fit]
//!                 -> report: low / expected / high per model and in total, time, credit
//! ```
//!
//! This module returns data ([`Session`], [`Report`], [`Verdict`], rendered text): it prints
//! nothing on stdout and picks no exit code; `commands/` does both, and sends the pilot.
//!
//! Memory stays flat in rows: one row at a time, plus 4 bytes a row when a pilot needs to
//! spread its sample over prompt lengths.

pub mod batch;
mod context;
mod count;
mod model;
mod notes;
mod pilot;
mod preflight;
mod render;
mod report;
mod session;

pub use context::{TooLong, may_be_too_long, too_long};
pub use model::{Counts, DEFAULT_GUESS, Fit, Range, Sample, estimate_rest, fit};
pub use pilot::{Calibration, Pick, pick};
pub use preflight::{Pending, Verdict, pending_high};
pub use render::{render_credits, render_estimate};
pub use report::{Credit, Interval, ModelReport, Report, TotalReport, Usd};
pub use session::{PRICE_MAX_AGE, PilotPlan, Session};

use crate::job::Job;
use crate::runner::RunOptions;

/// `run`'s pre-flight check (see `preflight.rs`): [`Verdict::Refused`] when the high estimate
/// of what is still to send passes the budget or the key's remaining credit, unless `--yes`.
pub async fn preflight(job: &Job, opts: &RunOptions) -> anyhow::Result<Verdict> {
    preflight::check(job, opts, "this run", None).await
}
