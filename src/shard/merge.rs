//! `orbatch merge`: the shards of one job (`run --shard K/N`, each in `shard-K-of-N/`) joined
//! into the job's output dir. It checks that the shards ran the same job (their `shard.json`
//! and manifests: a mismatch names what differs), that no key is in two shards (nor in a shard
//! its id does not hash to), and whether every shard is there and finished; then it writes
//! the latest line of every key into `results.jsonl` and runs the end of a run
//! ([`OutputDir::finalize_job`]): results.csv in input order, summary.json and every other
//! exporter's file, exactly as a single-process run of the job writes them.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::Shard;
use super::record::ShardRecord;
use crate::manifest::{DirLock, MANIFEST, Manifest};
use crate::output::Summary;
use crate::output::finalize::{OutputDir, RESULTS};
use crate::output::results::for_each_latest;
use crate::output::summary::{SummaryMeta, now_rfc3339};
use crate::plan::Plan;

/// Why a merge did not write anything.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The shards are not one job's, overlap, or cannot be read (exit 2).
    #[error("{0}")]
    Refused(String),
    /// Shards are missing or unfinished and `--partial` was not given (exit 3).
    #[error("{0}")]
    Incomplete(String),
}

/// One shard's state, as the merge found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardState {
    /// The shard.
    pub shard: Shard,
    /// Its dir, `None` when it is missing.
    pub dir: Option<PathBuf>,
    /// Its keys with a final line (`ok`, or an error a plain re-run does not send again).
    pub finished: u64,
    /// Its keys in the job.
    pub expected: u64,
    /// Its lock was held: it is still running.
    pub running: bool,
}

impl ShardState {
    /// Present, not running and every key finished.
    pub fn complete(&self) -> bool {
        self.dir.is_some() && !self.running && self.finished >= self.expected
    }
}

/// A merge's result.
#[derive(Debug)]
pub struct Merged {
    /// The merged output dir.
    pub output_dir: PathBuf,
    /// The merged summary (as written to summary.json).
    pub summary: Summary,
    /// Every shard 0..N.
    pub shards: Vec<ShardState>,
}

/// A shard dir with its record and manifest.
struct Found {
    dir: PathBuf,
    record: ShardRecord,
    manifest: Option<Manifest>,
}

/// Merges the shards found in `dirs` (one output dir holding `shard-K-of-N/` dirs, or shard
/// dirs) into `into` (default: the output dir, or the shard dirs' parent).
pub fn merge(dirs: &[PathBuf], into: Option<&Path>, partial: bool) -> Result<Merged, MergeError> {
    let refuse = |m: String| MergeError::Refused(m);
    let (out, shard_dirs) = locate(dirs, into).map_err(refuse)?;
    let found = shard_dirs
        .iter()
        .map(|d| load(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(refuse)?;
    let count = same_job(&found).map_err(refuse)?;
    let job = found[0].record.job(&out).map_err(refuse)?;
    let (scan, _) = crate::runner::scan_job(&job).map_err(|e| refuse(format!("{e}")))?;
    let plan = Plan::new(&job, &scan);
    let expected = super::rows_per_shard(&job, scan.bytes, count).map_err(refuse)?;
    std::fs::create_dir_all(&out).map_err(|e| refuse(format!("{}: {e}", out.display())))?;
    let _lock = DirLock::acquire(&out).map_err(refuse)?;
    let mut states: Vec<ShardState> = (0..count)
        .map(|k| ShardState {
            shard: Shard { index: k, count },
            dir: None,
            finished: 0,
            expected: plan.total(expected[k as usize]),
            running: false,
        })
        .collect();
    let mut locks = Vec::new();
    for f in &found {
        let state = &mut states[f.record.index as usize];
        state.dir = Some(f.dir.clone());
        match DirLock::acquire(&f.dir) {
            Ok(l) => locks.push(l),
            Err(_) => state.running = true,
        }
    }
    let owners = check_keys(&found, &mut states)?;
    let incomplete: Vec<String> = states
        .iter()
        .filter(|s| !s.complete())
        .map(describe)
        .collect();
    if !incomplete.is_empty() && !partial {
        return Err(MergeError::Incomplete(format!(
            "not every shard has finished:\n  {}\nrun (or restart) those shards, or merge what there is with --partial",
            incomplete.join("\n  ")
        )));
    }
    for s in states.iter().filter(|s| s.running) {
        eprintln!(
            "orbatch: warning: shard {} is still running: merging what it has written",
            s.shard
        );
    }
    write_results(&found, &owners, &out)
        .map_err(|e| refuse(format!("writing {}: {e}", out.join(RESULTS).display())))?;
    if let Some(m) = &found[0].manifest {
        // A later single-process run of the job in this dir resumes from the merged results.
        let mut text = serde_json::to_vec_pretty(m).map_err(|e| refuse(e.to_string()))?;
        text.push(b'\n');
        crate::fsutil::write_atomic(&out.join(MANIFEST), &text)
            .map_err(|e| refuse(format!("writing {}: {e}", out.join(MANIFEST).display())))?;
    }
    let meta = SummaryMeta {
        job: job.name.clone(),
        total_pairs: Some(plan.total(scan.rows)),
        stopped_early: !incomplete.is_empty(),
        finished_at: Some(now_rfc3339()),
        models: Some(plan.models().to_vec()),
        ..SummaryMeta::default()
    };
    let summary = match OutputDir::new(&out).finalize_job(&meta, &job, &scan, plan.models(), None) {
        Ok(s) => s,
        Err(crate::output::finalize::FinalizeError::Exporters { summary, failed }) => {
            for f in failed {
                eprintln!("orbatch: error: {f}");
            }
            *summary
        }
        Err(e) => return Err(refuse(e.to_string())),
    };
    drop(locks);
    Ok(Merged {
        output_dir: out,
        summary,
        shards: states,
    })
}

fn describe(s: &ShardState) -> String {
    match (&s.dir, s.running) {
        (None, _) => format!(
            "shard {} is missing (no {} dir)",
            s.shard,
            s.shard.dir_name()
        ),
        (Some(d), true) => format!("shard {} is still running ({})", s.shard, d.display()),
        (Some(d), false) => format!(
            "shard {} finished {} of its {} keys ({})",
            s.shard,
            s.finished,
            s.expected,
            d.display()
        ),
    }
}

/// The merged dir and the shard dirs: `dirs` is one output dir holding `shard-K-of-N/` dirs,
/// or shard dirs (each with a `shard.json`).
fn locate(dirs: &[PathBuf], into: Option<&Path>) -> Result<(PathBuf, Vec<PathBuf>), String> {
    let is_shard = |d: &Path| d.join(super::record::FILE).is_file();
    if let [dir] = dirs
        && !is_shard(dir)
    {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .and_then(Shard::from_dir_name)
                    .is_some()
            })
            .map(|e| e.path())
            .collect();
        found.sort();
        if found.is_empty() {
            return Err(format!(
                "{}: no shard dirs (shard-K-of-N/) in it: give the output dir of a `run --shard` job, or its shard dirs",
                dir.display()
            ));
        }
        return Ok((into.map_or_else(|| dir.clone(), Path::to_path_buf), found));
    }
    for d in dirs {
        if !is_shard(d) {
            return Err(format!(
                "{}: not a shard dir (no {})",
                d.display(),
                super::record::FILE
            ));
        }
    }
    let parent = |d: &PathBuf| d.parent().map(Path::to_path_buf).unwrap_or_default();
    let out = match into {
        Some(p) => p.to_path_buf(),
        None => {
            let first = parent(&dirs[0]);
            if let Some(other) = dirs.iter().find(|d| parent(d) != first) {
                return Err(format!(
                    "{} and {} are in different dirs: say where the merged files go with --output-dir",
                    dirs[0].display(),
                    other.display()
                ));
            }
            first
        }
    };
    Ok((out, dirs.to_vec()))
}

fn load(dir: &Path) -> Result<Found, String> {
    let record = ShardRecord::read(dir)?;
    let shard = record
        .shard()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let named = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(Shard::from_dir_name);
    if named.is_some_and(|n| n != shard) {
        return Err(format!(
            "{}: its shard.json says shard {shard}, its name another",
            dir.display()
        ));
    }
    let path = dir.join(MANIFEST);
    let manifest = match std::fs::read_to_string(&path) {
        Ok(text) => {
            Some(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    Ok(Found {
        dir: dir.to_path_buf(),
        record,
        manifest,
    })
}

/// Checks every shard ran the first one's job; returns the shard count.
fn same_job(found: &[Found]) -> Result<u32, String> {
    let first = &found[0];
    let name = |f: &Found| f.dir.display().to_string();
    let mut seen: HashMap<u32, &Found> = HashMap::new();
    for f in found {
        let r = &f.record;
        let mut diffs = Vec::new();
        if r.count != first.record.count {
            diffs.push(format!(
                "shard count: {} has {}, {} has {}",
                name(first),
                first.record.count,
                name(f),
                r.count
            ));
        }
        if r.job != first.record.job {
            diffs.push(format!("job name: {:?} vs {:?}", first.record.job, r.job));
        }
        if r.models != first.record.models {
            diffs.push(format!(
                "models: {:?} vs {:?}",
                first.record.models, r.models
            ));
        }
        if let (Some(a), Some(b)) = (&first.manifest, &f.manifest) {
            diffs.extend(b.changes_from(a));
        }
        if !diffs.is_empty() {
            return Err(format!(
                "{} is not a shard of the same job as {}:\n  {}",
                name(f),
                name(first),
                diffs.join("\n  ")
            ));
        }
        if let Some(other) = seen.insert(r.index, f) {
            return Err(format!(
                "{} and {} are both shard {}",
                name(other),
                name(f),
                r.index
            ));
        }
    }
    Ok(first.record.count)
}

/// Reads every shard's latest lines: a key in two shards, or in a shard its id does not hash
/// to, is refused. Counts each shard's finished keys; returns each key's shard.
fn check_keys(found: &[Found], states: &mut [ShardState]) -> Result<HashMap<u64, u32>, MergeError> {
    let mut owner: HashMap<u64, u32> = HashMap::new();
    for f in found {
        let path = f.dir.join(RESULTS);
        if !path.is_file() {
            continue;
        }
        let k = f.record.index;
        let count = f.record.count;
        let mut problem: Option<String> = None;
        let mut finished = 0u64;
        for_each_latest(std::slice::from_ref(&path), |line| {
            if problem.is_some() {
                return;
            }
            let key = line.key().hash();
            if let Some(other) = owner.insert(key, k) {
                problem = Some(format!(
                    "id {:?} x {} is in shard {other} and in shard {k} of {count}: shards overlap",
                    line.id, line.model
                ));
            } else if Shard::of(&line.id, count) != k {
                problem = Some(format!(
                    "{}: id {:?} belongs to shard {} of {count}, not {k}: a foreign shard",
                    path.display(),
                    line.id,
                    Shard::of(&line.id, count)
                ));
            }
            let failed_for_good = line.status == crate::output::Status::Error && !line.resumable;
            if line.status == crate::output::Status::Ok || failed_for_good {
                finished += 1;
            }
        })
        .map_err(|e| MergeError::Refused(format!("{}: {e}", path.display())))?;
        if let Some(p) = problem {
            return Err(MergeError::Refused(p));
        }
        states[k as usize].finished = finished;
    }
    Ok(owner)
}

/// Writes the latest line of every key of every shard, shard by shard, into `out`'s
/// results.jsonl (replaced atomically).
fn write_results(found: &[Found], owners: &HashMap<u64, u32>, out: &Path) -> std::io::Result<()> {
    let mut paths: Vec<(u32, PathBuf)> = found
        .iter()
        .map(|f| (f.record.index, f.dir.join(RESULTS)))
        .filter(|(_, p)| p.is_file())
        .collect();
    paths.sort();
    crate::fsutil::replace_file(&out.join(RESULTS), |w| {
        for (k, path) in &paths {
            let mut result = Ok(());
            for_each_latest(std::slice::from_ref(path), |line| {
                let key = line.key().hash();
                if result.is_ok() && owners.get(&key) == Some(k) {
                    result = serde_json::to_writer(&mut *w, &line)
                        .map_err(std::io::Error::other)
                        .and_then(|()| w.write_all(b"\n"));
                }
            })?;
            result?;
        }
        Ok(())
    })
}
