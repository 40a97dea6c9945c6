//! `shard.json`: what a shard ran, written into its dir before its first request, so that
//! `orbatch merge` can check the shards ran the same job and rebuild that job (its input, its
//! models, its exporters' settings) by parsing the same command line in the same directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Shard;

/// The file name, in each shard dir.
pub const FILE: &str = "shard.json";

/// What a shard ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// Format version.
    pub version: u32,
    /// K.
    pub index: u32,
    /// N.
    pub count: u32,
    /// The job's name.
    pub job: String,
    /// The job's models, as given (before the `/models` check).
    pub models: Vec<String>,
    /// The directory the shard ran in (relative paths of `argv` are relative to it).
    pub cwd: PathBuf,
    /// The command line (`orbatch run ...`), the program name first.
    pub argv: Vec<String>,
}

impl ShardRecord {
    /// The record of `job`'s shard, run as `argv` in the current directory.
    pub fn new(job: &crate::job::Job, shard: Shard, argv: Vec<String>) -> ShardRecord {
        ShardRecord {
            version: 1,
            index: shard.index,
            count: shard.count,
            job: job.name.clone(),
            models: job.request.models.clone(),
            cwd: std::env::current_dir().unwrap_or_default(),
            argv,
        }
    }

    /// The shard it names.
    pub fn shard(&self) -> Result<Shard, String> {
        Shard::new(self.index, self.count)
    }

    /// The command line without the program name and without its `--shard` (`--shard X` or
    /// `--shard=X`): what must be the same in every shard of one job.
    pub fn job_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut args = self.argv.iter().skip(1);
        while let Some(a) = args.next() {
            if a == "--shard" {
                args.next();
            } else if !a.starts_with("--shard=") {
                out.push(a.clone());
            }
        }
        out
    }

    /// Writes it into `dir` (created if needed), replacing an older one.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        text.push(b'\n');
        crate::fsutil::write_atomic(&dir.join(FILE), &text)
    }

    /// Reads `dir`'s record.
    pub fn read(dir: &Path) -> Result<ShardRecord, String> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The job the shard ran, rebuilt from a shard's command line in its directory, writing to
    /// `out` and limited to no shard.
    pub fn job(&self, out: &Path) -> Result<crate::job::Job, String> {
        let record = self;
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(&record.argv).map_err(|e| {
            format!(
                "cannot read the shard's command line {:?}: {e}",
                record.argv
            )
        })?;
        let crate::cli::Command::Run(args) = cli.command else {
            return Err(format!(
                "the shard's command line is not `orbatch run`: {:?}",
                record.argv
            ));
        };
        let mut o = args.overrides();
        let at = |p: PathBuf| {
            if p.is_relative() && p != Path::new("-") {
                record.cwd.join(p)
            } else {
                p
            }
        };
        o.input = o.input.map(at);
        let file = args.job.job.clone().map(at);
        let mut job = crate::job::Job::resolve(file.as_deref(), o, None).map_err(|e| e.0)?;
        job.input = at(job.input);
        if job.input == Path::new("-") {
            return Err("the shards read stdin: merge needs an input file".into());
        }
        job.output_dir = out.to_path_buf();
        job.shard = None;
        Ok(job)
    }
}
