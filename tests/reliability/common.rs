//! Helpers: a temp dir with an input file, the in-process mock, and the `orbatch` binary run as
//! a child process against it (over 127.0.0.1), with its results read back exactly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

use orbatch::mock::{MockConfig, MockServer};
use orbatch::output::{ResultLine, Status};
use rust_decimal::Decimal;
use serde_json::Value;
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// The key every run sends (the mock accepts any key starting `sk-or-v1-mock`).
pub const KEY: &str = "sk-or-v1-mock-test";
/// The default model of [`Orb::run`].
pub const MODEL: &str = "openai/gpt-4o-mini";
/// The default prompt template: row `i` (text `t{i}`) is sent as `Q: t{i}`.
pub const PROMPT: &str = "Q: {{ text }}";

/// The user text the mock logs for row `id` under [`PROMPT`].
pub fn user(id: impl std::fmt::Display) -> String {
    format!("Q: t{id}")
}

/// A CSV of `n` rows: `id,text` with ids 1..=n and text `t{id}`.
pub fn csv(n: usize) -> String {
    let mut s = String::from("id,text\n");
    for i in 1..=n {
        s.push_str(&format!("{i},t{i}\n"));
    }
    s
}

pub fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// A scratch dir: `in.csv`, `out/` (the output dir), `cache/` (ORBATCH_CACHE_DIR).
pub struct Scratch {
    pub tmp: TempDir,
}

impl Scratch {
    /// A scratch dir whose `in.csv` has `rows` rows (see [`csv`]).
    pub fn with_rows(rows: usize) -> Scratch {
        let s = Scratch::new();
        s.write("in.csv", csv(rows).as_bytes());
        s
    }

    pub fn new() -> Scratch {
        Scratch {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// The output dir.
    pub fn out(&self) -> PathBuf {
        self.path("out")
    }

    /// Every line of `out/results.jsonl` (none if it does not exist).
    pub fn lines(&self) -> Vec<ResultLine> {
        read_lines(&self.out().join("results.jsonl"))
    }

    /// The raw text of `out/results.jsonl` ("" if it does not exist).
    pub fn journal_text(&self) -> String {
        std::fs::read_to_string(self.out().join("results.jsonl")).unwrap_or_default()
    }

    /// `out/summary.json`.
    pub fn summary(&self) -> Value {
        let text = std::fs::read_to_string(self.out().join("summary.json")).unwrap();
        serde_json::from_str(&text).unwrap()
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

/// Latest line per (id, model).
pub fn latest(lines: &[ResultLine]) -> BTreeMap<(String, String), ResultLine> {
    let mut m = BTreeMap::new();
    for l in lines {
        m.insert((l.id.clone(), l.model.clone()), l.clone());
    }
    m
}

/// Asserts the journal holds exactly one line per key (compacted), each `ok`, for ids 1..=n.
pub fn assert_all_ok_once(lines: &[ResultLine], n: usize, models: &[&str]) {
    let mut keys: Vec<(String, String)> = lines
        .iter()
        .map(|l| (l.id.clone(), l.model.clone()))
        .collect();
    keys.sort();
    let mut want: Vec<(String, String)> = (1..=n)
        .flat_map(|i| models.iter().map(move |m| (i.to_string(), m.to_string())))
        .collect();
    want.sort();
    assert_eq!(keys, want, "one line per (id, model)");
    for l in lines {
        assert_eq!(l.status, Status::Ok, "{l:?}");
    }
}

/// The sum of `cost_usd` over the latest line of every key: the output dir's recorded spend.
pub fn recorded_spend(lines: &[ResultLine]) -> Decimal {
    latest(lines)
        .values()
        .map(|l| l.cost_usd.unwrap_or_default())
        .sum()
}

pub async fn mock(cfg: MockConfig) -> MockServer {
    MockServer::start(cfg).await.unwrap()
}

/// The user texts of the mock's requests from index `from` on.
pub fn users_since(srv: &MockServer, from: usize) -> Vec<String> {
    srv.requests()[from..]
        .iter()
        .map(|r| r.user.clone())
        .collect()
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A finished `orbatch` process.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// The `orbatch` binary with a test environment: cwd = the scratch dir, the mock key, a private
/// cache dir, no RUST_LOG or OPENROUTER_* from the outside.
pub struct Orb {
    pub cmd: Command,
    args: Vec<String>,
    /// Flags added at spawn time unless `args` already has them.
    defaults: Vec<(&'static str, String)>,
}

impl Orb {
    pub fn new(s: &Scratch) -> Orb {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_orbatch"));
        cmd.current_dir(s.tmp.path())
            .env_remove("RUST_LOG")
            .env_remove("OPENROUTER_BASE_URL")
            .env_remove("OPENROUTER_MANAGEMENT_KEY")
            .env("OPENROUTER_API_KEY", KEY)
            .env("ORBATCH_CACHE_DIR", s.path("cache"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Orb {
            cmd,
            args: Vec::new(),
            defaults: Vec::new(),
        }
    }

    /// `orbatch run` with, unless given: `--input in.csv --output-dir out --model MODEL
    /// --prompt PROMPT --max-tokens 8 --base-url URL`, and always `--no-progress`.
    pub fn run(s: &Scratch, srv: &MockServer) -> Orb {
        Orb::run_at(s, &srv.base_url())
    }

    /// `orbatch run job.toml --base-url URL --no-progress`: the job file alone says the rest.
    pub fn run_job(s: &Scratch, srv: &MockServer) -> Orb {
        Orb::new(s).args([
            "run",
            "job.toml",
            "--base-url",
            &srv.base_url(),
            "--no-progress",
        ])
    }

    pub fn run_at(s: &Scratch, base_url: &str) -> Orb {
        let mut o = Orb::new(s).args(["run", "--no-progress"]);
        o.defaults = vec![
            ("--input", "in.csv".into()),
            ("--output-dir", "out".into()),
            ("--model", MODEL.into()),
            ("--prompt", PROMPT.into()),
            ("--max-tokens", "8".into()),
            ("--base-url", base_url.into()),
        ];
        o
    }

    pub fn args<I, S>(mut self, args: I) -> Orb
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Orb {
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(mut self, k: &str) -> Orb {
        self.cmd.env_remove(k);
        self
    }

    /// Runs to the end (at most 90 s).
    pub async fn output(self) -> Out {
        let child = self.spawn();
        wait(child, Duration::from_secs(90)).await
    }

    pub fn spawn(mut self) -> Child {
        let mut args = self.args.clone();
        for (flag, value) in &self.defaults {
            if !self.args.iter().any(|a| a == flag) {
                args.push(flag.to_string());
                args.push(value.clone());
            }
        }
        self.cmd.args(args);
        self.cmd.spawn().unwrap()
    }
}

/// Waits for a child started by [`Orb::spawn`] (killing it after `limit`).
pub async fn wait(child: Child, limit: Duration) -> Out {
    let id = child.id();
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(out) => {
            let out = out.unwrap();
            Out {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
        Err(_) => {
            if let Some(pid) = id {
                signal(pid, "KILL");
            }
            panic!("orbatch did not finish within {limit:?}");
        }
    }
}

/// `kill -SIG pid`.
pub fn signal(pid: u32, sig: &str) {
    let st = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} {pid}");
}

/// Polls until the mock has logged at least `n` requests (at most `limit`).
pub async fn until_requests(srv: &MockServer, n: usize, limit: Duration) {
    let t = std::time::Instant::now();
    while srv.requests().len() < n {
        assert!(t.elapsed() < limit, "the mock saw fewer than {n} requests");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads the child's stderr until a line contains `needle` (at most `limit`); returns the
/// stderr reader, to be read to its end with [`rest_of`] once the child has exited.
pub async fn until_stderr(
    child: &mut Child,
    needle: &str,
    limit: Duration,
) -> tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>> {
    use tokio::io::AsyncBufReadExt;
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let found = tokio::time::timeout(limit, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(needle) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "stderr never said {needle:?}");
    lines
}

/// The rest of a stderr taken by [`until_stderr`].
pub async fn rest_of(
    mut lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
) -> String {
    let mut s = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        s.push_str(&line);
        s.push('\n');
    }
    s
}
