//! [`Workdir`]: a [`Scratch`] seen the way the CLI tests use it, with readers that take the
//! output dir's name and `orbatch run` against a synchronous [`Mock`].

use std::ops::Deref;
use std::path::Path;

use assert_cmd::Command;
use orbatch::output::{ResultLine, Summary};

use super::{Mock, PLAIN, Scratch, rows_csv};

/// A [`Scratch`] (every method of which it has, through `Deref`) whose `path()` is the directory
/// itself and whose readers take the output dir's name.
#[derive(Default)]
pub struct Workdir(Scratch);

impl Deref for Workdir {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.0
    }
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir::default()
    }

    /// The directory itself (the binary's current directory).
    pub fn path(&self) -> &Path {
        self.0.root()
    }

    /// `orbatch run ARGS --base-url MOCK --no-progress`.
    pub fn run(&self, mock: &Mock, args: &[&str]) -> Command {
        let mut cmd = self.command(&["run"]);
        cmd.args(args)
            .args(["--base-url", &mock.url(), "--no-progress"]);
        cmd
    }

    /// `in.csv` of `rows` rows ([`rows_csv`]), run with `--model MINI --prompt "{{ text }}"` and
    /// `extra`: the plain job most tests vary one flag of.
    pub fn run_rows(&self, mock: &Mock, rows: usize, extra: &[&str]) -> Command {
        self.create("in.csv", &rows_csv(rows));
        let args = [&PLAIN[..], extra].concat();
        self.run(mock, &args)
    }

    /// The lines of `DIR/results.jsonl` (every line must parse).
    pub fn results(&self, dir: &str) -> Vec<ResultLine> {
        self.read(&format!("{dir}/results.jsonl"))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// `DIR/summary.json`.
    pub fn summary(&self, dir: &str) -> Summary {
        serde_json::from_str(&self.read(&format!("{dir}/summary.json"))).unwrap()
    }

    /// `DIR/results.csv` as records (header first).
    pub fn csv(&self, dir: &str) -> Vec<Vec<String>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(self.0.path(dir).join("results.csv"))
            .unwrap()
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    }
}
