//! Template variables missing from rows, reported once per variable with the rows they affect
//! (how many, and the first lines), the column the user probably meant, and how to read a
//! column whose name is not an identifier (`{{ row["Product Name"] }}`).

use std::path::{Path, PathBuf};

use crate::input::{InputError, Row};

/// How many line numbers a report lists.
const LINES_SHOWN: usize = 5;

/// One missing variable and the rows that lack it.
#[derive(Debug)]
struct Missing {
    name: String,
    rows: u64,
    lines: Vec<u64>,
    /// The last row's line (two prompt variants lacking it on one row count it once).
    last: u64,
    /// The columns of the first row that lacked it.
    columns: Vec<String>,
}

/// The missing variables of a scan, in first-seen order (a job uses few variables, so the
/// list stays short whatever the number of rows).
#[derive(Debug, Default)]
pub struct MissingVars {
    seen: Vec<Missing>,
}

impl MissingVars {
    /// Notes that `row` lacks `name`.
    pub fn add(&mut self, name: &str, row: &Row) {
        if let Some(m) = self.seen.iter_mut().find(|m| m.name == name) {
            if m.last == row.line {
                return;
            }
            m.last = row.line;
            m.rows += 1;
            if m.lines.len() < LINES_SHOWN {
                m.lines.push(row.line);
            }
            return;
        }
        self.seen.push(Missing {
            name: name.to_owned(),
            rows: 1,
            lines: vec![row.line],
            last: row.line,
            columns: row.vars.keys().cloned().collect(),
        });
    }

    /// One error per missing variable, at the first line that lacks it. `job_file` is where
    /// the templates were written, when they came from a job file.
    pub fn errors(self, input: &Path, job_file: Option<&PathBuf>) -> Vec<InputError> {
        self.seen
            .into_iter()
            .map(|m| {
                let line = m.lines.first().copied().unwrap_or(0);
                InputError::new(input, line, message(&m, job_file))
            })
            .collect()
    }
}

fn message(m: &Missing, job_file: Option<&PathBuf>) -> String {
    let rows = if m.rows == 1 {
        "1 row".to_owned()
    } else {
        format!("{} rows", m.rows)
    };
    let mut lines: Vec<String> = m.lines.iter().map(u64::to_string).collect();
    if m.rows > m.lines.len() as u64 {
        lines.push("...".into());
    }
    let mut text = format!(
        "template variable '{}' is missing from {rows} (line {}); the columns are: {}",
        m.name,
        lines.join(", "),
        m.columns.join(", ")
    );
    if let Some(close) = did_you_mean(&m.name, &m.columns) {
        let usage = if is_identifier(close) {
            format!("{{{{ {close} }}}}")
        } else {
            format!("{{{{ row[\"{close}\"] }}}}")
        };
        text.push_str(&format!("; did you mean '{close}' (`{usage}`)?"));
    }
    text.push_str(
        "; any column can be read as `{{ row[\"Column Name\"] }}` (names with spaces or dots)",
    );
    match job_file {
        Some(file) => text.push_str(&format!("; the template is in {}", file.display())),
        None => text.push_str("; the template is the --prompt/--system flag"),
    }
    text
}

/// A template identifier: `{{ name }}` reads it.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// The candidate closest to `name`: equal once case and non-alphanumerics are ignored, else
/// within an edit distance of a third of its length (at least 2).
pub fn did_you_mean<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    let fold = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let wanted = fold(name);
    if let Some(c) = candidates.iter().find(|c| fold(c) == wanted) {
        return Some(c);
    }
    let limit = (name.chars().count() / 3).max(2);
    let by_distance = candidates
        .iter()
        .map(|c| (edit_distance(&wanted, &fold(c)), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d);
    let by_prefix = candidates.iter().find(|c| {
        let f = fold(c);
        wanted.len() >= 3 && (f.starts_with(&wanted) || wanted.starts_with(&f))
    });
    by_distance
        .map(|(_, c)| c)
        .or(by_prefix)
        .map(String::as_str)
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn suggestions() {
        let c = cols(&["id", "Product Name", "price"]);
        assert_eq!(did_you_mean("product_name", &c), Some("Product Name"));
        assert_eq!(did_you_mean("Product", &c), Some("Product Name"));
        assert_eq!(did_you_mean("prce", &c), Some("price"));
        assert_eq!(did_you_mean("weather", &c), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn one_error_per_variable_with_its_rows() {
        let mut m = MissingVars::default();
        let mut row = Row {
            id: "1".into(),
            line: 2,
            index: 0,
            vars: serde_json::Map::new(),
            body: crate::input::RowBody::Vars,
            raw_numbers: Vec::new(),
        };
        row.vars.insert("Product Name".into(), "Tea".into());
        for line in 2..10 {
            row.line = line;
            m.add("Product", &row);
        }
        let job = PathBuf::from("jobs/x.toml");
        let errors = m.errors(Path::new("in.csv"), Some(&job));
        assert_eq!(errors.len(), 1);
        let e = errors[0].to_string();
        assert!(
            e.starts_with(
                "in.csv:2: template variable 'Product' is missing from 8 rows (line 2, 3, 4, 5, 6, ...)"
            ),
            "{e}"
        );
        assert!(
            e.contains("did you mean 'Product Name' (`{{ row[\"Product Name\"] }}`)?"),
            "{e}"
        );
        assert!(e.ends_with("the template is in jobs/x.toml"), "{e}");
    }
}
