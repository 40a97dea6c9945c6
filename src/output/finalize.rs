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
use super::seen::Seen;
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
    /// The result cells of results.csv (when an exporter asked for them:
    /// [`Exporter::cell_properties`]).
    cells: &'a RefCell<Option<io::Result<Cells>>>,
}

/// One end-of-run output file.
pub trait Exporter {
    /// The file it writes (for error messages).
    fn file_name(&self) -> &str;
    /// Writes the file into `end.dir`.
    fn export(&self, end: &RunEnd<'_>) -> io::Result<()>;
    /// `Some(properties)` for the exporter of results.csv: the result cells of each kept line
    /// (with an `output.<property>` cell for each schema property) are gathered once, as the
    /// journal is written or in one sequential read ([`RunEnd`]'s cells).
    fn cell_properties(&self) -> Option<&[String]> {
        None
    }
    /// True for an exporter that reads lines back through [`RunEnd::index`].
    fn needs_index(&self) -> bool {
        false
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
            properties: Self::properties_of(job),
        }
    }

    /// The top-level properties of `job`'s schema, in order (none without `[output]`): an
    /// `output.<property>` column each.
    pub fn properties_of(job: &crate::job::Job) -> Vec<String> {
        job.output.as_ref().map_or_else(Vec::new, |o| {
            o.compiled
                .properties()
                .iter()
                .map(|p| p.name.clone())
                .collect()
        })
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
        self.finalize_seen(meta, exporters, None)
    }

    /// [`OutputDir::finalize`], from what the journal's writer saw ([`Seen`]) instead of a
    /// read of the journal when the journal is still what it saw.
    pub(crate) fn finalize_seen(
        &self,
        meta: &SummaryMeta,
        exporters: &[&dyn Exporter],
        seen: Option<Seen>,
    ) -> Result<Summary, FinalizeError> {
        let results = self.dir.join(RESULTS);
        let t = std::time::Instant::now();
        let properties = exporters.iter().find_map(|e| e.cell_properties());
        let needs_index = exporters.iter().any(|e| e.needs_index());
        let (mut summary, index, cells) =
            match seen.and_then(|seen| from_seen(seen, &results, meta, properties, needs_index)) {
                Some(end) => {
                    tracing::debug!("results.jsonl is as written: not read again");
                    end
                }
                None => {
                    let end = self.read_journal(&results, meta, properties, needs_index)?;
                    tracing::debug!(
                        "compacted and summarized results.jsonl in {:?}",
                        t.elapsed()
                    );
                    end
                }
            };
        let cells = RefCell::new(cells);
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

    /// Compaction's read of the journal (the summary, the key index when `needs_index`),
    /// then results.csv's cells (with these schema `properties`, when asked for).
    fn read_journal(
        &self,
        results: &Path,
        meta: &SummaryMeta,
        properties: Option<&[String]>,
        needs_index: bool,
    ) -> Result<EndOfRun, FinalizeError> {
        let mut builder = SummaryBuilder::new(meta);
        let CompactStats { mut index, .. } =
            compact_into(results, &mut builder).map_err(|error| FinalizeError::Journal {
                what: "compacting",
                error,
            })?;
        if !needs_index {
            // No exporter reads lines back: the index goes before results.csv's cells come,
            // so memory holds one 16-byte entry a key at a time.
            index = Vec::new();
        }
        // The cells in a sequential pass of their own over the compacted journal.
        let cells = properties.map(|p| CellFile::from_journal(&self.dir, results, p));
        Ok((builder.finish(), index, cells))
    }

    /// [`OutputDir::finalize`] with every exporter of a run of `job` (whose input scanned as
    /// `scan`, with these `models`): the one list, used by `run` and by `merge`, so a new
    /// end-of-run file added here is written for a merged output dir too.
    pub(crate) fn finalize_job(
        &self,
        meta: &SummaryMeta,
        job: &crate::job::Job,
        scan: &crate::scan::ScanReport,
        models: &[String],
        seen: Option<Seen>,
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
        self.finalize_seen(meta, &exporters, seen)
    }
}

/// The summary, the key index ((key hash, offset), sorted by key) and results.csv's cells.
type EndOfRun = (Summary, Vec<(u64, u64)>, Option<io::Result<Cells>>);

/// The end of the run from what the journal's writer saw, when the journal is still what it
/// saw, holds one line per key, and results.csv's cells and the key index were gathered as
/// asked (`None`: read the journal).
fn from_seen(
    mut seen: Seen,
    results: &Path,
    meta: &SummaryMeta,
    properties: Option<&[String]>,
    needs_index: bool,
) -> Option<EndOfRun> {
    match seen.matches(results) {
        Ok(true) => {}
        Ok(false) => return None,
        Err(e) => {
            tracing::debug!("results.jsonl: {e}: read again");
            return None;
        }
    }
    let kept_index = seen.index.is_some();
    let index = match seen.unique_index() {
        Some(index) => index,
        None if kept_index || needs_index => return None,
        None => Vec::new(),
    };
    let cells = match (properties, seen.cells) {
        (None, _) => None,
        (Some(p), Some(file)) if p == file.properties() => match file.finish() {
            // The cells' index tells a key written twice when no journal index was kept.
            Ok(cells) if cells.len() as u64 != seen.lines => return None,
            other => Some(other),
        },
        (Some(_), _) => return None,
    };
    Some((seen.summary.finish_as(meta), index, cells))
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

    struct SawSummary(RefCell<Option<u64>>);
    impl Exporter for SawSummary {
        fn file_name(&self) -> &str {
            "seen.out"
        }
        fn export(&self, end: &RunEnd<'_>) -> io::Result<()> {
            *self.0.borrow_mut() = Some(end.summary.rows.ok);
            Ok(())
        }
    }

    /// The results.csv of model `m` over the CSV `input` (columns id, text) holding `text`.
    fn csv_of(input: &Path, text: &str) -> ResultsCsv {
        ResultsCsv {
            input: input.to_path_buf(),
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
        }
    }

    #[test]
    fn every_exporter_runs_even_after_one_failed() {
        let dir = tempfile::tempdir().unwrap();
        let line = LineBuilder::new("1", "m").ok("a").build();
        let text = serde_json::to_string(&line).unwrap() + "\n";
        std::fs::write(dir.path().join(RESULTS), text.repeat(2)).unwrap();
        let seen = SawSummary(RefCell::new(None));
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
        let csv = csv_of(&input, text);
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

    /// Lines of the shapes a run writes: answers, a failure, a cache hit.
    fn varied_lines() -> Vec<crate::output::ResultLine> {
        use rust_decimal::Decimal;
        let cost = |n| (Some(Decimal::new(n, 6)), 1, (0, Decimal::ZERO), 0);
        let mut lines = Vec::new();
        for (i, id) in ["1", "2", "3"].into_iter().enumerate() {
            let c = cost(i as i64 + 1);
            let mut l = LineBuilder::new(id, "m")
                .counts(c.0, c.1, c.2, c.3)
                .latency_ms(10 * i as u64)
                .ok(format!("answer\n{id},\"x\""))
                .build();
            l.prompt_tokens = Some(7);
            l.finished_at = Some(format!("2026-12-02T10:00:0{i}Z"));
            lines.push(l);
        }
        let failed = LineBuilder::new("4", "m").counts(
            Some(Decimal::new(3, 6)),
            3,
            (1, Decimal::new(2, 5)),
            1,
        );
        lines.push(
            failed
                .error(crate::output::ErrorKind::Provider, Some(502), "boom")
                .build(),
        );
        let mut hit = LineBuilder::new("5", "m").ok("cached").build();
        hit.cache_hit = true;
        hit.cost_source = Some(crate::output::CostSource::Cache);
        hit.cached_cost_usd = Some(Decimal::new(9, 6));
        lines.push(hit);
        lines
    }

    /// An output dir with `in.csv` (rows 1..=6) and, when `seen`, a journal watched from
    /// the start; `lines` are written through the journal. Returns the results.csv exporter.
    fn dir_with(
        dir: &Path,
        lines: &[crate::output::ResultLine],
        meta: &SummaryMeta,
    ) -> (ResultsCsv, Option<Seen>) {
        let input = dir.join("in.csv");
        let text = "id,text\n1,a\n2,b\n3,c\n4,d\n5,e\n6,f\n";
        std::fs::write(&input, text).unwrap();
        let csv = csv_of(&input, text);
        let (mut journal, _) = crate::output::results::Journal::open(&dir.join(RESULTS)).unwrap();
        assert!(journal.watch(|| Seen::new(meta, dir, Some(&csv.properties), false)));
        for l in lines {
            journal.append(l).unwrap();
        }
        let seen = journal.take_seen();
        (csv, seen)
    }

    fn files(dir: &Path) -> (String, String) {
        let read = |f| std::fs::read_to_string(dir.join(f)).unwrap();
        (read("summary.json"), read("results.csv"))
    }

    /// The end of a first run from what its writer saw writes the same files as the read of
    /// the journal; a key written twice, or a journal changed since, is read again.
    #[test]
    fn the_end_from_what_the_writer_saw_equals_the_read_of_the_journal() {
        let meta = SummaryMeta {
            total_pairs: Some(6),
            started_at: Some("2026-12-02T10:00:00Z".into()),
            finished_at: Some("2026-12-02T10:00:09Z".into()),
            wall_secs: Some(9.0),
            models: Some(vec!["m".into()]),
            variants: Some(vec![None]),
            ..SummaryMeta::default()
        };
        let mut twice = varied_lines();
        twice.push(LineBuilder::new("2", "m").ok("again").build());
        for (lines, from_seen_expected) in [(varied_lines(), true), (twice, false)] {
            let (fast, slow) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let (csv, seen) = dir_with(fast.path(), &lines, &meta);
            let seen = seen.expect("watched from the start");
            assert!(seen.matches(&fast.path().join(RESULTS)).unwrap());
            let mut probe = Seen::new(&meta, fast.path(), None, true);
            for l in &lines {
                probe.written(l, 0, b"{}");
            }
            assert_eq!(probe.unique_index().is_some(), from_seen_expected);
            let cells = csv_cells_of(&lines, fast.path());
            assert_eq!(cells.len() == lines.len(), from_seen_expected);
            let exporters: [&dyn Exporter; 2] = [&csv, &SummaryJson];
            let a = OutputDir::new(fast.path())
                .finalize_seen(&meta, &exporters, Some(seen))
                .unwrap();
            let (csv, _) = dir_with(slow.path(), &lines, &meta);
            let exporters: [&dyn Exporter; 2] = [&csv, &SummaryJson];
            let b = OutputDir::new(slow.path())
                .finalize(&meta, &exporters)
                .unwrap();
            assert_eq!(a, b);
            assert_eq!(files(fast.path()), files(slow.path()));
            assert_eq!(a.rows.ok, 4, "{a:?}");
        }
        // A journal written to since: read again, and the later line counts.
        let dir = tempfile::tempdir().unwrap();
        let (csv, seen) = dir_with(dir.path(), &varied_lines(), &meta);
        let extra = LineBuilder::new("6", "m").ok("six").build();
        let text = serde_json::to_string(&extra).unwrap() + "\n";
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(RESULTS))
            .unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        let exporters: [&dyn Exporter; 2] = [&csv, &SummaryJson];
        let s = OutputDir::new(dir.path())
            .finalize_seen(&meta, &exporters, seen)
            .unwrap();
        assert_eq!((s.rows.ok, s.rows.not_sent), (5, 0));
    }

    /// The cells of `lines`, gathered as the writer does.
    fn csv_cells_of(lines: &[crate::output::ResultLine], dir: &Path) -> Cells {
        let mut file = CellFile::create(dir, &[]).unwrap();
        for l in lines {
            file.written(l, l.key().hash());
        }
        file.finish().unwrap()
    }
}
