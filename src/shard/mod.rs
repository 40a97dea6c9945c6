//! Shards: one job split over N processes (machines, pods, array tasks). A row belongs to the
//! shard its id hashes to ([`Shard::owns`]: a stable hash, so the partition does not depend on
//! the rows' order); each shard writes its own `<output_dir>/shard-K-of-N/` and takes 1/N of
//! the job's rate limits and budget ([`Shard::split_limits`]); `orbatch merge` joins them.
//!
//! `--shard auto` reads the index and the count from the engine's variables ([`engines`]).

pub mod engines;
pub mod merge;
pub mod record;

use std::fmt;

use rust_decimal::Decimal;

use crate::job::{Job, JobError, Limits};

/// Shard `index` of `count` (0 <= index < count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    /// K, from 0.
    pub index: u32,
    /// N, at least 1.
    pub count: u32,
}

/// `--shard K/N`, `--shard auto` and `--per-shard-limits` (run, estimate, validate).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ShardArgs {
    /// Run only shard K of N (`K/N`, 0 <= K < N: the rows whose id hashes to K), or `auto`:
    /// K and N from Kubernetes, Slurm, AWS Batch or Cloud Run variables. Results go to
    /// <output_dir>/shard-K-of-N/; rpm, tpm and the budget are split N ways.
    #[arg(long, value_name = "K/N|auto")]
    pub shard: Option<String>,
    /// With --shard: each shard keeps the whole requests_per_minute, tokens_per_minute and
    /// budget_usd instead of 1/N of them.
    #[arg(long, requires = "shard")]
    pub per_shard_limits: bool,
}

impl Shard {
    /// A shard, checked: `count` >= 1 and `index` < `count`.
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 {
            return Err("the shard count N must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is out of range for {count} shards (0 <= K < N)"
            ));
        }
        Ok(Shard { index, count })
    }

    /// Parses `K/N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("--shard {text:?}: expected K/N (e.g. 0/4) or auto");
        let (k, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let k = k.trim().parse::<u32>().map_err(|_| bad())?;
        let n = n.trim().parse::<u32>().map_err(|_| bad())?;
        Shard::new(k, n).map_err(|e| format!("--shard {text}: {e}"))
    }

    /// The shard a row id belongs to among `count`: the first 8 bytes (little-endian) of
    /// `blake3(id)`, modulo `count`.
    pub fn of(id: &str, count: u32) -> u32 {
        let digest = blake3::hash(id.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.as_bytes()[..8]);
        (u64::from_le_bytes(first) % u64::from(count.max(1))) as u32
    }

    /// Whether the row `id` belongs to this shard.
    pub fn owns(&self, id: &str) -> bool {
        Shard::of(id, self.count) == self.index
    }

    /// The shard's dir name: `shard-K-of-N`.
    pub fn dir_name(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }

    /// Parses a dir name `shard-K-of-N`.
    pub fn from_dir_name(name: &str) -> Option<Shard> {
        let rest = name.strip_prefix("shard-")?;
        let (k, n) = rest.split_once("-of-")?;
        Shard::new(k.parse().ok()?, n.parse().ok()?).ok()
    }

    /// This shard's part of the job's limits: `requests_per_minute` and `tokens_per_minute`
    /// are split so the N parts add up to the whole (the first `rate % N` shards take one
    /// more), `budget_usd` is divided and rounded down (the parts never add up to more).
    pub fn split_limits(&self, limits: &mut Limits) -> Result<(), String> {
        let n = u64::from(self.count);
        let k = u64::from(self.index);
        let part = |whole: u64, what: &str| -> Result<u64, String> {
            let p = whole / n + u64::from(k < whole % n);
            if p == 0 {
                return Err(format!(
                    "{what} = {whole} cannot be split over {n} shards (shard {k} would get 0): use fewer shards or --per-shard-limits"
                ));
            }
            Ok(p)
        };
        if let Some(rpm) = limits.requests_per_minute {
            let p = part(u64::from(rpm), "requests_per_minute")?;
            limits.requests_per_minute = Some(u32::try_from(p).unwrap_or(rpm));
        }
        if let Some(tpm) = limits.tokens_per_minute {
            limits.tokens_per_minute = Some(part(tpm, "tokens_per_minute")?);
        }
        if let Some(b) = limits.budget_usd {
            limits.budget_usd = Some(
                (b / Decimal::from(self.count))
                    .round_dp_with_strategy(12, rust_decimal::RoundingStrategy::ToZero),
            );
        }
        Ok(())
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Makes `job` the shard's job, as `args` say: `--shard K/N`, or `auto` read from `env` (the
/// log line names the engine and its variables). The output dir becomes
/// `<output_dir>/shard-K-of-N`; the limits are split unless `--per-shard-limits`.
pub fn apply(
    job: &mut Job,
    args: &ShardArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), JobError> {
    let Some(text) = args.shard.as_deref() else {
        return Ok(());
    };
    let shard = if text.trim() == "auto" {
        let found = engines::detect(env).map_err(JobError)?;
        eprintln!("orbatch: shard {} ({})", found.shard, found.source);
        found.shard
    } else {
        Shard::parse(text).map_err(JobError)?
    };
    if !args.per_shard_limits {
        shard.split_limits(&mut job.limits).map_err(JobError)?;
    }
    job.output_dir = job.output_dir.join(shard.dir_name());
    job.shard = Some(shard);
    Ok(())
}

/// How many of the input's rows (its first `bytes`) each of `count` shards owns.
pub fn rows_per_shard(job: &Job, bytes: u64, count: u32) -> Result<Vec<u64>, String> {
    let reader = crate::input::RowReader::open_with(
        &job.input,
        job.id_column.as_deref(),
        job.delimiter,
        bytes,
    )
    .map_err(|e| e.to_string())?;
    let mut counts = vec![0u64; count as usize];
    let limit = job.limit_rows.map_or(usize::MAX, |n| n as usize);
    for row in reader.take(limit).filter_map(Result::ok) {
        counts[Shard::of(&row.id, count) as usize] += 1;
    }
    Ok(counts)
}

/// The results files `paths` name for `orbatch summary`: a file as is; a dir's results.jsonl,
/// or, when it has none, the results.jsonl of each `shard-K-of-N/` dir in it (in shard order).
pub fn results_files(paths: &[std::path::PathBuf]) -> Vec<std::path::PathBuf> {
    let results = crate::output::finalize::RESULTS;
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() || p.join(results).is_file() {
            out.push(if p.is_dir() {
                p.join(results)
            } else {
                p.clone()
            });
            continue;
        }
        let mut shards: Vec<(Shard, std::path::PathBuf)> = std::fs::read_dir(p)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let shard = Shard::from_dir_name(e.file_name().to_str()?)?;
                Some((shard, e.path().join(results)))
            })
            .filter(|(_, f)| f.is_file())
            .collect();
        shards.sort_by_key(|(s, _)| (s.count, s.index));
        if shards.is_empty() {
            out.push(p.join(results));
        }
        out.extend(shards.into_iter().map(|(_, f)| f));
    }
    out
}

#[cfg(test)]
mod tests;
