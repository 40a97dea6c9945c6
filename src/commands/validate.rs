//! `orbatch validate`: parse every row and render every prompt, as `run` does first; send
//! nothing and write nothing into the output dir. Exit 0 or 2.

use std::path::Path;

use super::error::CommandError;
use super::exit::Exit;
use super::print::{print_json, print_stdout};
use crate::cli::JobArgs;
use crate::job::Job;

pub(super) async fn validate(a: JobArgs) -> Result<Exit, CommandError> {
    let mut o = a.overrides();
    // validate sends nothing: OPENROUTER_BASE_URL does not matter, but a bad --base-url does.
    o.base_url = Some(
        o.base_url
            .unwrap_or_else(|| crate::endpoint::DEFAULT_BASE_URL.to_string()),
    );
    let mut job = Job::resolve(a.job.as_deref(), o, None)?;
    // stdin is spooled into a temp dir, not into the output dir.
    let spool = std::env::temp_dir().join(format!("orbatch-validate-{}", std::process::id()));
    let shown = job.input.display().to_string();
    if job.input == Path::new("-") {
        std::fs::create_dir_all(&spool)?;
        job.input = crate::runner::spool_stdin(&spool)?;
    }
    let (job, result) = tokio::task::spawn_blocking(move || {
        let r = crate::runner::scan_job(&job);
        (job, r)
    })
    .await?;
    let _ = std::fs::remove_dir_all(&spool);
    let (report, _) = result.map_err(|e| CommandError::from_run(e, &job.output_dir))?;
    let plan = crate::plan::Plan::new(&job, &report);
    let (models, pairs) = (plan.models(), plan.total(report.rows));
    if a.json {
        print_json(&serde_json::json!({
            "input": shown, "rows": report.rows, "models": models, "requests": pairs,
            "columns": report.columns, "errors": 0,
        }))?;
    } else {
        print_stdout(&format!(
            "{}: {} rows x {} model(s) = {} requests; every row parses and renders",
            shown,
            report.rows,
            models.len(),
            pairs
        ));
    }
    Ok(Exit::Ok)
}
