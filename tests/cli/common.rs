//! The test harness: a temp work dir with fixture files, an in-process mock OpenRouter on its
//! own runtime, and the `orbatch` binary run against it as a separate process.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use orbatch::mock::{self, MockConfig, MockServer, RequestRecord};
use orbatch::output::{ResultLine, Status, Summary};
use rust_decimal::Decimal;

/// The key every test run uses (the mock accepts any `sk-or-v1-mock...` key by default).
pub const KEY: &str = "sk-or-v1-mock-test";
/// Two models of the mock's catalogue, with different providers and prices.
pub const MINI: &str = "openai/gpt-4o-mini";
pub const HAIKU: &str = "anthropic/claude-3.5-haiku";

/// A mock server on a dedicated two-thread runtime, so a test can run the binary
/// synchronously while the mock answers it.
pub struct Mock {
    server: Option<MockServer>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Mock {
    /// Starts a mock with `cfg` on 127.0.0.1 (an ephemeral port).
    pub fn start(cfg: MockConfig) -> Mock {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(MockServer::start(cfg)).unwrap();
        Mock {
            server: Some(server),
            rt: Some(rt),
        }
    }

    /// A mock with the default (fault-free) configuration.
    pub fn plain() -> Mock {
        Mock::start(MockConfig::default())
    }

    fn server(&self) -> &MockServer {
        self.server.as_ref().unwrap()
    }

    /// `http://127.0.0.1:PORT/api/v1`.
    pub fn url(&self) -> String {
        self.server().base_url()
    }

    /// Every chat request so far, sorted by arrival time.
    pub fn requests(&self) -> Vec<RequestRecord> {
        let mut r = self.server().requests();
        r.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        r
    }

    /// The total the mock charged.
    pub fn spent(&self) -> Decimal {
        self.server().spent()
    }

    /// generation id -> the charge the mock billed for it.
    pub fn charges(&self) -> HashMap<String, Decimal> {
        self.requests()
            .into_iter()
            .filter_map(|r| Some((r.generation_id?, r.cost?)))
            .collect()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        drop(self.server.take());
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A temporary working directory (the binary's current directory).
pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::Builder::new()
                .prefix("orbatch-cli-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `name` (relative to the work dir), creating parent directories.
    pub fn create(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Reads a file of the work dir.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// `orbatch ARGS` in the work dir, with the test key, a private price cache, and nothing
    /// inherited that could point it elsewhere.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::from_std(self.std_command(args));
        cmd.timeout(Duration::from_secs(150));
        cmd
    }

    /// [`Workdir::command`] as a plain process, for a test that acts while it runs.
    pub fn std_command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("orbatch"));
        cmd.current_dir(self.dir.path())
            .args(args)
            .env("OPENROUTER_API_KEY", KEY)
            .env("ORBATCH_CACHE_DIR", self.dir.path().join(".cache"))
            .env("NO_COLOR", "1")
            .env_remove("OPENROUTER_BASE_URL")
            .env_remove("OPENROUTER_MANAGEMENT_KEY")
            .env_remove("RUST_LOG");
        cmd
    }

    /// `orbatch run ARGS --base-url MOCK --no-progress`.
    pub fn run(&self, mock: &Mock, args: &[&str]) -> Command {
        let mut cmd = self.command(&["run"]);
        cmd.args(args)
            .args(["--base-url", &mock.url(), "--no-progress"]);
        cmd
    }

    /// `in.csv` of `rows` rows (`rows_csv`), run with `--model MINI --prompt "{{ text }}"` and
    /// `extra`: the plain job most tests vary one flag of.
    pub fn run_rows(&self, mock: &Mock, rows: usize, extra: &[&str]) -> Command {
        self.create("in.csv", &rows_csv(rows));
        let mut args = vec![
            "--input",
            "in.csv",
            "--model",
            MINI,
            "--prompt",
            "{{ text }}",
        ];
        args.extend_from_slice(extra);
        self.run(mock, &args)
    }

    /// The lines of `DIR/results.jsonl`.
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
            .from_path(self.dir.path().join(dir).join("results.csv"))
            .unwrap()
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    }
}

/// The process's stdout and stderr as text.
pub fn out(a: &assert_cmd::assert::Assert) -> (String, String) {
    let o = a.get_output();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Exactly one line per (id, model) in `ids x models`, and nothing else.
pub fn assert_one_line_per_pair(lines: &[ResultLine], ids: &[&str], models: &[&str]) {
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for l in lines {
        *seen.entry((l.id.clone(), l.model.clone())).or_default() += 1;
    }
    let mut want = BTreeMap::new();
    for id in ids {
        for m in models {
            want.insert((id.to_string(), m.to_string()), 1usize);
        }
    }
    assert_eq!(seen, want, "result lines per (id, model)");
}

/// Every ok line's cost is the mock's price x the line's tokens, exactly, and is what the mock
/// billed for that generation.
pub fn assert_costs_are_the_mocks(lines: &[ResultLine], mock: &Mock) {
    let charges = mock.charges();
    for l in lines.iter().filter(|l| l.status == Status::Ok) {
        let price = mock::price(&l.model).unwrap();
        let expected = price.cost(l.prompt_tokens.unwrap(), l.completion_tokens.unwrap());
        assert_eq!(l.cost_usd, Some(expected), "cost of {} x {}", l.id, l.model);
        assert_eq!(l.table_cost_usd, Some(expected), "table cost of {}", l.id);
        assert!(!l.cost_mismatch, "{} x {}", l.id, l.model);
        let gen_id = l.generation_id.as_deref().unwrap();
        assert_eq!(charges.get(gen_id), Some(&expected), "billed for {gen_id}");
    }
}

/// summary.json's totals are the sums of the result lines.
pub fn assert_summary_sums(s: &Summary, lines: &[ResultLine]) {
    let sum = |f: &dyn Fn(&ResultLine) -> u64| lines.iter().map(f).sum::<u64>();
    let total: Decimal = lines.iter().filter_map(|l| l.cost_usd).sum();
    let table: Decimal = lines.iter().filter_map(|l| l.table_cost_usd).sum();
    assert_eq!(s.cost_usd.total, total);
    assert_eq!(s.cost_usd.table_total, table);
    assert_eq!(
        s.rows.ok,
        lines.iter().filter(|l| l.status == Status::Ok).count() as u64
    );
    assert_eq!(
        s.rows.error,
        lines.iter().filter(|l| l.status == Status::Error).count() as u64
    );
    assert_eq!(s.requests.sent, sum(&|l| l.attempts as u64));
    assert_eq!(s.requests.retried, sum(&|l| l.attempts as u64 - 1));
    assert_eq!(
        s.requests.unknown_cost_attempts,
        sum(&|l| l.unknown_cost_attempts as u64)
    );
    assert_eq!(s.tokens.prompt, sum(&|l| l.prompt_tokens.unwrap_or(0)));
    assert_eq!(
        s.tokens.completion,
        sum(&|l| l.completion_tokens.unwrap_or(0))
    );
    let mut by_model: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut by_provider: BTreeMap<String, Decimal> = BTreeMap::new();
    for l in lines {
        let c = l.cost_usd.unwrap_or_default();
        *by_model.entry(l.model.clone()).or_default() += c;
        let p = l.provider.clone().unwrap_or_else(|| "unknown".into());
        *by_provider.entry(p).or_default() += c;
    }
    assert_eq!(s.cost_usd.by_model, by_model);
    assert_eq!(s.cost_usd.by_provider, by_provider);
}

/// The largest number of arrivals in any rolling window of `window_ms` (the mock's rule: an
/// arrival at `t` is in the window of `now` when `now - t < window`).
pub fn max_in_window(at_ms: &[f64], window_ms: f64) -> usize {
    let mut best = 0;
    for (i, &t) in at_ms.iter().enumerate() {
        let n = at_ms[i..]
            .iter()
            .take_while(|&&u| u - t < window_ms)
            .count();
        best = best.max(n);
    }
    best
}

/// `n` rows of `id,text` CSV.
pub fn rows_csv(n: usize) -> String {
    let mut s = String::from("id,text\n");
    for i in 1..=n {
        s.push_str(&format!("{i},review number {i}\n"));
    }
    s
}
