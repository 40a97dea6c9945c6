//! Job files (`jobs/*.toml`) and command-line overrides, resolved into one [`Job`].
//!
//! Precedence: a flag beats the job file, which beats the default. Unknown keys in a job file
//! are errors naming the file, line and key; a key is never accepted inside a job file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};

pub mod batch;
pub mod eval;
pub mod output_schema;
pub mod variants;

pub use batch::{BatchSpec, Mode};
pub use eval::{CheckKind, CheckSpec, EvalSpec};
pub use variants::Variant;

/// A job-file or override error (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobError(pub String);

/// Where each row's cost comes from (`[cost] source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CostMode {
    /// `usage.cost`, else `/generation`, else the price table.
    #[default]
    Auto,
    /// `usage.cost` only (never look up).
    Response,
    /// Always `/generation` (exact, with provider and native tokens).
    Generation,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    name: Option<String>,
    input: Option<PathBuf>,
    id_column: Option<String>,
    output_dir: Option<PathBuf>,
    #[serde(default)]
    request: RequestFile,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    cost: CostFile,
    #[serde(default)]
    cache: CacheFile,
    #[serde(default)]
    variants: Vec<variants::VariantFile>,
    eval: Option<eval::EvalFile>,
    checks: Option<Vec<eval::CheckFile>>,
    output: Option<output_schema::OutputFile>,
    #[serde(default)]
    batch: batch::BatchFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheFile {
    enabled: Option<bool>,
    dir: Option<PathBuf>,
}

/// The response cache's settings (`[cache]`; `--no-cache` and `--cache-dir` beat them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSpec {
    /// Look answers up and store them (on by default).
    pub enabled: bool,
    /// The cache dir (`None`: the default, see [`crate::transport::cache::default_dir`]).
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestFile {
    models: Option<Vec<String>>,
    model: Option<String>,
    system: Option<String>,
    prompt: Option<String>,
    max_tokens: Option<u64>,
    temperature: Option<f64>,
    extra: Option<Map<String, Value>>,
    mode: Option<Mode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    concurrency: Option<usize>,
    requests_per_minute: Option<u32>,
    tokens_per_minute: Option<u64>,
    max_retries: Option<u32>,
    timeout_secs: Option<f64>,
    budget_usd: Option<Decimal>,
    retry_ambiguous: Option<bool>,
    max_response_bytes: Option<u64>,
    max_retry_wait_secs: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CostFile {
    source: Option<CostMode>,
}

/// Values given on the command line; each beats the job file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--input FILE` (`-` = stdin).
    pub input: Option<PathBuf>,
    /// `--output-dir DIR`.
    pub output_dir: Option<PathBuf>,
    /// `--model M` (repeatable).
    pub models: Vec<String>,
    /// `--prompt TEMPLATE`.
    pub prompt: Option<String>,
    /// `--system TEXT`.
    pub system: Option<String>,
    /// `--max-tokens N`.
    pub max_tokens: Option<u64>,
    /// `--rpm N`.
    pub rpm: Option<u32>,
    /// `--tpm N`.
    pub tpm: Option<u64>,
    /// `--concurrency N`.
    pub concurrency: Option<usize>,
    /// `--max-retries N`.
    pub max_retries: Option<u32>,
    /// `--timeout SECS`.
    pub timeout_secs: Option<f64>,
    /// `--budget USD`.
    pub budget_usd: Option<Decimal>,
    /// `--limit N` (first N rows).
    pub limit: Option<u64>,
    /// `--base-url URL`.
    pub base_url: Option<String>,
    /// `--id-column NAME`.
    pub id_column: Option<String>,
    /// `--mock`: the default output dir is `out/<name>-mock`, so that a rehearsal never
    /// shares its results with a real run.
    pub mock: bool,
    /// `--delimiter CHAR`.
    pub delimiter: Option<u8>,
    /// `--layout` of results.csv.
    pub layout: crate::output::Layout,
    /// `--temperature T`.
    pub temperature: Option<f64>,
    /// `--top-p`, `--seed`, `--param KEY=JSON`: request body fields, over `request.extra`.
    pub extra: Map<String, Value>,
    /// `--schema FILE`, `--schema-retries N`.
    pub output: output_schema::OutputOverrides,
    /// `--mode live|batch`.
    pub mode: Option<Mode>,
}

/// The request every row is sent with.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec {
    /// Every row is sent to every model. Empty only for OpenAI Batch inputs whose lines name
    /// their own model.
    pub models: Vec<String>,
    /// The system prompt (a template).
    pub system: Option<String>,
    /// The user prompt template; `None` = the row's `prompt` field.
    pub prompt: Option<String>,
    /// `max_tokens`.
    pub max_tokens: Option<u64>,
    /// `temperature`.
    pub temperature: Option<f64>,
    /// Other body fields, passed through unchanged.
    pub extra: Map<String, Value>,
    /// Bare model names of batch lines (`gpt-4o-mini`) and the `/models` slug each is sent
    /// as (`openai/gpt-4o-mini`); set by the run's model check.
    pub aliases: Vec<(String, String)>,
}

impl RequestSpec {
    /// The slug `model` is sent as: its alias, or itself.
    pub fn slug<'a>(&'a self, model: &'a str) -> &'a str {
        self.aliases
            .iter()
            .find(|(bare, _)| bare == model)
            .map_or(model, |(_, slug)| slug.as_str())
    }
}

/// Concurrency, rate limits, retries and the budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Requests per rolling minute, all models together.
    pub requests_per_minute: Option<u32>,
    /// Estimated tokens per rolling minute.
    pub tokens_per_minute: Option<u64>,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Hard cap on the output dir's total spend, across resumes.
    pub budget_usd: Option<Decimal>,
    /// Re-send after an attempt that may have been billed.
    pub retry_ambiguous: bool,
    /// The largest response body read (bigger: the attempt fails as `invalid_response`).
    pub max_response_bytes: u64,
    /// The longest wait before a retry, whatever the server's `Retry-After` says.
    pub max_retry_wait: Duration,
}

/// A fully resolved job.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job's name (summary, default output dir).
    pub name: String,
    /// The job file, when there is one (for messages).
    pub file: Option<PathBuf>,
    /// The input file.
    pub input: PathBuf,
    /// The id column/field, when named.
    pub id_column: Option<String>,
    /// The CSV delimiter, when given (`--delimiter`); else found from the file.
    pub delimiter: Option<u8>,
    /// results.csv's layout (`--layout`).
    pub layout: crate::output::Layout,
    /// Where results go.
    pub output_dir: PathBuf,
    /// The request shape.
    pub request: RequestSpec,
    /// Limits.
    pub limits: Limits,
    /// Cost source.
    pub cost: CostMode,
    /// Only the first N rows.
    pub limit_rows: Option<u64>,
    /// The API base URL.
    pub base_url: String,
    /// The response cache (`[cache]`).
    pub cache: CacheSpec,
    /// The prompt variants (`[[variants]]`), in file order; empty: none.
    pub variants: Vec<Variant>,
    /// Only this shard's rows (`--shard`; set by [`crate::shard::apply`]).
    pub shard: Option<crate::shard::Shard>,
    /// The evaluation (`[eval]` and `[[checks]]`), when the job has one.
    pub eval: Option<EvalSpec>,
    /// Structured output (`[output]`, `--schema`); `None`: free text.
    pub output: Option<output_schema::OutputSpec>,
    /// `[request] mode` and `[batch]`: the provider's Batch API.
    pub batch: BatchSpec,
}

impl Job {
    /// Resolves a job from an optional job file and overrides (flag > file > default).
    /// `env_base_url` is `OPENROUTER_BASE_URL`.
    pub fn resolve(
        file: Option<&Path>,
        o: Overrides,
        env_base_url: Option<String>,
    ) -> Result<Job, JobError> {
        let (mut jf, base_dir, text) = match file {
            Some(path) => {
                let (jf, text) = read_job_file(path)?;
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                (jf, dir, Some(text))
            }
            None => (JobFile::default(), PathBuf::new(), None),
        };
        let output_file = jf.output.take();
        let input = match (o.input, jf.input) {
            (Some(p), _) => p,
            (None, Some(p)) if p.is_relative() => base_dir.join(p),
            (None, Some(p)) => p,
            (None, None) => {
                return Err(JobError(
                    "no input: give a job file with `input = ...` or --input FILE".into(),
                ));
            }
        };
        let explicit_dir = o.output_dir.or(jf.output_dir);
        // A job read from stdin is named after its output dir ("stdin" without one).
        let from_stdin = input == Path::new("-");
        let name = jf
            .name
            .filter(|n| !n.is_empty())
            .or_else(|| {
                let named = if from_stdin {
                    explicit_dir.as_deref().and_then(Path::file_name)
                } else {
                    input.file_stem()
                };
                named.and_then(|s| s.to_str()).map(str::to_owned)
            })
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| if from_stdin { "stdin" } else { "job" }.to_string());
        let output_dir = explicit_dir.unwrap_or_else(|| {
            let dir = if o.mock {
                format!("{name}-mock")
            } else {
                name.clone()
            };
            Path::new("out").join(dir)
        });
        let mut models = if o.models.is_empty() {
            jf.request.models.unwrap_or_default()
        } else {
            o.models
        };
        if models.is_empty()
            && let Some(m) = jf.request.model
        {
            models.push(m);
        }
        let mut seen = std::collections::HashSet::new();
        models.retain(|m| seen.insert(m.clone()));
        let batch = BatchSpec::resolve(jf.batch, o.mode.or(jf.request.mode))?;
        let mut request = RequestSpec {
            models,
            system: o.system.or(jf.request.system),
            prompt: o.prompt.or(jf.request.prompt),
            max_tokens: o.max_tokens.or(jf.request.max_tokens),
            temperature: o.temperature.or(jf.request.temperature),
            extra: {
                let mut extra = jf.request.extra.unwrap_or_default();
                extra.extend(o.extra);
                extra
            },
            aliases: Vec::new(),
        };
        if request.max_tokens == Some(0) {
            return Err(JobError(
                "max_tokens must be at least 1 (0 would cut every reply before its first token)"
                    .into(),
            ));
        }
        for reserved in variants::RESERVED_EXTRA {
            if request.extra.contains_key(reserved) {
                return Err(JobError(format!(
                    "request.extra.{reserved} (or --param {reserved}=..): set this with its own key or flag, not inside `extra`"
                )));
            }
        }
        let output =
            output_schema::resolve(output_file, o.output, &base_dir, text.as_deref(), &name)?;
        if let Some(spec) = &output {
            output_schema::apply(spec, &mut request)?;
        }
        let timeout_secs = o.timeout_secs.or(jf.limits.timeout_secs).unwrap_or(180.0);
        if !(timeout_secs > 0.0 && timeout_secs.is_finite()) {
            return Err(JobError(format!(
                "timeout must be a positive number of seconds, got {timeout_secs}"
            )));
        }
        let limits = Limits {
            concurrency: o.concurrency.or(jf.limits.concurrency).unwrap_or(16),
            requests_per_minute: o.rpm.or(jf.limits.requests_per_minute),
            tokens_per_minute: o.tpm.or(jf.limits.tokens_per_minute),
            max_retries: o.max_retries.or(jf.limits.max_retries).unwrap_or(6),
            timeout: Duration::from_secs_f64(timeout_secs),
            budget_usd: o.budget_usd.or(jf.limits.budget_usd),
            retry_ambiguous: jf.limits.retry_ambiguous.unwrap_or(true),
            max_response_bytes: jf
                .limits
                .max_response_bytes
                .unwrap_or(crate::transport::DEFAULT_MAX_RESPONSE_BYTES),
            max_retry_wait: {
                let s = jf.limits.max_retry_wait_secs.unwrap_or(300.0);
                if !(s >= 0.0 && s.is_finite()) {
                    return Err(JobError(format!(
                        "max_retry_wait_secs must be a non-negative number of seconds, got {s}"
                    )));
                }
                Duration::from_secs_f64(s.min(86_400.0))
            },
        };
        if limits.max_response_bytes == 0 {
            return Err(JobError("max_response_bytes must be at least 1".into()));
        }
        if limits.concurrency == 0 {
            return Err(JobError("concurrency must be at least 1".into()));
        }
        if limits.requests_per_minute == Some(0) || limits.tokens_per_minute == Some(0) {
            return Err(JobError("requests_per_minute and tokens_per_minute must be at least 1 (leave them unset for no limit)".into()));
        }
        if let Some(b) = limits.budget_usd
            && b < Decimal::ZERO
        {
            return Err(JobError(format!(
                "budget_usd must not be negative, got {b}"
            )));
        }
        let base_url =
            crate::endpoint::base_url(o.base_url, env_base_url).map_err(|e| JobError(e.0))?;
        let eval = eval::resolve(file, &base_dir, jf.eval, jf.checks)?;
        if let Some(spec) = &eval {
            crate::eval::Scorer::compile(spec).map_err(JobError)?;
        }
        Ok(Job {
            name,
            file: file.map(Path::to_path_buf),
            input,
            id_column: o.id_column.or(jf.id_column),
            delimiter: o.delimiter,
            layout: o.layout,
            output_dir,
            request,
            limits,
            cost: jf.cost.source.unwrap_or_default(),
            limit_rows: o.limit,
            base_url,
            cache: CacheSpec {
                enabled: jf.cache.enabled.unwrap_or(true),
                dir: jf.cache.dir.map(|d| match d.is_relative() {
                    true => base_dir.join(d),
                    false => d,
                }),
            },
            variants: variants::resolve(jf.variants),
            shard: None,
            eval,
            output,
            batch,
        })
    }
}

fn read_job_file(path: &Path) -> Result<(JobFile, String), JobError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| JobError(format!("{}: cannot read job file: {e}", path.display())))?;
    Ok((parse_job_file(path, &text)?, text))
}

fn parse_job_file(path: &Path, text: &str) -> Result<JobFile, JobError> {
    if let Some(line) = key_line(text) {
        return Err(JobError(format!(
            "{}:{line}: an API key does not belong in a job file; set OPENROUTER_API_KEY or use --api-key-file",
            path.display()
        )));
    }
    let jf: JobFile = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(0);
        let msg = e.message().trim().to_string();
        JobError(format!("{}:{line}: {msg}", path.display()))
    })?;
    variants::check(path, text, &jf.variants)?;
    Ok(jf)
}

/// The line of a key-looking entry (`api_key = ..`, or a value starting with `sk-or-`).
fn key_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            let key = l.split('=').next().unwrap_or("").trim().trim_matches('"');
            l.contains("sk-or-")
                || matches!(key, "api_key" | "key" | "openrouter_api_key" | "apikey")
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests;
