//! The result cells of `results.csv`, gathered once per line so the table is written without
//! parsing `results.jsonl` row by row in input order.
//!
//! [`CellFile`] appends one record per line (the line's [`super::csv::RESULT_COLUMNS`] cells
//! but `model`, the `output.<property>` cells after `output`) to an unlinked temp file in the
//! output dir, and keeps (key hash, record offset): 16 bytes a key, the record itself on disk.
//! A first run's journal writer gives it each line as it writes it (`output/seen.rs`);
//! otherwise [`CellFile::from_journal`] reads the compacted journal once, sequentially.
//! [`Cells::get`] reads a record back through a window ([`LineReaderAt`]): results.csv looks
//! records up in about the order they were written, so that is one `pread` a megabyte, not one
//! per row.
//!
//! A record is one line: its cells separated by `0x1F`, with `\` written `\\`, a newline
//! `\n` and `0x1F` `\u` inside a cell.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde_json::Value;

use super::lines::LineReaderAt;
use super::view::LineView;
use super::{ResultLine, Status};

/// Between two cells of a record.
const SEP: u8 = 0x1F;

/// The position of the `cost_usd` cell in a record with `properties` schema properties.
pub(crate) fn cost_cell(properties: usize) -> usize {
    2 + properties
}

/// Gathers the cells of the kept lines (see the module doc).
pub(crate) struct CellFile {
    file: BufWriter<File>,
    properties: Vec<String>,
    written: u64,
    index: Vec<(u64, u64)>,
    /// The first write error: [`CellFile::finish`] returns it.
    error: Option<io::Error>,
    record: Vec<u8>,
}

impl CellFile {
    /// An empty cell file in `dir` (created, then unlinked at once: it is gone with the
    /// process, whatever ends it), for a schema with these top-level `properties`.
    pub(crate) fn create(dir: &Path, properties: &[String]) -> io::Result<Self> {
        let path = crate::fsutil::temp_path(&dir.join("results.csv.cells"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        std::fs::remove_file(&path)?;
        Ok(CellFile {
            file: BufWriter::with_capacity(64 * 1024, file),
            properties: properties.to_vec(),
            written: 0,
            index: Vec::new(),
            error: None,
            record: Vec::new(),
        })
    }

    /// The cells of the readable lines of the journal `results` (absent: none), the latest
    /// line of a key winning, in a cell file in `dir`: one sequential read.
    pub(crate) fn from_journal(
        dir: &Path,
        results: &Path,
        properties: &[String],
    ) -> io::Result<Cells> {
        let mut cells = CellFile::create(dir, properties)?;
        match std::fs::File::open(results) {
            Ok(file) => {
                let mut scanner = super::lines::LineScanner::new(file);
                while scanner.next_line()?.is_some() {
                    if let Ok(line) = scanner.view() {
                        cells.read(&line);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        cells.finish()
    }

    /// The schema properties whose cells it gathers.
    pub(crate) fn properties(&self) -> &[String] {
        &self.properties
    }

    /// The cells of every line shown, the latest line of a key winning.
    pub(crate) fn finish(mut self) -> io::Result<Cells> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.file.flush()?;
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        // Latest wins: offsets grow in the order the lines were shown.
        super::key::keep_latest(&mut self.index);
        Ok(Cells {
            reader: LineReaderAt::from_file(file),
            index: self.index,
        })
    }

    /// Gathers the cells of a line as the journal writer wrote it (`key`: its key's hash).
    pub(crate) fn written(&mut self, line: &ResultLine, key: u64) {
        let source = Source {
            key,
            status: line.status,
            output: line.output.as_deref(),
            parsed: line
                .parsed
                .as_ref()
                .and_then(|p| p.as_ref())
                .map(|p| p.get()),
            cost_usd: line.cost_usd,
            tokens: [line.prompt_tokens, line.completion_tokens],
            error: line.error.as_ref().map(|e| (e.kind, e.message.as_str())),
            finish_reason: line.finish_reason.as_deref(),
        };
        self.add(&source);
    }

    /// Gathers the cells of a line read back from the journal.
    pub(crate) fn read(&mut self, line: &LineView<'_>) {
        self.add(&Source {
            key: line.key().hash(),
            status: line.status,
            output: line.output.as_deref(),
            parsed: line.parsed.map(|p| p.get()),
            cost_usd: line.cost_usd,
            tokens: [line.prompt_tokens, line.completion_tokens],
            error: line.error.as_ref().map(|e| (e.kind, e.message.as_ref())),
            finish_reason: line.finish_reason.as_deref(),
        });
    }

    fn add(&mut self, source: &Source<'_>) {
        if self.error.is_none()
            && let Err(e) = self.append(source)
        {
            self.error = Some(e);
        }
    }

    fn append(&mut self, line: &Source<'_>) -> io::Result<()> {
        self.record.clear();
        // The first cell, never empty, has no separator before it.
        self.record.extend_from_slice(match line.status {
            Status::Ok => b"ok",
            Status::Error => b"error",
        });
        let mut cell = |text: &str| push_cell(&mut self.record, text);
        cell(line.output.unwrap_or(""));
        if !self.properties.is_empty() {
            let parsed: serde_json::Map<String, Value> = line
                .parsed
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or_default();
            for p in &self.properties {
                cell(
                    &parsed
                        .get(p)
                        .map_or_else(String::new, crate::schema::value_text),
                );
            }
        }
        // Amounts and counts have nothing to escape: written in place.
        self.record.push(SEP);
        if let Some(c) = line.cost_usd {
            let _ = write!(self.record, "{}", c.normalize());
        }
        for n in line.tokens {
            self.record.push(SEP);
            if let Some(n) = n {
                self.record
                    .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            }
        }
        match line.error {
            Some((kind, message)) => {
                push_cell(&mut self.record, kind.as_str());
                self.record.extend_from_slice(b": ");
                push_escaped(&mut self.record, message);
            }
            None => push_cell(&mut self.record, ""),
        }
        push_cell(&mut self.record, line.finish_reason.unwrap_or(""));
        self.record.push(b'\n');
        self.file.write_all(&self.record)?;
        self.index.push((line.key, self.written));
        self.written += self.record.len() as u64;
        Ok(())
    }
}

/// What a record is made of: a line read back ([`LineView`]) or as written ([`ResultLine`]).
struct Source<'a> {
    key: u64,
    status: Status,
    output: Option<&'a str>,
    /// `parsed`'s JSON text (`None`: absent or null).
    parsed: Option<&'a str>,
    cost_usd: Option<rust_decimal::Decimal>,
    /// prompt_tokens, completion_tokens.
    tokens: [Option<u64>; 2],
    error: Option<(super::ErrorKind, &'a str)>,
    finish_reason: Option<&'a str>,
}

/// Appends a separator, then `text` escaped.
fn push_cell(record: &mut Vec<u8>, text: &str) {
    record.push(SEP);
    push_escaped(record, text);
}

/// Appends `text` escaped.
fn push_escaped(record: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memchr3(b'\\', b'\n', SEP, &bytes[from..]) {
        record.extend_from_slice(&bytes[from..from + i]);
        record.extend_from_slice(match bytes[from + i] {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            _ => b"\\u",
        });
        from += i + 1;
    }
    record.extend_from_slice(&bytes[from..]);
}

/// One cell of a record, unescaped (borrowed when it has no escape).
fn unescape(cell: &str) -> Cow<'_, str> {
    if !cell.contains('\\') {
        return Cow::Borrowed(cell);
    }
    let mut out = String::with_capacity(cell.len());
    let mut chars = cell.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('u') => out.push(SEP as char),
            Some(other) => out.push(other),
            None => {}
        }
    }
    Cow::Owned(out)
}

/// The cells of the kept lines, by key.
pub(crate) struct Cells {
    reader: LineReaderAt,
    index: Vec<(u64, u64)>,
}

impl Cells {
    /// The keys that have cells.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Pushes the cells of the key whose hash is `key` onto `cells` (status, output, the
    /// properties, cost_usd, prompt_tokens, completion_tokens, error, finish_reason); false,
    /// and nothing pushed, when no line of that key was kept.
    pub(crate) fn get<'a>(
        &'a mut self,
        key: u64,
        cells: &mut Vec<Cow<'a, str>>,
    ) -> io::Result<bool> {
        let Ok(i) = self.index.binary_search_by_key(&key, |e| e.0) else {
            return Ok(false);
        };
        let record = self.reader.read_at(self.index[i].1)?;
        let record = std::str::from_utf8(record).map_err(io::Error::other)?;
        cells.extend(record.split(SEP as char).map(unescape));
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip_through_their_escapes() {
        for text in [
            "",
            "plain",
            "a\\b",
            "two\nlines",
            "sep\u{1f}in",
            "\\n is not a newline",
            "é\n\\\u{1f}",
        ] {
            let mut record = Vec::new();
            push_cell(&mut record, text);
            push_cell(&mut record, "next");
            assert!(!record.contains(&b'\n'), "{text:?}");
            let record = std::str::from_utf8(&record[1..]).unwrap();
            let cells: Vec<_> = record.split(SEP as char).map(unescape).collect();
            assert_eq!(cells, [text, "next"], "{text:?}");
        }
    }

    /// Through a whole results.csv: the texts a record escapes come out as they went in,
    /// and the latest line of a key wins.
    #[test]
    fn results_csv_shows_each_text_as_it_is() {
        use crate::output::line::LineBuilder;
        let dir = tempfile::tempdir().unwrap();
        let tricky = "a\\b\nc\u{1f}d,\"e\"";
        let lines = [
            LineBuilder::new("1", "m").ok("superseded").build(),
            LineBuilder::new("2", "m").ok("two").build(),
            LineBuilder::new("1", "m").ok(tricky).build(),
            LineBuilder::new("4", "m")
                .counts(
                    Some(rust_decimal::Decimal::new(120, 4)),
                    2,
                    (0, Default::default()),
                    0,
                )
                .error(crate::output::ErrorKind::Provider, Some(502), tricky)
                .build(),
        ];
        let text: String = lines
            .iter()
            .map(|l| serde_json::to_string(l).unwrap() + "\n")
            .collect();
        let results = dir.path().join("results.jsonl");
        std::fs::write(&results, text).unwrap();
        let rows = ["1", "2", "3", "4"].map(|id| crate::input::Row {
            id: id.to_string(),
            line: 0,
            index: 0,
            vars: serde_json::Map::from_iter([("id".to_string(), Value::from(id))]),
            body: crate::input::RowBody::Vars,
            raw_numbers: Vec::new(),
        });
        let out = dir.path().join("results.csv");
        let columns = ["id".to_string()];
        let n = crate::output::csv::write_results_csv(
            &results,
            rows.into_iter(),
            &columns,
            &["m".to_string()],
            &out,
        )
        .unwrap();
        assert_eq!(n, 4);
        let mut reader = ::csv::Reader::from_path(&out).unwrap();
        let records: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect();
        assert_eq!(records[0][2..4], ["ok".to_string(), tricky.to_string()]);
        assert_eq!(records[1][2..4], ["ok".to_string(), "two".to_string()]);
        assert_eq!(records[2][2], "not_sent");
        let error = format!("provider: {tricky}");
        assert_eq!(
            records[3][2..9],
            ["error", "", "0.012", "", "", &error, ""].map(str::to_string)
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no cell file is left behind: {names:?}");
    }
}
