//! `results.csv`: the results in input order x model order, for spreadsheets.
//!
//! The rows come from re-reading the input; each (row, model) result is read from
//! `results.jsonl` through an index of key hash -> byte offset, so memory is about 16 bytes per
//! key, not the size of the output.

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::path::Path;

use serde_json::Value;

use super::Status;
use super::key::key_hash;
use super::lines::{LineReaderAt, LineScanner};
use crate::fsutil::replace_file;
use crate::input::Row;

/// The result columns that follow the input's columns.
pub const RESULT_COLUMNS: [&str; 8] = [
    "model",
    "status",
    "output",
    "cost_usd",
    "prompt_tokens",
    "completion_tokens",
    "error",
    "finish_reason",
];

/// Writes `results.csv` (to a temp file, then renamed to `out`) in input order x model order:
/// the input's `columns` (the CSV header, or the JSONL union of keys), then [`RESULT_COLUMNS`].
/// `rows` are the input rows in order (re-read by the caller); `results` is `results.jsonl`
/// (compacted or not: the latest line of a key wins). A (row, model) with no line gets status
/// `not_sent` and empty result cells. Missing variables are empty, strings are written as they
/// are, other JSON values as compact JSON text. `error` is `kind: message`. Every cell is
/// protected by [`escape_formula`]. Returns the number of data records written.
pub fn write_results_csv(
    results: &Path,
    rows: impl Iterator<Item = Row>,
    columns: &[String],
    models: &[String],
    out: &Path,
) -> io::Result<u64> {
    write_results_csv_indexed(
        results,
        &index_offsets(results)?,
        rows,
        columns,
        models,
        out,
    )
}

/// [`write_results_csv`] with the index of `results` already built: (key hash, offset of the
/// key's latest line) sorted by key, as [`super::results::compact`] returns it.
pub fn write_results_csv_indexed(
    results: &Path,
    index: &[(u64, u64)],
    rows: impl Iterator<Item = Row>,
    columns: &[String],
    models: &[String],
    out: &Path,
) -> io::Result<u64> {
    let offset_of = |key: u64| {
        index
            .binary_search_by_key(&key, |e| e.0)
            .ok()
            .map(|i| index[i].1)
    };
    let mut reader = if index.is_empty() {
        None
    } else {
        Some(LineReaderAt::open(results)?)
    };
    replace_file(out, |w| {
        let mut csv = ::csv::Writer::from_writer(w);
        let header = columns.iter().map(String::as_str).chain(RESULT_COLUMNS);
        write_escaped(&mut csv, header)?;
        let mut written = 0u64;
        for row in rows {
            for model in models {
                let bytes = match (&mut reader, offset_of(key_hash(&row.id, model))) {
                    (Some(r), Some(offset)) => Some(r.read_at(offset)?),
                    _ => None,
                };
                let line = bytes
                    .and_then(|b| serde_json::from_slice::<CsvLine<'_>>(b).ok())
                    .filter(|l| l.id == row.id && l.model == model.as_str());
                // Cells borrow from the row and the line: no copy of the big texts.
                let mut record: Vec<Cow<'_, str>> =
                    Vec::with_capacity(columns.len() + RESULT_COLUMNS.len());
                record.extend(columns.iter().map(|c| var_cell(row.vars.get(c))));
                result_cells(&mut record, model, line.as_ref());
                write_escaped(&mut csv, record.iter().map(|c| c.as_ref()))?;
                written += 1;
            }
        }
        csv.flush()?;
        Ok(written)
    })
}

/// Writes one record, every cell through [`escape_formula`].
fn write_escaped<'a, W: io::Write>(
    csv: &mut ::csv::Writer<W>,
    cells: impl Iterator<Item = &'a str>,
) -> io::Result<()> {
    for cell in cells {
        csv.write_field(escape_formula(cell).as_bytes())?;
    }
    csv.write_record(None::<&[u8]>)?;
    Ok(())
}

/// (key hash, offset of the key's latest line), sorted by key.
fn index_offsets(results: &Path) -> io::Result<Vec<(u64, u64)>> {
    let mut index = Vec::new();
    let file = match File::open(results) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(index),
        Err(e) => return Err(e),
    };
    let mut scanner = LineScanner::new(file);
    while let Some(info) = scanner.next_line()? {
        if let Ok(key) = scanner.readable_key() {
            index.push((key, info.offset));
        }
    }
    // Latest wins: a stable sort keeps each key's lines in file order; keep the last.
    index.sort_by_key(|e| e.0);
    index.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            *earlier = *later;
        }
        same
    });
    Ok(index)
}

/// A template variable as a cell: empty when missing or null, strings as they are, anything
/// else as compact JSON.
fn var_cell(value: Option<&Value>) -> Cow<'_, str> {
    match value {
        None | Some(Value::Null) => Cow::Borrowed(""),
        Some(Value::String(s)) => Cow::Borrowed(s),
        Some(other) => Cow::Owned(other.to_string()),
    }
}

/// The fields of a result line that results.csv shows, borrowed from the line's text (the
/// rest of the line is skipped, not built).
#[derive(serde::Deserialize)]
struct CsvLine<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    model: Cow<'a, str>,
    status: Status,
    #[serde(borrow, default)]
    output: Option<Cow<'a, str>>,
    #[serde(with = "crate::money::opt", default)]
    cost_usd: Option<rust_decimal::Decimal>,
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(borrow, default)]
    error: Option<CsvError<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

/// `error` of a [`CsvLine`].
#[derive(serde::Deserialize)]
struct CsvError<'a> {
    kind: super::ErrorKind,
    #[serde(borrow)]
    message: Cow<'a, str>,
}

/// Pushes the [`RESULT_COLUMNS`] cells of one (row, model).
fn result_cells<'a>(record: &mut Vec<Cow<'a, str>>, model: &'a str, line: Option<&'a CsvLine<'a>>) {
    record.push(Cow::Borrowed(model));
    let Some(line) = line else {
        record.push(Cow::Borrowed("not_sent"));
        record.extend(std::iter::repeat_n(
            Cow::Borrowed(""),
            RESULT_COLUMNS.len() - 2,
        ));
        return;
    };
    let status = match line.status {
        Status::Ok => "ok",
        Status::Error => "error",
    };
    let num = |n: Option<u64>| n.map_or(Cow::Borrowed(""), |n| Cow::Owned(n.to_string()));
    record.push(Cow::Borrowed(status));
    record.push(Cow::Borrowed(line.output.as_deref().unwrap_or("")));
    record.push(
        line.cost_usd
            .map_or(Cow::Borrowed(""), |c| Cow::Owned(c.normalize().to_string())),
    );
    record.push(num(line.prompt_tokens));
    record.push(num(line.completion_tokens));
    record.push(line.error.as_ref().map_or(Cow::Borrowed(""), |e| {
        Cow::Owned(format!("{}: {}", e.kind.as_str(), e.message))
    }));
    record.push(Cow::Borrowed(line.finish_reason.as_deref().unwrap_or("")));
}

/// Protects a cell against CSV injection (OWASP): a cell starting with `=`, `+`, `-`, `@`, a
/// tab or a carriage return, that is not a plain number, gets a leading `'`. `-3.5` and `+1`
/// stay as they are.
pub fn escape_formula(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') if !is_number(cell) => {
            Cow::Owned(format!("'{cell}"))
        }
        _ => Cow::Borrowed(cell),
    }
}

/// A plain decimal number: optional sign, digits with at most one `.`, optional exponent.
fn is_number(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = !(int.is_empty() && frac.is_empty()) && digits(int) && digits(frac);
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formula_escaping() {
        assert_eq!(escape_formula("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(escape_formula("+1"), "+1");
        assert_eq!(escape_formula("-3.5"), "-3.5");
        assert_eq!(escape_formula("-1e-5"), "-1e-5");
        assert_eq!(escape_formula("-x"), "'-x");
        assert_eq!(escape_formula("@x"), "'@x");
        assert_eq!(escape_formula("\t=x"), "'\t=x");
        assert_eq!(escape_formula("\r1"), "'\r1");
        assert_eq!(escape_formula("-"), "'-");
        assert_eq!(escape_formula("+."), "'+.");
        assert_eq!(escape_formula("-1e"), "'-1e");
        assert_eq!(escape_formula("-inf"), "'-inf");
        assert_eq!(escape_formula("plain = text"), "plain = text");
        assert_eq!(escape_formula(""), "");
        assert!(matches!(escape_formula("ok"), Cow::Borrowed(_)));
    }

    #[test]
    fn var_cells() {
        assert_eq!(var_cell(None), "");
        assert_eq!(var_cell(Some(&Value::Null)), "");
        assert_eq!(var_cell(Some(&json!("a \"b\""))), "a \"b\"");
        assert_eq!(var_cell(Some(&json!(3.5))), "3.5");
        assert_eq!(var_cell(Some(&json!({"a": [1, 2]}))), r#"{"a":[1,2]}"#);
    }
}
