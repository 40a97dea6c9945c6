//! The second pass over `results.jsonl`: the full lines of the rows the table shows (failed
//! and disagreeing rows first, then the sample), each text cut short and the whole kept
//! under a byte budget, so the page stays small whatever the number of results.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::scan::{Line, Scan, for_each_line};
use crate::output::truncate_chars;

/// Characters of a reply shown.
const OUTPUT_CHARS: usize = 600;
/// Characters of a variable's value shown.
const VAR_CHARS: usize = 300;
/// Bytes of row data in the page, at most.
pub const ROW_BYTES: usize = 1_800_000;
/// Rows in the table, at most.
pub const MAX_ROWS: usize = 2000;

/// One row of the table: its variables and every rater's answer.
#[derive(Debug, Serialize)]
pub struct Row {
    /// The row's id.
    pub id: String,
    /// Some result failed (an error, or checks not passed).
    pub failed: bool,
    /// The raters' structured answers differ.
    pub disagree: bool,
    /// The template variables (values cut short).
    pub vars: Vec<(String, String)>,
    /// One entry per rater that answered, in the raters' order.
    pub cells: Vec<Answer>,
}

/// One rater's answer to a row.
#[derive(Debug, Serialize)]
pub struct Answer {
    /// "variant / model" or the model.
    pub rater: String,
    /// `ok` or `error`.
    pub status: String,
    /// The reply (cut short), or the error's kind and message.
    pub text: String,
    /// The cost, formatted.
    pub cost: String,
    /// Score and pass, when checks ran ("0.83 pass").
    pub score: String,
}

/// The table's rows and the line that says which ones they are.
#[derive(Debug, Serialize, Default)]
pub struct Table {
    /// Raters in column order.
    pub raters: Vec<String>,
    /// The rows.
    pub rows: Vec<Row>,
    /// "Showing ... of ...".
    pub note: String,
}

fn answer(line: &Line) -> Answer {
    let text = if line.status == "error" {
        let e = line.error.as_ref();
        let field = |k: &str| {
            e.and_then(|e| e.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        format!(
            "{}: {}",
            field("kind"),
            truncate_chars(field("message"), OUTPUT_CHARS)
        )
    } else {
        let out: Option<String> = line
            .output
            .as_ref()
            .and_then(|r| serde_json::from_str(r.get()).ok());
        truncate_chars(out.as_deref().unwrap_or(""), OUTPUT_CHARS)
    };
    let score = match (line.score, line.pass) {
        (Some(s), Some(p)) => format!("score {s:.2} {}", if p { "pass" } else { "fail" }),
        (None, Some(p)) => (if p { "pass" } else { "fail" }).to_string(),
        (Some(s), None) => format!("score {s:.2}"),
        (None, None) => String::new(),
    };
    let checks: Vec<String> = line
        .scores
        .as_ref()
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    format!(
                        "{k} {}",
                        v.as_f64().map_or("-".into(), |x| format!("{x:.2}"))
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let score = if checks.is_empty() {
        score
    } else {
        format!("{score} ({})", checks.join(", "))
    };
    let cost = match (line.cost_usd, line.judge_cost_usd) {
        (Some(c), Some(j)) if !j.is_zero() => {
            format!("{} + judge {}", crate::money::usd(c), crate::money::usd(j))
        }
        (Some(c), _) => crate::money::usd(c),
        (None, _) => "cost unknown".into(),
    };
    Answer {
        rater: line.rater(),
        status: line.status.clone(),
        text,
        cost,
        score,
    }
}

fn vars(line: &Line) -> Vec<(String, String)> {
    let map: Map<String, Value> = line
        .vars
        .as_ref()
        .and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or_default();
    map.into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, truncate_chars(&text, VAR_CHARS))
        })
        .collect()
}

/// Reads the lines of the chosen rows and orders them: failed, disagreeing, then sampled.
pub fn collect(path: &std::path::Path, scan: &Scan) -> std::io::Result<Table> {
    let disagree: HashSet<&str> = scan.disagree.ids.iter().map(String::as_str).collect();
    let mut order: Vec<&str> = Vec::new();
    let mut chosen: HashSet<&str> = HashSet::new();
    let ids = scan
        .failed
        .ids
        .iter()
        .chain(&scan.disagree.ids)
        .chain(&scan.sample);
    for id in ids {
        if order.len() < MAX_ROWS && chosen.insert(id) {
            order.push(id);
        }
    }
    let mut rows: HashMap<String, Row> = HashMap::new();
    for_each_line(path, |line| {
        let Some(line) = line else { return };
        if !chosen.contains(line.id.as_str()) {
            return;
        }
        let row = rows.entry(line.id.clone()).or_insert_with(|| Row {
            id: line.id.clone(),
            failed: false,
            disagree: disagree.contains(line.id.as_str()),
            vars: vars(&line),
            cells: Vec::new(),
        });
        row.failed |= line.failed();
        row.cells.push(answer(&line));
    })?;
    let raters = scan.raters.clone();
    let mut out = Vec::new();
    let mut bytes = 0;
    for id in order {
        let Some(mut row) = rows.remove(id) else {
            continue;
        };
        row.cells
            .sort_by_key(|c| raters.iter().position(|r| *r == c.rater));
        bytes += serde_json::to_string(&row).map_or(0, |s| s.len());
        if bytes > ROW_BYTES {
            break;
        }
        out.push(row);
    }
    let note = note(scan, &out);
    Ok(Table {
        raters,
        rows: out,
        note,
    })
}

fn note(scan: &Scan, rows: &[Row]) -> String {
    let failed = rows.iter().filter(|r| r.failed).count();
    let disagree = rows.iter().filter(|r| r.disagree).count();
    let mut parts = vec![format!(
        "Showing {} rows of {} results",
        rows.len(),
        scan.lines
    )];
    if scan.failed.total > 0 {
        parts.push(format!(
            "{failed} rows with a failed result ({} failed results in all)",
            scan.failed.total
        ));
    }
    if scan.disagree.total > 0 {
        parts.push(format!(
            "{disagree} disagreeing rows ({} in all)",
            scan.disagree.total
        ));
    }
    parts.push("then a random sample; outputs are cut at 600 characters".to_string());
    parts.join("; ") + "."
}
