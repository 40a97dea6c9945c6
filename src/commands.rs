//! What each command does, from parsed arguments to an exit code. Results go to stdout;
//! progress, warnings and errors to stderr.

use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use crate::Exit;
use crate::cli::{ApiArgs, Command, CreditsArgs, JobArgs, ModelsArgs, RunArgs, SummaryArgs};
use crate::job::Job;
use crate::mock::{MockConfig, MockServer};
use crate::runner::{Control, RunError, RunOptions};

/// Runs a parsed command line; returns the exit code.
pub async fn dispatch(cmd: Command, control: Control) -> Exit {
    let result = match cmd {
        Command::Run(a) => run(a, control).await,
        Command::Estimate(a) => crate::estimate::command(a, control).await,
        Command::Validate(a) => validate(a).await,
        Command::Summary(a) => summary(a),
        Command::Models(a) => models(a).await,
        Command::Credits(a) => credits(a).await,
        Command::MockServer(a) => mock_server(a.config).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            Exit::Usage
        }
    }
}

/// Prints to stdout; a closed pipe (`| head`) is a clean exit, not a panic.
pub fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let r = out.write_all(text.as_bytes()).and_then(|_| {
        if !text.ends_with('\n') {
            out.write_all(b"\n")?;
        }
        out.flush()
    });
    if let Err(e) = r
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write to stdout: {e}");
    }
}

/// The API key: `--api-key-file`, else `OPENROUTER_API_KEY`. Never from a job file.
pub fn api_key(api: &ApiArgs) -> anyhow::Result<Option<SecretString>> {
    if let Some(path) = &api.api_key_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("--api-key-file {}: {e}", path.display()))?;
        let key = text.trim();
        if key.is_empty() {
            anyhow::bail!("--api-key-file {}: the file is empty", path.display());
        }
        return Ok(Some(SecretString::from(key.to_string())));
    }
    Ok(std::env::var("OPENROUTER_API_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
        .map(|k| SecretString::from(k.trim().to_string())))
}

/// The API endpoint a command talks to: the in-process mock (`--mock`), or the configured one.
pub struct Endpoint {
    /// The base URL.
    pub base_url: String,
    /// The key.
    pub key: Option<SecretString>,
    /// Keeps the in-process mock alive.
    pub mock: Option<MockServer>,
}

impl Endpoint {
    /// Resolves the endpoint; `--mock` starts the mock and needs no key.
    pub async fn resolve(api: &ApiArgs, base_url: Option<String>) -> anyhow::Result<Endpoint> {
        if api.mock {
            // The in-process mock keeps no request log: a long rehearsal stays flat in memory.
            let server = MockServer::start(MockConfig {
                no_log: true,
                ..MockConfig::default()
            })
            .await?;
            return Ok(Endpoint {
                base_url: server.base_url(),
                key: Some(SecretString::from("sk-or-v1-mock-local".to_string())),
                mock: Some(server),
            });
        }
        let base_url = base_url
            .or_else(|| std::env::var("OPENROUTER_BASE_URL").ok())
            .unwrap_or_else(|| crate::job::DEFAULT_BASE_URL.to_string());
        crate::job::check_base_url(&base_url)?;
        Ok(Endpoint {
            base_url,
            key: api_key(api)?,
            mock: None,
        })
    }

    /// Fails when a key is needed (the default OpenRouter URL) and none was given.
    pub fn require_key(&self) -> anyhow::Result<()> {
        if self.key.is_none() && self.base_url.starts_with(crate::job::DEFAULT_BASE_URL) {
            anyhow::bail!(
                "no API key: set OPENROUTER_API_KEY or pass --api-key-file PATH (or try --mock)"
            );
        }
        Ok(())
    }

    /// A client for this endpoint.
    pub fn client(&self) -> anyhow::Result<crate::client::Client> {
        crate::client::Client::new(
            &self.base_url,
            self.key.as_ref(),
            std::time::Duration::from_secs(60),
            4,
        )
    }
}

/// Resolves a job from a job file and flags, pointing it at `endpoint`.
pub fn resolve_job(args: &JobArgs, endpoint: &Endpoint) -> anyhow::Result<Job> {
    let mut o = args.overrides();
    o.base_url = Some(endpoint.base_url.clone());
    Ok(Job::resolve(args.job.as_deref(), o, None)?)
}

async fn run(a: RunArgs, control: Control) -> anyhow::Result<Exit> {
    let endpoint = Endpoint::resolve(&a.job.api, a.job.base_url.clone()).await?;
    let job = resolve_job(&a.job, &endpoint)?;
    endpoint.require_key()?;
    let opts = RunOptions {
        api_key: endpoint.key.clone(),
        fresh: a.fresh,
        retry_failed: a.retry_failed,
        progress: !a.no_progress,
        yes: a.yes,
        rate_window: std::time::Duration::from_secs_f64(a.rate_window_secs.max(0.001)),
        lookup_backoff_scale: a.lookup_backoff_scale.clamp(0.0, 1.0),
        only_rows: None,
        // One client for the pre-flight and the run (building one reads TLS roots).
        client: Some(crate::client::Client::for_job(&job, endpoint.key.as_ref())?),
    };
    if let Some(code) = crate::estimate::preflight(&job, &opts, &endpoint).await? {
        return Ok(code);
    }
    report_run(crate::runner::run(&job, opts, control).await, a.job.json)
}

/// Prints a run's outcome (table or JSON on stdout, the reason on stderr) and gives its code.
pub fn report_run(
    result: Result<crate::runner::RunReport, RunError>,
    json: bool,
) -> anyhow::Result<Exit> {
    match result {
        Ok(report) => {
            if json {
                print_stdout(&serde_json::to_string_pretty(&report.summary)?);
            } else {
                print_stdout(&crate::output::table::render_table(&report.summary));
            }
            if let Some(stop) = &report.stop {
                eprintln!("orbatch: stopped early: {stop}");
                if !matches!(stop, crate::runner::StopReason::AuthRefused(_)) {
                    eprintln!(
                        "orbatch: run the same command again to resume; finished rows are not sent again"
                    );
                }
            }
            if report.summary.rows.error > 0 {
                eprintln!(
                    "orbatch: {} rows failed (see results.jsonl); `--retry-failed` sends them again",
                    report.summary.rows.error
                );
            }
            eprintln!("orbatch: results in {}", report.output_dir.display());
            Ok(report.exit_code())
        }
        Err(RunError::Input { errors, count }) => {
            eprintln!("{}", crate::runner::format_input_errors(&errors, count));
            Ok(Exit::Usage)
        }
        Err(RunError::Config(msg)) => {
            eprintln!("error: {msg}");
            Ok(Exit::Usage)
        }
        Err(RunError::Stopped(msg)) => {
            eprintln!("error: {msg}");
            eprintln!(
                "orbatch: run the same command again to resume once the output dir can be written"
            );
            Ok(Exit::Stopped)
        }
        Err(RunError::Other(e)) => {
            eprintln!("error: {e:#}");
            Ok(Exit::RowsFailed)
        }
    }
}

async fn validate(a: JobArgs) -> anyhow::Result<Exit> {
    let mut o = a.overrides();
    o.base_url = Some(
        o.base_url
            .unwrap_or_else(|| crate::job::DEFAULT_BASE_URL.to_string()),
    );
    let mut job = Job::resolve(a.job.as_deref(), o, None)?;
    // validate writes nothing into the output dir: stdin is spooled into a temp dir instead.
    let spool = std::env::temp_dir().join(format!("orbatch-validate-{}", std::process::id()));
    let shown = job.input.display().to_string();
    if job.input == Path::new("-") {
        std::fs::create_dir_all(&spool)?;
        job.input = crate::runner::spool_stdin(&spool)?;
    }
    let scanned = tokio::task::spawn_blocking(move || {
        let r = crate::runner::scan_job(&job);
        (job, r)
    })
    .await?;
    let (job, result) = scanned;
    let _ = std::fs::remove_dir_all(&spool);
    match result {
        Ok((report, _)) => {
            let models = crate::runner::job_models(&job, &report);
            let pairs = crate::runner::job_pairs(&job, report.rows, &models);
            if a.json {
                print_stdout(&serde_json::to_string_pretty(&serde_json::json!({
                    "input": shown, "rows": report.rows, "models": models, "requests": pairs,
                    "columns": report.columns, "errors": 0,
                }))?);
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
        Err(e) => {
            eprintln!("{e}");
            Ok(Exit::Usage)
        }
    }
}

fn summary(a: SummaryArgs) -> anyhow::Result<Exit> {
    for f in &a.files {
        if !f.is_file() {
            anyhow::bail!("{}: no such results file", f.display());
        }
    }
    let name = a.name.clone().unwrap_or_else(|| {
        a.files[0]
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or("results")
            .to_string()
    });
    let meta = crate::output::summary::SummaryMeta {
        job: name,
        ..Default::default()
    };
    let files: Vec<PathBuf> = a.files.clone();
    let s = crate::output::summary::summarize(&files, &meta)?;
    if let Some(path) = &a.write {
        crate::output::summary::write_summary_json(&s, path)?;
    }
    if a.json {
        print_stdout(&serde_json::to_string_pretty(&s)?);
    } else {
        print_stdout(&crate::output::table::render_table(&s));
    }
    Ok(if s.rows.error > 0 {
        Exit::RowsFailed
    } else {
        Exit::Ok
    })
}

/// A query command's answer, or the exit code of a refused key (4, said on stderr); any other
/// failure is an error (exit 2).
fn answer<T>(
    what: &str,
    r: Result<T, crate::client::CallError>,
) -> anyhow::Result<Result<T, Exit>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(crate::client::CallError::Auth(status, msg)) => {
            eprintln!("error: authentication refused (HTTP {status}): {msg}");
            Ok(Err(Exit::Auth))
        }
        Err(e) => anyhow::bail!("{what}: {e}"),
    }
}

async fn models(a: ModelsArgs) -> anyhow::Result<Exit> {
    let endpoint = Endpoint::resolve(&a.query.api, a.query.base_url.clone()).await?;
    let client = endpoint.client()?;
    let entries = match answer("GET /models", client.models().await)? {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    let filter = a.filter.as_deref().unwrap_or("").to_ascii_lowercase();
    let table = crate::prices::PriceTable::from_entries(&entries);
    let mut rows: Vec<_> = entries
        .iter()
        .filter(|e| e.id.to_ascii_lowercase().contains(&filter))
        .collect();
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    if a.query.json {
        let v: Vec<_> = rows
            .iter()
            .map(|e| serde_json::json!({"id": e.id, "price": table.get(&e.id)}))
            .collect();
        print_stdout(&serde_json::to_string_pretty(&v)?);
        return Ok(Exit::Ok);
    }
    let mut t = crate::output::table::new_table(
        false,
        &[
            "model",
            "$/M prompt",
            "$/M completion",
            "$/request",
            "context",
            "max completion",
        ],
        &[1, 2, 3, 4, 5],
    );
    let million = rust_decimal::Decimal::from(1_000_000);
    for e in rows {
        match table.get(&e.id) {
            Some(p) => t.add_row([
                e.id.clone(),
                (p.prompt * million).normalize().to_string(),
                (p.completion * million).normalize().to_string(),
                p.request.normalize().to_string(),
                p.context_length.map_or("-".into(), |c| c.to_string()),
                p.max_completion_tokens
                    .map_or("-".into(), |c| c.to_string()),
            ]),
            None => t.add_row([
                e.id.clone(),
                "price unknown".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
            ]),
        };
    }
    print_stdout(&t.to_string());
    Ok(Exit::Ok)
}

async fn credits(a: CreditsArgs) -> anyhow::Result<Exit> {
    let endpoint = Endpoint::resolve(&a.query.api, a.query.base_url.clone()).await?;
    endpoint.require_key()?;
    let client = endpoint.client()?;
    let key = match answer("GET /key", client.key_info().await)? {
        Ok(v) => v,
        Err(code) => return Ok(code),
    };
    let management = std::env::var("OPENROUTER_MANAGEMENT_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
        .map(|k| SecretString::from(k.trim().to_string()));
    let credits = match &management {
        Some(m) => match client.credits(m).await {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("orbatch: GET /credits with OPENROUTER_MANAGEMENT_KEY failed: {e}");
                None
            }
        },
        None => None,
    };
    if a.query.json {
        print_stdout(&serde_json::to_string_pretty(
            &serde_json::json!({"key": key, "credits": credits}),
        )?);
    } else {
        print_stdout(&crate::estimate::render_credits(&key, credits.as_ref()));
    }
    Ok(Exit::Ok)
}

async fn mock_server(config: MockConfig) -> anyhow::Result<Exit> {
    crate::mock::serve(config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(Exit::Ok)
}
