//! Compaction of `results.jsonl`: one line per key, the latest readable line of each key
//! (recovery's parse decides what is readable), written through a temp file and a rename.
//! Each line is read once, in place ([`LineView`]); a [`KeptLines`] sees the kept lines as
//! they go by, so the summary needs no pass of its own.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::lines::LineScanner;
use super::view::LineView;
use crate::fsutil::replace_file;

/// What [`compact`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Lines kept: the latest line of every key.
    pub kept: u64,
    /// Superseded lines dropped.
    pub dropped: u64,
    /// Lines that are not valid result lines: kept as they are (never destroy what cannot be
    /// read), not counted in `kept`.
    pub bad_kept: u64,
    /// A torn, unreadable last line that was dropped (0 or 1).
    pub torn_dropped: u64,
    /// (key hash, byte offset) of every kept line in the compacted file, sorted by key: the
    /// index `results.csv` looks lines up in (16 bytes a key).
    pub index: Vec<(u64, u64)>,
}

/// What the end of a run does with the lines compaction keeps, as it reads them.
pub(crate) trait KeptLines {
    /// A readable line (`bytes` is its text), in file order. The first pass shows every
    /// readable line; when some were superseded or torn, [`KeptLines::restart`] follows, then
    /// the kept readable lines again, in the compacted file's order.
    fn line(&mut self, line: &LineView<'_>, bytes: &[u8]);
    /// The lines shown so far were not all kept: forget them (the kept ones follow).
    fn restart(&mut self);
}

/// Keeps nothing.
impl KeptLines for () {
    fn line(&mut self, _: &LineView<'_>, _: &[u8]) {}
    fn restart(&mut self) {}
}

/// Rewrites `path` to one line per (id, model): the latest line wins, in the order of each
/// key's latest line (completion order). Bad lines are kept in place. Two sequential passes
/// (pass 1: key hash -> offset of its latest line; pass 2: copy the kept offsets) into a temp
/// file in the same directory, then rename. Call it with no [`super::results::Journal`] open on the file.
pub fn compact(path: &Path) -> io::Result<CompactStats> {
    compact_into(path, &mut ())
}

/// [`compact`], showing `kept` every line it keeps (each line parsed once when nothing is
/// dropped, the kept ones twice otherwise).
pub(crate) fn compact_into(path: &Path, kept: &mut dyn KeptLines) -> io::Result<CompactStats> {
    let mut stats = CompactStats::default();
    // (key hash, offset) of every readable line: 16 bytes a line, sorted once.
    let mut lines: Vec<(u64, u64)> = Vec::new();
    let mut keep: Vec<u64> = Vec::new();
    let mut all_complete = true;
    let mut scanner = LineScanner::new(File::open(path)?);
    while let Some(info) = scanner.next_line()? {
        all_complete &= info.complete;
        match scanner.view() {
            Ok(line) => {
                lines.push((line.key().hash(), info.offset));
                kept.line(&line, scanner.bytes());
            }
            Err(_) if info.complete => {
                stats.bad_kept += 1;
                keep.push(info.offset);
            }
            Err(_) => stats.torn_dropped += 1,
        }
    }
    drop(scanner);
    // The latest line of a key: its highest offset.
    let total = lines.len() as u64;
    super::key::keep_latest(&mut lines);
    stats.kept = lines.len() as u64;
    stats.dropped = total - stats.kept;
    if stats.dropped == 0 && stats.torn_dropped == 0 && all_complete {
        // Already one line per key: nothing to rewrite, and the offsets stand.
        stats.index = lines;
        return Ok(stats);
    }
    kept.restart();
    keep.extend(lines.iter().map(|&(_, offset)| offset));
    keep.sort_unstable();
    // Old offset -> new offset of each kept line, in old-offset order.
    let mut moved: Vec<(u64, u64)> = Vec::with_capacity(keep.len());
    let mut scanner = LineScanner::new(File::open(path)?);
    replace_file(path, |w| {
        let mut next = keep.iter().copied().peekable();
        let mut written = 0u64;
        while let Some(info) = scanner.next_line()? {
            if next.peek() == Some(&info.offset) {
                next.next();
                moved.push((info.offset, written));
                if let Ok(line) = scanner.view() {
                    kept.line(&line, scanner.bytes());
                }
                w.write_all(scanner.bytes())?;
                w.write_all(b"\n")?;
                written += scanner.bytes().len() as u64 + 1;
            }
        }
        Ok(())
    })?;
    stats.index = lines
        .into_iter()
        .filter_map(|(key, old)| {
            let i = moved.binary_search_by_key(&old, |m| m.0).ok()?;
            Some((key, moved[i].1))
        })
        .collect();
    Ok(stats)
}
