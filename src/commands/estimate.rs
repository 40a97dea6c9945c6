//! `orbatch estimate`: the estimate on stdout (table or `--json`). Without a pilot it sends
//! nothing (exit 0 or 2); `--pilot N` first sends N sampled rows for real, through `run`'s
//! pipeline into the output dir, and then exits as `run` would.

use std::path::Path;

use super::error::{AfterSend, CommandError};
use super::exit::{Exit, Outcome};
use super::print::{print_json, print_stdout};
use super::resolve::{endpoint, query_client, resolve_job};
use super::run::resume_hint;
use crate::cli::EstimateArgs;
use crate::endpoint::Endpoint;
use crate::estimate::{Calibration, PilotPlan, Session, Verdict, render_estimate};
use crate::runner::{Control, StopReason};

pub(super) async fn estimate(a: EstimateArgs, control: Control) -> Result<Exit, CommandError> {
    let endpoint = endpoint(&a.job.api, &a.job.base_url).await?;
    let mut job = resolve_job(&a.job, &endpoint, |o| a.send.apply(o))?;
    let pilot_n = a.pilot.filter(|n| *n > 0);
    if pilot_n.is_some() && job.shard.is_some() {
        return Err(CommandError::Usage(anyhow::anyhow!(
            "--pilot samples the whole input: run it without --shard (the estimate of a shard is its share)"
        )));
    }
    if pilot_n.is_some() {
        endpoint.require_key()?;
    }
    if job.input == Path::new("-") {
        std::fs::create_dir_all(&job.output_dir)?;
        job.input = crate::runner::spool_stdin(&job.output_dir)?;
    }
    let output_dir = job.output_dir.clone();
    let session = Session::start(
        job,
        &query_client(&endpoint)?,
        a.refresh_prices,
        pilot_n.is_some(),
    )
    .await
    .map_err(|e| CommandError::from_run(e, &output_dir))?;
    let Some(n) = pilot_n else {
        print_estimate(&session, None, a.job.json)?;
        return Ok(Exit::Ok);
    };
    let (plan, cal, exit) = pilot(&session, n, &a, &endpoint, control).await?;
    // The pilot has spent: a failure from here on is not "nothing was sent".
    print_estimate(&session, Some((&plan, &cal)), a.job.json).after_send(&output_dir)?;
    Ok(exit)
}

/// Prints the estimate (stdout) with its warnings, once: in the table, or on stderr beside
/// the JSON.
fn print_estimate(
    session: &Session,
    pilot: Option<(&PilotPlan, &Calibration)>,
    json: bool,
) -> serde_json::Result<()> {
    let report = session.report(pilot);
    if json {
        for w in &report.warnings {
            eprintln!("orbatch: warning: {w}");
        }
        print_json(&report)
    } else {
        print_stdout(&render_estimate(&report));
        Ok(())
    }
}

/// Sends the pilot's rows through the normal pipeline and calibrates on them; the exit code
/// is the one `run` would give for them.
async fn pilot(
    session: &Session,
    n: u64,
    a: &EstimateArgs,
    endpoint: &Endpoint,
    control: Control,
) -> Result<(PilotPlan, Calibration, Exit), CommandError> {
    let job = session.job();
    let plan = session.plan_pilot(n, a.pilot_seed).await?;
    let mut opts = plan.run_options(endpoint.key.clone(), a.yes);
    opts.mock = endpoint.mock.is_some();
    opts.allow_unknown_models = a.job.allow_unknown_models;
    if session.check_pilot(&opts).await? == Verdict::Refused {
        return Err(CommandError::Refused);
    }
    eprintln!(
        "orbatch: pilot: sending {} rows (seed {}) for real into {}",
        plan.len(),
        a.pilot_seed,
        job.output_dir.display()
    );
    let report = crate::runner::run(job, opts, control)
        .await
        .map_err(|e| CommandError::from_run(e, &job.output_dir))?;
    match &report.stop {
        Some(StopReason::AuthRefused(m)) => {
            return Err(CommandError::Auth(format!(
                "pilot: authentication refused: {m}"
            )));
        }
        Some(stop) => {
            eprintln!("orbatch: pilot stopped early: {stop}; estimating from what it got");
            if let Some(hint) = resume_hint(stop) {
                eprintln!("orbatch: {hint}");
            }
        }
        None => {}
    }
    let cal = session.calibrate(&plan).after_send(&job.output_dir)?;
    let errors: u64 = cal.models.values().map(|m| m.errors).sum();
    eprintln!(
        "orbatch: pilot: {} requests, {} failed, spent {} (real)",
        cal.requests,
        errors,
        crate::money::usd(cal.spent)
    );
    // Pairs outside the pilot are not sent on purpose: only the pilot's own stop counts.
    let exit = Outcome {
        stopped: report.stop.is_some(),
        rows_failed: errors > 0,
        ..Outcome::default()
    }
    .exit();
    Ok((plan, cal, exit))
}
