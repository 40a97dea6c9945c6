use std::collections::HashMap;

use super::engines::detect;
use super::*;

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn limits() -> Limits {
    Limits {
        concurrency: 8,
        requests_per_minute: Some(100),
        tokens_per_minute: Some(7),
        max_retries: 1,
        timeout: std::time::Duration::from_secs(1),
        budget_usd: Some(Decimal::ONE),
        retry_ambiguous: true,
        max_response_bytes: 1,
        max_retry_wait: std::time::Duration::from_secs(1),
    }
}

#[test]
fn parses_k_of_n_and_refuses_the_rest() {
    assert_eq!(Shard::parse("2/7"), Ok(Shard { index: 2, count: 7 }));
    assert_eq!(Shard::parse(" 0 / 1 "), Ok(Shard { index: 0, count: 1 }));
    for bad in ["3/3", "0/0", "1", "a/2", "-1/2", "1/2/3", ""] {
        assert!(Shard::parse(bad).is_err(), "{bad}");
    }
    assert!(Shard::parse("3/3").unwrap_err().contains("0 <= K < N"));
    let s = Shard::new(4, 12).unwrap();
    assert_eq!(s.dir_name(), "shard-4-of-12");
    assert_eq!(Shard::from_dir_name("shard-4-of-12"), Some(s));
    assert_eq!(Shard::from_dir_name("shard-4-of-4"), None);
    assert_eq!(Shard::from_dir_name("results"), None);
}

#[test]
fn the_hash_is_pinned_and_spreads_ids() {
    // Pinned: a change would move rows between the shards of a job already under way.
    let pinned: Vec<u32> = ["1", "2", "3", "row-17", ""]
        .iter()
        .map(|id| Shard::of(id, 7))
        .collect();
    assert_eq!(pinned, PINNED);
    let mut counts = [0u32; 4];
    for i in 0..4000 {
        counts[Shard::of(&i.to_string(), 4) as usize] += 1;
    }
    assert!(
        counts.iter().all(|&c| (900..1100).contains(&c)),
        "{counts:?}"
    );
    assert!((0..100).all(|i| Shard::of(&i.to_string(), 1) == 0));
}

const PINNED: [u32; 5] = [0, 5, 0, 5, 1];

#[test]
fn limits_split_into_parts_that_add_up_to_the_whole() {
    let parts: Vec<Limits> = (0..3)
        .map(|k| {
            let mut l = limits();
            Shard::new(k, 3).unwrap().split_limits(&mut l).unwrap();
            l
        })
        .collect();
    let rpm: Vec<u32> = parts.iter().filter_map(|l| l.requests_per_minute).collect();
    assert_eq!(rpm, [34, 33, 33]);
    let tpm: Vec<u64> = parts.iter().filter_map(|l| l.tokens_per_minute).collect();
    assert_eq!(tpm, [3, 2, 2]);
    let budget: Decimal = parts.iter().filter_map(|l| l.budget_usd).sum();
    assert!(
        budget <= Decimal::ONE && budget > Decimal::new(999_999, 6),
        "{budget}"
    );
    assert_eq!(parts[0].concurrency, 8, "concurrency is per process");
    let mut l = limits();
    let err = Shard::new(7, 8).unwrap().split_limits(&mut l).unwrap_err();
    assert!(
        err.contains("tokens_per_minute = 7 cannot be split over 8 shards"),
        "{err}"
    );
}

#[test]
fn auto_reads_each_engine_and_says_which() {
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("JOB_COMPLETION_INDEX", "2"), ("ORBATCH_SHARDS", "5")],
            "Kubernetes",
        ),
        (
            &[
                ("SLURM_ARRAY_TASK_ID", "12"),
                ("SLURM_ARRAY_TASK_MIN", "10"),
                ("SLURM_ARRAY_TASK_COUNT", "5"),
                ("SLURM_JOB_ID", "99"),
            ],
            "Slurm",
        ),
        (
            &[
                ("AWS_BATCH_JOB_ARRAY_INDEX", "2"),
                ("AWS_BATCH_JOB_ARRAY_SIZE", "5"),
            ],
            "AWS Batch",
        ),
        (
            &[("CLOUD_RUN_TASK_INDEX", "2"), ("CLOUD_RUN_TASK_COUNT", "5")],
            "Cloud Run",
        ),
        (
            // Two engines that agree.
            &[
                ("CLOUD_RUN_TASK_INDEX", "2"),
                ("CLOUD_RUN_TASK_COUNT", "5"),
                ("JOB_COMPLETION_INDEX", "2"),
                ("ORBATCH_SHARDS", "5"),
            ],
            "Kubernetes",
        ),
    ];
    for (vars, engine) in cases {
        let d = detect(env(vars)).unwrap();
        assert_eq!(d.shard, Shard::new(2, 5).unwrap(), "{engine}");
        assert!(d.source.starts_with(engine), "{}", d.source);
    }
}

#[test]
fn auto_refuses_none_half_or_disagreeing_sets() {
    let cases: [(&[(&str, &str)], &str); 7] = [
        (&[], "no shard variables found"),
        (&[("JOB_COMPLETION_INDEX", "1")], "set ORBATCH_SHARDS"),
        (
            &[("CLOUD_RUN_TASK_COUNT", "3")],
            "CLOUD_RUN_TASK_INDEX is not",
        ),
        (
            &[
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
            ],
            "SLURM_ARRAY_TASK_MIN is not",
        ),
        (
            &[
                ("AWS_BATCH_JOB_ARRAY_INDEX", "3"),
                ("AWS_BATCH_JOB_ARRAY_SIZE", "3"),
            ],
            "out of range",
        ),
        (
            &[
                ("AWS_BATCH_JOB_ARRAY_INDEX", "x"),
                ("AWS_BATCH_JOB_ARRAY_SIZE", "3"),
            ],
            "not a non-negative whole number",
        ),
        (
            &[
                ("CLOUD_RUN_TASK_INDEX", "1"),
                ("CLOUD_RUN_TASK_COUNT", "3"),
                ("JOB_COMPLETION_INDEX", "2"),
                ("ORBATCH_SHARDS", "3"),
            ],
            "disagree",
        ),
    ];
    for (vars, want) in cases {
        let err = detect(env(vars)).unwrap_err();
        assert!(err.contains(want), "{vars:?}: {err}");
    }
}

#[test]
fn the_record_drops_only_the_shard_flag() {
    let r = record::ShardRecord {
        version: 1,
        index: 0,
        count: 2,
        job: "j".into(),
        models: vec![],
        cwd: "/".into(),
        argv: [
            "orbatch",
            "run",
            "j.toml",
            "--shard",
            "auto",
            "--rpm",
            "6",
            "--shard=1/2",
        ]
        .map(String::from)
        .to_vec(),
    };
    assert_eq!(r.job_args(), ["run", "j.toml", "--rpm", "6"]);
}
