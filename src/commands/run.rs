//! `orbatch run`: the pre-flight check, the run, then the summary on stdout and how it ended
//! on stderr.

use super::error::{AfterSend, CommandError};
use super::exit::{Exit, Outcome};
use super::print::{print_json, print_stdout};
use super::resolve::{endpoint, resolve_job};
use crate::cli::RunArgs;
use crate::estimate::Verdict;
use crate::runner::{CacheSetup, Control, RunOptions, RunReport, StopReason};

pub(super) async fn run(a: RunArgs, control: Control) -> Result<Exit, CommandError> {
    let endpoint = endpoint(&a.job.api, &a.job.base_url).await?;
    let job = resolve_job(&a.job, &endpoint, |o| *o = a.overrides())?;
    endpoint.require_key()?;
    if let Some(shard) = job.shard {
        let argv = std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        crate::shard::record::ShardRecord::new(&job, shard, argv)
            .write(&job.output_dir)
            .map_err(|e| anyhow::anyhow!("{}: {e}", job.output_dir.display()))?;
    }
    let opts = RunOptions {
        api_key: endpoint.key.clone(),
        fresh: a.fresh,
        forget_spend: a.forget_spend,
        retry_failed: a.retry_failed,
        progress: !a.no_progress,
        yes: a.yes,
        rate_window: std::time::Duration::from_secs_f64(a.rate_window_secs.max(0.001)),
        lookup_backoff_scale: a.lookup_backoff_scale.clamp(0.0, 1.0),
        only_rows: None,
        // One client for the pre-flight and the run (building one reads TLS roots).
        client: Some(crate::client::Client::for_job(&job, endpoint.key.as_ref())?),
        cache: cache_setup(&a, &job, endpoint.mock.is_some()),
        mock: endpoint.mock.is_some(),
        allow_unknown_models: a.job.allow_unknown_models,
    };
    if crate::estimate::preflight(&job, &opts).await? == Verdict::Refused {
        return Err(CommandError::Refused);
    }
    let report = crate::runner::run(&job, opts, control)
        .await
        .map_err(|e| CommandError::from_run(e, &job.output_dir))?;
    if a.report {
        super::report::after_run(&job.output_dir, job.limits.budget_usd);
    }
    print_report(&report, a.job.json).after_send(&job.output_dir)
}

/// The response cache of this run: `--no-cache` / `[cache] enabled = false` turn it off;
/// `--cache-dir` beats `[cache] dir`, which beats the default dir. A `--mock` rehearsal uses
/// a cache only when one is named (`--cache-dir`, `[cache] dir` or `ORBATCH_CACHE_DIR`): it
/// leaves nothing in the user's own cache dir.
fn cache_setup(a: &RunArgs, job: &crate::job::Job, mock: bool) -> Option<CacheSetup> {
    if a.no_cache || !job.cache.enabled {
        return None;
    }
    let named = a
        .cache_dir
        .clone()
        .or_else(|| job.cache.dir.clone())
        .or_else(|| std::env::var_os("ORBATCH_CACHE_DIR").map(std::path::PathBuf::from));
    let dir = if mock {
        named
    } else {
        named.or_else(crate::transport::cache::default_dir)
    };
    let Some(dir) = dir else {
        if mock {
            return None;
        }
        tracing::warn!(
            "no cache dir (set XDG_CACHE_HOME or HOME, or pass --cache-dir): going on without the response cache"
        );
        return None;
    };
    let identity = if mock {
        crate::transport::cache::MOCK_IDENTITY.to_string()
    } else {
        job.base_url.clone()
    };
    Some(CacheSetup { dir, identity })
}

/// `stop` of `run --json`: `null`, or why the run stopped early (`reason`, a stable word, and
/// `message`) and what to do (`hint`).
fn stop_json(stop: Option<&StopReason>) -> serde_json::Value {
    let Some(stop) = stop else {
        return serde_json::Value::Null;
    };
    let reason = match stop {
        StopReason::Interrupted => "interrupted",
        StopReason::BudgetReached(_) => "budget_reached",
        StopReason::CreditsExhausted(_) => "credits_exhausted",
        StopReason::AuthRefused(_) => "auth_refused",
        StopReason::JournalFailed(_) => "journal_failed",
        StopReason::InputChanged(_) => "input_changed",
    };
    let mut v = serde_json::json!({"reason": reason, "message": stop.to_string()});
    if let StopReason::BudgetReached(Some(at_least)) = stop {
        v["budget_at_least_usd"] = serde_json::Value::String(at_least.normalize().to_string());
    }
    if let Some(hint) = resume_hint(stop) {
        v["hint"] = serde_json::Value::String(hint);
    }
    v
}

/// How a run ended, for the exit code: its stop, failed rows, pairs left unsent.
pub(super) fn outcome(report: &RunReport) -> Outcome {
    Outcome {
        auth_refused: matches!(report.stop, Some(StopReason::AuthRefused(_))),
        stopped: report.stop.is_some()
            || report.summary.rows.not_sent > 0
            || report.summary.rows.unfinished > 0,
        rows_failed: report.summary.rows.error > 0,
        eval_failed: report
            .summary
            .eval
            .as_ref()
            .is_some_and(|e| !e.below_min().is_empty()),
    }
}

/// What to do after a stop, or nothing when a re-run would not help (a refused key).
pub(super) fn resume_hint(stop: &StopReason) -> Option<String> {
    let hint = match stop {
        StopReason::AuthRefused(_) => return None,
        StopReason::InputChanged(_) => {
            "put the input back as it was and run the same command again to resume (a changed input is refused; --fresh starts over)"
        }
        StopReason::JournalFailed(_) => {
            "free space or fix the output dir's permissions, then run the same command again to resume"
        }
        StopReason::BudgetReached(at_least) => {
            let at_least = at_least.map_or(String::new(), |d| {
                format!(
                    " to at least {}",
                    crate::money::usd(
                        d.round_dp_with_strategy(6, rust_decimal::RoundingStrategy::AwayFromZero)
                    )
                )
            });
            return Some(format!(
                "raise --budget{at_least} (what is spent plus the next request's worst case) and run again to resume; `orbatch estimate` gives the cost of the rest"
            ));
        }
        _ => "run the same command again to resume; finished rows are not sent again",
    };
    Some(hint.to_string())
}

/// Prints a run's summary (table or JSON on stdout) and how it ended (stderr); gives its code.
fn print_report(report: &RunReport, json: bool) -> serde_json::Result<Exit> {
    if json {
        let mut v = serde_json::to_value(&report.summary)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("stop".into(), stop_json(report.stop.as_ref()));
        }
        print_json(&v)?;
    } else {
        print_stdout(&crate::output::table::render_table(&report.summary));
    }
    if let Some(stop) = &report.stop {
        eprintln!("orbatch: stopped early: {stop}");
        if let Some(hint) = resume_hint(stop) {
            eprintln!("orbatch: {hint}");
        }
    }
    if let Some(l) = &report.summary.left_out {
        let variants = l.variants.iter().map(|v| format!("variant {v}"));
        let names: Vec<String> = l.models.iter().cloned().chain(variants).collect();
        let what = match (l.models.is_empty(), l.variants.is_empty()) {
            (_, true) => "models",
            (true, false) => "variants",
            (false, false) => "models or variants",
        };
        eprintln!(
            "orbatch: {} earlier results of {what} not in this job ({}; {}) are kept in results.jsonl but left out of results.csv, the summary and the exit code",
            l.rows,
            names.join(", "),
            crate::money::usd(l.cost_usd)
        );
    }
    if report.summary.rows.error > 0 {
        eprintln!(
            "orbatch: {} rows failed (see results.jsonl); `--retry-failed` sends them again",
            report.summary.rows.error
        );
    }
    if report.summary.rows.truncated > 0 {
        eprintln!(
            "orbatch: warning: {} replies were cut at max_tokens (finish_reason \"length\" in results.csv); raise --max-tokens to get them whole",
            report.summary.rows.truncated
        );
    }
    if let Some(e) = &report.summary.eval {
        for c in e.below_min() {
            eprintln!(
                "orbatch: {} x {}: pass rate {:.1}% is below min_pass_rate {:.1}% (exit 5)",
                c.variant.as_deref().unwrap_or("-"),
                c.model,
                c.pass_rate * 100.0,
                e.min_pass_rate.unwrap_or_default() * 100.0
            );
        }
    }
    eprintln!("orbatch: results in {}", report.output_dir.display());
    Ok(outcome(report).exit())
}
