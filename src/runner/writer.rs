//! The writer: the only code that touches results.jsonl while a run is going. It runs on its
//! own thread, appends each line as it arrives (a complete line per write), and feeds the
//! progress counters.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::output::ResultLine;
use crate::output::results::Journal;
use crate::progress::Progress;

/// Lines in flight between the workers and the writer, at most.
pub(crate) const CHANNEL: usize = 1024;

/// Starts the writer thread; it ends when every sender is dropped, after an fsync.
pub(crate) fn spawn(
    mut journal: Journal,
    mut rx: mpsc::Receiver<ResultLine>,
    progress: Arc<Progress>,
) -> std::thread::JoinHandle<std::io::Result<u64>> {
    std::thread::spawn(move || {
        let mut written = 0u64;
        let mut failure: Option<std::io::Error> = None;
        while let Some(mut line) = rx.blocking_recv() {
            if failure.is_some() {
                continue;
            }
            if line.finished_at.is_none() {
                line.finished_at = Some(crate::output::summary::now_rfc3339());
            }
            match journal.append(&line) {
                Ok(()) => {
                    written += 1;
                    progress.record(&line);
                }
                Err(e) => {
                    tracing::error!("cannot write results.jsonl: {e}");
                    failure = Some(e);
                }
            }
        }
        journal.sync()?;
        match failure {
            Some(e) => Err(e),
            None => Ok(written),
        }
    })
}
