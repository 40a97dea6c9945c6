//! `batches.jsonl` in the output dir: every batch the provider accepted, appended (and synced
//! to disk) the moment its 202 arrives, with the chunk it covers (its `custom_id`s, so the keys)
//! and its worst case; then a `collected` line once its result lines are in results.jsonl.
//!
//! A re-run polls the recorded batches that were not collected and never submits their keys
//! again: after `kill -9` while polling, the batches keep running server-side and the next run
//! collects them.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The file's name in the output dir.
pub const FILE: &str = "batches.jsonl";

/// An accepted batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submitted {
    /// The provider's batch id.
    pub batch_id: String,
    /// The job's model slug of every request.
    pub model: String,
    /// The chunk's number in this output dir (1, 2, ...).
    pub chunk: u64,
    /// When the 202 arrived (RFC 3339).
    pub submitted_at: String,
    /// The chunk's worst case at batch prices (what the budget reserved), as a decimal string
    /// (exact, and readable inside the tagged line).
    #[serde(with = "rust_decimal::serde::str")]
    pub worst_usd: Decimal,
    /// Every item's `custom_id` (the result keys the chunk covers), in order.
    pub custom_ids: Vec<String>,
}

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    /// The provider accepted a batch.
    Submitted(Submitted),
    /// A batch's result lines are in results.jsonl.
    Collected {
        /// The batch id.
        batch_id: String,
        /// Its final status.
        status: String,
    },
}

/// The open record.
#[derive(Debug)]
pub struct BatchLog {
    file: File,
    path: PathBuf,
}

/// What the record held when it was opened.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Batches not collected yet, in submission order.
    pub open: Vec<Submitted>,
    /// The next chunk number.
    pub next_chunk: u64,
}

impl BatchLog {
    /// Opens (creates) `dir/batches.jsonl` and reads what it holds; an unreadable line (a
    /// torn last line) is skipped with a warning.
    pub fn open(dir: &Path) -> io::Result<(BatchLog, Recorded)> {
        let path = dir.join(FILE);
        let file = crate::fsutil::open_regular(
            &path,
            OpenOptions::new().create(true).append(true).read(true),
        )?;
        let text = std::fs::read_to_string(&path)?;
        let mut log = BatchLog { file, path };
        if !text.is_empty() && !text.ends_with('\n') {
            // A torn last line (a crash mid-write) must not swallow the next one.
            log.file.write_all(b"\n")?;
        }
        let mut rec = Recorded {
            next_chunk: 1,
            ..Default::default()
        };
        for (n, line) in text.lines().enumerate() {
            match serde_json::from_str::<Entry>(line) {
                Ok(Entry::Submitted(s)) => {
                    rec.next_chunk = rec.next_chunk.max(s.chunk + 1);
                    rec.open.push(s);
                }
                Ok(Entry::Collected { batch_id, .. }) => {
                    rec.open.retain(|s| s.batch_id != batch_id);
                }
                Err(e) if !line.trim().is_empty() => {
                    crate::eprintln!(
                        "orbatch: {}:{}: unreadable line skipped: {e}",
                        log.path.display(),
                        n + 1
                    );
                }
                Err(_) => {}
            }
        }
        Ok((log, rec))
    }

    /// Appends `entry` in one write and syncs it to disk before returning.
    pub fn append(&mut self, entry: &Entry) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submitted(id: &str, chunk: u64) -> Entry {
        Entry::Submitted(Submitted {
            batch_id: id.into(),
            model: "m".into(),
            chunk,
            submitted_at: "2026-01-01T00:00:00Z".into(),
            worst_usd: Decimal::new(12, 3),
            custom_ids: vec!["k1~1~~m".into()],
        })
    }

    #[test]
    fn collected_batches_close_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (mut log, rec) = BatchLog::open(dir.path()).expect("open");
            assert!(rec.open.is_empty());
            assert_eq!(rec.next_chunk, 1);
            log.append(&submitted("a", 1)).expect("append");
            log.append(&submitted("b", 2)).expect("append");
            log.append(&Entry::Collected {
                batch_id: "a".into(),
                status: "completed".into(),
            })
            .expect("append");
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE))
            .expect("file");
        f.write_all(br#"{"event":"submitted","batch_id":"c"#)
            .expect("torn");
        let (_, rec) = BatchLog::open(dir.path()).expect("reopen");
        assert_eq!(rec.open.len(), 1);
        assert_eq!(rec.open[0].batch_id, "b");
        assert_eq!(rec.open[0].worst_usd, Decimal::new(12, 3));
        assert_eq!(rec.next_chunk, 3);
    }
}
