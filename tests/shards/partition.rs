//! Every row belongs to exactly one shard, the same one from `--shard K/N` and from each
//! engine's variables (`--shard auto`).

use std::collections::BTreeSet;

use super::support::*;
use super::{ids, run_ok, shard_run};

/// (engine, its variables for shard `k` of `n`).
fn engine_vars(engine: &str, k: u32, n: u32) -> Vec<(&'static str, String)> {
    match engine {
        "kubernetes" => vec![
            ("JOB_COMPLETION_INDEX", k.to_string()),
            ("ORBATCH_SHARDS", n.to_string()),
        ],
        // An array that does not start at 0 (--array=4-6).
        "slurm" => vec![
            ("SLURM_ARRAY_TASK_ID", (k + 4).to_string()),
            ("SLURM_ARRAY_TASK_MIN", "4".into()),
            ("SLURM_ARRAY_TASK_COUNT", n.to_string()),
        ],
        "aws" => vec![
            ("AWS_BATCH_JOB_ARRAY_INDEX", k.to_string()),
            ("AWS_BATCH_JOB_ARRAY_SIZE", n.to_string()),
        ],
        _ => vec![
            ("CLOUD_RUN_TASK_INDEX", k.to_string()),
            ("CLOUD_RUN_TASK_COUNT", n.to_string()),
        ],
    }
}

#[test]
fn every_key_is_in_exactly_one_shard_for_1_2_3_and_7_shards_and_auto_agrees() {
    let s = Scratch::with_rows(40);
    let mock = Mock::plain();
    let all: BTreeSet<String> = (1..=40).map(|i| i.to_string()).collect();
    let mut by_flag = Vec::new();
    for n in [1u32, 2, 3, 7] {
        let out = format!("out/n{n}");
        let mut union = BTreeSet::new();
        let mut total = 0;
        for k in 0..n {
            run_ok(
                shard_run(&s, &mock.url(), &out, &["--shard", &format!("{k}/{n}")]),
                0,
            );
            let got = ids(&s.path(&out).join(format!("shard-{k}-of-{n}")));
            total += got.len();
            union.extend(got.iter().cloned());
            if n == 3 {
                by_flag.push(got);
            }
        }
        assert_eq!(union, all, "N = {n}: every id");
        assert_eq!(total, 40, "N = {n}: no id twice");
    }
    assert!(
        by_flag.iter().all(|ids| !ids.is_empty()),
        "40 rows spread over 3 shards"
    );
    for engine in ["kubernetes", "slurm", "aws", "cloudrun"] {
        let out = format!("out/{engine}");
        for k in 0..3u32 {
            let mut cmd = shard_run(&s, &mock.url(), &out, &["--shard", "auto"]);
            cmd.envs(engine_vars(engine, k, 3));
            let o = run_ok(cmd, 0);
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert!(
                stderr.contains(&format!("orbatch: shard {k}/3 (")),
                "{engine}: {stderr}"
            );
            let got = ids(&s.path(&out).join(format!("shard-{k}-of-3")));
            assert_eq!(
                got, by_flag[k as usize],
                "{engine}, shard {k}: the same rows as --shard {k}/3"
            );
        }
    }
    // Each engine's name is in the log line.
    let mut cmd = shard_run(&s, &mock.url(), "out/slurm", &["--shard", "auto"]);
    cmd.envs(engine_vars("slurm", 0, 3));
    let o = run_ok(cmd, 0);
    assert!(String::from_utf8_lossy(&o.stderr).contains(
        "Slurm: SLURM_ARRAY_TASK_ID=4 - SLURM_ARRAY_TASK_MIN=4, SLURM_ARRAY_TASK_COUNT=3"
    ));
}

#[test]
fn auto_without_or_with_inconsistent_variables_is_a_usage_error_sending_nothing() {
    let s = Scratch::with_rows(3);
    let mock = Mock::plain();
    let o = run_ok(shard_run(&s, &mock.url(), "out", &["--shard", "auto"]), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no shard variables found"));
    let mut cmd = shard_run(&s, &mock.url(), "out", &["--shard", "auto"]);
    cmd.env("JOB_COMPLETION_INDEX", "1");
    let o = run_ok(cmd, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("ORBATCH_SHARDS"));
    let o = run_ok(shard_run(&s, &mock.url(), "out", &["--shard", "3/3"]), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("0 <= K < N"));
    assert!(mock.requests().is_empty());
}

#[test]
fn estimate_and_validate_show_a_shards_share() {
    let s = Scratch::with_rows(40);
    let mock = Mock::plain();
    let count = |args: &[&str]| -> u64 {
        let mut cmd = s.std_command();
        cmd.args([
            "validate", "--input", "in.csv", "--model", MODEL, "--prompt", PROMPT, "--json",
        ])
        .args(["--base-url", &mock.url()])
        .args(args);
        let o = run_ok(cmd, 0);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["requests"].as_u64().unwrap()
    };
    let parts: Vec<u64> = (0..3)
        .map(|k| count(&["--shard", &format!("{k}/3")]))
        .collect();
    assert_eq!(parts.iter().sum::<u64>(), 40);
    assert_eq!(count(&[]), 40);
    let mut cmd = s.std_command();
    cmd.args([
        "estimate", "--input", "in.csv", "--model", MODEL, "--prompt", PROMPT, "--json",
    ])
    .args([
        "--max-tokens",
        "8",
        "--base-url",
        &mock.url(),
        "--shard",
        "1/3",
    ]);
    let o = run_ok(cmd, 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["requests"].as_u64(), Some(parts[1]), "{v}");
}
