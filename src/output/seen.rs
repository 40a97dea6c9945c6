//! [`Seen`]: the end of a first run without a second read of its journal.
//!
//! When a run starts on an empty `results.jsonl`, the journal writer shows every line it
//! writes, as it writes it, to the summary and to results.csv's cells (and, for an exporter
//! that reads lines back, keeps each line's key hash and offset). At the end,
//! [`super::finalize::OutputDir::finalize`] uses them instead of reading the journal, when
//! the file is still exactly what the writer wrote (same file, same length) and holds one
//! line per key (nothing for compaction to drop). Anything else (a resume, a key written
//! twice, a write that failed, another writer) takes the reading path; both give the same
//! files (tests in `finalize.rs`).

use std::io;
use std::path::Path;

use super::ResultLine;
use super::csv_cells::CellFile;
use super::summary::{SummaryBuilder, SummaryMeta};

/// What the journal writer saw of a run that started on an empty journal.
pub(crate) struct Seen {
    pub(super) summary: SummaryBuilder,
    /// results.csv's cells.
    pub(super) cells: Option<CellFile>,
    /// (key hash, offset) of every line written, in file order, when kept: for an exporter
    /// that reads lines back ([`super::finalize::Exporter::needs_index`]), or without cells
    /// (16 bytes a line; the cells' own index tells a key written twice).
    pub(super) index: Option<Vec<(u64, u64)>>,
    /// Lines written.
    pub(super) lines: u64,
    /// Bytes written.
    pub(super) len: u64,
    /// (device, inode) of the journal.
    pub(super) ident: (u64, u64),
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seen")
            .field("lines", &self.lines)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Seen {
    /// Nothing seen yet, of the run `meta` describes (see [`SummaryBuilder::for_run`]),
    /// gathering results.csv's cells (into a cell file in `dir`) when `properties` is given,
    /// and the key index of the journal when `index` (or without cells). A cell file that
    /// cannot be created only leaves the cells to the reading path.
    pub(crate) fn new(
        meta: &SummaryMeta,
        dir: &Path,
        properties: Option<&[String]>,
        index: bool,
    ) -> Seen {
        let cells = properties.and_then(|p| match CellFile::create(dir, p) {
            Ok(file) => Some(file),
            Err(e) => {
                tracing::debug!("no cell file for results.csv ({e}): read at the end");
                None
            }
        });
        Seen {
            summary: SummaryBuilder::for_run(meta),
            index: (index || cells.is_none()).then(Vec::new),
            cells,
            lines: 0,
            len: 0,
            ident: (0, 0),
        }
    }

    /// `line` was written at `offset` as `bytes` (its JSON text, without the newline).
    pub(crate) fn written(&mut self, line: &ResultLine, offset: u64, bytes: &[u8]) {
        let key = line.key().hash();
        self.lines += 1;
        if let Some(index) = self.index.as_mut() {
            index.push((key, offset));
        }
        self.summary.written(line, bytes);
        if let Some(cells) = self.cells.as_mut() {
            cells.written(line, key);
        }
    }

    /// True when `results` is still exactly what was seen: the same file, `len` bytes long.
    pub(super) fn matches(&self, results: &Path) -> io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(results)?;
        Ok((meta.dev(), meta.ino()) == self.ident && meta.len() == self.len)
    }

    /// The journal's key index sorted by key, `None` when a key was written twice (or no
    /// index was kept).
    pub(super) fn unique_index(&mut self) -> Option<Vec<(u64, u64)>> {
        let mut index = self.index.take()?;
        super::key::keep_latest(&mut index);
        (index.len() as u64 == self.lines).then_some(index)
    }
}
