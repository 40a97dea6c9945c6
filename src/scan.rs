//! The input scan (`orbatch validate`, and the first pass of `run`): parse every row, render
//! every prompt, check ids are unique, count rows and fingerprint the file, sending nothing.
//!
//! Memory stays flat in the number of rows apart from one map entry (16 bytes) per id: ids are
//! held as 64-bit hashes, never as strings.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use crate::input::{Format, InputError, Row, RowBody, RowReader, decoded};
use crate::missing::MissingVars;
use crate::prompts::Prompts;

/// What to scan and how.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions<'a> {
    /// The input file (`.csv` or `.jsonl`).
    pub path: &'a Path,
    /// The id column/field, when the job names one.
    pub id_column: Option<&'a str>,
    /// The CSV delimiter, when the job gives one (else found from the file).
    pub delimiter: Option<u8>,
    /// The job file the templates come from, for messages.
    pub job_file: Option<&'a std::path::PathBuf>,
    /// The job's compiled prompts (one per variant); every row's messages are rendered with
    /// each of them.
    pub prompts: &'a Prompts,
    /// True when the job names no models: every Batch row must then carry `body.model`.
    pub need_batch_model: bool,
    /// Scan only the first N records.
    pub limit: Option<u64>,
    /// How many errors to keep for display (all are counted).
    pub max_errors: usize,
    /// Only this shard's rows are the job's (all rows are still checked).
    pub shard: Option<crate::shard::Shard>,
}

/// What the scan found.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanReport {
    /// Records read, good or bad (with `limit`, at most that many).
    pub rows: u64,
    /// Of `rows`, those of the job's shard (all of them without a shard): the rows the
    /// plan's keys come from.
    pub shard_rows: u64,
    /// The input's columns: the CSV header, or the JSONL top-level keys in first-seen order.
    pub columns: Vec<String>,
    /// blake3 (hex) of the whole file's bytes, hashed while reading (with `limit`, the rest
    /// is hashed after the last row): the manifest's input fingerprint.
    pub fingerprint: String,
    /// The file's length in bytes when it was scanned (the bytes hashed). The run reads only
    /// these bytes: rows appended to the input after the scan were not validated.
    pub bytes: u64,
    /// The first `max_errors` errors, in file order.
    pub errors: Vec<InputError>,
    /// All errors found.
    pub error_count: u64,
    /// The distinct `body.model` values of Batch rows, in first-seen order.
    pub batch_models: Vec<String>,
    /// The largest prompt's token count bound (bytes based, cannot undercount): when it is
    /// under every model's context length, no prompt needs counting against it.
    pub max_prompt_upper: u64,
}

impl ScanReport {
    fn push_error(&mut self, err: InputError, max_errors: usize) {
        self.error_count += 1;
        if self.errors.len() < max_errors {
            self.errors.push(err);
        }
    }

    /// Adds `errors` (one per missing variable: each explains many rows) before the others
    /// kept, then puts the kept errors back in file order.
    fn put_first(&mut self, errors: Vec<InputError>, max_errors: usize) {
        if errors.is_empty() {
            return;
        }
        self.error_count += errors.len() as u64;
        let rest = std::mem::take(&mut self.errors);
        self.errors = errors.into_iter().chain(rest).take(max_errors).collect();
        self.errors.sort_by_key(|e| e.line);
    }
}

/// Scans the whole input (or its first `limit` records). `Err` only when the file cannot be
/// opened; everything wrong inside it is listed in the report.
pub fn scan(opts: &ScanOptions) -> Result<ScanReport, InputError> {
    let path = opts.path;
    let file = File::open(path)
        .map_err(|e| InputError::new(path, 0, format!("cannot open the input: {e}")))?;
    let tee = HashingReader {
        file: Arc::new(file),
        hashed: Arc::new(Mutex::new(Hashed::default())),
    };
    let rest = tee.clone();
    let mut report = ScanReport {
        rows: 0,
        shard_rows: 0,
        columns: Vec::new(),
        fingerprint: String::new(),
        bytes: 0,
        errors: Vec::new(),
        error_count: 0,
        batch_models: Vec::new(),
        max_prompt_upper: 0,
    };
    let reader = Format::from_path(path).and_then(|format| {
        let source = decoded(path, tee);
        RowReader::from_reader(path, format, source, opts.id_column, opts.delimiter)
    });
    match reader {
        Ok(mut reader) => {
            let mut checker = Checker::default();
            while opts.limit.is_none_or(|limit| report.rows < limit) {
                let Some(item) = reader.next() else { break };
                report.rows += 1;
                let result = item.and_then(|row| {
                    if opts.shard.is_none_or(|s| s.owns(&row.id)) {
                        report.shard_rows += 1;
                    }
                    checker.check(&row, opts)
                });
                if let Err(e) = result {
                    if let Some(hash) = checker.last_duplicate.take()
                        && report.errors.len() < opts.max_errors
                    {
                        checker.duplicates.push((report.errors.len(), hash));
                    }
                    report.push_error(e, opts.max_errors);
                }
            }
            report.columns = reader.columns();
            report.batch_models = std::mem::take(&mut checker.batch_models);
            report.max_prompt_upper = checker.max_prompt_upper;
            // After the duplicates are named: they point into `errors` by index.
            name_first_lines(&mut report, &checker.duplicates, opts);
            let missing = std::mem::take(&mut checker.missing).errors(path, opts.job_file);
            report.put_first(missing, opts.max_errors);
        }
        Err(e) => report.push_error(e, opts.max_errors),
    }
    (report.fingerprint, report.bytes) = rest.finish();
    Ok(report)
}

/// The checks that span rows: unique ids and the batch models seen.
#[derive(Default)]
struct Checker {
    /// Hashes of the ids seen (8 bytes a row: memory stays flat in the length of ids).
    ids: hashbrown::HashSet<u64>,
    /// The hash of the id of the last row found to be a duplicate.
    last_duplicate: Option<u64>,
    /// (index in the report's errors, id hash) of the duplicates listed.
    duplicates: Vec<(usize, u64)>,
    models: HashSet<String>,
    batch_models: Vec<String>,
    max_prompt_upper: u64,
    /// Template variables rows lack: reported once each, after the scan.
    missing: MissingVars,
}

/// Names the line where each listed duplicate id was first seen: a second read of the input,
/// only when there are duplicates (so the first pass holds 8 bytes a row, not 16).
fn name_first_lines(report: &mut ScanReport, duplicates: &[(usize, u64)], opts: &ScanOptions) {
    if duplicates.is_empty() {
        return;
    }
    let mut first: HashMap<u64, u64> = HashMap::new();
    if let Ok(rows) = RowReader::open_with(opts.path, opts.id_column, opts.delimiter, u64::MAX) {
        let wanted: HashSet<u64> = duplicates.iter().map(|d| d.1).collect();
        for row in rows.flatten() {
            let h = id_hash(&row.id);
            if wanted.contains(&h) {
                first.entry(h).or_insert(row.line);
                if first.len() == wanted.len() {
                    break;
                }
            }
        }
    }
    for (i, hash) in duplicates {
        if let (Some(e), Some(line)) = (report.errors.get_mut(*i), first.get(hash)) {
            e.message.push_str(&format!(" (first seen on line {line})"));
        }
    }
}

impl Checker {
    fn check(&mut self, row: &Row, opts: &ScanOptions) -> Result<(), InputError> {
        let err = |msg: String| InputError::new(opts.path, row.line, msg);
        let hash = id_hash(&row.id);
        if !self.ids.insert(hash) {
            self.last_duplicate = Some(hash);
            return Err(err(format!("duplicate id '{}'", shorten(&row.id))));
        }
        for prompt in opts.prompts.iter() {
            let messages = match prompt.messages(row) {
                Ok(m) => m,
                Err(e) => {
                    match prompt.template.missing_variable(row) {
                        Some(name) => self.missing.add(name, row),
                        None => return Err(err(e)),
                    }
                    continue;
                }
            };
            self.max_prompt_upper = self
                .max_prompt_upper
                .max(crate::prices::prompt_tokens_upper_bound(&messages));
        }
        if let RowBody::Batch(body) = &row.body {
            match body.get("model") {
                Some(Value::String(model)) if !model.is_empty() => {
                    let new = self.models.insert(model.clone());
                    if new {
                        self.batch_models.push(model.clone());
                    }
                }
                _ if opts.need_batch_model => {
                    return Err(err("batch line has no `body.model` and the job names no \
                         models (set request.models or --model)"
                        .into()));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A stable 64-bit hash of a row id (the first 8 bytes of its blake3 hash, little-endian).
pub fn id_hash(id: &str) -> u64 {
    first_u64(blake3::hash(id.as_bytes()))
}

/// The resume key's hash (one definition, shared with the results journal).
pub use crate::output::results::key_hash;

fn first_u64(hash: blake3::Hash) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// An id short enough for a message.
fn shorten(id: &str) -> String {
    const MAX: usize = 60;
    if id.chars().count() <= MAX {
        id.to_owned()
    } else {
        let head: String = id.chars().take(MAX).collect();
        format!("{head}...")
    }
}

/// Reads the file and hashes and counts every byte it hands out. Clones share the file (and
/// its position) and the hash.
#[derive(Clone)]
struct HashingReader {
    file: Arc<File>,
    hashed: Arc<Mutex<Hashed>>,
}

/// The hash and the length of the bytes read so far.
#[derive(Default)]
struct Hashed {
    hasher: blake3::Hasher,
    bytes: u64,
}

impl HashingReader {
    /// The hex fingerprint and the length of the whole file: the bytes the reader did not get
    /// to (after `limit`, or a file-level error that stopped it early) are hashed first.
    fn finish(mut self) -> (String, u64) {
        // A read error here was already met by the reader, or leaves the hash partial.
        let _ = io::copy(&mut self, &mut io::sink());
        let hashed = self.hashed.lock().unwrap_or_else(PoisonError::into_inner);
        (hashed.hasher.finalize().to_hex().to_string(), hashed.bytes)
    }
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&*self.file).read(buf)?;
        let mut hashed = self.hashed.lock().unwrap_or_else(PoisonError::into_inner);
        hashed.hasher.update(&buf[..n]);
        hashed.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::template::Template;

    fn scan_text(name: &str, text: &str, template: Template) -> ScanReport {
        let prompts = Prompts::single(template);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let opts = ScanOptions {
            path: &path,
            id_column: None,
            delimiter: None,
            job_file: None,
            prompts: &prompts,
            need_batch_model: true,
            limit: None,
            max_errors: 2,
            shard: None,
        };
        scan(&opts).unwrap()
    }

    #[test]
    fn hashes_are_stable_and_distinct() {
        assert_eq!(id_hash("17"), id_hash("17"));
        assert_ne!(id_hash("17"), id_hash("18"));
        assert_ne!(key_hash("a", "bc"), key_hash("ab", "c"));
    }

    #[test]
    fn counts_rows_finds_duplicates_and_caps_errors() {
        let t = Template::new(None, Some("{{ text }}")).unwrap();
        let r = scan_text("x.csv", "id,text\n1,a\n2,b\n1,c\n3\n4,d\n", t);
        assert_eq!(r.rows, 5);
        assert_eq!(r.error_count, 2);
        assert!(
            r.errors[0]
                .to_string()
                .ends_with(":4: duplicate id '1' (first seen on line 2)")
        );
        assert_eq!(r.columns, ["id", "text"]);
        let expected = blake3::hash(b"id,text\n1,a\n2,b\n1,c\n3\n4,d\n")
            .to_hex()
            .to_string();
        assert_eq!(r.fingerprint, expected);
        assert_eq!(r.bytes, 26);
    }

    #[test]
    fn with_a_limit_the_fingerprint_and_length_still_cover_the_whole_file() {
        // The manifest's fingerprint is the scan's: one read of the input, not two.
        let t = Template::new(None, Some("{{ text }}")).unwrap();
        let text = format!("id,text\n{}", "1,a\n".repeat(100_000));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, &text).unwrap();
        let opts = ScanOptions {
            path: &path,
            id_column: None,
            delimiter: None,
            job_file: None,
            prompts: &Prompts::single(t),
            need_batch_model: true,
            limit: Some(1),
            max_errors: 2,
            shard: None,
        };
        let r = scan(&opts).unwrap();
        assert_eq!(r.rows, 1);
        assert_eq!(
            r.fingerprint,
            blake3::hash(text.as_bytes()).to_hex().to_string()
        );
        assert_eq!(r.bytes, text.len() as u64);
    }

    #[test]
    fn batch_models_and_missing_model() {
        let t = Template::new(None, None).unwrap();
        let line = |id: &str, model: &str| {
            format!(
                "{{\"custom_id\":\"{id}\",\"body\":{{{model}\"messages\":[{{\"role\":\"user\",\"content\":\"x\"}}]}}}}\n"
            )
        };
        let text =
            line("a", "\"model\":\"m1\",") + &line("b", "") + &line("c", "\"model\":\"m1\",");
        let r = scan_text("b.jsonl", &text, t);
        assert_eq!(r.batch_models, ["m1"]);
        assert_eq!(r.error_count, 1);
        assert!(
            r.errors[0]
                .to_string()
                .contains(":2: batch line has no `body.model`")
        );
    }
}
