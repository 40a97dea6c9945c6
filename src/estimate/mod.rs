//! Know the cost before you spend it: `orbatch estimate` (tokens x prices, optionally
//! calibrated by a real pilot), `run`'s pre-flight check, and the `credits` table.
//!
//! ```text
//! scan (validate) -> first pass: tiktoken counts per model (+ each row's count for a pilot)
//!                 -> [pilot: pick N rows by length strata -> runner::run(only_rows) -> fit]
//!                 -> report: low / expected / high per model and in total, time, credit
//! ```
//!
//! Memory stays flat in rows: one row at a time, plus 4 bytes a row when a pilot needs to
//! spread its sample over prompt lengths.

mod count;
mod model;
mod notes;
mod pilot;
mod preflight;
mod render;
mod report;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use model::{Counts, DEFAULT_GUESS, Fit, Range, Sample, estimate_rest, fit};
pub use pilot::{Pick, pick};
pub use preflight::{Pending, pending_high};
pub use render::{render_credits, render_estimate};
pub use report::{Credit, Interval, ModelReport, Report, TotalReport, Usd};

use crate::Exit;
use crate::cli::EstimateArgs;
use crate::commands::{Endpoint, print_stdout, resolve_job};
use crate::job::Job;
use crate::prices::PriceTable;
use crate::runner::{Control, RunError, RunOptions, StopReason};
use crate::template::Template;

/// How old a cached price table `estimate` uses without `--refresh-prices`.
pub const PRICE_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// `orbatch estimate`.
pub async fn command(a: EstimateArgs, control: Control) -> anyhow::Result<Exit> {
    let endpoint = Endpoint::resolve(&a.job.api, a.job.base_url.clone()).await?;
    let mut job = resolve_job(&a.job, &endpoint)?;
    let pilot_n = a.pilot.filter(|n| *n > 0);
    if pilot_n.is_some() {
        endpoint.require_key()?;
    }
    if job.input == Path::new("-") {
        std::fs::create_dir_all(&job.output_dir)?;
        job.input = crate::runner::spool_stdin(&job.output_dir)?;
    }
    let client = endpoint.client()?;
    let prices_task = {
        let (c, refresh) = (client.clone(), a.refresh_prices);
        tokio::spawn(async move {
            if refresh {
                PriceTable::fetch(&c).await
            } else {
                PriceTable::cached_or_fetch(&c, PRICE_MAX_AGE).await
            }
        })
    };
    let key_task = {
        let c = client.clone();
        tokio::spawn(async move { c.key_info().await.map_err(|e| e.to_string()) })
    };
    let scan_input = job.clone();
    let scanned = tokio::task::spawn_blocking(move || crate::runner::scan_job(&scan_input)).await?;
    let (scan, template) = match scanned {
        Ok(s) => s,
        Err(RunError::Input { errors, count }) => {
            eprintln!("{}", crate::runner::format_input_errors(&errors, count));
            return Ok(Exit::Usage);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::Usage);
        }
    };
    let template = Arc::new(template);
    let models = crate::runner::job_models(&job, &scan);
    let prices = Arc::new(prices_task.await.unwrap_or_default());
    let first = {
        let (j, t, p) = (job.clone(), template.clone(), prices.clone());
        let keep = pilot_n.is_some();
        tokio::task::spawn_blocking(move || count::first_pass(&j, &t, &p, &models, keep)).await??
    };
    let key = key_task.await.unwrap_or_else(|e| Err(e.to_string()));
    let mut credit = report::Credit::from_key(key.as_ref().map_err(Clone::clone));
    let mut exit = Exit::Ok;
    let mut cal = None;
    if let Some(n) = pilot_n {
        let run = Pilot {
            job: &job,
            template: template.clone(),
            prices: prices.clone(),
            endpoint: &endpoint,
            credit: credit.clone(),
            yes: a.yes,
        };
        match run.send(&first.row_tokens, n, a.seed, control).await? {
            PilotEnd::Done(c, code) => {
                exit = code;
                cal = Some(c);
            }
            PilotEnd::Refused(code) => return Ok(code),
        }
    }
    if let (report::Credit::Limited(left), Some((c, _))) = (&credit, &cal) {
        // The key was read before the pilot spent.
        credit = report::Credit::Limited((*left - c.spent).max(rust_decimal::Decimal::ZERO));
    }
    let report = report::build(&report::Inputs {
        job: &job,
        rows: first.rows,
        tally: &first.tally,
        prices: &prices,
        pilot: cal.as_ref().map(|(c, rows)| report::PilotInput {
            cal: c,
            rows: *rows,
            seed: a.seed,
        }),
        credit,
    });
    for w in &report.warnings {
        eprintln!("orbatch: warning: {w}");
    }
    if a.job.json {
        print_stdout(&serde_json::to_string_pretty(&report)?);
    } else {
        print_stdout(&render_estimate(&report));
    }
    Ok(exit)
}

/// The pre-flight check of `run`: `Some(Exit::Usage)` refuses (nothing sent).
pub async fn preflight(
    job: &Job,
    opts: &RunOptions,
    _endpoint: &Endpoint,
) -> anyhow::Result<Option<Exit>> {
    preflight::check(job, opts, "this run", None).await
}

/// A pilot about to be sent.
struct Pilot<'a> {
    job: &'a Job,
    template: Arc<Template>,
    prices: Arc<PriceTable>,
    endpoint: &'a Endpoint,
    credit: report::Credit,
    yes: bool,
}

enum PilotEnd {
    /// The calibration (and the rows picked), and the exit code as `run` gives it.
    Done((pilot::Calibration, u64), Exit),
    /// Nothing to estimate with (refused, bad input, auth).
    Refused(Exit),
}

impl Pilot<'_> {
    /// Picks the rows, sends them through the normal pipeline, and calibrates on them.
    async fn send(
        &self,
        row_tokens: &[u32],
        n: u64,
        seed: u64,
        control: Control,
    ) -> anyhow::Result<PilotEnd> {
        let picks = pilot::pick(row_tokens, n, seed);
        let rows = {
            let (j, t, p, k) = (
                self.job.clone(),
                self.template.clone(),
                self.prices.clone(),
                picks.clone(),
            );
            tokio::task::spawn_blocking(move || pilot::pilot_rows(&j, &t, &p, &k)).await??
        };
        let opts = RunOptions {
            api_key: self.endpoint.key.clone(),
            yes: self.yes,
            only_rows: Some(Arc::new(picks.iter().map(|p| p.index).collect())),
            ..RunOptions::default()
        };
        let known = preflight::Known {
            credit: self.credit.clone(),
            prices: self.prices.clone(),
        };
        if let Some(code) = preflight::check(self.job, &opts, "the pilot", Some(known)).await? {
            return Ok(PilotEnd::Refused(code));
        }
        eprintln!(
            "orbatch: pilot: sending {} rows (seed {seed}) for real into {}",
            picks.len(),
            self.job.output_dir.display()
        );
        let report = match crate::runner::run(self.job, opts, control).await {
            Ok(r) => r,
            Err(e) => {
                let code = crate::commands::report_run(Err(e), false)?;
                return Ok(PilotEnd::Refused(code));
            }
        };
        let code = match &report.stop {
            Some(StopReason::AuthRefused(m)) => {
                eprintln!("error: pilot: authentication refused: {m}");
                return Ok(PilotEnd::Refused(Exit::Auth));
            }
            Some(stop) => {
                eprintln!("orbatch: pilot stopped early: {stop}; estimating from what it got");
                Exit::Stopped
            }
            None => Exit::Ok,
        };
        let mut lines = Vec::new();
        let results = self.job.output_dir.join("results.jsonl");
        crate::output::results::for_each_latest(&[results], |line| {
            if rows.contains_key(&line.id) {
                lines.push(line);
            }
        })?;
        let cal = pilot::calibrate(&rows, lines);
        let errors: u64 = cal.models.values().map(|m| m.errors).sum();
        eprintln!(
            "orbatch: pilot: {} requests, {} failed, spent {} (real)",
            cal.requests,
            errors,
            crate::money::usd(cal.spent)
        );
        let code = if code == Exit::Ok && errors > 0 {
            Exit::RowsFailed
        } else {
            code
        };
        Ok(PilotEnd::Done((cal, picks.len() as u64), code))
    }
}

/// A Decimal as f64 for display fields (0 when out of range).
fn decimal_f64(d: rust_decimal::Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or(0.0)
}
