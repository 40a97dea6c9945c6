//! `orbatch score`: recompute every check over the results already in the output dir, send
//! the judge calls whose inputs changed (and only those; never a completion), then rewrite
//! results.jsonl (compacted), results.csv and summary.json. Exit 0, 1 (some rows failed), 2
//! (no checks, no results, a bad config), 3 (stopped: Ctrl-C, the budget; what was graded is
//! kept) or 5 (a cell below `min_pass_rate`).

use std::sync::Arc;

use super::error::CommandError;
use super::exit::{Exit, Outcome};
use super::print::{print_json, print_stdout};
use super::resolve::{endpoint, resolve_job};
use crate::cli::ScoreArgs;
use crate::eval::Scorer;
use crate::manifest::DirLock;
use crate::output::finalize::OutputDir;
use crate::output::summary::SummaryMeta;
use crate::runner::{Control, Rejudged, RunOptions};

pub(super) async fn score(a: ScoreArgs, control: Control) -> Result<Exit, CommandError> {
    let endpoint = endpoint(&a.job.api, &a.job.base_url).await?;
    let job = resolve_job(&a.job, &endpoint, |o| a.apply(o))?;
    let Some(spec) = &job.eval else {
        return Err(anyhow::anyhow!(
            "{}: the job has no [[checks]] to score with",
            job.file
                .as_ref()
                .map_or("the job".into(), |f| f.display().to_string())
        )
        .into());
    };
    let scorer = Arc::new(Scorer::compile(spec).map_err(|e| anyhow::anyhow!(e))?);
    let dir = job.output_dir.clone();
    if !dir.join(crate::output::finalize::RESULTS).is_file() {
        return Err(anyhow::anyhow!(
            "{}: no results.jsonl to score (run the job first, or give --output-dir)",
            dir.display()
        )
        .into());
    }
    let (scan, _) = crate::runner::scan_job(&job).map_err(|e| CommandError::from_run(e, &dir))?;
    let _lock = DirLock::acquire(&dir).map_err(|e| anyhow::anyhow!(e))?;
    // The judge calls whose inputs changed, each graded line appended to the journal.
    let opts = RunOptions {
        api_key: endpoint.key.clone(),
        rate_window: std::time::Duration::from_secs_f64(a.rate_window_secs.max(0.001)),
        mock: endpoint.mock.is_some(),
        ..RunOptions::default()
    };
    let judged = crate::runner::rejudge(&job, scorer.clone(), &opts, &control)
        .await
        .map_err(|e| CommandError::from_run(e, &dir))?;
    report_judges(&judged);
    // A judge's recorded grade stands while its model, rubric and judged output are the same
    // (the hash on the line); one still stale (the pass stopped) is left unscored.
    let stale = std::cell::Cell::new(0u64);
    let grade = |line: &crate::output::ResultLine, c: &crate::job::CheckSpec| {
        let crate::job::CheckKind::Judge { model, .. } = &c.kind else {
            return None;
        };
        let rubric = scorer.rubric(c, line)?.ok()?;
        let rec = line.judge.as_ref().and_then(|j| j.get(&c.name));
        match rec {
            Some(r) if r.hash == crate::eval::judge::inputs_hash(model, &rubric) => r.score,
            _ => {
                stale.set(stale.get() + 1);
                None
            }
        }
    };
    let done = crate::eval::rescore::rescore(&dir, &scorer, &grade)?;
    if stale.get() > 0 {
        eprintln!(
            "orbatch: warning: {} judge grades are missing or stale (not graded: the judge call failed or was not sent) and are left unscored; `orbatch score` again sends them",
            stale.get()
        );
    }
    tracing::info!("scored {} lines", done.lines);
    let plan = crate::plan::Plan::new(&job, &scan);
    let meta = SummaryMeta {
        job: job.name.clone(),
        total_pairs: Some(plan.total(scan.shard_rows)),
        models: Some(plan.models().to_vec()),
        variants: Some(plan.variants().to_vec()),
        eval: Some(spec.min_pass_rate),
        stopped_early: judged.stop.is_some(),
        ..SummaryMeta::default()
    };
    // The same end-of-run files as `run` writes (results.csv, summary.json, annotation).
    let summary = OutputDir::new(&dir)
        .finalize_job(&meta, &job, &scan, plan.models(), None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if a.report {
        super::report::after_run(&dir, job.limits.budget_usd);
    }
    if a.job.json {
        print_json(&summary)?;
    } else {
        print_stdout(&crate::output::table::render_table(&summary));
    }
    eprintln!(
        "orbatch: scored {} results in {}",
        done.lines,
        dir.display()
    );
    if let Some(stop) = &judged.stop {
        eprintln!("orbatch: stopped early: {stop}");
        if let Some(hint) = super::run::resume_hint(stop) {
            eprintln!("orbatch: {hint}");
        }
    }
    let below = summary.eval.as_ref().map_or(Vec::new(), |e| e.below_min());
    for c in &below {
        eprintln!(
            "orbatch: {} x {}: pass rate {:.1}% is below min_pass_rate (exit 5)",
            c.variant.as_deref().unwrap_or("-"),
            c.model,
            c.pass_rate * 100.0
        );
    }
    Ok(Outcome {
        auth_refused: matches!(judged.stop, Some(crate::runner::StopReason::AuthRefused(_))),
        stopped: judged.stop.is_some(),
        eval_failed: !below.is_empty(),
        rows_failed: summary.rows.error > 0,
    }
    .exit())
}

/// Says on stderr how many judge calls were sent and what they cost.
fn report_judges(j: &Rejudged) {
    if j.stale == 0 {
        return;
    }
    eprintln!(
        "orbatch: {} results had missing or stale judge grades: {} judge call{} sent, {}",
        j.stale,
        j.calls,
        if j.calls == 1 { "" } else { "s" },
        crate::money::usd(j.cost_usd)
    );
}
