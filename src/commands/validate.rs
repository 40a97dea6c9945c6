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
    let (report, _) = match result {
        Ok(r) => r,
        Err(e) if a.json => {
            print_json(&errors_json(&shown, &e))?;
            return Ok(Exit::Usage);
        }
        Err(e) => return Err(CommandError::from_run(e, &job.output_dir)),
    };
    let models = crate::runner::job_models(&job, &report);
    let pairs = crate::runner::job_pairs(&job, report.rows, &models);
    if a.json {
        print_json(&serde_json::json!({
            "input": shown, "rows": report.rows, "models": models, "requests": pairs,
            "columns": report.columns, "valid": true, "errors": 0, "error_list": [],
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

/// `validate --json` when the input is refused: `errors` (how many in all) and `error_list`
/// (the first ones: `file`, `line` (0: the whole file), `message`).
fn errors_json(input: &str, e: &crate::runner::RunError) -> serde_json::Value {
    let (count, list) = match e {
        crate::runner::RunError::Input { errors, count } => (
            *count,
            errors
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "file": e.path.display().to_string(), "line": e.line, "message": e.message,
                    })
                })
                .collect(),
        ),
        other => (
            1,
            vec![serde_json::json!({"file": input, "line": 0, "message": other.to_string()})],
        ),
    };
    serde_json::json!({"input": input, "valid": false, "errors": count, "error_list": list})
}
