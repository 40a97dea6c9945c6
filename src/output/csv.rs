//! `results.csv`: the results in input order x variant order x model order, for spreadsheets.
//!
//! The rows come from re-reading the input; each (row, model) result is read from
//! `results.jsonl` through an index of key hash -> byte offset, so memory is about 16 bytes per
//! key, not the size of the output. The file mirrors a CSV input's BOM, line ending and
//! delimiter ([`Dialect`]); a result column whose name an input column already has is written
//! as `result.<name>`. `--layout wide` writes one record per input row, with a status, output
//! and cost column per model.

use std::borrow::Cow;
use std::io;
use std::path::Path;

use serde_json::Value;

use super::csv_cells::{CellFile, Cells};
use super::key::ResultKey;
use crate::fsutil::replace_file;
use crate::input::{Dialect, Row};

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

/// The result columns of each model in the wide layout (`<model>.<column>`).
pub const WIDE_COLUMNS: [&str; 3] = ["status", "output", "cost_usd"];

/// The shape of results.csv.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Layout {
    /// One record per (input row, model): the input's columns, then [`RESULT_COLUMNS`].
    #[default]
    Long,
    /// One record per input row: the input's columns, then [`WIDE_COLUMNS`] for each model.
    Wide,
}

/// How results.csv is laid out and written.
#[derive(Debug, Clone, Copy)]
pub struct CsvSpec<'a> {
    /// The input's columns (the CSV header, or the JSONL union of keys).
    pub columns: &'a [String],
    /// The models, in order.
    pub models: &'a [String],
    /// The prompt variants, in order (`[None]`, or empty, when the job defines none).
    pub variants: &'a [Option<String>],
    /// The input's BOM, line ending and delimiter.
    pub dialect: Dialect,
    /// Long or wide.
    pub layout: Layout,
    /// The schema's top-level properties (structured output): an `output.<property>` column
    /// each, after `output` (long layout).
    pub properties: &'a [String],
}

impl CsvSpec<'_> {
    /// True when the job defines prompt variants: the long layout then has a `variant` column
    /// after `model`, and the wide layout's columns are `<variant>/<model>.<column>`.
    pub fn has_variants(&self) -> bool {
        self.variants.iter().any(Option::is_some)
    }

    /// The (variant, model) pairs of each row, in order (the variant `None` without variants).
    fn pairs(&self) -> impl Iterator<Item = (Option<&str>, &str)> {
        let variants: &[Option<String>] = match self.variants.is_empty() {
            true => &[None],
            false => self.variants,
        };
        let models = self.models;
        variants
            .iter()
            .flat_map(move |v| models.iter().map(move |m| (v.as_deref(), m.as_str())))
    }

    /// The header: the input's columns, then the result columns, each renamed
    /// `result.<name>` when an input column has its name (the input's column is kept as is).
    pub fn header(&self) -> Vec<String> {
        let results: Vec<String> = match self.layout {
            Layout::Long => RESULT_COLUMNS
                .iter()
                .flat_map(|&c| {
                    let mut names = vec![c.to_string()];
                    if c == "model" && self.has_variants() {
                        names.push("variant".into());
                    }
                    if c == "output" {
                        names.extend(self.properties.iter().map(|p| format!("output.{p}")));
                    }
                    names
                })
                .collect(),
            Layout::Wide => self
                .pairs()
                .flat_map(|(v, m)| {
                    let prefix = v.map_or(String::new(), |v| format!("{v}/"));
                    WIDE_COLUMNS.iter().map(move |c| format!("{prefix}{m}.{c}"))
                })
                .collect(),
        };
        let renamed = results.into_iter().map(|name| {
            if self.columns.contains(&name) {
                format!("result.{name}")
            } else {
                name
            }
        });
        self.columns.iter().cloned().chain(renamed).collect()
    }
}

/// Writes `results.csv` (to a temp file, then renamed to `out`) in input order x model order:
/// the input's `columns` (the CSV header, or the JSONL union of keys), then [`RESULT_COLUMNS`].
/// `rows` are the input rows in order (re-read by the caller); `results` is `results.jsonl`
/// (compacted or not: the latest readable line of a key wins). A (row, model) with no line
/// gets status `not_sent` and empty result cells. Missing variables are empty, strings are
/// written as they are, other JSON values as compact JSON text. `error` is `kind: message`.
/// Every cell is protected by [`escape_formula`]. Returns the number of data records written.
pub fn write_results_csv(
    results: &Path,
    rows: impl Iterator<Item = Row>,
    columns: &[String],
    models: &[String],
    out: &Path,
) -> io::Result<u64> {
    let spec = CsvSpec {
        columns,
        models,
        variants: &[],
        dialect: Dialect::default(),
        layout: Layout::Long,
        properties: &[],
    };
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    write_results_csv_cells(CellFile::from_journal(dir, results, &[])?, rows, &spec, out)
}

/// [`write_results_csv`] with the result cells already gathered (by compaction's read of the
/// journal: [`CellFile`]), in the layout and dialect of `spec`. Returns the number of data
/// records written.
pub(crate) fn write_results_csv_cells(
    mut cells: Cells,
    rows: impl Iterator<Item = Row>,
    spec: &CsvSpec<'_>,
    out: &Path,
) -> io::Result<u64> {
    let CsvSpec { columns, .. } = *spec;
    let properties = spec.properties.len();
    replace_file(out, |w| {
        if spec.dialect.bom {
            io::Write::write_all(w, b"\xEF\xBB\xBF")?;
        }
        let terminator = if spec.dialect.crlf {
            ::csv::Terminator::CRLF
        } else {
            ::csv::Terminator::Any(b'\n')
        };
        let mut csv = ::csv::WriterBuilder::new()
            .delimiter(spec.dialect.delimiter)
            .terminator(terminator)
            .from_writer(w);
        write_escaped(&mut csv, spec.header().iter().map(String::as_str))?;
        let mut written = 0u64;
        let mut wide: Vec<String> = Vec::new();
        let with_variant = spec.has_variants();
        let width = columns.len() + RESULT_COLUMNS.len() + 1 + properties;
        for row in rows {
            wide.clear();
            for (variant, model) in spec.pairs() {
                let key = ResultKey::of(&row.id, variant, model).hash();
                // Cells borrow from the row and the cell file: no copy of the big texts.
                let mut record: Vec<Cow<'_, str>> = Vec::with_capacity(width);
                if spec.layout == Layout::Wide {
                    if cells.get(key, &mut record)? {
                        let cost = crate::output::csv_cells::cost_cell(properties);
                        wide.extend([0, 1, cost].map(|i| record[i].to_string()));
                    } else {
                        wide.extend(["not_sent".to_owned(), String::new(), String::new()]);
                    }
                    continue;
                }
                record.extend(columns.iter().map(|c| var_cell(row.vars.get(c))));
                record.push(Cow::Borrowed(model));
                if with_variant {
                    record.push(Cow::Borrowed(variant.unwrap_or("")));
                }
                if !cells.get(key, &mut record)? {
                    record.push(Cow::Borrowed("not_sent"));
                    let empty = RESULT_COLUMNS.len() - 2 + properties;
                    record.extend(std::iter::repeat_n(Cow::Borrowed(""), empty));
                }
                write_escaped(&mut csv, record.iter().map(|c| c.as_ref()))?;
                written += 1;
            }
            if spec.layout == Layout::Wide {
                let inputs = columns.iter().map(|c| var_cell(row.vars.get(c)));
                let cells: Vec<Cow<'_, str>> = inputs
                    .chain(wide.iter().map(|c| Cow::Borrowed(c.as_str())))
                    .collect();
                write_escaped(&mut csv, cells.iter().map(|c| c.as_ref()))?;
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

/// A template variable as a cell: empty when missing or null, strings as they are, anything
/// else as compact JSON.
fn var_cell(value: Option<&Value>) -> Cow<'_, str> {
    match value {
        None | Some(Value::Null) => Cow::Borrowed(""),
        Some(Value::String(s)) => Cow::Borrowed(s),
        Some(other) => Cow::Owned(other.to_string()),
    }
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
