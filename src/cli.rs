//! The command line (clap derive): every command and flag. `main.rs` parses it; `commands/`
//! carries each command out.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use rust_decimal::Decimal;

use crate::job::Overrides;
use crate::mock::MockConfig;

/// Run large batches of LLM prompts through OpenRouter (or any OpenAI-compatible endpoint),
/// within strict rate limits and a hard budget, and know exactly what they cost.
#[derive(Debug, Parser)]
#[command(name = "orbatch", version, propagate_version = true)]
#[command(
    after_help = "Examples:\n  orbatch run jobs/demo.toml --mock\n  orbatch estimate jobs/demo.toml\n  OPENROUTER_API_KEY=... orbatch run jobs/demo.toml --budget 2"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job: input -> results.jsonl, results.csv, summary.json and a cost table.
    #[command(
        after_help = "Examples:\n  orbatch run jobs/demo.toml --mock\n  orbatch run --input data.csv --model openai/gpt-4o-mini --prompt 'Summarise: {{ text }}' --rpm 600 --budget 5"
    )]
    Run(RunArgs),
    /// Estimate a job's cost and time before running it (optionally from a real pilot).
    #[command(
        after_help = "Examples:\n  orbatch estimate jobs/demo.toml --mock\n  orbatch estimate jobs/demo.toml --pilot 20 --json"
    )]
    Estimate(EstimateArgs),
    /// Parse every row and render every prompt; send nothing.
    #[command(after_help = "Example:\n  orbatch validate jobs/demo.toml")]
    Validate(JobArgs),
    /// Rebuild summary.json and the table from result files (merges shards).
    #[command(
        after_help = "Example:\n  orbatch summary out/demo/results.jsonl shard2/results.jsonl --json"
    )]
    Summary(SummaryArgs),
    /// List models with their prices (GET /models).
    #[command(after_help = "Example:\n  orbatch models gpt-4o")]
    Models(ModelsArgs),
    /// Show the key's usage, limit and remaining credit (GET /key).
    #[command(after_help = "Example:\n  orbatch credits --json")]
    Credits(CreditsArgs),
    /// Serve the built-in mock OpenRouter on loopback, with fault injection.
    #[command(
        after_help = "Example:\n  orbatch mock-server --addr 127.0.0.1:8089 --rpm-limit 60 --error-rate 0.1"
    )]
    MockServer(MockServerArgs),
}

/// Where the API is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Read the API key from this file (instead of OPENROUTER_API_KEY).
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,
    /// Start the built-in mock OpenRouter in-process on 127.0.0.1 and use it (no key needed).
    #[arg(long)]
    pub mock: bool,
}

/// A job file and the overrides shared by run, estimate and validate.
#[derive(Debug, Clone, Args)]
pub struct JobArgs {
    /// The job file (TOML). Optional: a job can be given by flags alone.
    #[arg(value_name = "JOB.toml")]
    pub job: Option<PathBuf>,
    /// Input file (.csv or .jsonl); `-` reads stdin (spooled into the output dir).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Model slug (repeatable: every row x every model).
    #[arg(long = "model", value_name = "M")]
    pub models: Vec<String>,
    /// The user prompt template (minijinja, `{{ column }}`).
    #[arg(long, value_name = "TEMPLATE")]
    pub prompt: Option<String>,
    /// The system prompt.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// max_tokens of every request.
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// Requests per minute, all models together.
    #[arg(long, value_name = "N")]
    pub rpm: Option<u32>,
    /// Estimated tokens per minute.
    #[arg(long, value_name = "N")]
    pub tpm: Option<u64>,
    /// Requests in flight at most.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Retries after the first attempt.
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,
    /// Per-attempt timeout in seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Hard cap on the output dir's total spend in USD, across resumes.
    #[arg(long, value_name = "USD")]
    pub budget: Option<Decimal>,
    /// Only the first N rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// The API base URL (default: OPENROUTER_BASE_URL, else https://openrouter.ai/api/v1).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// The id column/field (default: `id`, else the row number).
    #[arg(long, value_name = "NAME")]
    pub id_column: Option<String>,
    /// Print one JSON document on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub api: ApiArgs,
}

impl JobArgs {
    /// The overrides these flags give.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            input: self.input.clone(),
            output_dir: self.output_dir.clone(),
            models: self.models.clone(),
            prompt: self.prompt.clone(),
            system: self.system.clone(),
            max_tokens: self.max_tokens,
            rpm: self.rpm,
            tpm: self.tpm,
            concurrency: self.concurrency,
            max_retries: self.max_retries,
            timeout_secs: self.timeout,
            budget_usd: self.budget,
            limit: self.limit,
            base_url: self.base_url.clone(),
            id_column: self.id_column.clone(),
        }
    }
}

/// `orbatch run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub job: JobArgs,
    /// Start over: earlier results are kept as results.jsonl.<timestamp>, their spend still
    /// counted against the budget.
    #[arg(long)]
    pub fresh: bool,
    /// With --fresh: stop counting the earlier results' spend against the budget.
    #[arg(long, requires = "fresh")]
    pub forget_spend: bool,
    /// Also re-send the pairs whose latest result is an error.
    #[arg(long)]
    pub retry_failed: bool,
    /// No progress bar (a log line every few seconds instead).
    #[arg(long)]
    pub no_progress: bool,
    /// Go on when the pre-flight check finds the high estimate above the budget or the key's
    /// remaining credit.
    #[arg(long)]
    pub yes: bool,
    /// The rate-limit window in seconds (tests only).
    #[arg(long, hide = true, default_value_t = 60.0)]
    pub rate_window_secs: f64,
    /// Multiplies the generation look-up back-off schedule (about 60 s at 1; tests only).
    #[arg(long, hide = true, default_value_t = 1.0)]
    pub lookup_backoff_scale: f64,
}

/// `orbatch estimate`.
#[derive(Debug, Clone, Args)]
pub struct EstimateArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub job: JobArgs,
    /// Run N sampled rows for real first, and calibrate the estimate on them.
    #[arg(long, value_name = "N")]
    pub pilot: Option<u64>,
    /// Fetch prices now instead of using the cached copy.
    #[arg(long)]
    pub refresh_prices: bool,
    /// Go on with the pilot even when its worst case is above the budget.
    #[arg(long)]
    pub yes: bool,
    /// Seed of the pilot's row sample and of its bootstrap interval.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub seed: u64,
}

/// `orbatch summary`.
#[derive(Debug, Clone, Args)]
pub struct SummaryArgs {
    /// results.jsonl files (shards are merged; a later file wins for the same key).
    #[arg(required = true, value_name = "RESULTS.jsonl")]
    pub files: Vec<PathBuf>,
    /// The job name shown (default: the first file's directory name).
    #[arg(long)]
    pub name: Option<String>,
    /// Also write summary.json here.
    #[arg(long, value_name = "PATH")]
    pub write: Option<PathBuf>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The flags of the commands that only query the API (`models`, `credits`).
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// The API base URL.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub api: ApiArgs,
}

/// `orbatch models`.
#[derive(Debug, Clone, Args)]
pub struct ModelsArgs {
    /// Only models whose slug contains this text.
    pub filter: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub query: QueryArgs,
}

/// `orbatch credits`.
#[derive(Debug, Clone, Args)]
pub struct CreditsArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub query: QueryArgs,
}

/// `orbatch mock-server`.
#[derive(Debug, Clone, Args)]
pub struct MockServerArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: MockConfig,
}
