//! The command line (clap derive): every command and flag. `main.rs` parses it; `commands/`
//! carries each command out.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use rust_decimal::Decimal;

use crate::job::Overrides;
use crate::mock::MockConfig;
pub use crate::output::Layout;

/// Run large batches of LLM prompts through OpenRouter (or any OpenAI-compatible endpoint),
/// within strict rate limits and a hard budget, and know exactly what they cost.
#[derive(Debug, Parser)]
#[command(name = "orbatch", version = crate::VERSION, propagate_version = true)]
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
    /// Merge the shards of a job (`run --shard`) into its output dir: results.jsonl,
    /// results.csv, summary.json and every other end-of-run file.
    #[command(
        after_help = "Examples:\n  orbatch merge out/big-job\n  orbatch merge out/big-job/shard-0-of-2 out/big-job/shard-1-of-2 --partial"
    )]
    Merge(MergeArgs),
    /// Re-run the job's checks over the results in its output dir (no completion is sent);
    /// rewrite results.jsonl, results.csv and summary.json.
    #[command(
        after_help = "Examples:\n  orbatch score jobs/eval-demo.toml --mock\n  orbatch score jobs/eval-demo.toml --output-dir out/eval --json"
    )]
    Score(ScoreArgs),
    /// Write report.html: one self-contained page (charts, leaderboard, rows) about an output dir.
    #[command(
        after_help = "Examples:\n  orbatch report out/demo-mock\n  orbatch report out/demo --output /tmp/demo.html"
    )]
    Report(ReportArgs),
    /// List models with their prices (GET /models).
    #[command(after_help = "Example:\n  orbatch models gpt-4o")]
    Models(ModelsArgs),
    /// Show the key's usage, limit and remaining credit (GET /key).
    #[command(after_help = "Example:\n  orbatch credits --json")]
    Credits(CreditsArgs),
    /// The response cache: what it holds, and emptying it (all, or entries older than N days).
    #[command(
        after_help = "Examples:\n  orbatch cache stats\n  orbatch cache prune --older-than 30\n  orbatch cache clear --cache-dir /tmp/orbatch-cache"
    )]
    Cache(CacheArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(
        after_help = "Example:\n  orbatch completions bash > ~/.local/share/bash-completion/completions/orbatch"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    #[command(after_help = "Example:\n  orbatch man > ~/.local/share/man/man1/orbatch.1")]
    Man,
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
    /// Input file (.csv, .tsv or .jsonl, optionally .gz); `-` reads stdin (spooled into the
    /// output dir).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Output directory [default: out/<job name>].
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
    /// max_tokens of every request [default: none: the model's own limit].
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// Only the first N rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// The API base URL [default: OPENROUTER_BASE_URL, else https://openrouter.ai/api/v1].
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// The id column/field [default: `id`, else the row number].
    #[arg(long, value_name = "NAME")]
    pub id_column: Option<String>,
    /// The CSV field delimiter: one character, or `tab` [default: from the header line: `,`,
    /// `;` or a tab; a tab for .tsv].
    #[arg(long, value_name = "CHAR", value_parser = crate::input::parse_delimiter)]
    pub delimiter: Option<u8>,
    /// Print one JSON document on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Send to models the endpoint's /models does not list (for endpoints whose list is
    /// incomplete); by default an unknown model is refused before anything is sent.
    #[arg(long)]
    pub allow_unknown_models: bool,
    /// Structured output: a JSON Schema file every reply must validate against (as
    /// `[output] schema`; relative to the current directory).
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// Re-asks after a reply that does not validate against the schema [default: 2].
    #[arg(long, value_name = "N")]
    pub schema_retries: Option<u32>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub api: ApiArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub shard: crate::shard::ShardArgs,
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
            limit: self.limit,
            base_url: self.base_url.clone(),
            id_column: self.id_column.clone(),
            mock: self.api.mock,
            delimiter: self.delimiter,
            output: crate::job::output_schema::OutputOverrides {
                schema: self.schema.clone(),
                schema_retries: self.schema_retries,
            },
            ..Overrides::default()
        }
    }
}

/// The flags of the commands that send (or estimate sending): limits, the budget and the
/// request's sampling parameters. `validate` has none of them.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Requests per minute, all models together [default: no limit].
    #[arg(long, value_name = "N")]
    pub rpm: Option<u32>,
    /// Estimated tokens per minute [default: no limit].
    #[arg(long, value_name = "N")]
    pub tpm: Option<u64>,
    /// Requests in flight at most [default: 16].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Retries after the first attempt [default: 6].
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,
    /// Per-attempt timeout in seconds [default: 180].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Hard cap on the output dir's total spend in USD, across resumes [default: none].
    #[arg(long, value_name = "USD")]
    pub budget: Option<Decimal>,
    /// `temperature` of every request [default: the model's].
    #[arg(long, value_name = "T")]
    pub temperature: Option<f64>,
    /// `top_p` of every request [default: the model's].
    #[arg(long, value_name = "P")]
    pub top_p: Option<f64>,
    /// `seed` of every request (for providers that support reproducible sampling).
    #[arg(long, value_name = "N")]
    pub seed: Option<i64>,
    /// Any other request body field, as KEY=JSON (repeatable): `--param top_k=40`,
    /// `--param 'stop=["\n"]'`, `--param 'user="me"'`.
    #[arg(long = "param", value_name = "KEY=JSON", value_parser = parse_param)]
    pub params: Vec<(String, serde_json::Value)>,
}

impl SendArgs {
    /// Adds these flags to `o`.
    pub fn apply(&self, o: &mut Overrides) {
        o.rpm = self.rpm;
        o.tpm = self.tpm;
        o.concurrency = self.concurrency;
        o.max_retries = self.max_retries;
        o.timeout_secs = self.timeout;
        o.budget_usd = self.budget;
        o.temperature = self.temperature;
        o.extra.extend(self.params.iter().cloned());
        if let Some(p) = self.top_p {
            o.extra.insert("top_p".into(), serde_json::json!(p));
        }
        if let Some(seed) = self.seed {
            o.extra.insert("seed".into(), serde_json::json!(seed));
        }
    }
}

/// Parses `--param KEY=JSON`.
pub fn parse_param(text: &str) -> Result<(String, serde_json::Value), String> {
    let Some((key, json)) = text.split_once('=') else {
        return Err("expected KEY=JSON, e.g. top_k=40 or 'user=\"me\"'".into());
    };
    let key = key.trim();
    if key.is_empty() {
        return Err("the KEY of KEY=JSON is empty".into());
    }
    let value = serde_json::from_str(json).map_err(|e| {
        format!("the value of {key} is not JSON ({e}); a string needs quotes: {key}='\"{json}\"'")
    })?;
    Ok((key.to_owned(), value))
}

/// `orbatch run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub job: JobArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub send: SendArgs,
    /// results.csv's shape: `long` (a row per input row and model) or `wide` (a row per input
    /// row, columns per model).
    #[arg(long, value_enum, default_value_t = Layout::Long)]
    pub layout: Layout,
    /// Also write report.html in the output dir at the end of the run.
    #[arg(long)]
    pub report: bool,
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
    /// `live` (one request at a time) or `batch` (the provider's Batch API: about half the
    /// price, minutes to hours) [default: `[request] mode`, else live].
    #[arg(long, value_enum)]
    pub mode: Option<crate::job::Mode>,
    /// No progress bar (a log line every few seconds instead).
    #[arg(long)]
    pub no_progress: bool,
    /// Go on when the pre-flight check finds the high estimate above the budget or the key's
    /// remaining credit.
    #[arg(long)]
    pub yes: bool,
    /// Neither look answers up in the response cache nor store them (`[cache] enabled`).
    #[arg(long)]
    pub no_cache: bool,
    /// The response cache dir (`[cache] dir`; default $XDG_CACHE_HOME/orbatch, else
    /// ~/.cache/orbatch).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The rate-limit window in seconds (tests only).
    #[arg(long, hide = true, default_value_t = 60.0)]
    pub rate_window_secs: f64,
    /// Multiplies the generation look-up back-off schedule (about 60 s at 1; tests only).
    #[arg(long, hide = true, default_value_t = 1.0)]
    pub lookup_backoff_scale: f64,
}

impl RunArgs {
    /// The overrides `run` resolves its job with (`orbatch merge` rebuilds a shard's job so).
    pub fn overrides(&self) -> Overrides {
        let mut o = self.job.overrides();
        self.send.apply(&mut o);
        o.layout = self.layout;
        o.mode = self.mode;
        o
    }
}

/// `orbatch score`.
#[derive(Debug, Clone, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Also write report.html in the output dir after scoring.
    #[arg(long)]
    pub report: bool,
    /// Hard cap on the output dir's total spend in USD, what it already spent included: the
    /// judge calls `score` sends are reserved against it [default: the job's budget_usd].
    #[arg(long, value_name = "USD")]
    pub budget: Option<Decimal>,
    /// Judge requests per minute [default: the job's].
    #[arg(long, value_name = "N")]
    pub rpm: Option<u32>,
    /// Judge requests in flight at most [default: the job's].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// The rate-limit window in seconds (tests only).
    #[arg(long, hide = true, default_value_t = 60.0)]
    pub rate_window_secs: f64,
}

impl ScoreArgs {
    /// Adds the judge calls' limits to `o`.
    pub fn apply(&self, o: &mut Overrides) {
        o.budget_usd = self.budget;
        o.rpm = self.rpm;
        o.concurrency = self.concurrency;
    }
}

/// `orbatch merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// The job's output dir (holding shard-K-of-N/ dirs), or the shard dirs themselves.
    #[arg(required = true, value_name = "OUTPUT_DIR|SHARD_DIR")]
    pub dirs: Vec<PathBuf>,
    /// Merge what is there when shards are missing or unfinished (summary.json says
    /// complete: false) instead of exiting 3.
    #[arg(long)]
    pub partial: bool,
    /// Where the merged files go [default: OUTPUT_DIR, or the shard dirs' parent].
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Print summary.json instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `orbatch estimate`.
#[derive(Debug, Clone, Args)]
pub struct EstimateArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub job: JobArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub send: SendArgs,
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
    pub pilot_seed: u64,
}

/// `orbatch summary`.
#[derive(Debug, Clone, Args)]
pub struct SummaryArgs {
    /// results.jsonl files (shards are merged; a later file wins for the same key), or
    /// output dirs (their results.jsonl, or that of each shard-K-of-N/ dir in them).
    #[arg(required = true, value_name = "RESULTS.jsonl|DIR")]
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

/// `orbatch report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The output dir [default: the current dir].
    #[arg(value_name = "OUTPUT_DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Write the page here [default: OUTPUT_DIR/report.html].
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
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

/// `orbatch cache`.
#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: CacheAction,
    /// The cache dir (default $XDG_CACHE_HOME/orbatch, else ~/.cache/orbatch).
    #[arg(long, value_name = "DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What `orbatch cache` does.
#[derive(Debug, Clone, Subcommand)]
pub enum CacheAction {
    /// Entries, what they cost when paid, size on disk, oldest and newest.
    Stats,
    /// Delete every entry.
    Clear,
    /// Delete the entries stored more than DAYS days ago.
    Prune {
        /// Age in days (fractions allowed).
        #[arg(long, value_name = "DAYS")]
        older_than: f64,
    },
}

/// `orbatch mock-server`.
#[derive(Debug, Clone, Args)]
pub struct MockServerArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: MockConfig,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_are_key_equals_json() {
        assert_eq!(parse_param("top_k=40"), Ok(("top_k".into(), json!(40))));
        assert_eq!(
            parse_param("stop=[\"a=b\"]"),
            Ok(("stop".into(), json!(["a=b"])))
        );
        assert!(
            parse_param("user=me")
                .unwrap_err()
                .contains("user='\"me\"'")
        );
        assert!(parse_param("=1").is_err());
        assert!(parse_param("novalue").is_err());
    }

    #[test]
    fn delimiters() {
        use crate::input::parse_delimiter;
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert_eq!(parse_delimiter("tab"), Ok(b'\t'));
        assert_eq!(parse_delimiter("\\t"), Ok(b'\t'));
        assert!(parse_delimiter("\"").is_err());
        assert!(parse_delimiter(";;").is_err());
        assert!(parse_delimiter("é").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
