//! Agreement across raters on a structured output's fields (two or more models, or variant x
//! model): `summary.json` `annotation`, `consensus.csv` and `disagreements.csv`.
//!
//! One streaming pass in input order: the input is re-read, and each rater's line of a row is
//! read from the compacted journal through the key index (as results.csv does), so nothing is
//! held per row. Only the enum, boolean and string top-level properties are rated.

pub mod stats;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::output::csv::escape_formula;
use crate::output::finalize::{Exporter, ResultsCsv, RunEnd};
use crate::output::key::ResultKey;
use crate::output::{Summary, lines::LineReaderAt};
use crate::schema::{FieldKind, value_text};
use stats::{FieldAcc, FieldAgreement, majority};

/// `annotation` of summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotationSummary {
    /// The raters, in job order: a model, or `variant | model`.
    pub raters: Vec<String>,
    /// Input rows with a disagreement (listed in disagreements.csv).
    pub disagreements: u64,
    /// Per rated field, in schema order.
    pub fields: BTreeMap<String, FieldAgreement>,
}

/// A rater: a model, with its prompt variant when the job has variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rater {
    /// The prompt variant (`None`: no variants).
    pub variant: Option<String>,
    /// The model.
    pub model: String,
}

impl Rater {
    /// Its name in the files: the model, or `variant | model`.
    pub fn name(&self) -> String {
        match &self.variant {
            Some(v) => format!("{v} | {}", self.model),
            None => self.model.clone(),
        }
    }
}

/// The exporter of `consensus.csv` and `disagreements.csv`, which also fills summary.json's
/// `annotation` ([`Exporter::amend`]).
pub struct Annotation {
    /// Where the input rows come from (results.csv's source: the same file, order and bytes).
    pub rows: ResultsCsv,
    /// The raters.
    pub raters: Vec<Rater>,
    /// The rated fields: (name, kind), in schema order.
    pub fields: Vec<(String, FieldKind)>,
}

impl Annotation {
    /// The annotation of `job` with these raters; `None` without a schema, with fewer than two
    /// raters or with no rated field.
    pub fn for_job(rows: ResultsCsv, job: &crate::job::Job, raters: Vec<Rater>) -> Option<Self> {
        let spec = job.output.as_ref()?;
        let fields: Vec<(String, FieldKind)> = spec
            .compiled
            .properties()
            .iter()
            .filter(|p| p.kind.rated())
            .map(|p| (p.name.clone(), p.kind))
            .collect();
        (raters.len() >= 2 && !fields.is_empty()).then_some(Annotation {
            rows,
            raters,
            fields,
        })
    }

    fn pass(&self, end: &RunEnd<'_>) -> io::Result<AnnotationSummary> {
        let names: Vec<String> = self.raters.iter().map(Rater::name).collect();
        let mut accs: Vec<FieldAcc> = self
            .fields
            .iter()
            .map(|_| FieldAcc::new(names.len()))
            .collect();
        let mut reader = LineReaderAt::open(end.results)?;
        let offset_of = |key: u64| {
            end.index
                .binary_search_by_key(&key, |e| e.0)
                .ok()
                .map(|i| end.index[i].1)
        };
        let mut header = vec!["id".to_string()];
        header.extend(self.fields.iter().map(|(f, _)| f.clone()));
        header.push("agree".into());
        let mut consensus = Csv::create(&end.dir.join("consensus.csv"), &header)?;
        let mut header = vec!["id".to_string()];
        for (f, _) in &self.fields {
            header.extend(names.iter().map(|n| format!("{f}.{n}")));
        }
        header.extend(self.rows.columns.iter().cloned());
        let mut disagreements = Csv::create(&end.dir.join("disagreements.csv"), &header)?;
        let mut differing = 0u64;
        for row in self.rows.rows()? {
            // values[field][rater]
            let mut values: Vec<Vec<Option<String>>> =
                vec![vec![None; names.len()]; self.fields.len()];
            for (r, rater) in self.raters.iter().enumerate() {
                let key = ResultKey {
                    id: &row.id,
                    variant: rater.variant.as_deref(),
                    model: &rater.model,
                };
                let Some(offset) = offset_of(key.hash()) else {
                    continue;
                };
                let parsed = parsed_of(reader.read_at(offset)?, &row.id, rater);
                for (f, (name, _)) in self.fields.iter().enumerate() {
                    values[f][r] = parsed.get(name).map(value_text);
                }
            }
            let mut record = vec![row.id.clone()];
            let (mut agree, mut differs) = (true, false);
            for (f, acc) in accs.iter_mut().enumerate() {
                let vals: Vec<Option<&str>> = values[f].iter().map(Option::as_deref).collect();
                acc.add(&vals);
                let present: Vec<&str> = vals.iter().flatten().copied().collect();
                agree &= present.len() == vals.len() && present.windows(2).all(|w| w[0] == w[1]);
                differs |= present.windows(2).any(|w| w[0] != w[1]);
                record.push(majority(&vals).unwrap_or("").to_string());
            }
            record.push(agree.to_string());
            consensus.write(&record)?;
            if differs {
                differing += 1;
                let mut record = vec![row.id.clone()];
                record.extend(values.into_iter().flatten().map(Option::unwrap_or_default));
                record.extend(
                    self.rows
                        .columns
                        .iter()
                        .map(|c| row.vars.get(c).map(value_text).unwrap_or_default()),
                );
                disagreements.write(&record)?;
            }
        }
        consensus.finish()?;
        disagreements.finish()?;
        let fields = self
            .fields
            .iter()
            .zip(&accs)
            .map(|((name, kind), acc)| (name.clone(), acc.finish(kind.as_str(), &names)))
            .collect();
        Ok(AnnotationSummary {
            raters: names,
            disagreements: differing,
            fields,
        })
    }
}

impl Exporter for Annotation {
    fn needs_index(&self) -> bool {
        true
    }

    fn file_name(&self) -> &str {
        "consensus.csv"
    }

    fn amend(&self, end: &RunEnd<'_>, summary: &mut Summary) -> io::Result<()> {
        summary.annotation = Some(self.pass(end)?);
        Ok(())
    }

    fn export(&self, _end: &RunEnd<'_>) -> io::Result<()> {
        // Written by `amend`, in the same pass as the figures.
        Ok(())
    }
}

/// The `parsed` object of a journal line, when the line is this (id, rater)'s (read with the
/// one borrowed view of a result line, so exactly the lines recovery reads are used).
fn parsed_of(bytes: &[u8], id: &str, rater: &Rater) -> Map<String, Value> {
    let Ok(l) = crate::output::view::LineView::parse(bytes) else {
        return Map::new();
    };
    if l.id != id
        || l.model != rater.model.as_str()
        || l.variant.as_deref() != rater.variant.as_deref()
    {
        return Map::new();
    }
    l.parsed
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or_default()
}

/// A CSV file written through a temp file and renamed at [`Csv::finish`]; every cell
/// formula-escaped.
struct Csv {
    writer: ::csv::Writer<std::fs::File>,
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl Csv {
    fn create(path: &Path, header: &[String]) -> io::Result<Csv> {
        let tmp = path.with_extension("csv.tmp");
        let mut c = Csv {
            writer: ::csv::Writer::from_writer(std::fs::File::create(&tmp)?),
            tmp,
            path: path.to_path_buf(),
        };
        c.write(header)?;
        Ok(c)
    }

    fn write(&mut self, cells: &[String]) -> io::Result<()> {
        self.writer
            .write_record(cells.iter().map(|c| escape_formula(c).into_owned()))
            .map_err(io::Error::other)
    }

    fn finish(mut self) -> io::Result<()> {
        self.writer.flush()?;
        std::fs::rename(&self.tmp, &self.path)
    }
}
