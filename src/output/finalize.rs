//! The end of a run, with one owner: [`OutputDir::finalize`] compacts `results.jsonl`, builds
//! the summary from it, then runs every [`Exporter`] (results.csv, summary.json, ...), each
//! one even when another failed. A new output is a new `Exporter`, not a new step in the
//! runner.

use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};

use super::Summary;
use super::compact::{CompactStats, compact_into};
use super::csv_cells::{CellFile, Cells};
use super::summary::{SummaryBuilder, SummaryMeta, write_summary_json};
use crate::input::RowReader;
use crate::output::csv::{CsvSpec, Layout};

/// The name of the journal in an output dir.
pub const RESULTS: &str = "results.jsonl";

/// What an exporter reads: the compacted journal, its key index and the summary.
pub struct RunEnd<'a> {
    /// The output dir.
    pub dir: &'a Path,
    /// `results.jsonl`, compacted (one line per key).
    pub results: &'a Path,
    /// (key hash, byte offset of the key's line in `results`), sorted by key.
    pub index: &'a [(u64, u64)],
    /// The run's summary.
    pub summary: &'a Summary,
    /// The result cells of results.csv, gathered as compaction read the journal (when an
    /// exporter asked for them: [`Exporter::cell_properties`]).
    cells: &'a RefCell<Option<io::Result<Cells>>>,
}

/// One end-of-run output file.
pub trait Exporter {
    /// The file it writes (for error messages).
    fn file_name(&self) -> &str;
    /// Writes the file into `end.dir`.
    fn export(&self, end: &RunEnd<'_>) -> io::Result<()>;
    /// `Some(properties)` for the exporter of results.csv: the result cells of each kept line
    /// (with an `output.<property>` cell for each schema property) are gathered while
    /// compaction reads the journal, so results.csv does not read it again.
    fn cell_properties(&self) -> Option<&[String]> {
        None
    }
    /// Adds to the summary before any exporter runs (every exporter's `amend` first, then
    /// every `export`), for an output whose figures belong in summary.json too.
    fn amend(&self, _end: &RunEnd<'_>, _summary: &mut Summary) -> io::Result<()> {
        Ok(())
    }
}

/// `summary.json`.
pub struct SummaryJson;

impl Exporter for SummaryJson {
    fn file_name(&self) -> &str {
        "summary.json"
    }

    fn export(&self, end: &RunEnd<'_>) -> io::Result<()> {
        write_summary_json(end.summary, &end.dir.join(self.file_name()))
    }
}

/// `results.csv`: the input rows in order, re-read from the input file, x the models.
pub struct ResultsCsv {
    /// The input file.
    pub input: PathBuf,
    /// The id column, if the job names one.
    pub id_column: Option<String>,
    /// Only the first N rows (`--limit-rows`).
    pub limit_rows: Option<u64>,
    /// The input's length when it was validated: only these bytes are read (rows appended
    /// since were not sent).
    pub bytes: u64,
    /// The input's columns (the CSV header, or the JSONL union of keys).
    pub columns: Vec<String>,
    /// The job's models, in order.
    pub models: Vec<String>,
    /// The job's prompt variants, in order (empty: none).
    pub variants: Vec<Option<String>>,
    /// The CSV delimiter the job gives, if any (else the input's own).
    pub delimiter: Option<u8>,
    /// Long or wide.
    pub layout: Layout,
    /// Only this shard's rows (`--shard`).
    pub shard: Option<crate::shard::Shard>,
    /// The schema's top-level properties, in order (`output.<property>` columns).
    pub properties: Vec<String>,
}

impl ResultsCsv {
    /// The results.csv of `job`, whose input scanned as `scan`, with these models.
    pub fn for_job(
        job: &crate::job::Job,
        scan: &crate::scan::ScanReport,
        models: &[String],
    ) -> Self {
        ResultsCsv {
            input: job.input.clone(),
            id_column: job.id_column.clone(),
            limit_rows: job.limit_rows,
            bytes: scan.bytes,
            columns: scan.columns.clone(),
            models: models.to_vec(),
            variants: job.variants.iter().map(|v| Some(v.name.clone())).collect(),
            delimiter: job.delimiter,
            layout: job.layout,
            shard: job.shard,
            properties: job.output.as_ref().map_or_else(Vec::new, |o| {
                o.compiled
                    .properties()
                    .iter()
                    .map(|p| p.name.clone())
                    .collect()
            }),
        }
    }
}

impl ResultsCsv {
    fn reader(&self) -> io::Result<RowReader> {
        let id_column = self.id_column.as_deref();
        RowReader::open_with(&self.input, id_column, self.delimiter, self.bytes)
            .map_err(|e| io::Error::other(e.to_string()))
    }

    fn take(&self, reader: RowReader) -> impl Iterator<Item = crate::input::Row> {
        let shard = self.shard;
        reader
            .filter_map(Result::ok)
            .take(self.limit_rows.map_or(usize::MAX, |n| n as usize))
            .filter(move |row| shard.is_none_or(|s| s.owns(&row.id)))
    }

    /// The input rows results.csv lists, in input order (the validated bytes, `--limit`).
    pub fn rows(&self) -> io::Result<impl Iterator<Item = crate::input::Row>> {
        Ok(self.take(self.reader()?))
    }
}

impl Exporter for ResultsCsv {
    fn file_name(&self) -> &str {
        "results.csv"
    }

    fn cell_properties(&self) -> Option<&[String]> {
        Some(&self.properties)
    }

    fn export(&self, end: &RunEnd<'_>) -> io::Result<()> {
        let cells = end
            .cells
            .borrow_mut()
            .take()
            .unwrap_or_else(|| Err(io::Error::other("the result cells were not gathered")))?;
        let reader = self.reader()?;
        let spec = CsvSpec {
            columns: &self.columns,
            models: &self.models,
            variants: &self.variants,
            dialect: reader.dialect(),
            layout: self.layout,
            properties: &self.properties,
        };
        let rows = self.take(reader);
        super::csv::write_results_csv_cells(cells, rows, &spec, &end.dir.join(self.file_name()))
            .map(|_| ())
    }
}

/// Why the end of a run could not write everything.
#[derive(Debug, thiserror::Error)]
pub enum FinalizeError {
    /// The journal could not be compacted or read: nothing was exported.
    #[error("{what} results.jsonl: {error}")]
    Journal {
        /// "compacting" or "reading".
        what: &'static str,
        /// The cause.
        error: io::Error,
    },
    /// Some exporters failed (the others ran): the summary stands.
    #[error("{}", .failed.join("; "))]
    Exporters {
        /// The summary built from the journal.
        summary: Box<Summary>,
        /// `writing FILE: error`, one per failed exporter.
        failed: Vec<String>,
    },
}

/// An output dir at the end of a run.
pub struct OutputDir {
    dir: PathBuf,
}

impl OutputDir {
    /// The output dir at `dir`.
    pub fn new(dir: &Path) -> Self {
        OutputDir {
            dir: dir.to_path_buf(),
        }
    }

    /// Compacts the journal, summarizes it and runs every exporter in order (all of them,
    /// whatever fails). Call it with no journal writer open.
    pub fn finalize(
        &self,
        meta: &SummaryMeta,
        exporters: &[&dyn Exporter],
    ) -> Result<Summary, FinalizeError> {
        let results = self.dir.join(RESULTS);
        let journal = |what| move |error| FinalizeError::Journal { what, error };
        let t = std::time::Instant::now();
        // One read of each line: compaction shows the summary (and results.csv's cells)
        // every line it keeps.
        let mut builder = SummaryBuilder::new(meta);
        let properties = exporters.iter().find_map(|e| e.cell_properties());
        let mut cells = properties.map(|p| CellFile::create(&self.dir, p));
        let CompactStats { index, .. } = match cells.as_mut() {
            Some(Ok(file)) => compact_into(&results, &mut (&mut builder, file)),
            _ => compact_into(&results, &mut builder),
        }
        .map_err(journal("compacting"))?;
        let cells = RefCell::new(cells.map(|c| c.and_then(CellFile::finish)));
        tracing::debug!(
            "compacted and summarized results.jsonl in {:?}",
            t.elapsed()
        );
        let mut summary = builder.finish();
        let mut failed = Vec::new();
        let draft = summary.clone();
        for e in exporters {
            let end = RunEnd {
                dir: &self.dir,
                results: &results,
                index: &index,
                summary: &draft,
                cells: &cells,
            };
            if let Err(err) = e.amend(&end, &mut summary) {
                failed.push(format!("writing {}: {err}", e.file_name()));
            }
        }
        let end = RunEnd {
            dir: &self.dir,
            results: &results,
            index: &index,
            summary: &summary,
            cells: &cells,
        };
        for e in exporters {
            let t = std::time::Instant::now();
            match e.export(&end) {
                Ok(()) => tracing::debug!("wrote {} in {:?}", e.file_name(), t.elapsed()),
                Err(err) => failed.push(format!("writing {}: {err}", e.file_name())),
            }
        }
        drop(index);
        if failed.is_empty() {
            Ok(summary)
        } else {
            Err(FinalizeError::Exporters {
                summary: Box::new(summary),
                failed,
            })
        }
    }

    /// [`OutputDir::finalize`] with every exporter of a run of `job` (whose input scanned as
    /// `scan`, with these `models`): the one list, used by `run` and by `merge`, so a new
    /// end-of-run file added here is written for a merged output dir too.
    pub fn finalize_job(
        &self,
        meta: &SummaryMeta,
        job: &crate::job::Job,
        scan: &crate::scan::ScanReport,
        models: &[String],
    ) -> Result<Summary, FinalizeError> {
        let csv = ResultsCsv::for_job(job, scan, models);
        // Every (variant, model) answers each row: the raters whose agreement is measured.
        let variants: Vec<Option<String>> = match job.variants.is_empty() {
            true => vec![None],
            false => job.variants.iter().map(|v| Some(v.name.clone())).collect(),
        };
        let raters = variants
            .iter()
            .flat_map(|v| {
                models.iter().map(|m| crate::annotation::Rater {
                    variant: v.clone(),
                    model: m.clone(),
                })
            })
            .collect();
        let annotation = crate::annotation::Annotation::for_job(
            ResultsCsv::for_job(job, scan, models),
            job,
            raters,
        );
        let mut exporters: Vec<&dyn Exporter> = vec![&csv, &SummaryJson];
        if let Some(a) = &annotation {
            exporters.push(a);
        }
        self.finalize(meta, &exporters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::line::LineBuilder;
    use std::cell::RefCell;

    struct Failing;
    impl Exporter for Failing {
        fn file_name(&self) -> &str {
            "broken.out"
        }
        fn export(&self, _: &RunEnd<'_>) -> io::Result<()> {
            Err(io::Error::other("boom"))
        }
    }

    struct Seen(RefCell<Option<u64>>);
    impl Exporter for Seen {
        fn file_name(&self) -> &str {
            "seen.out"
        }
        fn export(&self, end: &RunEnd<'_>) -> io::Result<()> {
            *self.0.borrow_mut() = Some(end.summary.rows.ok);
            Ok(())
        }
    }

    #[test]
    fn every_exporter_runs_even_after_one_failed() {
        let dir = tempfile::tempdir().unwrap();
        let line = LineBuilder::new("1", "m").ok("a").build();
        let text = serde_json::to_string(&line).unwrap() + "\n";
        std::fs::write(dir.path().join(RESULTS), text.repeat(2)).unwrap();
        let seen = Seen(RefCell::new(None));
        let out = OutputDir::new(dir.path());
        let err = out
            .finalize(&SummaryMeta::default(), &[&Failing, &SummaryJson, &seen])
            .unwrap_err();
        let FinalizeError::Exporters { summary, failed } = err else {
            panic!("the journal was readable");
        };
        assert_eq!(failed, vec!["writing broken.out: boom".to_string()]);
        assert_eq!(summary.rows.ok, 1, "compacted to one line per key");
        assert_eq!(*seen.0.borrow(), Some(1));
        assert!(dir.path().join("summary.json").exists());
    }

    /// The end of a run reads each line once: compaction keeps a key's latest READABLE line
    /// (a later line recovery cannot read is kept as it is, never counted), and the summary
    /// and results.csv count and show exactly the kept lines.
    #[test]
    fn summary_and_csv_agree_with_what_compaction_keeps() {
        use rust_decimal::Decimal;
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        let text = "id,text\n1,a\n2,b\n3,c\n";
        std::fs::write(&input, text).unwrap();
        let cost = |n| (Some(Decimal::new(n, 3)), 1, (0, Decimal::ZERO), 0);
        let (c1, c2, c3) = (cost(1), cost(2), cost(4));
        let line = |l: LineBuilder| serde_json::to_string(&l.build()).unwrap();
        let first = LineBuilder::new("1", "m").counts(c1.0, c1.1, c1.2, c1.3);
        let first = line(first.error(crate::output::ErrorKind::Provider, Some(502), "x"));
        let other = line(
            LineBuilder::new("2", "m")
                .counts(c3.0, 1, c3.2, 0)
                .ok("two"),
        );
        let kept = line(
            LineBuilder::new("1", "m")
                .counts(c2.0, 1, c2.2, 0)
                .ok("one"),
        );
        // Readable but for one field: recovery skips it, so it supersedes nothing.
        let bad = line(LineBuilder::new("1", "m").ok("WRONG"))
            .replace(r#""cost_source":null"#, r#""cost_source":"bogus""#);
        assert!(crate::output::lines::parse_line(bad.as_bytes()).is_err());
        let journal = [first, other, kept.clone(), bad.clone()].join("\n") + "\n";
        std::fs::write(dir.path().join(RESULTS), journal).unwrap();
        let csv = ResultsCsv {
            input,
            id_column: None,
            limit_rows: None,
            bytes: text.len() as u64,
            columns: vec!["id".into(), "text".into()],
            models: vec!["m".into()],
            variants: vec![],
            delimiter: None,
            layout: crate::output::Layout::Long,
            shard: None,
            properties: vec![],
        };
        let meta = SummaryMeta {
            total_pairs: Some(3),
            ..SummaryMeta::default()
        };
        let summary = OutputDir::new(dir.path())
            .finalize(&meta, &[&csv, &SummaryJson])
            .unwrap();
        let compacted = std::fs::read_to_string(dir.path().join(RESULTS)).unwrap();
        assert!(compacted.contains(&kept) && compacted.contains(&bad));
        assert_eq!(compacted.lines().count(), 3, "{compacted}");
        assert_eq!((summary.rows.ok, summary.rows.error), (2, 0));
        assert_eq!(summary.rows.not_sent, 1);
        assert_eq!(summary.cost_usd.total, Decimal::new(6, 3));
        let table = std::fs::read_to_string(dir.path().join("results.csv")).unwrap();
        let rows: Vec<&str> = table.lines().collect();
        assert!(rows[1].starts_with("1,a,m,ok,one,0.002,"), "{table}");
        assert!(rows[2].starts_with("2,b,m,ok,two,0.004,"), "{table}");
        assert!(rows[3].starts_with("3,c,m,not_sent,"), "{table}");
        assert!(!table.contains("WRONG"));
    }
}
