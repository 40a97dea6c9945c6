//! Low-level helpers shared by the output files: a line scanner that reuses one buffer (so
//! memory does not grow with the file), reading lines at offsets, and the one parse of a line
//! that recovery, compaction and every reader share.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::ResultLine;

/// How many bytes of a bad or torn line are shown in a warning.
const PREFIX_CHARS: usize = 60;

/// One line read by [`LineScanner`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineInfo {
    /// 1-based line number in its file.
    pub no: u64,
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// Length in bytes, the `'\n'` included when there is one.
    pub len: u64,
    /// False for a last line with no `'\n'` (a write cut off by a crash).
    pub complete: bool,
}

/// Reads a file line by line into one reused buffer.
pub(crate) struct LineScanner<R> {
    reader: BufReader<R>,
    buf: Vec<u8>,
    offset: u64,
    no: u64,
}

impl<R: Read> LineScanner<R> {
    /// Scans `inner` from its current position, which is taken as offset 0.
    pub(crate) fn new(inner: R) -> Self {
        LineScanner {
            reader: BufReader::with_capacity(64 * 1024, inner),
            buf: Vec::new(),
            offset: 0,
            no: 0,
        }
    }

    /// The next line, or `None` at the end of the file. The line's bytes (without `'\n'`) are
    /// in [`LineScanner::bytes`] until the next call.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<LineInfo>> {
        self.buf.clear();
        let n = self.reader.read_until(b'\n', &mut self.buf)? as u64;
        if n == 0 {
            return Ok(None);
        }
        let complete = self.buf.last() == Some(&b'\n');
        if complete {
            self.buf.pop();
        }
        self.no += 1;
        let info = LineInfo {
            no: self.no,
            offset: self.offset,
            len: n,
            complete,
        };
        self.offset += n;
        Ok(Some(info))
    }

    /// The bytes of the last line read, without its `'\n'`.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The resume-key hash of the last line read when the whole line parses as a
    /// [`ResultLine`] (the parse of recovery): a line that recovery skips never supersedes an
    /// earlier line of its key in compaction or in a summary.
    pub(crate) fn readable_key(&self) -> Result<u64, String> {
        let line = self.parse()?;
        Ok(line.key().hash())
    }

    /// Parses the last line read as a [`ResultLine`].
    pub(crate) fn parse(&self) -> Result<ResultLine, String> {
        parse_line(&self.buf)
    }
}

/// Reads single lines at known offsets; a forward or short jump keeps the read buffer.
pub(crate) struct LineReaderAt {
    reader: BufReader<File>,
    pos: u64,
    buf: Vec<u8>,
}

impl LineReaderAt {
    /// Opens `path` for reading lines by offset.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        Ok(LineReaderAt {
            reader: BufReader::with_capacity(64 * 1024, File::open(path)?),
            pos: 0,
            buf: Vec::new(),
        })
    }

    /// The line starting at `offset`, without its `'\n'`.
    pub(crate) fn read_at(&mut self, offset: u64) -> io::Result<&[u8]> {
        if offset != self.pos {
            match (i64::try_from(offset), i64::try_from(self.pos)) {
                (Ok(to), Ok(from)) => self.reader.seek_relative(to - from)?,
                _ => {
                    self.reader.seek(SeekFrom::Start(offset))?;
                }
            }
        }
        self.buf.clear();
        let n = self.reader.read_until(b'\n', &mut self.buf)? as u64;
        self.pos = offset + n;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        Ok(&self.buf)
    }
}

/// Parses one line of `results.jsonl` (without its `'\n'`).
pub(crate) fn parse_line(bytes: &[u8]) -> Result<ResultLine, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("empty line".to_string());
    }
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// The first characters of a line, lossily decoded, for warnings.
pub(crate) fn prefix(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    truncate_chars(&text, PREFIX_CHARS)
}

/// `text` cut to at most `max` characters (on a character boundary), with `...` when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_reports_offsets_and_a_torn_tail() {
        let data = b"ab\n\ncd";
        let mut s = LineScanner::new(&data[..]);
        let a = s.next_line().unwrap().unwrap();
        assert_eq!((a.no, a.offset, a.len, a.complete), (1, 0, 3, true));
        assert_eq!(s.bytes(), b"ab");
        let b = s.next_line().unwrap().unwrap();
        assert_eq!((b.no, b.offset, b.len, b.complete), (2, 3, 1, true));
        assert_eq!(s.parse().unwrap_err(), "empty line");
        let c = s.next_line().unwrap().unwrap();
        assert_eq!((c.no, c.offset, c.len, c.complete), (3, 4, 2, false));
        assert!(s.next_line().unwrap().is_none());
    }

    #[test]
    fn reads_lines_at_offsets_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        std::fs::write(&p, b"one\ntwo\nthree").unwrap();
        let mut r = LineReaderAt::open(&p).unwrap();
        assert_eq!(r.read_at(8).unwrap(), b"three");
        assert_eq!(r.read_at(0).unwrap(), b"one");
        assert_eq!(r.read_at(4).unwrap(), b"two");
        assert_eq!(r.read_at(4).unwrap(), b"two");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé...");
        assert_eq!(truncate_chars("hé", 2), "hé");
    }
}
