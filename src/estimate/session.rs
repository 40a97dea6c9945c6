//! One estimate from start to report: the job scanned and counted (with the prices and the
//! key's credit fetched meanwhile), the pilot's plan and calibration, then the report. It
//! returns data; `commands/estimate.rs` sends the pilot, prints and picks the exit code.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use secrecy::SecretString;

use super::count::{FirstPass, first_pass};
use super::pilot::{Calibration, Pick, PilotRow, calibrate, pick, pilot_rows};
use super::preflight::{Known, Verdict, check};
use super::report::{Credit, Inputs, PilotInput, Report, build};
use crate::client::Client;
use crate::job::Job;
use crate::prices::PriceTable;
use crate::prompts::Prompts;
use crate::runner::{RunError, RunOptions};

/// How old a cached price table `estimate` uses without `--refresh-prices`.
pub const PRICE_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// A job scanned and counted for an estimate, with its prices and the key's credit.
pub struct Session {
    job: Job,
    prompts: Arc<Prompts>,
    prices: Arc<PriceTable>,
    first: FirstPass,
    credit: Credit,
}

/// The rows a pilot sends, with the weight and local counts of each.
pub struct PilotPlan {
    picks: Vec<Pick>,
    rows: HashMap<String, PilotRow>,
    seed: u64,
}

impl PilotPlan {
    /// How many rows the pilot sends.
    pub fn len(&self) -> usize {
        self.picks.len()
    }

    /// True when the input has no row to send.
    pub fn is_empty(&self) -> bool {
        self.picks.is_empty()
    }

    /// The options that send exactly these rows through `run`'s pipeline.
    pub fn run_options(&self, api_key: Option<SecretString>, yes: bool) -> RunOptions {
        RunOptions {
            api_key,
            yes,
            only_rows: Some(Arc::new(self.picks.iter().map(|p| p.index).collect())),
            ..RunOptions::default()
        }
    }
}

impl Session {
    /// Scans the input as `validate` does (a bad row is a [`RunError::Input`]), fetches the
    /// prices and `GET /key` meanwhile, and counts every row's tokens. `for_pilot` also keeps
    /// each row's count, by which a pilot spreads its rows (4 bytes a row).
    pub async fn start(
        job: Job,
        client: &Client,
        refresh_prices: bool,
        for_pilot: bool,
    ) -> Result<Session, RunError> {
        let prices_task = {
            let c = client.clone();
            tokio::spawn(async move {
                if refresh_prices {
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
        let other = |e: String| RunError::Other(anyhow::anyhow!(e));
        let scan_input = job.clone();
        let (scan, prompts) =
            tokio::task::spawn_blocking(move || crate::runner::scan_job(&scan_input))
                .await
                .map_err(|e| other(e.to_string()))??;
        let prompts = Arc::new(prompts);
        let models = crate::plan::Plan::new(&job, &scan).models().to_vec();
        let prices = Arc::new(prices_task.await.unwrap_or_default());
        let first = {
            let (j, t, p) = (job.clone(), prompts.clone(), prices.clone());
            tokio::task::spawn_blocking(move || first_pass(&j, &t, &p, &models, for_pilot))
                .await
                .map_err(|e| other(e.to_string()))?
                .map_err(|e| other(e.to_string()))?
        };
        let key = key_task.await.unwrap_or_else(|e| Err(e.to_string()));
        Ok(Session {
            job,
            prompts,
            prices,
            first,
            credit: Credit::from_key(key.as_ref().map_err(Clone::clone)),
        })
    }

    /// The job.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// Picks `n` rows spread over prompt lengths (seeded) and counts their requests.
    pub async fn plan_pilot(&self, n: u64, seed: u64) -> anyhow::Result<PilotPlan> {
        let picks = pick(&self.first.row_tokens, n, seed);
        let (j, t, p, k) = (
            self.job.clone(),
            self.prompts.clone(),
            self.prices.clone(),
            picks.clone(),
        );
        let rows = tokio::task::spawn_blocking(move || pilot_rows(&j, &t, &p, &k)).await??;
        Ok(PilotPlan { picks, rows, seed })
    }

    /// `run`'s pre-flight check of the pilot, with the credit and prices already fetched.
    pub async fn check_pilot(&self, opts: &RunOptions) -> anyhow::Result<Verdict> {
        let known = Known {
            credit: self.credit.clone(),
            prices: self.prices.clone(),
        };
        check(&self.job, opts, "the pilot", Some(known)).await
    }

    /// Calibrates on the pilot rows' latest lines in the output dir's results.jsonl.
    pub fn calibrate(&self, plan: &PilotPlan) -> std::io::Result<Calibration> {
        let mut lines = Vec::new();
        let results = self.job.output_dir.join("results.jsonl");
        crate::output::results::for_each_latest(&[results], |line| {
            if plan.rows.contains_key(&line.id) {
                lines.push(line);
            }
        })?;
        Ok(calibrate(&plan.rows, lines))
    }

    /// The estimate, calibrated by the pilot when one ran, with its notes and warnings.
    pub fn report(&self, pilot: Option<(&PilotPlan, &Calibration)>) -> Report {
        let credit = match (&self.credit, pilot) {
            // The key was read before the pilot spent.
            (Credit::Limited(left), Some((_, cal))) => {
                Credit::Limited((*left - cal.spent).max(Decimal::ZERO))
            }
            (c, _) => c.clone(),
        };
        let inputs = Inputs {
            job: &self.job,
            rows: self.first.rows,
            tally: &self.first.tally,
            prices: &self.prices,
            pilot: pilot.map(|(plan, cal)| PilotInput {
                cal,
                rows: plan.len() as u64,
                seed: plan.seed,
            }),
            credit,
        };
        let mut report = build(&inputs);
        super::notes::annotate(&mut report, &inputs);
        report.warnings.extend(self.first.too_long.warnings());
        report
    }
}
