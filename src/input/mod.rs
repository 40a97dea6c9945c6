//! Streaming input readers: CSV (any of `,` `;` tab) and JSONL (three shapes plus OpenAI Batch
//! lines) into [`Row`]s, gzip-compressed or not (`.csv.gz`, `.jsonl.gz`).
//!
//! Readers never hold more than one record in memory; every error names the file and the line.

mod csv;
mod encoding;
mod jsonl;
mod quotes;
pub mod spool;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The format of an input file, chosen from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl Format {
    /// `.csv`/`.tsv` is CSV, `.jsonl`/`.ndjson`/`.json` is JSONL, each optionally followed by
    /// `.gz`; anything else is an error.
    pub fn from_path(path: &Path) -> Result<Format, InputError> {
        match extension(path).as_deref() {
            Some("csv") | Some("tsv") => Ok(Format::Csv),
            Some("jsonl") | Some("ndjson") | Some("json") => Ok(Format::Jsonl),
            _ => Err(InputError::new(
                path,
                0,
                "unknown input format: the file name must end in .csv, .tsv or .jsonl \
                 (optionally followed by .gz)",
            )),
        }
    }
}

/// The lower-case extension of `path`, under a `.gz` one.
fn extension(path: &Path) -> Option<String> {
    let inner = if is_gzip(path) {
        Path::new(path.file_stem()?)
    } else {
        path
    };
    Some(inner.extension()?.to_str()?.to_ascii_lowercase())
}

/// True when `path` ends in `.gz`: its bytes are gzip-compressed.
pub fn is_gzip(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// The bytes of `path` as they are read from `raw`: decompressed when the name ends in `.gz`.
pub fn decoded<R: Read + Send + 'static>(path: &Path, raw: R) -> Box<dyn Read + Send> {
    if is_gzip(path) {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    }
}

/// The delimiter a CSV input is read with by default: a tab for `.tsv`, else none (found from
/// the header line).
fn default_delimiter(path: &Path) -> Option<u8> {
    (extension(path).as_deref() == Some("tsv")).then_some(b'\t')
}

/// Parses `--delimiter`: one ASCII character, or `tab` / `\t`.
pub fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if text.len() == 1 && text.is_ascii() && text != "\"" && text != "\n" => {
            Ok(text.as_bytes()[0])
        }
        _ => Err(format!(
            "the delimiter must be one ASCII character (or `tab`), not a quote or a newline; got {text:?}"
        )),
    }
}

/// How a CSV file is written: results.csv mirrors it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// The file starts with a UTF-8 byte order mark.
    pub bom: bool,
    /// Lines end in `\r\n`.
    pub crlf: bool,
    /// The field delimiter.
    pub delimiter: u8,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect {
            bom: false,
            crlf: false,
            delimiter: b',',
        }
    }
}

/// What a row asks for, beyond its template variables.
#[derive(Debug, Clone, PartialEq)]
pub enum RowBody {
    /// The row's fields are template variables (CSV, or a plain JSONL object).
    Vars,
    /// A JSONL `{"messages": [..]}` row: the messages are sent as they are.
    Messages(Vec<Value>),
    /// An OpenAI Batch line: `body` is the whole request (its `model` is used unless the job
    /// names models).
    Batch(Map<String, Value>),
}

/// One input record.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The row's id: the id column/field, or `custom_id` for a batch line, else the 1-based row
    /// number. Numbers are rendered as written.
    pub id: String,
    /// The 1-based line of the file where the record starts (CSV records may span lines).
    pub line: u64,
    /// The 0-based position of the row among the data rows.
    pub index: u64,
    /// The template variables: CSV cells as strings, JSONL top-level fields as JSON values.
    pub vars: Map<String, Value>,
    /// Messages or a whole request body, when the row brings its own.
    pub body: RowBody,
    /// JSONL top-level numbers whose text differs from their shortest form (`1.50`, `2e3`):
    /// (name, the text as written), so that templates render them as written. Usually empty.
    pub raw_numbers: Vec<(String, String)>,
}

impl Row {
    /// About how many bytes of memory the row holds: its text plus a fixed overhead per value
    /// (a row of a million short columns weighs far more than its text).
    pub fn weight(&self) -> usize {
        let body = match &self.body {
            RowBody::Vars => 0,
            RowBody::Messages(messages) => messages.iter().map(value_weight).sum(),
            RowBody::Batch(body) => map_weight(body),
        };
        let numbers: usize = self
            .raw_numbers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 48)
            .sum();
        self.id.len() + map_weight(&self.vars) + body + numbers
    }
}

/// The weight of a JSON value (see [`Row::weight`]).
fn value_weight(value: &Value) -> usize {
    const VALUE: usize = 32;
    VALUE
        + match value {
            Value::String(s) => s.len(),
            Value::Array(items) => items.iter().map(value_weight).sum(),
            Value::Object(map) => map_weight(map),
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        }
}

/// The weight of a JSON object: its keys, values and a map entry's overhead.
fn map_weight(map: &Map<String, Value>) -> usize {
    const ENTRY: usize = 48;
    map.iter()
        .map(|(k, v)| ENTRY + k.len() + value_weight(v))
        .sum()
}

/// An input error, displayed as `FILE:LINE: message` (line 0 means the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file the error is in.
    pub path: PathBuf,
    /// The 1-based line, or 0 when the error is about the whole file.
    pub line: u64,
    /// What is wrong, naming the column or key and what was expected.
    pub message: String,
}

impl InputError {
    /// An error at `line` of `path`.
    pub fn new(path: &Path, line: u64, message: impl Into<String>) -> InputError {
        InputError {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for InputError {}

/// A streaming reader of rows. After the last row, [`RowReader::columns`] gives the input's
/// columns: the CSV header, or for JSONL the union of top-level keys in first-seen order.
pub struct RowReader {
    inner: Inner,
}

enum Inner {
    Csv(csv::CsvRows),
    Jsonl(jsonl::JsonlRows),
}

impl RowReader {
    /// Opens `path` (format from its extension). `id_column` names the id column/field; when
    /// `None`, a column/field named `id` is used, else the row number.
    pub fn open(path: &Path, id_column: Option<&str>) -> Result<RowReader, InputError> {
        RowReader::open_first_bytes(path, id_column, u64::MAX)
    }

    /// Opens `path` and reads only its first `bytes` bytes (the part the scan validated: rows
    /// appended later are not read).
    pub fn open_first_bytes(
        path: &Path,
        id_column: Option<&str>,
        bytes: u64,
    ) -> Result<RowReader, InputError> {
        RowReader::open_with(path, id_column, None, bytes)
    }

    /// Opens `path` (decompressed when it ends in `.gz`), reading only its first `bytes` bytes
    /// (of the file as stored). A CSV is split on `delimiter` when given, else on the one
    /// found from its header line (a tab for `.tsv`).
    pub fn open_with(
        path: &Path,
        id_column: Option<&str>,
        delimiter: Option<u8>,
        bytes: u64,
    ) -> Result<RowReader, InputError> {
        let format = Format::from_path(path)?;
        let file = std::fs::File::open(path)
            .map_err(|e| InputError::new(path, 0, format!("cannot open the input: {e}")))?;
        let source = decoded(path, file.take(bytes));
        RowReader::from_reader(path, format, source, id_column, delimiter)
    }

    /// Reads rows of `format` from any byte stream (a tee that hashes what it reads, a spooled
    /// stdin, ..), read as it is (not decompressed). `path` only names the input in error
    /// messages. A CSV is split on `delimiter` when given, else a tab for `.tsv`, else the one
    /// found from its header line. The stream is read in blocks as rows are asked for: memory
    /// does not grow with the number of rows.
    pub fn from_reader<R: Read + Send + 'static>(
        path: &Path,
        format: Format,
        reader: R,
        id_column: Option<&str>,
        delimiter: Option<u8>,
    ) -> Result<RowReader, InputError> {
        let reader: Box<dyn Read + Send> = Box::new(reader);
        let delimiter = delimiter.or_else(|| default_delimiter(path));
        let inner = match format {
            Format::Csv => Inner::Csv(csv::CsvRows::new(path, reader, id_column, delimiter)?),
            Format::Jsonl => Inner::Jsonl(jsonl::JsonlRows::new(path, reader, id_column)?),
        };
        Ok(RowReader { inner })
    }

    /// How the file is written (a JSONL input: the default, for results.csv).
    pub fn dialect(&self) -> Dialect {
        match &self.inner {
            Inner::Csv(r) => r.dialect(),
            Inner::Jsonl(_) => Dialect::default(),
        }
    }

    /// The columns seen so far (all of them once the reader is exhausted).
    pub fn columns(&self) -> Vec<String> {
        match &self.inner {
            Inner::Csv(r) => r.columns(),
            Inner::Jsonl(r) => r.columns(),
        }
    }
}

impl Iterator for RowReader {
    type Item = Result<Row, InputError>;

    /// The next row. After an error the reader may go on with the next record where that is
    /// meaningful (a bad JSONL line), or end (an unclosed CSV quote, unreadable file).
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Csv(r) => r.next(),
            Inner::Jsonl(r) => r.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_of_many_short_columns_weighs_more_than_its_text() {
        let text: String = (0..10_000).map(|i| format!("c{i},")).collect();
        let vars: Map<String, Value> = (0..10_000)
            .map(|i| (format!("c{i}"), Value::String(String::new())))
            .collect();
        let row = Row {
            id: "1".into(),
            line: 2,
            index: 0,
            vars,
            body: RowBody::Vars,
            raw_numbers: Vec::new(),
        };
        assert!(row.weight() > 10 * text.len(), "{}", row.weight());
    }
}
