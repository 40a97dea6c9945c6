//! Running the `orbatch` binary: [`Orb`] (async, with default run flags, for signals and
//! `kill -9`), and helpers for `assert_cmd` and `std::process::Output` results.

use std::process::{Output, Stdio};
use std::time::Duration;

use orbatch::mock::MockServer;
use tokio::process::Child;

use super::{MODEL, PROMPT, Scratch};

/// A finished `orbatch` process.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Fails, showing stdout and stderr, unless the process exited with `code`.
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

/// The `orbatch` binary as a tokio child of the test environment ([`Scratch::std_command`]),
/// stdin closed, stdout and stderr captured, killed when dropped.
pub struct Orb {
    pub cmd: tokio::process::Command,
    args: Vec<String>,
    /// Flags added at spawn time unless `args` already has them.
    defaults: Vec<(&'static str, String)>,
}

impl Orb {
    pub fn new(s: &Scratch) -> Orb {
        let mut cmd = tokio::process::Command::from(s.std_command());
        cmd.stdin(Stdio::null())
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

    /// [`Orb::run`] against any base URL.
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

/// Runs an `assert_cmd` command off the async runtime (the mock serves meanwhile).
pub async fn output(mut cmd: assert_cmd::Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// Fails with the command's stdout and stderr unless it exited with `code`.
pub fn expect_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The process's stdout and stderr as text.
pub fn out(a: &assert_cmd::assert::Assert) -> (String, String) {
    let o = a.get_output();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
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
