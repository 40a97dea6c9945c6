//! A byte stream wrapper for the CSV reader that follows the parser's quoting state.
//!
//! The `csv` crate accepts a quote that never closes: the rest of the file silently becomes
//! one cell. [`Tracked`] sits between the file and the parser and runs, over every byte the
//! parser is given, the same small state machine as `csv_core` with our settings (delimiter
//! `,`, quote `"`, doubled quotes, `\r`/`\n`/`\r\n` terminators, no escape, no comments). It
//! records where each record starts (the parser's own positions count from the end of the
//! previous record, so blank lines and `\r\n` would shift them) and where the last quote opened.
//! It also drops a UTF-8 byte order mark at the start of the stream, and reads the first line
//! ahead to find the file's [`Dialect`] (BOM, line ending, delimiter).

use std::collections::VecDeque;
use std::io::{self, Read};

use super::Dialect;

const BOM: &[u8] = b"\xEF\xBB\xBF";
/// The most read ahead to find the end of the first line (the header).
const FIRST_LINE_MAX: usize = 64 << 10;

/// Where the parser stands between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between records (terminators here are blank lines, which the parser skips).
    StartRecord,
    /// At the start of a field inside a record.
    StartField,
    /// Inside an unquoted field.
    InField,
    /// Inside a quoted field.
    InQuoted,
    /// Just after a quote inside a quoted field: closes it unless another quote follows.
    AfterQuote,
}

/// The scanner's findings, read by the CSV reader after each record.
#[derive(Debug)]
pub(super) struct Scan {
    state: State,
    /// The current 1-based line (counted by `\n`, as `csv_core` counts).
    line: u64,
    /// The 0-based field within the current record.
    field: usize,
    /// Line and field of the last quote that opened a quoted field.
    quote_at: (u64, usize),
    /// Start lines of the records seen but not yet taken by the parser. Bounded by the
    /// parser's read-ahead buffer, not by the file.
    starts: VecDeque<u64>,
    /// The underlying stream reported its end.
    pub(super) eof: bool,
    /// The field delimiter.
    delimiter: u8,
}

impl Scan {
    fn new(delimiter: u8) -> Scan {
        Scan {
            delimiter,
            state: State::StartRecord,
            line: 1,
            field: 0,
            quote_at: (1, 0),
            starts: VecDeque::new(),
            eof: false,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.step(b);
        }
    }

    fn step(&mut self, b: u8) {
        let term = b == b'\n' || b == b'\r';
        if self.state == State::StartRecord {
            if term {
                self.line += (b == b'\n') as u64;
                return;
            }
            self.starts.push_back(self.line);
            self.field = 0;
            self.state = State::StartField;
        }
        self.state = match (self.state, b) {
            (State::StartField, b'"') => {
                self.quote_at = (self.line, self.field);
                State::InQuoted
            }
            (State::InQuoted, b'"') => State::AfterQuote,
            (State::InQuoted, _) => State::InQuoted,
            (State::AfterQuote, b'"') => State::InQuoted,
            (_, d) if d == self.delimiter => {
                self.field += 1;
                State::StartField
            }
            _ if term => State::StartRecord,
            _ => State::InField,
        };
        self.line += (b == b'\n') as u64;
    }

    /// The start line of the next record the parser returns, if the scanner saw it.
    pub(super) fn take_start(&mut self) -> Option<u64> {
        self.starts.pop_front()
    }

    /// When the whole stream has been read and it ended inside a quoted field: the line where
    /// that quote opened and the 0-based field it opened in.
    pub(super) fn unclosed_quote(&self) -> Option<(u64, usize)> {
        (self.eof && self.state == State::InQuoted).then_some(self.quote_at)
    }
}

/// A reader that shows every byte it hands out to a [`Scan`], minus a leading BOM.
pub(super) struct Tracked<R> {
    inner: R,
    /// Bytes read ahead while looking for a BOM, served before the rest of the stream.
    prefix: Vec<u8>,
    prefix_pos: usize,
    /// What the scanner found so far.
    pub(super) scan: Scan,
    /// The file's BOM, line ending and delimiter.
    pub(super) dialect: Dialect,
}

impl<R: Read> Tracked<R> {
    /// Wraps `inner`, reading its first line ahead to drop a BOM and find the dialect (the
    /// delimiter is `delimiter` when given, else the most frequent of `,` `;` and tab outside
    /// quotes in the first line). Also returns the first bytes read (a BOM included), empty
    /// when the stream held no bytes at all.
    pub(super) fn new(mut inner: R, delimiter: Option<u8>) -> io::Result<(Tracked<R>, Vec<u8>)> {
        let mut prefix = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        while prefix.len() < FIRST_LINE_MAX && !prefix.contains(&b'\n') {
            match inner.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => prefix.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let head = prefix.clone();
        let bom = prefix.starts_with(BOM);
        if bom {
            prefix.drain(..BOM.len());
        }
        let first_line = prefix.split(|&b| b == b'\n').next().unwrap_or(&[]);
        let dialect = Dialect {
            bom,
            crlf: first_line.ends_with(b"\r") && prefix.len() > first_line.len(),
            delimiter: delimiter.unwrap_or_else(|| sniff_delimiter(first_line)),
        };
        let tracked = Tracked {
            inner,
            prefix,
            prefix_pos: 0,
            scan: Scan::new(dialect.delimiter),
            dialect,
        };
        Ok((tracked, head))
    }
}

/// The most frequent of `,`, `;` and tab outside quotes in `line` (`,` on a tie or none).
fn sniff_delimiter(line: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = [b',', b';', b'\t']
        .into_iter()
        .zip(counts)
        .fold(
            (b',', 0),
            |best, (d, n)| if n > best.1 { (d, n) } else { best },
        );
    best.0
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.prefix_pos < self.prefix.len() {
            let rest = &self.prefix[self.prefix_pos..];
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.prefix_pos += n;
            self.scan.feed(&buf[..n]);
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.scan.eof = true;
        }
        self.scan.feed(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(bytes: &[u8]) -> Scan {
        let (mut t, _) = Tracked::new(bytes, Some(b',')).unwrap();
        let mut out = Vec::new();
        t.read_to_end(&mut out).unwrap();
        t.scan
    }

    #[test]
    fn record_starts_skip_blank_lines_and_follow_quoted_newlines() {
        let mut s = scan_all(b"a,b\r\n\r\n1,\"x\ny\"\n\n2,z");
        let starts: Vec<u64> = std::iter::from_fn(|| s.take_start()).collect();
        assert_eq!(starts, vec![1, 3, 6]);
        assert_eq!(s.unclosed_quote(), None);
    }

    #[test]
    fn unclosed_quote_reports_where_it_opened() {
        let s = scan_all(b"a,b\n1,2\n3,\"oops\n4,5\n");
        assert_eq!(s.unclosed_quote(), Some((3, 1)));
    }

    #[test]
    fn doubled_quotes_and_quotes_inside_unquoted_fields_are_fine() {
        assert_eq!(scan_all(b"a\n\"say \"\"hi\"\"\"\n").unclosed_quote(), None);
        assert_eq!(scan_all(b"a\n5\"10\n").unclosed_quote(), None);
        assert_eq!(scan_all(b"a\n\"x\"y\"z\n").unclosed_quote(), None);
    }

    #[test]
    fn bom_is_dropped_and_empty_is_seen() {
        let (mut t, head) = Tracked::new(&b"\xEF\xBB\xBF\"id\"\n"[..], None).unwrap();
        let mut out = Vec::new();
        t.read_to_end(&mut out).unwrap();
        assert!(!head.is_empty());
        assert_eq!(out, b"\"id\"\n");
        assert!(t.dialect.bom);
        let (_, head) = Tracked::new(&b""[..], None).unwrap();
        assert!(head.is_empty());
    }

    #[test]
    fn the_dialect_comes_from_the_first_line() {
        let dialect = |bytes: &[u8]| Tracked::new(bytes, None).unwrap().0.dialect;
        let d = dialect(b"a;b;\"c,d\"\r\n1;2;3\r\n");
        assert_eq!((d.bom, d.crlf, d.delimiter), (false, true, b';'));
        let d = dialect(b"Product Name\tPrice\nx\t1\n");
        assert_eq!((d.crlf, d.delimiter), (false, b'\t'));
        let d = dialect(b"a,b;c\n");
        assert_eq!(d.delimiter, b',');
        assert_eq!(dialect(b"text\n").delimiter, b',');
        let (t, _) = Tracked::new(&b"a;b\n"[..], Some(b',')).unwrap();
        assert_eq!(t.dialect.delimiter, b',');
    }

    proptest::proptest! {
        /// The scanner agrees with the `csv` parser: one start per record, at the line the
        /// parser reports whenever its position is not on a leftover terminator.
        #[test]
        fn agrees_with_the_csv_parser(bytes in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::prelude::any::<u8>(),
                proptest::strategy::Just(b'"'),
                proptest::strategy::Just(b','),
                proptest::strategy::Just(b'\n'),
                proptest::strategy::Just(b'\r'),
            ],
            0..300,
        )) {
            let (tracked, _) = Tracked::new(&bytes[..], Some(b',')).unwrap();
            let body = if bytes.starts_with(BOM) { &bytes[3..] } else { &bytes[..] };
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(tracked);
            let mut record = csv::ByteRecord::new();
            while reader.read_byte_record(&mut record).unwrap() {
                let start = reader.get_mut().scan.take_start();
                proptest::prop_assert!(start.is_some());
                let pos = record.position().unwrap();
                let at = body.get(pos.byte() as usize).copied();
                if at != Some(b'\n') && at != Some(b'\r') {
                    proptest::prop_assert_eq!(start, Some(pos.line()));
                }
            }
            proptest::prop_assert_eq!(reader.get_mut().scan.take_start(), None);
        }
    }
}
