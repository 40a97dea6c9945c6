//! The writer: the only code that touches results.jsonl while a run is going. It appends each
//! line as soon as it arrives (the lines that arrived together in one write, each complete),
//! and feeds the progress counters. It runs as a task on the runtime: a page-cache write is
//! cheaper than waking another thread for every line.
//!
//! **A journal that cannot be written stops the run.** On the first failed write (disk full,
//! the file made immutable, the output dir removed) or a dead writer, the run stops
//! dispatching; the writer keeps the lines it could not write and tries them again with
//! back-off until the last worker is done. [`finish`] names how many answers could not be
//! recorded (a resume sends them again).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::output::ResultLine;
use crate::output::results::Journal;
use crate::output::seen::Seen;
use crate::progress::Progress;
use crate::transport::cache::ResponseCache;

/// Lines in flight between the workers and the writer, at most.
pub(crate) const CHANNEL: usize = 1024;
/// Lines written in one `write`, at most.
const BATCH: usize = 64;
/// Waits between the tries of lines that could not be written (the last one repeats while
/// workers are still sending; after the last line arrived, each is tried once more).
const RETRY: [Duration; 6] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
    Duration::from_millis(1600),
];

/// What the writer and the senders know about the journal's health.
struct Health {
    /// Lines handed to the channel.
    handed: AtomicU64,
    /// Lines the writer accepted from the channel.
    accepted: AtomicU64,
    /// Lines written.
    written: AtomicU64,
    /// Lines a worker could not hand over (the writer was gone).
    refused: AtomicU64,
    /// The first failure.
    failure: Mutex<Option<String>>,
    /// Called once, on the first failure: stops dispatching.
    on_failure: Box<dyn Fn(String) + Send + Sync>,
}

impl Health {
    fn fail(&self, why: String) {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            tracing::error!("{why}; stopping: no new requests");
            *f = Some(why.clone());
            drop(f);
            (self.on_failure)(why);
        }
    }
}

/// The workers' end of the writer: hands lines over, and stops the run when it cannot.
#[derive(Clone)]
pub(crate) struct Sink {
    tx: mpsc::Sender<ResultLine>,
    health: Arc<Health>,
    /// The job's checks: each line is scored as it is handed over, before it is written
    /// (judge checks are sent first, through the run's context).
    scorer: Option<(Arc<crate::eval::Scorer>, Arc<super::Ctx>)>,
}

impl Sink {
    /// Hands `line` to the writer; a writer that is gone stops the run and counts the line
    /// as not recorded.
    pub(crate) async fn send(&self, mut line: ResultLine) {
        if let Some((scorer, ctx)) = &self.scorer {
            if scorer.has_judge() {
                super::judge::grade(ctx, scorer, &mut line).await;
            }
            scorer.apply_recorded(&mut line);
        }
        if self.tx.send(line).await.is_ok() {
            self.health.handed.fetch_add(1, Relaxed);
        } else {
            self.health.refused.fetch_add(1, Relaxed);
            self.health
                .fail("the results.jsonl writer stopped unexpectedly".to_string());
        }
    }
}

impl Sink {
    /// Waits until every line handed over so far is in results.jsonl; false when the writer
    /// failed first (batch mode records a batch as collected only after its lines).
    pub(crate) async fn flushed(&self) -> bool {
        let target = self.health.handed.load(Relaxed);
        loop {
            if self.health.written.load(Relaxed) >= target {
                return true;
            }
            if self.health.failure.lock().map_or(true, |f| f.is_some()) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Starts the writer. `on_failure` is called once, with the reason, on the first write error
/// or when the writer is found dead. Close every [`Sink`] clone, then call [`finish`].
pub(crate) fn spawn(
    journal: Journal,
    progress: Arc<Progress>,
    cache: Option<Arc<ResponseCache>>,
    scorer: Option<(Arc<crate::eval::Scorer>, Arc<super::Ctx>)>,
    on_failure: impl Fn(String) + Send + Sync + 'static,
) -> (Sink, JoinHandle<Option<Seen>>) {
    let (tx, rx) = mpsc::channel(CHANNEL);
    let health = Arc::new(Health {
        handed: AtomicU64::new(0),
        accepted: AtomicU64::new(0),
        written: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        failure: Mutex::new(None),
        on_failure: Box::new(on_failure),
    });
    let task = tokio::spawn(write_lines(journal, rx, progress, cache, health.clone()));
    (Sink { tx, health, scorer }, task)
}

/// Waits for the writer (`sink` is dropped first, so it ends once every other clone is gone).
/// The lines written, and on a failure why and how many answers could not be recorded; what
/// the journal saw ([`Journal::watch`]) when every line was written.
pub(crate) async fn finish(
    sink: Sink,
    task: JoinHandle<Option<Seen>>,
) -> (u64, Option<String>, Option<Seen>) {
    let Sink { tx, health, .. } = sink;
    drop(tx);
    let seen = match task.await {
        Ok(seen) => seen,
        Err(e) => {
            health.fail(format!(
                "the results.jsonl writer stopped unexpectedly ({e})"
            ));
            None
        }
    };
    let written = health.written.load(Relaxed);
    let failure = health
        .failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let failure = failure.map(|why| {
        let lost = health.accepted.load(Relaxed) + health.refused.load(Relaxed) - written;
        format!(
            "{why}; {lost} finished answer{} (paid or maybe paid) could not be recorded in results.jsonl and will be sent again on resume",
            if lost == 1 { "" } else { "s" }
        )
    });
    let seen = seen.filter(|_| failure.is_none());
    (written, failure, seen)
}

async fn write_lines(
    mut journal: Journal,
    mut rx: mpsc::Receiver<ResultLine>,
    progress: Arc<Progress>,
    cache: Option<Arc<ResponseCache>>,
    health: Arc<Health>,
) -> Option<Seen> {
    let mut pending: Vec<ResultLine> = Vec::with_capacity(BATCH);
    let mut tries = 0usize;
    let mut open = true;
    while open || !pending.is_empty() {
        let wait = RETRY[tries.min(RETRY.len() - 1)];
        if open {
            let before = pending.len();
            let got = if pending.is_empty() {
                rx.recv_many(&mut pending, BATCH).await
            } else {
                // Degraded: new lines join the pending ones; try them again after `wait`.
                tokio::select! {
                    n = rx.recv_many(&mut pending, BATCH) => n,
                    _ = tokio::time::sleep(wait) => usize::MAX,
                }
            };
            if got == 0 {
                open = false;
                if pending.is_empty() {
                    break;
                }
            } else if got != usize::MAX {
                stamp(&mut pending[before..]);
                health.accepted.fetch_add(got as u64, Relaxed);
                if before > 0 {
                    continue;
                }
            }
        } else {
            if tries >= RETRY.len() {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        match journal.append_all(&pending) {
            Ok(()) => {
                health.written.fetch_add(pending.len() as u64, Relaxed);
                pending.iter().for_each(|l| progress.record(l));
                // Only now, with their lines in results.jsonl, may the answers be hits.
                if let Some(cache) = &cache {
                    cache.put(super::cached::entries(&pending));
                }
                pending.clear();
                tries = 0;
            }
            Err(e) => {
                health.fail(format!("cannot write results.jsonl: {e}"));
                tries += 1;
            }
        }
    }
    if let Err(e) = journal.sync() {
        health.fail(format!("cannot flush results.jsonl to disk: {e}"));
    }
    journal.take_seen()
}

/// Sets `finished_at` of the lines that have none.
fn stamp(lines: &mut [ResultLine]) {
    let now = crate::output::summary::now_rfc3339();
    for line in lines {
        line.finished_at.get_or_insert_with(|| now.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::line::LineBuilder;

    fn line(id: &str) -> ResultLine {
        LineBuilder::new(id, "m").ok("answer").build()
    }

    fn stopped() -> (
        Arc<Mutex<Vec<String>>>,
        impl Fn(String) + Send + Sync + 'static,
    ) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let c = calls.clone();
        (calls, move |why| c.lock().unwrap().push(why))
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_disk_stops_the_run_and_names_the_lost_answers() {
        // /dev/full: every write fails with ENOSPC, like a full disk.
        let Ok(journal) = Journal::on_device(std::path::Path::new("/dev/full")) else {
            eprintln!("skipped: this OS has no /dev/full");
            return;
        };
        let (calls, on_failure) = stopped();
        let (sink, task) = spawn(journal, Progress::new(3), None, None, on_failure);
        for id in ["1", "2", "3"] {
            sink.send(line(id)).await;
        }
        let err = finish(sink, task).await.1.unwrap();
        assert!(err.contains("cannot write results.jsonl"), "{err}");
        assert!(err.contains("3 finished answers"), "{err}");
        assert_eq!(calls.lock().unwrap().len(), 1, "stopped once");
    }

    /// Writes two paid answers through a writer on `journal` with a cache in `dir`; returns
    /// how many entries the cache holds afterwards.
    async fn cached_after_writing(journal: Journal, dir: &std::path::Path) -> u64 {
        let cache = ResponseCache::open(dir, "e").unwrap();
        let (_, on_failure) = stopped();
        let (sink, task) = spawn(
            journal,
            Progress::new(2),
            Some(cache.clone()),
            None,
            on_failure,
        );
        for (i, id) in ["1", "2"].into_iter().enumerate() {
            let mut l = line(id);
            l.cost_usd = Some(rust_decimal::Decimal::ONE);
            l.cost_source = Some(crate::output::CostSource::Response);
            super::super::cached::ticket(&mut l, Some([i as u8; 32]), None);
            sink.send(l).await;
        }
        finish(sink, task).await;
        cache.close();
        crate::transport::cache::Store::open(dir)
            .unwrap()
            .stats()
            .unwrap()
            .entries
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_enters_the_cache_only_once_its_line_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(&dir.path().join("results.jsonl")).unwrap();
        assert_eq!(
            cached_after_writing(journal, &dir.path().join("c1")).await,
            2
        );
        // A journal that cannot be written: the paid answers must not become free hits.
        let Ok(full) = Journal::on_device(std::path::Path::new("/dev/full")) else {
            eprintln!("skipped: this OS has no /dev/full");
            return;
        };
        assert_eq!(cached_after_writing(full, &dir.path().join("c2")).await, 0);
    }

    #[tokio::test]
    async fn a_dead_writer_stops_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(&dir.path().join("results.jsonl")).unwrap();
        let (calls, on_failure) = stopped();
        let (sink, task) = spawn(journal, Progress::new(2), None, None, on_failure);
        task.abort();
        while !task.is_finished() {
            tokio::task::yield_now().await;
        }
        sink.send(line("1")).await;
        sink.send(line("2")).await;
        let err = finish(sink, task).await.1.unwrap();
        assert!(err.contains("stopped unexpectedly"), "{err}");
        assert!(err.contains("2 finished answers"), "{err}");
        assert_eq!(calls.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn lines_are_written_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let (journal, _) = Journal::open(&path).unwrap();
        let (calls, on_failure) = stopped();
        let (sink, task) = spawn(journal, Progress::new(2), None, None, on_failure);
        sink.send(line("1")).await;
        sink.send(line("2")).await;
        let (written, failure, seen) = finish(sink, task).await;
        assert_eq!((written, failure), (2, None));
        assert!(seen.is_none(), "nothing was watching");
        assert!(calls.lock().unwrap().is_empty());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
    }
}
