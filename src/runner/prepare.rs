//! Before the first request: spool stdin, validate the whole input, lock the output dir,
//! check the manifest, recover earlier results, fetch prices, and check the budget can be kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{RunError, RunOptions};
use crate::client::Client;
use crate::job::Job;
use crate::manifest::{DirLock, Manifest};
use crate::output::results::{Journal, Recovered};
use crate::plan::Plan;
use crate::prices::PriceTable;
use crate::prompts::Prompts;
use crate::scan::{ScanOptions, ScanReport, scan};

/// Everything the dispatcher needs.
pub(crate) struct Prepared {
    pub job: Job,
    /// Each prompt variant's compiled templates.
    pub prompts: Arc<Prompts>,
    pub scan: ScanReport,
    /// Every key of the job (the dispatcher subtracts what earlier runs finished).
    pub plan: Plan<'static>,
    pub journal: Journal,
    pub recovered: Recovered,
    pub prices: PriceTable,
    pub client: Client,
    pub started_at: String,
    /// Spend of results set aside by `--fresh`, still counted against the budget.
    pub carried_spend: rust_decimal::Decimal,
    pub _lock: DirLock,
}

/// Compiles every variant's templates and scans the whole input, rendering each row with
/// each of them (the work of `validate`).
pub fn scan_job(job: &Job) -> Result<(ScanReport, Prompts), RunError> {
    let prompts = Prompts::compile(job).map_err(RunError::Config)?;
    let report = scan(&ScanOptions {
        path: &job.input,
        id_column: job.id_column.as_deref(),
        delimiter: job.delimiter,
        job_file: job.file.as_ref(),
        prompts: &prompts,
        need_batch_model: job.request.models.is_empty(),
        limit: job.limit_rows,
        max_errors: 20,
        shard: job.shard,
    })
    .map_err(|e| RunError::Input {
        errors: vec![e],
        count: 1,
    })?;
    if report.error_count > 0 {
        return Err(RunError::Input {
            errors: report.errors.clone(),
            count: report.error_count,
        });
    }
    if let Some(eval) = &job.eval {
        crate::eval::Scorer::compile(eval)
            .and_then(|s| s.check_columns(&report.columns))
            .map_err(RunError::Config)?;
    }
    if job.request.models.is_empty() && report.batch_models.is_empty() && report.rows > 0 {
        return Err(RunError::Config(
            "no model: set request.models in the job file or pass --model".into(),
        ));
    }
    Ok((report, prompts))
}

/// Prepares a run. When it fails (a bad row, a changed request shape, ...), it leaves no
/// lock file and no output dir that it created itself.
pub(crate) async fn prepare(job: &Job, opts: &RunOptions) -> Result<Prepared, RunError> {
    let dir = job.output_dir.clone();
    let dir_existed = dir.is_dir();
    std::fs::create_dir_all(&dir).map_err(|e| {
        RunError::Config(format!("cannot create output dir {}: {e}", dir.display()))
    })?;
    let lock_path = dir.join(crate::manifest::LOCK);
    let lock_existed = std::fs::symlink_metadata(&lock_path).is_ok();
    let lock = DirLock::acquire(&dir).map_err(RunError::Config)?;
    let prepared = prepare_locked(job, opts, lock).await;
    if prepared.is_err() {
        if !lock_existed {
            let _ = std::fs::remove_file(&lock_path);
        }
        if !dir_existed {
            // Only when empty: a spooled stdin or anything else stays.
            let _ = std::fs::remove_dir(&dir);
        }
    }
    prepared
}

async fn prepare_locked(job: &Job, opts: &RunOptions, lock: DirLock) -> Result<Prepared, RunError> {
    let mut job = job.clone();
    let config = |msg: String| RunError::Config(msg);
    if job.input == Path::new("-") {
        job.input =
            spool_stdin(&job.output_dir).map_err(|e| config(format!("cannot read stdin: {e}")))?;
    }
    let client = match &opts.client {
        Some(c) => c.clone(),
        None => Client::for_job(&job, opts.api_key.as_ref())
            .map_err(|e| config(format!("cannot build the HTTP client: {e}")))?,
    };
    // Prices are fetched while the input is scanned.
    let prices_task = {
        let c = client.clone();
        tokio::spawn(
            async move { PriceTable::cached_or_fetch(&c, crate::prices::RUN_MAX_AGE).await },
        )
    };
    let t = std::time::Instant::now();
    let scan_input = job.clone();
    let (scan, prompts) = tokio::task::spawn_blocking(move || scan_job(&scan_input))
        .await
        .map_err(|e| RunError::Other(anyhow::anyhow!("input scan failed: {e}")))??;
    let mut models = Plan::new(&job, &scan).models().to_vec();
    tracing::debug!("scanned {} rows in {:?}", scan.rows, t.elapsed());
    let mut prices = prices_task.await.unwrap_or_default();
    // A cached table that lacks one of the job's models may predate it: ask once more.
    if prices.error.is_none()
        && !prices.age().is_zero()
        && models.iter().any(|m| prices.get(m).is_none())
    {
        let fresh = PriceTable::fetch(&client).await;
        if fresh.error.is_none() {
            prices = fresh;
        }
    }
    check_slugs(&mut job, &mut models, &prices, opts.allow_unknown_models)?;
    // The plan knows the job's models as checked (a batch file's bare names mapped to slugs).
    let plan = Plan::with_models(models.clone(), job.request.models.is_empty())
        .sharded(job.shard)
        .with_variants_of(&job);
    check_budget_is_enforceable(&job, &models, &prices)?;
    warn_too_long(&job, &prompts, &prices, &scan).map_err(|e| RunError::Input {
        errors: vec![e],
        count: 1,
    })?;
    let t = std::time::Instant::now();

    let carried_spend_usd = if opts.fresh {
        super::fresh::start_fresh(&job.output_dir, opts.forget_spend).map_err(config)?
    } else {
        super::fresh::carried_spend(&job.output_dir)
    };
    let manifest = Manifest {
        version: 1,
        system: job.request.system.clone(),
        prompt: job.request.prompt.clone(),
        max_tokens: job.request.max_tokens,
        temperature: job.request.temperature,
        extra: job.request.extra.clone(),
        id_column: job.id_column.clone(),
        // Hashed once, by the scan.
        input_fingerprint: scan.fingerprint.clone(),
        endpoint: Some(crate::manifest::EndpointRecord {
            base_url: job.base_url.clone(),
            mock: opts.mock,
        }),
        input_bytes: Some(scan.bytes),
        carried_spend_usd: (!carried_spend_usd.is_zero()).then_some(carried_spend_usd),
        variants: job
            .variants
            .iter()
            .map(|v| v.resolved(&job.request))
            .collect(),
    };
    match manifest.check_or_write(&job.output_dir, &job.input) {
        Ok(Ok(None)) => {}
        Ok(Ok(Some(old))) => eprintln!(
            "orbatch: {} grew since the last run ({old} -> {} bytes, the old rows unchanged): the new rows are sent",
            job.input.display(),
            scan.bytes
        ),
        Ok(Err(changes)) => {
            return Err(config(format!(
                "{} holds results of a different request shape or endpoint:\n  {}\nuse another --output-dir, or --fresh to start over",
                job.output_dir.display(),
                changes.join("\n  ")
            )));
        }
        Err(e) => return Err(config(format!("cannot write the manifest: {e}"))),
    }
    let results = job.output_dir.join("results.jsonl");
    let (journal, recovered) = Journal::open(&results).map_err(|e| match e.kind() {
        // A symlink or a non-file at the journal's path: refused before anything is sent.
        std::io::ErrorKind::InvalidInput => config(e.to_string()),
        _ => RunError::Other(anyhow::anyhow!("{}: {e}", results.display())),
    })?;
    report_recovery(&results, &recovered);
    tracing::debug!("manifest and journal recovery in {:?}", t.elapsed());

    let started_at = crate::output::summary::now_rfc3339();
    Ok(Prepared {
        job,
        prompts: Arc::new(prompts),
        scan,
        plan,
        journal,
        recovered,
        prices,
        client,
        started_at,
        carried_spend: carried_spend_usd,
        _lock: lock,
    })
}

fn report_recovery(path: &Path, r: &Recovered) {
    if let Some(t) = &r.torn {
        if t.kept {
            eprintln!(
                "orbatch: {}:{}: completed a last line that lost its newline",
                path.display(),
                t.line
            );
        } else {
            eprintln!(
                "orbatch: {}:{}: dropped a torn last line ({} bytes, starting {:?}): a crash cut it; that row will be sent again",
                path.display(),
                t.line,
                t.bytes,
                t.prefix
            );
        }
    }
    for (line, err) in &r.bad_lines {
        eprintln!(
            "orbatch: {}:{line}: unreadable line kept and skipped: {err}",
            path.display()
        );
    }
    if r.lines > 0 {
        tracing::info!(
            "resuming: {} pairs done, {} failed earlier, {} spent so far",
            r.done.len(),
            r.failed.len(),
            crate::money::usd(r.spent)
        );
    }
}

/// Refuses models `/models` does not list (unless `allow_unknown`), and maps the bare names
/// of batch lines to their slugs, saying so.
pub fn check_slugs(
    job: &mut Job,
    models: &mut Vec<String>,
    prices: &PriceTable,
    allow_unknown: bool,
) -> Result<(), RunError> {
    let found = crate::slugs::check(models, prices);
    if let Some(msg) = found.refusal() {
        if !allow_unknown {
            return Err(RunError::Config(msg));
        }
        tracing::warn!("--allow-unknown-models: sending anyway:\n{msg}");
    }
    for (bare, slug) in &found.mapped {
        eprintln!(
            "orbatch: model {bare} is sent as {slug} (the one /models slug ending with /{bare})"
        );
    }
    job.request.aliases = found.mapped;
    let spec = &job.request;
    let mapped = |list: &[String]| {
        let mut seen = std::collections::HashSet::new();
        list.iter()
            .map(|m| spec.slug(m).to_string())
            .filter(|m| seen.insert(m.clone()))
            .collect::<Vec<_>>()
    };
    *models = mapped(models);
    job.request.models = mapped(&job.request.models);
    Ok(())
}

/// Says which prompts are longer than their model's context length (they can only fail). A
/// pass over the input only when the scan's bound says some prompt may be.
pub fn warn_too_long(
    job: &Job,
    prompts: &Prompts,
    prices: &PriceTable,
    scan: &ScanReport,
) -> Result<(), crate::input::InputError> {
    if !crate::estimate::may_be_too_long(scan.max_prompt_upper, prices) {
        return Ok(());
    }
    for w in crate::estimate::too_long(job, prompts, prices)?.warnings() {
        eprintln!("orbatch: warning: {w}");
    }
    Ok(())
}

/// A budget can be kept only when every model's worst case can be priced.
fn check_budget_is_enforceable(
    job: &Job,
    models: &[String],
    prices: &PriceTable,
) -> Result<(), RunError> {
    if job.limits.budget_usd.is_none() {
        return Ok(());
    }
    // Each variant's max_tokens (a variant may set one where [request] has none).
    let caps: Vec<Option<u64>> = match job.variants.is_empty() {
        true => vec![job.request.max_tokens],
        false => job
            .variants
            .iter()
            .map(|v| v.max_tokens.or(job.request.max_tokens))
            .collect(),
    };
    let unpriced: Vec<&str> = models
        .iter()
        .filter(|m| {
            prices
                .get(m)
                .is_none_or(|p| caps.iter().any(|cap| p.completion_cap(*cap).is_none()))
        })
        .map(String::as_str)
        .collect();
    if unpriced.is_empty() {
        return Ok(());
    }
    let why = prices
        .error
        .clone()
        .unwrap_or_else(|| "not priced in /models".into());
    Err(RunError::Config(format!(
        "budget_usd is set, but the worst case of {} cannot be priced ({why}); without it the cap cannot be guaranteed. Set max_tokens and use models listed with prices, or remove the budget",
        unpriced.join(", ")
    )))
}

/// Streams stdin into the output dir (`stdin.jsonl` or `stdin.csv`, by its first byte) so the
/// run can scan it twice and a resume can fingerprint it.
pub fn spool_stdin(dir: &Path) -> std::io::Result<PathBuf> {
    crate::input::spool::spool(std::io::stdin().lock(), dir)
}
