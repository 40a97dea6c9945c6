//! `report.html`: one self-contained page about an output dir (inline CSS, JS and SVG, a
//! Content-Security-Policy that forbids every request), built from `summary.json` (read
//! leniently: each section shows only when its data exists) and two streaming passes over
//! `results.jsonl` (aggregates, then the few thousand rows the table shows). Used by
//! `orbatch report`, `run --report` and `score --report` through [`write`].

mod charts;
mod page;
mod rows;
mod scan;
mod view;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;

use crate::output::finalize::RESULTS;
use view::View;

/// The report's file name in an output dir.
pub const REPORT: &str = "report.html";

/// Why no report could be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The dir holds no results.jsonl.
    #[error("{0}: no results.jsonl (give an output dir of `orbatch run`)")]
    NoResults(PathBuf),
    /// summary.json is not JSON.
    #[error("{path}: not valid JSON: {error}")]
    BadSummary {
        /// summary.json.
        path: PathBuf,
        /// The parse error.
        error: serde_json::Error,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The template failed to render (a bug).
    #[error("rendering the report: {0}")]
    Render(String),
}

/// What the output dir cannot tell the report.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The job's budget, shown against the spend.
    pub budget: Option<Decimal>,
}

/// Writes the report of output dir `dir` to `out` (default `dir/report.html`); returns the
/// path written.
pub fn write(dir: &Path, out: Option<&Path>) -> Result<PathBuf, ReportError> {
    write_with(dir, out, &Options::default())
}

/// [`write`] with what the job knows (its budget).
pub fn write_with(dir: &Path, out: Option<&Path>, opts: &Options) -> Result<PathBuf, ReportError> {
    let results = dir.join(RESULTS);
    if !results.is_file() {
        return Err(ReportError::NoResults(dir.to_path_buf()));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| ReportError::Io { path, error }
    };
    let mut view = View::from_json(&summary_json(dir, &results)?);
    let scan = scan::scan(&results, &view).map_err(io(&results))?;
    for g in &mut view.by_variant {
        g.rows = scan.variant_rows.get(&g.name).copied().unwrap_or(g.rows);
    }
    let table = rows::collect(&results, &scan).map_err(io(&results))?;
    let parts = page::Parts {
        charts: charts_of(&view, &scan),
        view: &view,
        scan: &scan,
        table: &table,
        budget: opts.budget,
    };
    let html = page::render(&parts).map_err(ReportError::Render)?;
    let path = out.map_or_else(|| dir.join(REPORT), Path::to_path_buf);
    crate::fsutil::replace_file(&path, |w| w.write_all(html.as_bytes())).map_err(io(&path))?;
    Ok(path)
}

/// summary.json's JSON, or a summary built from results.jsonl when there is none.
fn summary_json(dir: &Path, results: &Path) -> Result<serde_json::Value, ReportError> {
    let path = dir.join("summary.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|error| ReportError::BadSummary { path, error })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("results");
            let meta = crate::output::summary::SummaryMeta {
                job: name.to_string(),
                ..Default::default()
            };
            let s = crate::output::summary::summarize(&[results.to_path_buf()], &meta).map_err(
                |error| ReportError::Io {
                    path: results.to_path_buf(),
                    error,
                },
            )?;
            serde_json::to_value(&s).map_err(|error| ReportError::BadSummary { path, error })
        }
        Err(error) => Err(ReportError::Io { path, error }),
    }
}

/// Every chart whose data exists, by the name the template uses.
fn charts_of(view: &View, scan: &scan::Scan) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut add = |name: String, chart: charts::Chart| match chart {
        Ok(svg) => {
            out.insert(name, svg);
        }
        Err(e) => tracing::warn!("report: the chart {name} could not be drawn: {e}"),
    };
    for (by, groups) in page::cost_groups(view) {
        let items: Vec<(String, f64)> = groups
            .iter()
            .map(|g| (g.name.clone(), page::f(g.cost)))
            .collect();
        let caption = format!("Cost by {by} (USD)");
        add(
            format!("cost_{by}"),
            charts::bars(&caption, &items, &|x| format!("${}", charts::short(x))),
        );
    }
    if !view.cells.is_empty() {
        add("scatter".into(), charts::scatter(&view.cells));
    }
    for (i, field) in view.fields.iter().enumerate() {
        let raters = field.raters();
        let values: Vec<String> = field.values.iter().map(|(v, _)| v.clone()).collect();
        let count = |r: usize, v: usize| -> u64 {
            let rater = raters.get(r);
            field
                .values
                .get(v)
                .and_then(|(_, per)| per.iter().find(|(name, _)| Some(name) == rater))
                .map_or(0, |(_, n)| *n)
        };
        let caption = format!("{}: values per rater", field.name);
        add(
            format!("dist_{i}"),
            charts::stacked(&caption, &raters, &values, &count),
        );
        let Some(pairs) = scan
            .pairs
            .get(i)
            .filter(|p| scan.raters.len() > 1 && !p.matrix.is_empty())
        else {
            continue;
        };
        let share = |a: usize, b: usize| -> Option<f64> {
            if a == b {
                return Some(1.0);
            }
            let (agreed, seen) = pairs.matrix.get(a)?.get(b).copied()?;
            (seen > 0).then(|| agreed as f64 / seen as f64)
        };
        let caption = format!("{}: agreement between raters", field.name);
        add(
            format!("heat_{i}"),
            charts::heatmap(&caption, &scan.raters, &share),
        );
    }
    if let Some(bins) = &scan.latency {
        let marks = [
            (
                format!("p50 {} ms", view.latency[0]),
                view.latency[0] as f64,
            ),
            (
                format!("p95 {} ms", view.latency[1]),
                view.latency[1] as f64,
            ),
        ];
        add(
            "latency".into(),
            charts::histogram("Latency", bins, &marks, "milliseconds"),
        );
    }
    if let Some(bins) = &scan.timeline
        && bins.counts.iter().any(|c| c.0 > 0)
    {
        add("timeline".into(), charts::timeline(bins));
    }
    out
}

#[cfg(test)]
mod tests;
