//! Streaming CSV reader: a header row, then one [`Row`] per record.
//!
//! Cells become JSON string variables named by the header. Records are read one at a time into
//! a reused buffer, so memory does not grow with the file. See [`super::quotes`] for how the
//! start line of each record and an unclosed quote are found.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use csv::{ByteRecord, ReaderBuilder};
use serde_json::{Map, Value};

use super::encoding::{convert_hint, guess_single_byte, utf16_by_bom};
use super::quotes::Tracked;
use super::{Dialect, InputError, Row, RowBody};

type Source = Box<dyn Read + Send>;

/// Rows of a CSV file.
pub(super) struct CsvRows {
    path: PathBuf,
    reader: csv::Reader<Tracked<Source>>,
    header: Vec<String>,
    /// Which column holds the id, if any.
    id_idx: Option<usize>,
    record: ByteRecord,
    next_index: u64,
    done: bool,
    dialect: Dialect,
    /// The conversion hint was given once (on the first cell that is not UTF-8).
    hinted: bool,
}

impl CsvRows {
    /// Reads and checks the header. `id_column` must name a header column when given;
    /// `delimiter`, when not given, is found from the header line.
    pub(super) fn new(
        path: &Path,
        source: Source,
        id_column: Option<&str>,
        delimiter: Option<u8>,
    ) -> Result<CsvRows, InputError> {
        let err = |line: u64, msg: String| InputError::new(path, line, msg);
        let (tracked, head) = Tracked::new(source, delimiter)
            .map_err(|e| err(0, format!("cannot read the input: {e}")))?;
        if head.is_empty() {
            return Err(err(0, "file is empty: a CSV needs a header row".into()));
        }
        if let Some(encoding) = utf16_by_bom(&head) {
            return Err(err(0, convert_hint(path, encoding)));
        }
        let dialect = tracked.dialect;
        let mut reader = ReaderBuilder::new()
            .delimiter(dialect.delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(tracked);
        let mut record = ByteRecord::new();
        let got = reader
            .read_byte_record(&mut record)
            .map_err(|e| err(0, format!("cannot read the input: {e}")))?;
        let scan = &mut reader.get_mut().scan;
        let line = scan.take_start().unwrap_or(1);
        if let Some((qline, _)) = scan.unclosed_quote() {
            return Err(err(qline, unclosed_message("the header")));
        }
        if !got || record.is_empty() {
            return Err(err(
                0,
                "no header row: the file holds only blank lines".into(),
            ));
        }
        let header = header_names(&record).map_err(|m| match m {
            HeaderError::Text(m) => err(line, m),
            HeaderError::NotUtf8(m) => err(
                line,
                format!("{m}: {}", convert_hint(path, guess_single_byte(&head))),
            ),
        })?;
        let id_idx = match id_column {
            Some(name) => Some(header.iter().position(|h| h == name).ok_or_else(|| {
                err(
                    line,
                    format!(
                        "id column '{name}' not found in header ({})",
                        header.join(",")
                    ),
                )
            })?),
            None => header.iter().position(|h| h == "id"),
        };
        Ok(CsvRows {
            path: path.to_path_buf(),
            reader,
            header,
            id_idx,
            record,
            next_index: 0,
            done: false,
            dialect,
            hinted: false,
        })
    }

    /// The file's BOM, line ending and delimiter.
    pub(super) fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The header's column names.
    pub(super) fn columns(&self) -> Vec<String> {
        self.header.clone()
    }

    /// The next record as a row, or the error that makes it unusable.
    pub(super) fn next(&mut self) -> Option<Result<Row, InputError>> {
        if self.done {
            return None;
        }
        let got = match self.reader.read_byte_record(&mut self.record) {
            Ok(got) => got,
            Err(e) => {
                self.done = true;
                let line = self.reader.position().line();
                return Some(Err(self.error(line, format!("cannot read the input: {e}"))));
            }
        };
        let scan = &mut self.reader.get_mut().scan;
        let start = scan.take_start();
        if let Some((qline, field)) = scan.unclosed_quote() {
            self.done = true;
            let col = self.column_name(field);
            return Some(Err(self.error(qline, unclosed_message(&col))));
        }
        if !got {
            self.done = true;
            return None;
        }
        let line = start
            .or_else(|| self.record.position().map(|p| p.line()))
            .unwrap_or(0);
        let index = self.next_index;
        self.next_index += 1;
        let built = self.build(line, index);
        Some(built.map_err(|(l, m, bad)| {
            let msg = match bad {
                Some(encoding) if !self.hinted => {
                    self.hinted = true;
                    format!("{m}: {}", convert_hint(&self.path, encoding))
                }
                _ => m,
            };
            self.error(l, msg)
        }))
    }

    /// The row of the current record; an error is (line, message, the encoding the bytes
    /// look like when they are not UTF-8).
    fn build(&self, line: u64, index: u64) -> Result<Row, (u64, String, Option<&'static str>)> {
        let rec = &self.record;
        if rec.len() != self.header.len() {
            let msg = format!(
                "expected {} fields ({}), found {}",
                self.header.len(),
                self.header.join(","),
                rec.len()
            );
            return Err((line, msg, None));
        }
        let mut vars = Map::new();
        let mut newlines_before = 0u64;
        let mut id = None;
        for (i, (name, cell)) in self.header.iter().zip(rec.iter()).enumerate() {
            let text = std::str::from_utf8(cell).map_err(|e| {
                let ok = &cell[..e.valid_up_to()];
                let at = line + newlines_before + count_newlines(ok);
                let msg = format!(
                    "invalid UTF-8 in column '{name}' (byte {} of the cell)",
                    e.valid_up_to() + 1
                );
                (at, msg, Some(guess_single_byte(cell)))
            })?;
            newlines_before += count_newlines(cell);
            if Some(i) == self.id_idx {
                if text.is_empty() {
                    return Err((line, format!("empty id in column '{name}'"), None));
                }
                id = Some(text.to_owned());
            }
            vars.insert(name.clone(), Value::String(text.to_owned()));
        }
        Ok(Row {
            id: id.unwrap_or_else(|| (index + 1).to_string()),
            line,
            index,
            vars,
            body: RowBody::Vars,
            raw_numbers: Vec::new(),
        })
    }

    fn column_name(&self, field: usize) -> String {
        match self.header.get(field) {
            Some(name) => format!("column '{name}'"),
            None => format!("field {}", field + 1),
        }
    }

    fn error(&self, line: u64, message: String) -> InputError {
        InputError::new(&self.path, line, message)
    }
}

fn unclosed_message(place: &str) -> String {
    format!(
        "unclosed quote in {place}: the quoted field that opens on this line never closes \
         (the rest of the file would become one cell)"
    )
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Why a header is refused.
enum HeaderError {
    /// Bad names.
    Text(String),
    /// A name is not UTF-8 (the message, without the conversion hint).
    NotUtf8(String),
}

/// The header's names: UTF-8, non-empty, distinct.
fn header_names(record: &ByteRecord) -> Result<Vec<String>, HeaderError> {
    let mut names = Vec::with_capacity(record.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, raw) in record.iter().enumerate() {
        let name = std::str::from_utf8(raw)
            .map_err(|e| {
                HeaderError::NotUtf8(format!(
                    "invalid UTF-8 in header column {} (byte {} of the name)",
                    i + 1,
                    e.valid_up_to() + 1
                ))
            })?
            .to_owned();
        if name.trim().is_empty() {
            return Err(HeaderError::Text(format!(
                "empty column name in header (column {})",
                i + 1
            )));
        }
        if let Some(first) = seen.insert(name.clone(), i) {
            return Err(HeaderError::Text(format!(
                "duplicate column name '{name}' in header (columns {} and {})",
                first + 1,
                i + 1
            )));
        }
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &[u8], id_column: Option<&str>) -> Result<Vec<Result<Row, String>>, String> {
        let source: Source = Box::new(std::io::Cursor::new(text.to_vec()));
        let mut r =
            CsvRows::new(Path::new("t.csv"), source, id_column, None).map_err(|e| e.to_string())?;
        Ok(std::iter::from_fn(|| r.next())
            .map(|r| r.map_err(|e| e.to_string()))
            .collect())
    }

    #[test]
    fn reads_vars_ids_and_lines() {
        let got = rows(b"id,text\n7,\"a\nb\"\n8,c\n", None).unwrap();
        let r0 = got[0].as_ref().unwrap();
        assert_eq!((r0.id.as_str(), r0.line, r0.index), ("7", 2, 0));
        assert_eq!(r0.vars["text"], "a\nb");
        let r1 = got[1].as_ref().unwrap();
        assert_eq!((r1.id.as_str(), r1.line, r1.index), ("8", 4, 1));
    }

    #[test]
    fn row_number_is_the_default_id() {
        let got = rows(b"text\nx\ny", None).unwrap();
        assert_eq!(got[1].as_ref().unwrap().id, "2");
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            rows(b"", None).unwrap_err(),
            "t.csv: file is empty: a CSV needs a header row"
        );
        assert_eq!(
            rows(b"a,,b\n", None).unwrap_err(),
            "t.csv:1: empty column name in header (column 2)"
        );
        assert_eq!(
            rows(b"a,b,a\n", None).unwrap_err(),
            "t.csv:1: duplicate column name 'a' in header (columns 1 and 3)"
        );
        assert_eq!(
            rows(b"a,b,c\n", Some("x")).unwrap_err(),
            "t.csv:1: id column 'x' not found in header (a,b,c)"
        );
    }

    #[test]
    fn row_errors_continue() {
        let got = rows(b"id,text,lang\n1,a\n,b,c\n3,\xff,en\n4,d,e\n", None).unwrap();
        assert_eq!(
            got[0].as_ref().unwrap_err(),
            "t.csv:2: expected 3 fields (id,text,lang), found 2"
        );
        assert_eq!(
            got[1].as_ref().unwrap_err(),
            "t.csv:3: empty id in column 'id'"
        );
        assert_eq!(
            got[2].as_ref().unwrap_err(),
            "t.csv:4: invalid UTF-8 in column 'text' (byte 1 of the cell): the file looks like \
             Latin-1 (ISO-8859-1) or Windows-1252, not UTF-8; convert it with: \
             iconv -f ISO-8859-1 -t UTF-8 't.csv' > 't.utf8.csv'"
        );
        assert_eq!(got[3].as_ref().unwrap().id, "4");
    }

    #[test]
    fn unclosed_quote_is_an_error_at_its_line() {
        let got = rows(b"id,text\n1,a\n2,\"b\n3,c\n4,d\n", None).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        let e = got[1].as_ref().unwrap_err();
        assert!(
            e.starts_with("t.csv:3: unclosed quote in column 'text'"),
            "{e}"
        );
    }
}
