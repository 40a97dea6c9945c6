//! Low-level helpers shared by the output files: a line scanner that reuses one buffer (so
//! memory does not grow with the file), reading lines at offsets, and the one parse of a line
//! that recovery, compaction and every reader share.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
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
        Ok(self.view()?.key().hash())
    }

    /// Reads the last line read in place (readable exactly when [`LineScanner::parse`] is).
    pub(crate) fn view(&self) -> Result<super::view::LineView<'_>, String> {
        super::view::LineView::parse(&self.buf)
    }

    /// Parses the last line read as a [`ResultLine`].
    pub(crate) fn parse(&self) -> Result<ResultLine, String> {
        parse_line(&self.buf)
    }
}

/// The bytes [`LineReaderAt`] reads in one go: lines looked up in about file order (results.csv
/// in input order, the journal in completion order) cost one read per window, not one `lseek`
/// and `read` per line.
const WINDOW: usize = 1 << 20;
/// How far before the requested offset a window starts: a lookup a little behind the last
/// one (answers finish out of order) stays in the window.
const BACK: u64 = (WINDOW / 4) as u64;

/// Reads single lines at known offsets through a window of [`WINDOW`] bytes read with `pread`;
/// memory stays at one window (plus the longest line when one is longer than the window).
pub(crate) struct LineReaderAt {
    file: File,
    /// The file's bytes from `start`.
    window: Vec<u8>,
    start: u64,
    /// The window reaches the end of the file.
    at_end: bool,
    /// A line longer than the window.
    long: Vec<u8>,
    /// `pread` calls made (tests count them).
    reads: u64,
}

impl LineReaderAt {
    /// Opens `path` for reading lines by offset.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        Ok(Self::from_file(File::open(path)?))
    }

    /// Reads lines of `file` by offset.
    pub(crate) fn from_file(file: File) -> Self {
        LineReaderAt {
            file,
            window: Vec::new(),
            start: 0,
            at_end: false,
            long: Vec::new(),
            reads: 0,
        }
    }

    /// The line starting at `offset`, without its `'\n'` (the rest of the file when it has
    /// none; empty past the end).
    pub(crate) fn read_at(&mut self, offset: u64) -> io::Result<&[u8]> {
        if let Some((from, to)) = self.in_window(offset) {
            return Ok(&self.window[from..to]);
        }
        self.fill(offset.saturating_sub(BACK))?;
        if let Some((from, to)) = self.in_window(offset) {
            return Ok(&self.window[from..to]);
        }
        // A line longer than what the window holds after `offset`: read on until its end.
        let from = usize::try_from(offset - self.start).unwrap_or(usize::MAX);
        self.long.clear();
        self.long
            .extend_from_slice(&self.window[from.min(self.window.len())..]);
        let mut chunk = vec![0u8; WINDOW];
        loop {
            let n = self.pread(&mut chunk, offset + self.long.len() as u64)?;
            if n == 0 {
                break;
            }
            if let Some(i) = memchr::memchr(b'\n', &chunk[..n]) {
                self.long.extend_from_slice(&chunk[..i]);
                break;
            }
            self.long.extend_from_slice(&chunk[..n]);
        }
        Ok(&self.long)
    }

    /// The range of the line at `offset` in the window, when the window holds all of it.
    fn in_window(&self, offset: u64) -> Option<(usize, usize)> {
        let end = self.start + self.window.len() as u64;
        if offset < self.start || offset > end || (offset == end && !self.at_end) {
            return None;
        }
        let from = usize::try_from(offset - self.start).ok()?;
        match memchr::memchr(b'\n', &self.window[from..]) {
            Some(i) => Some((from, from + i)),
            None if self.at_end => Some((from, self.window.len())),
            None => None,
        }
    }

    /// Reads the window starting at `start`.
    fn fill(&mut self, start: u64) -> io::Result<()> {
        self.window.resize(WINDOW, 0);
        let mut len = 0;
        while len < WINDOW {
            let n = {
                let (file, buf) = (&self.file, &mut self.window[len..]);
                self.reads += 1;
                read_at_retrying(file, buf, start + len as u64)?
            };
            if n == 0 {
                break;
            }
            len += n;
        }
        self.window.truncate(len);
        self.start = start;
        self.at_end = len < WINDOW;
        Ok(())
    }

    /// One `pread` into `buf` at `at`.
    fn pread(&mut self, buf: &mut [u8], at: u64) -> io::Result<usize> {
        self.reads += 1;
        read_at_retrying(&self.file, buf, at)
    }
}

/// `pread`, retried when interrupted.
fn read_at_retrying(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    loop {
        match file.read_at(buf, at) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Parses one line of `results.jsonl` (without its `'\n'`).
pub(crate) fn parse_line(bytes: &[u8]) -> Result<ResultLine, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("empty line".to_string());
    }
    crate::json::from_bytes(bytes).map_err(|e| e.to_string())
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
        assert_eq!(r.read_at(13).unwrap(), b"");
    }

    #[test]
    fn lines_in_about_file_order_cost_one_read_per_window() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        let lines: Vec<String> = (0..40_000)
            .map(|i| format!("{{\"line\":{i:0>60}}}"))
            .collect();
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        let offsets: Vec<u64> = lines
            .iter()
            .scan(0u64, |at, l| {
                let o = *at;
                *at += l.len() as u64 + 1;
                Some(o)
            })
            .collect();
        let mut r = LineReaderAt::open(&p).unwrap();
        // Answers finish out of order: each block of 256 lines is read backwards.
        for block in (0..lines.len()).collect::<Vec<_>>().chunks(256) {
            for &i in block.iter().rev() {
                assert_eq!(r.read_at(offsets[i]).unwrap(), lines[i].as_bytes());
            }
        }
        let size = offsets[lines.len() - 1] + 73;
        assert!(
            r.reads <= 2 + size / (WINDOW as u64 - BACK),
            "{} reads",
            r.reads
        );
    }

    #[test]
    fn a_line_longer_than_the_window_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        let long = "x".repeat(WINDOW * 2 + 7);
        std::fs::write(&p, format!("a\n{long}\nb\n{long}")).unwrap();
        let mut r = LineReaderAt::open(&p).unwrap();
        assert_eq!(r.read_at(2).unwrap(), long.as_bytes());
        assert_eq!(r.read_at(0).unwrap(), b"a");
        let b = 2 + long.len() as u64 + 1;
        assert_eq!(r.read_at(b).unwrap(), b"b");
        assert_eq!(r.read_at(b + 2).unwrap(), long.as_bytes(), "the torn tail");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé...");
        assert_eq!(truncate_chars("hé", 2), "hé");
    }
}
