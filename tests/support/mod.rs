//! The one test harness, shared by every integration test binary (`cli`, `reliability`,
//! `estimate`, `output`, `mock_server`): a temp dir with fixture files ([`Scratch`]), the
//! `orbatch` binary run in it with a test environment ([`Scratch::command`], [`Orb`]), the
//! in-process mock OpenRouter ([`mock()`], or [`Mock`] on a runtime of its own for synchronous
//! tests), and the checks many tests make on result lines and `summary.json`. [`Workdir`] is
//! the same directory with readers that take the output dir's name (the CLI tests' view).
//!
//! Every binary includes it as `mod support;` (`#[path = "../support/mod.rs"]` from a folder).
//! Not every binary uses every helper, hence the `dead_code` and `unused_imports` allowance.
#![allow(dead_code, unused_imports)]

pub mod checks;
pub mod mockserver;
pub mod process;
pub mod summary_fields;
pub mod workdir;

pub use checks::*;
pub use mockserver::*;
pub use process::*;
pub use workdir::Workdir;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use orbatch::output::ResultLine;
use rust_decimal::Decimal;
use serde_json::Value;
use tempfile::TempDir;

/// The key every run sends (the mock accepts any key starting `sk-or-v1-mock`).
pub const KEY: &str = "sk-or-v1-mock-test";
/// Two models of the mock's catalogue, with different providers and prices.
pub const MINI: &str = "openai/gpt-4o-mini";

/// The plain job most tests run: `in.csv` with `--model MINI --prompt "{{ text }}"`.
pub const PLAIN: [&str; 6] = [
    "--input",
    "in.csv",
    "--model",
    MINI,
    "--prompt",
    "{{ text }}",
];
pub const HAIKU: &str = "anthropic/claude-3.5-haiku";
/// The default model of [`Orb::run`] (= [`MINI`]).
pub const MODEL: &str = MINI;
/// The default prompt template of [`Orb::run`]: row `i` (text `t{i}`) is sent as `Q: t{i}`.
pub const PROMPT: &str = "Q: {{ text }}";

/// The user text the mock logs for row `id` under [`PROMPT`] and [`csv`].
pub fn user(id: impl std::fmt::Display) -> String {
    format!("Q: t{id}")
}

/// A CSV of `n` rows: `id,text` with ids 1..=n and text `t{id}`.
pub fn csv(n: usize) -> String {
    rows_csv_with(n, |i| format!("t{i}"))
}

/// A CSV of `n` rows: `id,text` with ids 1..=n and text `review number {id}`.
pub fn rows_csv(n: usize) -> String {
    rows_csv_with(n, |i| format!("review number {i}"))
}

fn rows_csv_with(n: usize, text: impl Fn(usize) -> String) -> String {
    let mut s = String::from("id,text\n");
    for i in 1..=n {
        s.push_str(&format!("{i},{}\n", text(i)));
    }
    s
}

/// A decimal from its text (test literals only).
pub fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// A temporary directory that is the binary's current directory: the input files, `out/` (the
/// default output dir of [`Orb::run`]) and `.cache/` (the price cache, `ORBATCH_CACHE_DIR`).
pub struct Scratch {
    pub tmp: TempDir,
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch {
            tmp: tempfile::Builder::new()
                .prefix("orbatch-test-")
                .tempdir()
                .unwrap(),
        }
    }
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch::default()
    }

    /// A scratch dir whose `in.csv` has `rows` rows (see [`csv`]).
    pub fn with_rows(rows: usize) -> Scratch {
        let s = Scratch::new();
        s.write("in.csv", csv(rows).as_bytes());
        s
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// `name`, relative to the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Writes `bytes` to `name`, creating parent directories.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Writes `text` to `name`, creating parent directories.
    pub fn create(&self, name: &str, text: &str) -> PathBuf {
        self.write(name, text.as_bytes())
    }

    /// Reads a file of the directory.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// The price cache given to the binary as `ORBATCH_CACHE_DIR`.
    pub fn cache(&self) -> PathBuf {
        self.path(".cache")
    }

    /// The output dir of [`Orb::run`].
    pub fn out(&self) -> PathBuf {
        self.path("out")
    }

    /// Every complete line of `out/results.jsonl` (none if it does not exist).
    pub fn lines(&self) -> Vec<ResultLine> {
        read_lines(&self.out().join("results.jsonl"))
    }

    /// The raw text of `out/results.jsonl` ("" if it does not exist).
    pub fn journal_text(&self) -> String {
        std::fs::read_to_string(self.out().join("results.jsonl")).unwrap_or_default()
    }

    /// `out/summary.json`.
    pub fn summary(&self) -> Value {
        serde_json::from_str(&self.read("out/summary.json")).unwrap()
    }

    /// `orbatch` in this directory with the test environment: the test key, a private price
    /// cache, no colour, and nothing inherited that could point it elsewhere (`RUST_LOG`,
    /// `OPENROUTER_BASE_URL`, `OPENROUTER_MANAGEMENT_KEY`).
    pub fn std_command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_orbatch"));
        cmd.current_dir(self.root())
            .env("OPENROUTER_API_KEY", KEY)
            .env("ORBATCH_CACHE_DIR", self.cache())
            .env("NO_COLOR", "1")
            .env_remove("OPENROUTER_BASE_URL")
            .env_remove("OPENROUTER_MANAGEMENT_KEY")
            .env_remove("RUST_LOG");
        cmd
    }

    /// [`Scratch::std_command`] with `args`, as an `assert_cmd` command (killed after 150 s).
    pub fn command(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::from_std(self.std_command());
        cmd.args(args).timeout(Duration::from_secs(150));
        cmd
    }
}

/// The complete, valid result lines of a file (a torn or bad line is skipped).
pub fn read_lines(path: &Path) -> Vec<ResultLine> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| serde_json::from_str(l.trim_end()).ok())
        .collect()
}
