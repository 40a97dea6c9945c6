//! The writer: the only code that touches results.jsonl while a run is going. It appends each
//! line as soon as it arrives (the lines that arrived together in one write, each complete),
//! and feeds the progress counters. It runs as a task on the runtime: a page-cache write is
//! cheaper than waking another thread for every line.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::output::ResultLine;
use crate::output::results::Journal;
use crate::progress::Progress;

/// Lines in flight between the workers and the writer, at most.
pub(crate) const CHANNEL: usize = 1024;
/// Lines written in one `write`, at most.
const BATCH: usize = 64;

/// Starts the writer; it ends when every sender is dropped, after an fsync, and returns the
/// number of lines written.
pub(crate) fn spawn(
    mut journal: Journal,
    mut rx: mpsc::Receiver<ResultLine>,
    progress: Arc<Progress>,
) -> JoinHandle<std::io::Result<u64>> {
    tokio::spawn(async move {
        let mut written = 0u64;
        let mut failure: Option<std::io::Error> = None;
        let mut batch = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut batch, BATCH).await > 0 {
            if failure.is_none() {
                let now = crate::output::summary::now_rfc3339();
                for line in batch.iter_mut() {
                    line.finished_at.get_or_insert_with(|| now.clone());
                }
                match journal.append_all(&batch) {
                    Ok(()) => {
                        written += batch.len() as u64;
                        batch.iter().for_each(|l| progress.record(l));
                    }
                    Err(e) => {
                        tracing::error!("cannot write results.jsonl: {e}");
                        failure = Some(e);
                    }
                }
            }
            batch.clear();
        }
        journal.sync()?;
        match failure {
            Some(e) => Err(e),
            None => Ok(written),
        }
    })
}
