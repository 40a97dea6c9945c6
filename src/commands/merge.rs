//! `orbatch merge`: the shards of a job joined into its output dir (`shard::merge`). Exit 0,
//! 1 when some rows failed, 2 when the shards are not one job's or overlap, 3 when shards are
//! missing or unfinished (unless `--partial`).

use super::error::CommandError;
use super::exit::{Exit, Outcome};
use super::print::{print_json, print_stdout};
use crate::cli::MergeArgs;
use crate::shard::merge::{MergeError, merge as merge_shards};

pub(super) fn merge(a: MergeArgs) -> Result<Exit, CommandError> {
    let merged = match merge_shards(&a.dirs, a.output_dir.as_deref(), a.partial) {
        Ok(m) => m,
        Err(MergeError::Refused(msg)) => return Err(CommandError::Usage(anyhow::anyhow!(msg))),
        Err(MergeError::Incomplete(msg)) => {
            eprintln!("error: {msg}");
            return Ok(Exit::Stopped);
        }
    };
    let done = merged.shards.iter().filter(|s| s.complete()).count();
    eprintln!(
        "orbatch: merged {done} of {} shards into {}{}",
        merged.shards.len(),
        merged.output_dir.display(),
        if done < merged.shards.len() {
            " (--partial: summary.json says complete: false)"
        } else {
            ""
        }
    );
    if a.json {
        print_json(&merged.summary)?;
    } else {
        print_stdout(&crate::output::table::render_table(&merged.summary));
    }
    Ok(Outcome {
        rows_failed: merged.summary.rows.error > 0,
        ..Outcome::default()
    }
    .exit())
}
