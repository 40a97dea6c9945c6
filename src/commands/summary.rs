//! `orbatch summary`: rebuild summary.json and the table from result files (shards merge).
//! Exit 0, 1 when some rows failed, 2 on a missing or unreadable file.

use std::path::PathBuf;

use super::error::CommandError;
use super::exit::{Exit, Outcome};
use super::print::{print_json, print_stdout};
use crate::cli::SummaryArgs;
use crate::output::summary::{SummaryMeta, summarize, write_summary_json};

pub(super) fn summary(mut a: SummaryArgs) -> Result<Exit, CommandError> {
    a.files = crate::shard::results_files(&a.files);
    for f in &a.files {
        if !f.is_file() {
            return Err(anyhow::anyhow!("{}: no such results file", f.display()).into());
        }
        if let Some(why) = crate::output::results::not_a_results_file(f)? {
            return Err(anyhow::anyhow!(
                "{}: not a results file: {why} (give the results.jsonl of an output dir)",
                f.display()
            )
            .into());
        }
    }
    let name = a.name.clone().unwrap_or_else(|| {
        a.files[0]
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or("results")
            .to_string()
    });
    let meta = SummaryMeta {
        job: name,
        ..Default::default()
    };
    let files: Vec<PathBuf> = a.files.clone();
    let s = summarize(&files, &meta)?;
    if let Some(path) = &a.write {
        write_summary_json(&s, path)?;
    }
    if a.json {
        print_json(&s)?;
    } else {
        print_stdout(&crate::output::table::render_table(&s));
    }
    Ok(Outcome {
        rows_failed: s.rows.error > 0,
        ..Outcome::default()
    }
    .exit())
}
