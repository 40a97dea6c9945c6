//! Shards (`run --shard`, `orbatch merge`) driven through the binary against the in-process
//! mock on 127.0.0.1: the partition, several shard processes under one rate limit, a shard
//! stopped by SIGTERM, merge's refusals, the Kubernetes manifests and a real Slurm.

#[path = "../support/mod.rs"]
mod support;

mod kubernetes;
mod merge;
mod partition;
mod slurm;

use std::collections::BTreeSet;

use support::*;

/// The variables of every engine `--shard auto` reads: removed from each test command, so the
/// machine's own (a test run inside a Slurm job) never pick the shard.
pub const ENGINE_VARS: [&str; 9] = [
    "JOB_COMPLETION_INDEX",
    "ORBATCH_SHARDS",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_COUNT",
    "AWS_BATCH_JOB_ARRAY_INDEX",
    "AWS_BATCH_JOB_ARRAY_SIZE",
    "CLOUD_RUN_TASK_INDEX",
    "CLOUD_RUN_TASK_COUNT",
];

/// `orbatch run` of the test job (`in.csv`, MINI, `Q: {{ text }}`) into `out` against `url`,
/// with `extra` flags; no engine variables inherited.
pub fn shard_run(s: &Scratch, url: &str, out: &str, extra: &[&str]) -> std::process::Command {
    let mut cmd = s.std_command();
    for v in ENGINE_VARS {
        cmd.env_remove(v);
    }
    cmd.args([
        "run",
        "--no-progress",
        "--input",
        "in.csv",
        "--model",
        MODEL,
    ])
    .args(["--prompt", PROMPT, "--max-tokens", "8", "--base-url", url])
    .args(["--output-dir", out])
    .args(extra);
    cmd
}

/// The ids of the latest lines of `dir/results.jsonl`.
pub fn ids(dir: &std::path::Path) -> BTreeSet<String> {
    read_lines(&dir.join("results.jsonl"))
        .into_iter()
        .map(|l| l.id)
        .collect()
}

/// Runs `cmd` to its end and checks its exit code.
pub fn run_ok(mut cmd: std::process::Command, code: i32) -> std::process::Output {
    let out = cmd.output().unwrap();
    expect_code(&out, code);
    out
}
