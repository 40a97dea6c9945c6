//! `orbatch score`'s work: every check recomputed over the results already in an output dir.
//! The journal is rewritten compacted (the latest line of each key, scored), atomically; no
//! completion is sent.

use std::io::{self, Write};
use std::path::Path;

use super::Scorer;
use crate::output::finalize::RESULTS;
use crate::output::results::for_each_latest;

/// What a re-score did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rescored {
    /// Lines scored and written back.
    pub lines: u64,
    /// Lines skipped because they could not be read.
    pub bad_lines: u64,
}

/// Re-scores every latest line of `dir`'s results.jsonl with `scorer` and replaces the file
/// with the scored lines (temp file + rename: a crash leaves the old file or the new one).
/// `judged` gives the grade of a judge check on a line (`None`: none).
pub fn rescore(
    dir: &Path,
    scorer: &Scorer,
    judged: &dyn Fn(&crate::output::ResultLine, &crate::job::CheckSpec) -> Option<f64>,
) -> io::Result<Rescored> {
    let path = dir.join(RESULTS);
    if !path.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{}: no results to score (run the job first)",
                path.display()
            ),
        ));
    }
    let mut lines = 0u64;
    let mut failure: Option<io::Error> = None;
    let stats = crate::fsutil::replace_file(&path, |w| {
        let stats = for_each_latest(std::slice::from_ref(&path), |mut line| {
            if failure.is_some() {
                return;
            }
            let scored = {
                let l = line.clone();
                move |c: &crate::job::CheckSpec| judged(&l, c)
            };
            scorer.apply(&mut line, &scored);
            let written = serde_json::to_writer(&mut *w, &line)
                .map_err(io::Error::from)
                .and_then(|()| w.write_all(b"\n"));
            match written {
                Ok(()) => lines += 1,
                Err(e) => failure = Some(e),
            }
        })?;
        match failure.take() {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    })?;
    Ok(Rescored {
        lines,
        bad_lines: stats.bad_lines,
    })
}
