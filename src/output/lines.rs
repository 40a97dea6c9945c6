//! Low-level helpers shared by the output files: a line scanner that reuses one buffer (so
//! memory does not grow with the file), and "write a temp file in the same directory, then
//! rename" for every file that is rewritten as a whole.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

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

    /// The resume-key hash of the last line read, parsing only `id` and `model` (the rest is
    /// skipped, not built): the cheap first pass of compaction, summaries and results.csv.
    pub(crate) fn key(&self) -> Result<u64, String> {
        parse_key(&self.buf)
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

/// The resume-key hash of a result line, from its `id` and `model` alone.
pub(crate) fn parse_key(bytes: &[u8]) -> Result<u64, String> {
    if let Some(key) = leading_key(bytes) {
        return Ok(key);
    }
    #[derive(serde::Deserialize)]
    struct Key<'a> {
        #[serde(borrow)]
        id: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        model: std::borrow::Cow<'a, str>,
    }
    let k: Key<'_> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    Ok(super::results::key_hash(&k.id, &k.model))
}

/// The key of a line as orbatch writes it, `{"id":"..","model":"..",...}`, read from its first
/// two fields alone (the rest of the line is not scanned); `None` for any other shape.
fn leading_key(bytes: &[u8]) -> Option<u64> {
    // One JSON string at the start of `bytes`, and where it ends.
    fn string(bytes: &[u8]) -> Option<(String, usize)> {
        let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<String>();
        let s = values.next()?.ok()?;
        Some((s, values.byte_offset()))
    }
    if bytes.last() != Some(&b'}') {
        return None;
    }
    let rest = bytes.strip_prefix(br#"{"id":"#)?;
    let (id, end) = string(rest)?;
    let rest = rest.get(end..)?.strip_prefix(br#","model":"#)?;
    let (model, _) = string(rest)?;
    Some(super::results::key_hash(&id, &model))
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

/// The temp file used while `path` is rewritten: same directory, hidden, per process.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_string());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Replaces `path` atomically: `write` fills a temp file in the same directory, which is then
/// flushed, fsynced and renamed over `path` (and the directory fsynced). On error the temp file
/// is removed and `path` is left as it was.
pub(crate) fn replace_file<T>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<T>,
) -> io::Result<T> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut w = BufWriter::with_capacity(64 * 1024, File::create(&tmp)?);
        let value = write(&mut w)?;
        w.flush()?;
        w.get_ref().sync_all()?;
        drop(w);
        fs::rename(&tmp, path)?;
        sync_parent(path);
        Ok(value)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Best effort: makes a rename in `path`'s directory durable (a no-op where directories cannot
/// be opened).
fn sync_parent(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_leading_key_matches_a_full_parse() {
        let full = |b: &[u8]| {
            let v: serde_json::Value = serde_json::from_slice(b).unwrap();
            super::super::results::key_hash(v["id"].as_str().unwrap(), v["model"].as_str().unwrap())
        };
        let line =
            br#"{"id":"a \"q\" \u00e9","model":"openai/gpt-4o-mini","status":"ok","vars":{"x":1}}"#;
        assert_eq!(leading_key(line), Some(full(line)));
        assert_eq!(parse_key(line), Ok(full(line)));
        // Another field order: the full parse answers.
        let other = br#"{"model":"m","id":"7","status":"ok"}"#;
        assert_eq!(leading_key(other), None);
        assert_eq!(parse_key(other), Ok(full(other)));
        // A torn line is not read as a key.
        assert_eq!(leading_key(br#"{"id":"1","model":"m","status":"o"#), None);
    }

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
        fs::write(&p, b"one\ntwo\nthree").unwrap();
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

    #[test]
    fn replace_file_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        replace_file(&p, |w| w.write_all(b"1")).unwrap();
        let err = replace_file(&p, |_| -> io::Result<()> { Err(io::Error::other("boom")) });
        assert!(err.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"1");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
