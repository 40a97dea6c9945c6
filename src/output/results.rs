//! `results.jsonl`, the journal: one JSON line per finished (row, model), appended in
//! completion order.
//!
//! **Lines are cumulative per key.** A key (`id`, `model`) may have several lines: when a failed
//! key is re-sent (`--retry-failed`), the runner adds the key's [`Prior`] (cost and attempt
//! counts of its latest line) into the new line. So the *latest* line of a key carries
//! everything that key ever cost, the sum of `cost_usd` over the latest lines is the output
//! dir's total recorded spend ([`Recovered::spent`]), and [`compact`], which keeps only the
//! latest line per key, never loses money.
//!
//! Memory stays flat in the number of lines: readers hold 64-bit key hashes and byte offsets,
//! never whole lines.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;

pub use super::compact::{CompactStats, compact};
use super::key::keep_latest;
pub use super::key::{KeySet, key_hash};
use super::lines::{LineReaderAt, LineScanner, parse_line, prefix};
use super::priors::{Priors, PriorsBuilder};
use super::seen::Seen;
use super::{ResultLine, Status};
use crate::fsutil::open_regular;
use std::os::unix::fs::MetadataExt;

/// How many bad lines are kept (with their error) in [`Recovered`] and [`ReadStats`].
const MAX_BAD_EXAMPLES: usize = 20;

/// What a failed key had already cost; carried into its next line when it is re-sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prior {
    /// `cost_usd` of the key's latest line.
    pub cost_usd: Option<Decimal>,
    /// Attempts so far.
    pub attempts: u32,
    /// Ambiguous attempts so far.
    pub unknown_cost_attempts: u32,
    /// The most those ambiguous attempts may have cost.
    pub unknown_cost_max_usd: Option<Decimal>,
    /// 429 attempts so far.
    pub rate_limited_attempts: u32,
    /// The key was stopped early (budget, credits, auth) after paid attempts: a plain re-run
    /// sends it again, not only `--retry-failed`.
    pub resumable: bool,
}

impl Prior {
    /// The cumulative counters of `line`.
    pub fn of(line: &ResultLine) -> Prior {
        Prior {
            cost_usd: line.cost_usd,
            attempts: line.attempts,
            unknown_cost_attempts: line.unknown_cost_attempts,
            unknown_cost_max_usd: line.unknown_cost_max_usd,
            rate_limited_attempts: line.rate_limited_attempts,
            resumable: line.resumable,
        }
    }
}

/// A last line with no `'\n'`: a write cut off by a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornLine {
    /// Its 1-based line number.
    pub line: u64,
    /// Its length in bytes.
    pub bytes: u64,
    /// Its first characters, for the warning.
    pub prefix: String,
    /// True when the line was in fact a whole valid line (only the `'\n'` was missing): it was
    /// kept and completed. False: it was cut off.
    pub kept: bool,
}

/// What an earlier run left in `results.jsonl`.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// Keys whose latest line is `ok` (8 bytes a key).
    pub done: KeySet,
    /// Keys whose latest line is `error`, with what they already cost (packed: about 22
    /// bytes a key).
    pub failed: Priors,
    /// The sum of `cost_usd` over the latest line of every key (unknown = 0): the output dir's
    /// recorded spend.
    pub spent: Decimal,
    /// (Added.) The sum of `unknown_cost_max_usd` over the latest lines: the most the attempts
    /// of unknown charge may have cost on top of `spent`. The budget counts both.
    pub unknown_max: Decimal,
    /// Complete lines in the file after the repair (bad lines included).
    pub lines: u64,
    /// The torn last line, if there was one.
    pub torn: Option<TornLine>,
    /// Complete lines that are not valid result lines (line number, error): kept in the file,
    /// skipped. At most the first 20; see `bad_line_count`.
    pub bad_lines: Vec<(u64, String)>,
    /// (Added.) How many bad lines there are in all.
    pub bad_line_count: u64,
}

impl Recovered {
    fn bad(&mut self, no: u64, error: String) {
        self.bad_line_count += 1;
        if self.bad_lines.len() < MAX_BAD_EXAMPLES {
            self.bad_lines.push((no, error));
        }
    }
}

/// The append handle of `results.jsonl`.
#[derive(Debug)]
pub struct Journal {
    file: File,
    buf: Vec<u8>,
    /// The path it was opened at: checked before each write to still be this file.
    path: PathBuf,
    /// (device, inode) of the open file.
    ident: (u64, u64),
    /// Bytes of complete lines in the file: a failed write is cut back to it.
    len: u64,
    /// What was written, for the end of a run that started on an empty journal.
    seen: Option<Box<Seen>>,
    /// Where each line of `buf` starts.
    starts: Vec<usize>,
}

impl Journal {
    /// Opens (creating) `path` for appending and reads what earlier runs left. A last line
    /// without `'\n'` (a crash mid-write) is cut off (the file is truncated to the last `'\n'`)
    /// and reported in [`Recovered::torn`]; if that line parses as a whole result line, only
    /// its `'\n'` was lost and it is completed and kept instead. Every complete line is kept.
    pub fn open(path: &Path) -> io::Result<(Journal, Recovered)> {
        let file = open_regular(
            path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )?;
        let mut rec = Recovered::default();
        // (key hash, offset << 1 | 1 when `error`) of every readable line: 16 bytes a line.
        let mut lines: Vec<(u64, u64)> = Vec::new();
        let mut scanner = LineScanner::new(&file);
        let mut torn_at = None;
        while let Some(info) = scanner.next_line()? {
            // Read in place: a failed key's prior is parsed whole afterwards, in `settle`.
            let parsed = scanner.view();
            if !info.complete {
                rec.torn = Some(TornLine {
                    line: info.no,
                    bytes: info.len,
                    prefix: prefix(scanner.bytes()),
                    kept: parsed.is_ok(),
                });
                if parsed.is_err() {
                    torn_at = Some(info.offset);
                    break;
                }
            }
            rec.lines += 1;
            match parsed {
                Ok(line) => {
                    // Every line's spend now; a superseded line's is taken back out below.
                    rec.spent += line.spend();
                    rec.unknown_max += line.unknown_cost_max_usd.unwrap_or_default();
                    let failed = u64::from(line.status == Status::Error);
                    lines.push((line.key().hash(), info.offset << 1 | failed));
                }
                Err(e) => rec.bad(info.no, e),
            }
        }
        drop(scanner);
        settle(&mut rec, lines, path)?;
        if let Some(offset) = torn_at {
            file.set_len(offset)?;
        }
        drop(file);
        let mut file = open_regular(path, OpenOptions::new().append(true))?;
        if rec.torn.as_ref().is_some_and(|t| t.kept) {
            file.write_all(b"\n")?;
        }
        Ok((Journal::on_file(file, path)?, rec))
    }

    fn on_file(file: File, path: &Path) -> io::Result<Journal> {
        let meta = file.metadata()?;
        Ok(Journal {
            file,
            buf: Vec::with_capacity(4096),
            path: path.to_path_buf(),
            ident: (meta.dev(), meta.ino()),
            len: meta.len(),
            seen: None,
            starts: Vec::new(),
        })
    }

    /// Shows a [`Seen`] (made by `seen`, only then) every line written from now on, when the
    /// journal is empty (a first run): the end of the run then need not read it again.
    /// Returns whether it does.
    pub(crate) fn watch(&mut self, seen: impl FnOnce() -> Seen) -> bool {
        if self.len != 0 {
            return false;
        }
        let mut seen = seen();
        seen.ident = self.ident;
        self.seen = Some(Box::new(seen));
        true
    }

    /// What [`Journal::watch`] saw, unless a write failed on the way.
    pub(crate) fn take_seen(&mut self) -> Option<Seen> {
        let mut seen = self.seen.take()?;
        seen.len = self.len;
        Some(*seen)
    }

    /// A journal appending to a device (`/dev/full` in tests: every write fails).
    #[cfg(test)]
    pub(crate) fn on_device(path: &Path) -> io::Result<Journal> {
        Journal::on_file(OpenOptions::new().append(true).open(path)?, path)
    }

    /// Appends one line: serialized into a reused buffer, one `write_all` per line (no fsync;
    /// the page cache survives `kill -9`). The line is complete when this returns.
    pub fn append(&mut self, line: &ResultLine) -> io::Result<()> {
        self.append_all(std::slice::from_ref(line))
    }

    /// Appends several lines in one write (each complete when this returns). Fails when the
    /// path no longer is the file opened (removed or replaced during the run); a write that
    /// fails part way is cut back, so the file never keeps half a line.
    pub fn append_all(&mut self, lines: &[ResultLine]) -> io::Result<()> {
        self.buf.clear();
        self.starts.clear();
        for line in lines {
            self.starts.push(self.buf.len());
            line.write_json(&mut self.buf);
            self.buf.push(b'\n');
        }
        let written = self
            .check_path()
            .and_then(|()| self.file.write_all(&self.buf));
        if let Err(e) = written {
            let _ = self.file.set_len(self.len);
            // What was seen no longer tells what the file holds: the end reads it.
            self.seen = None;
            return Err(e);
        }
        if let Some(seen) = self.seen.as_mut() {
            let ends = self.starts.iter().skip(1).copied().chain([self.buf.len()]);
            for ((line, &start), end) in lines.iter().zip(&self.starts).zip(ends) {
                // Without its newline.
                seen.written(line, self.len + start as u64, &self.buf[start..end - 1]);
            }
        }
        self.len += self.buf.len() as u64;
        Ok(())
    }

    /// Checks that the journal's path still leads to the open file.
    fn check_path(&self) -> io::Result<()> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.ident => Ok(()),
            Ok(_) => Err(io::Error::other(format!(
                "{} was replaced during the run",
                self.path.display()
            ))),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("{} was removed during the run ({e})", self.path.display()),
            )),
        }
    }

    /// Flushes the file to disk (fsync): at the end of a run and on stop.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_all()
    }
}

/// Folds the (key hash, tagged offset) of every readable line into `rec`: the keys whose
/// latest line is `ok` become [`Recovered::done`], those whose latest line is `error` get their
/// [`Prior`] (their line read again), and each superseded line (a key sent again, rare) is read
/// again to take its spend back out of [`Recovered::spent`]. Memory: the lines' 16 bytes each,
/// then 8 bytes a done key.
fn settle(rec: &mut Recovered, mut lines: Vec<(u64, u64)>, path: &Path) -> io::Result<()> {
    lines.sort_unstable();
    // (offset << 1 | 1 when it is the key's latest line, key) of the lines to read again,
    // in file order: 16 bytes each.
    let mut again: Vec<(u64, u64)> = Vec::new();
    for (i, &(key, tagged)) in lines.iter().enumerate() {
        let latest = lines.get(i + 1).is_none_or(|next| next.0 != key);
        if !latest || tagged & 1 == 1 {
            again.push(((tagged & !1) | u64::from(latest), key));
        }
    }
    keep_latest(&mut lines);
    rec.done = lines
        .into_iter()
        .filter(|&(_, tagged)| tagged & 1 == 0)
        .map(|(key, _)| key)
        .collect();
    if again.is_empty() {
        return Ok(());
    }
    again.sort_unstable();
    let mut failed = PriorsBuilder::with_capacity(again.iter().filter(|a| a.0 & 1 == 1).count());
    let mut reader = LineReaderAt::open(path)?;
    for (tagged, key) in again {
        let offset = tagged >> 1;
        let line = parse_line(reader.read_at(offset)?).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the line at byte {offset} changed while it was read: {e}"),
            )
        })?;
        if tagged & 1 == 1 {
            failed.push(key, &Prior::of(&line));
        } else {
            rec.spent -= line.spend();
            rec.unknown_max -= line.unknown_cost_max_usd.unwrap_or_default();
        }
    }
    rec.failed = failed.finish();
    Ok(())
}

/// What [`for_each_latest`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Lines read, in all files.
    pub lines: u64,
    /// Latest lines handed to the callback (one per key).
    pub latest: u64,
    /// Lines superseded by a later line of the same key.
    pub superseded: u64,
    /// Lines that are not valid result lines (skipped).
    pub bad_lines: u64,
    /// The first few bad lines as `FILE:LINE: error`.
    pub bad_examples: Vec<String>,
}

/// Reads result files line by line and calls `f` with the latest line of every key, the latest
/// across all files in the order given (shards merge; a later file wins). Bad lines (and an
/// unreadable torn last line) are skipped and counted. Two sequential passes; memory holds one
/// 64-bit hash and one position per key. `f` sees lines in file order.
pub fn for_each_latest(paths: &[PathBuf], mut f: impl FnMut(ResultLine)) -> io::Result<ReadStats> {
    let mut latest = 0;
    let mut stats = for_each_latest_read(paths, |scanner| {
        if let Ok(line) = scanner.parse() {
            latest += 1;
            f(line);
        }
    })?;
    stats.latest = latest;
    Ok(stats)
}

/// [`for_each_latest`], handing `f` the scanner holding each latest line (to read it in
/// place); `latest` is left for the caller to count.
pub(crate) fn for_each_latest_read(
    paths: &[PathBuf],
    mut f: impl FnMut(&LineScanner<File>),
) -> io::Result<ReadStats> {
    let mut stats = ReadStats::default();
    // Pass 1: (key, global line number counted across files) of every readable line.
    let mut latest: Vec<(u64, u64)> = Vec::new();
    let mut seq = 0u64;
    for path in paths {
        let mut scanner = LineScanner::new(File::open(path)?);
        while let Some(info) = scanner.next_line()? {
            seq += 1;
            stats.lines += 1;
            match scanner.readable_key() {
                Ok(key) => latest.push((key, seq)),
                Err(e) => {
                    stats.bad_lines += 1;
                    if stats.bad_examples.len() < MAX_BAD_EXAMPLES {
                        let at = path.display();
                        stats.bad_examples.push(format!("{at}:{}: {e}", info.no));
                    }
                }
            }
        }
    }
    let readable = latest.len() as u64;
    let keep = latest_lines(latest);
    stats.superseded = readable - keep.len() as u64;
    // Pass 2: hand over the kept lines, in order.
    let mut next = keep.iter().copied().peekable();
    let mut seq = 0u64;
    for path in paths {
        let mut scanner = LineScanner::new(File::open(path)?);
        while scanner.next_line()?.is_some() {
            seq += 1;
            if next.peek() != Some(&seq) {
                continue;
            }
            next.next();
            f(&scanner);
        }
    }
    Ok(stats)
}

/// The sorted positions of each key's latest line, from (key, position) pairs: the last
/// position of each key. Sorted in place, 16 bytes a pair.
fn latest_lines(mut pairs: Vec<(u64, u64)>) -> Vec<u64> {
    keep_latest(&mut pairs);
    let mut keep: Vec<u64> = pairs.into_iter().map(|(_, at)| at).collect();
    keep.sort_unstable();
    keep
}

/// Why `path` is not a results file (`None` when its first line is a result line): it has no
/// line, or its first line does not parse as one.
pub fn not_a_results_file(path: &Path) -> io::Result<Option<String>> {
    let mut scanner = LineScanner::new(File::open(path)?);
    Ok(match scanner.next_line()? {
        None => Some("it holds no result line".to_string()),
        Some(_) => scanner
            .parse()
            .err()
            .map(|e| format!("its first line is not a result line ({e})")),
    })
}
