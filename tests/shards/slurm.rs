//! deploy/slurm/submit.sh on a REAL single-node Slurm (Debian's slurmctld, slurmd and munge,
//! started by deploy/slurm/local-cluster.sh): an array of 3 shards against the mock under the
//! job's RPM limit, then the merge job (afterok); the merged results are checked against the
//! mock's log. Without Slurm (or root) the test says it skipped, and fails under CI=true.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use orbatch::mock::MockConfig;

use super::ENGINE_VARS;
use super::support::*;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/slurm")
        .join(name)
}

/// Skips (says so on stderr) unless CI=true, where it fails.
fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the real-Slurm test cannot run under CI=true: {why}");
    }
    eprintln!("SKIPPED submit_sh_runs_three_shards_and_the_merge_on_a_real_slurm: {why}");
}

/// The daemons started for one dir, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script("local-cluster.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

fn start() -> Result<Cluster, String> {
    if Command::new("sbatch").arg("--version").output().is_err() {
        return Err("no sbatch: run deploy/slurm/local-cluster.sh install (as root)".into());
    }
    let dir = tempfile::Builder::new()
        .prefix("orbatch-slurm-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let out = Command::new(script("local-cluster.sh"))
        .arg("start")
        .arg(dir.path())
        .output()
        .map_err(|e| e.to_string())?;
    let cluster = Cluster { dir };
    if !out.status.success() {
        return Err(format!(
            "local-cluster.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(cluster)
}

/// `JobState=...` of a job, `None` once Slurm has forgotten it.
fn state(conf: &Path, id: &str) -> Option<String> {
    let out = Command::new("scontrol")
        .env("SLURM_CONF", conf)
        .args(["show", "job", id])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let at = text.find("JobState=")?;
    Some(text[at + 9..].split_whitespace().next()?.to_string())
}

#[test]
fn submit_sh_runs_three_shards_and_the_merge_on_a_real_slurm() {
    let cluster = match start() {
        Ok(c) => c,
        Err(why) => return skip(&why),
    };
    let s = Scratch::with_rows(30);
    s.create(
        "job.toml",
        &format!(
            "name = \"slurmjob\"\ninput = \"in.csv\"\n[request]\nmodel = \"{MODEL}\"\nprompt = \"{PROMPT}\"\nmax_tokens = 8\n[limits]\nrequests_per_minute = 30\n"
        ),
    );
    let mock = Mock::start(MockConfig {
        rpm_limit: Some(30),
        rpm_window_ms: 3000,
        ..Default::default()
    });
    let mut submit = Command::new(script("submit.sh"));
    for v in ENGINE_VARS {
        submit.env_remove(v);
    }
    let out = submit
        .current_dir(s.root())
        .args(["job.toml", "3", &format!("--chdir={}", s.root().display())])
        .env("SLURM_CONF", cluster.conf())
        .env("ORBATCH", env!("CARGO_BIN_EXE_orbatch"))
        .env("ORBATCH_RUN_ARGS", "--rate-window-secs 3")
        .env("OPENROUTER_API_KEY", KEY)
        .env("OPENROUTER_BASE_URL", mock.url())
        .env("ORBATCH_CACHE_DIR", s.cache())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    expect_code(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let ids: Vec<&str> = stdout.lines().collect();
    assert_eq!(ids.len(), 2, "two job ids, one per line: {stdout}");
    assert!(ids.iter().all(|id| id.parse::<u64>().is_ok()), "{stdout}");

    let t = Instant::now();
    let logs = || {
        let mut text = String::new();
        for e in std::fs::read_dir(s.root()).unwrap().flatten() {
            if e.file_name().to_string_lossy().ends_with(".out") {
                text += &format!(
                    "--- {:?}\n{}",
                    e.file_name(),
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                );
            }
        }
        text
    };
    loop {
        match state(&cluster.conf(), ids[1]).as_deref() {
            Some("COMPLETED") => break,
            Some("PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING") => {}
            other => panic!("merge job {}: {other:?}\n{}", ids[1], logs()),
        }
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "the merge job did not finish\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let dir = s.path("out/slurmjob");
    for k in 0..3 {
        assert!(
            dir.join(format!("shard-{k}-of-3/results.jsonl")).is_file(),
            "{}",
            logs()
        );
    }
    let lines = read_lines(&dir.join("results.jsonl"));
    assert_all_ok_once(&lines, 30, &[MODEL]);
    assert_costs_are_the_mocks(&lines, &mock);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 30, "every key sent once");
    assert_eq!(reqs.iter().filter(|r| r.status == 429).count(), 0);
    let at: Vec<f64> = reqs.iter().map(|r| r.at_ms).collect();
    let busiest = max_in_window(&at, 3000.0);
    assert!(
        busiest <= 30,
        "{busiest} arrivals in one 3 s window, limit 30"
    );
    let summary: orbatch::output::Summary =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert!(summary.complete);
    assert_eq!(summary.cost_usd.total, recorded_spend(&lines));
    assert_eq!(summary.cost_usd.total, mock.spent());
    assert!(dir.join("results.csv").is_file());
}
