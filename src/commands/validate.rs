//! `orbatch validate`: parse every row and render every prompt, as `run` does first, and check
//! the models against the endpoint's `/models` (unknown: exit 2; a prompt longer than its
//! model's context: a warning). It sends no prompt and writes nothing into the output dir.
//! Exit 0 or 2.

use std::path::Path;

use super::error::CommandError;
use super::exit::Exit;
use super::print::{print_json, print_stdout};
use super::resolve::{endpoint, query_client};
use crate::cli::JobArgs;
use crate::job::Job;

pub(super) async fn validate(a: JobArgs) -> Result<Exit, CommandError> {
    let mut o = a.overrides();
    // validate sends no prompt (it reads the endpoint's /models list only): a bad --base-url
    // is an error, a bad OPENROUTER_BASE_URL only skips the model check.
    o.base_url = Some(
        o.base_url
            .unwrap_or_else(|| crate::endpoint::DEFAULT_BASE_URL.to_string()),
    );
    let mut job = Job::resolve(a.job.as_deref(), o, None)?;
    crate::shard::apply(&mut job, &a.shard, |k| std::env::var(k).ok())?;
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
    let (report, prompts) = match result {
        Ok(r) => r,
        Err(e) if a.json => {
            print_json(&errors_json(&shown, &e))?;
            return Ok(Exit::Usage);
        }
        Err(e) => return Err(CommandError::from_run(e, &job.output_dir)),
    };
    let mut job = job;
    let mut models = crate::plan::Plan::new(&job, &report).models().to_vec();
    let prices = check_models(&a, &mut job, &mut models).await?;
    crate::runner::warn_too_long(&job, &prompts, &prices, &report)
        .map_err(|e| CommandError::Input(e.to_string()))?;
    let pairs = crate::plan::Plan::new(&job, &report).total(report.shard_rows);
    let variants: Vec<&str> = job.variants.iter().map(|v| v.name.as_str()).collect();
    if a.json {
        let mut out = serde_json::json!({
            "input": shown, "rows": report.shard_rows, "models": models, "requests": pairs,
            "columns": report.columns, "valid": true, "errors": 0, "error_list": [],
        });
        if !variants.is_empty() {
            out["variants"] = serde_json::json!(variants);
        }
        print_json(&out)?;
    } else {
        let times_variants = match variants.len() {
            0 => String::new(),
            n => format!(" x {n} variant(s)"),
        };
        print_stdout(&format!(
            "{}: {} rows{times_variants} x {} model(s) = {} requests; every row parses and renders",
            shown,
            report.shard_rows,
            models.len(),
            pairs
        ));
    }
    Ok(Exit::Ok)
}

/// Checks the job's models against the endpoint's `/models` (as `run` does before sending);
/// an endpoint without a usable list checks nothing, and says so. Returns the list.
async fn check_models(
    a: &JobArgs,
    job: &mut Job,
    models: &mut Vec<String>,
) -> Result<crate::prices::PriceTable, CommandError> {
    // A bad OPENROUTER_BASE_URL fails `run`, not `validate`: the list is then not read.
    let endpoint = match endpoint(&a.api, &a.base_url).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("orbatch: model names not checked: {e:#}");
            return Ok(crate::prices::PriceTable::default());
        }
    };
    let client = query_client(&endpoint)?;
    let prices =
        crate::prices::PriceTable::cached_or_fetch(&client, crate::prices::RUN_MAX_AGE).await;
    if let Some(why) = &prices.error {
        eprintln!("orbatch: model names not checked: {why}");
    }
    crate::runner::check_slugs(job, models, &prices, a.allow_unknown_models)
        .map_err(|e| CommandError::from_run(e, &job.output_dir))?;
    Ok(prices)
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
