//! The in-flight record, `inflight.jsonl` in the output dir: money that may be spent but is not
//! in results.jsonl yet.
//!
//! Before each attempt is sent, a line `{"id","model","variant"?,"n","worst"}` is appended (`n` is the
//! key's cumulative attempt number, `worst` its worst-case charge). A failed attempt whose
//! charge is known appends `{"id","model","n","charge"}`. An attempt is settled once the key's
//! latest line in results.jsonl counts `n` attempts or more (that line carries its cost); the
//! rest are what a crash (kill -9, power loss of the process) left in flight. A judge call is
//! recorded under a key of its own and settled by the line it judges (its check's judge record
//! counts the attempts): see `runner/crashed_judge.rs`.
//!
//! The threat is the death of the process, not of the machine: a `write(2)` into the page cache
//! survives `kill -9`, so the record is written (not fsynced) before the request leaves. Writes
//! are grouped: the records of the attempts admitted in the same turn of the runtime go out in
//! one `write`. The next run turns the unsettled records into result lines (unknown cost at the
//! worst case) before it sends anything, then starts the record afresh; a run that ends with
//! every line written empties it too.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::key::ResultKey;

/// The record's file name in the output dir.
pub const FILE_NAME: &str = "inflight.jsonl";

/// One line of the record, its texts borrowed (from the key written, or from the line read
/// when it has no escapes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    variant: Option<Cow<'a, str>>,
    n: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    worst: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    charge: Option<Decimal>,
}

/// An attempt found in the record that results.jsonl does not account for.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsettled {
    /// The attempt's cumulative number for its key.
    pub n: u32,
    /// Its worst-case charge.
    pub worst: Decimal,
    /// Its charge when it was known (a failed attempt); `None`: unknown, count `worst`.
    pub charge: Option<Decimal>,
}

/// The attempts of one key that a crash left unsettled.
#[derive(Debug, Clone, PartialEq)]
pub struct Crashed {
    /// The row id.
    pub id: String,
    /// The model.
    pub model: String,
    /// The prompt variant (`None`: the job defines none).
    pub variant: Option<String>,
    /// The attempts, in order.
    pub attempts: Vec<Unsettled>,
}

impl Crashed {
    /// The key whose attempts these are.
    pub fn key(&self) -> ResultKey<'_> {
        ResultKey::of(&self.id, self.variant.as_deref(), &self.model)
    }
}

/// Reads the record at `path` (absent = empty) and returns, per key, the attempts numbered
/// above `accounted(key)` (the attempts results.jsonl counts for that key). A torn or
/// unreadable line is skipped: it was being written when the process died, before its request
/// could be sent.
pub fn unsettled(
    path: &Path,
    mut accounted: impl FnMut(ResultKey<'_>) -> u32,
) -> io::Result<Vec<Crashed>> {
    let mut keys: HashMap<u64, usize> = HashMap::new();
    let mut out: Vec<Crashed> = Vec::new();
    entries(path, |e| {
        let key = ResultKey::of(&e.id, e.variant.as_deref(), &e.model);
        if e.n <= accounted(key) {
            return;
        }
        let slot = *keys.entry(key.hash()).or_insert_with(|| {
            out.push(Crashed {
                id: e.id.to_string(),
                model: e.model.to_string(),
                variant: e.variant.as_deref().map(str::to_owned),
                attempts: Vec::new(),
            });
            out.len() - 1
        });
        let attempts = &mut out[slot].attempts;
        match attempts.iter_mut().find(|a| a.n == e.n) {
            Some(a) => {
                a.charge = e.charge.or(a.charge);
                a.worst = a.worst.max(e.worst.unwrap_or_default());
            }
            None => attempts.push(Unsettled {
                n: e.n,
                worst: e.worst.unwrap_or_default(),
                charge: e.charge,
            }),
        }
    })?;
    // A key whose attempts all cost nothing known has nothing to account.
    out.retain(|c| {
        c.attempts
            .iter()
            .any(|a| a.charge.is_none_or(|v| !v.is_zero()))
    });
    Ok(out)
}

/// Calls `f` with the key of every entry of the record at `path` (absent = empty), in order.
pub fn for_each_key(path: &Path, mut f: impl FnMut(ResultKey<'_>)) -> io::Result<()> {
    entries(path, |e| {
        f(ResultKey::of(&e.id, e.variant.as_deref(), &e.model))
    })
}

/// Calls `f` with every readable entry of the record at `path` (absent = empty). A torn or
/// unreadable line is skipped.
fn entries(path: &Path, mut f: impl FnMut(Entry<'_>)) -> io::Result<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for line in io::BufReader::new(file).split(b'\n') {
        if let Ok(e) = serde_json::from_slice::<Entry>(&line?) {
            f(e);
        }
    }
    Ok(())
}

/// The record a run appends to (share it; appends are grouped per turn of the runtime).
pub struct Inflight {
    path: PathBuf,
    state: Mutex<Buffer>,
}

struct Buffer {
    file: File,
    bytes: Vec<u8>,
    /// Records buffered so far, and written so far.
    queued: u64,
    written: u64,
}

impl Inflight {
    /// Starts an empty record at `path` (an earlier one must have been read first).
    pub fn create(path: &Path) -> io::Result<Inflight> {
        // Never through a symlink, never into anything but a regular file.
        let file = crate::fsutil::open_regular(
            path,
            OpenOptions::new().create(true).write(true).truncate(true),
        )?;
        drop(file);
        let file = crate::fsutil::open_regular(path, OpenOptions::new().append(true))?;
        Ok(Inflight {
            path: path.to_path_buf(),
            state: Mutex::new(Buffer {
                file,
                bytes: Vec::with_capacity(4096),
                queued: 0,
                written: 0,
            }),
        })
    }

    /// Records attempt `n` of `key`, worst case `worst`, and returns once the record is in
    /// the file (the page cache): call it right before the request is sent.
    pub async fn sent(&self, key: ResultKey<'_>, n: u32, worst: Decimal) -> io::Result<()> {
        let seq = self.queue(key, n, Some(worst), None)?;
        // Let the other attempts admitted in this turn queue theirs: one write for all.
        tokio::task::yield_now().await;
        self.write_through(seq)
    }

    /// Records the known charge of attempt `n` (a failed attempt; an answer is settled by its
    /// result line). Written with the next group, or at once when nothing else is pending.
    pub fn charged(&self, key: ResultKey<'_>, n: u32, charge: Decimal) -> io::Result<()> {
        let seq = self.queue(key, n, None, Some(charge))?;
        self.write_through(seq)
    }

    /// Empties the record: every attempt in it is accounted for in results.jsonl.
    pub fn clear(&self) -> io::Result<()> {
        let mut b = self.lock();
        b.bytes.clear();
        b.written = b.queued;
        b.file.set_len(0)
    }

    /// The record's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn queue(
        &self,
        key: ResultKey<'_>,
        n: u32,
        worst: Option<Decimal>,
        charge: Option<Decimal>,
    ) -> io::Result<u64> {
        let entry = Entry {
            id: Cow::Borrowed(key.id),
            model: Cow::Borrowed(key.model),
            variant: key.variant.map(Cow::Borrowed),
            n,
            worst,
            charge,
        };
        let mut b = self.lock();
        serde_json::to_writer(&mut b.bytes, &entry)?;
        b.bytes.push(b'\n');
        b.queued += 1;
        Ok(b.queued)
    }

    fn write_through(&self, seq: u64) -> io::Result<()> {
        let mut b = self.lock();
        if b.written >= seq {
            return Ok(());
        }
        let Buffer { file, bytes, .. } = &mut *b;
        file.write_all(bytes)?;
        bytes.clear();
        b.written = b.queued;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is written borrows its texts and reads back as the same entry.
    #[test]
    fn a_written_entry_is_the_entry_read() {
        for (variant, worst, charge) in [
            (None, Some(Decimal::new(15, 3)), None),
            (Some("v\"1"), None, Some(Decimal::new(-2, 1))),
        ] {
            let written = Entry {
                id: Cow::Borrowed("ä\n"),
                model: Cow::Borrowed("m"),
                variant: variant.map(Cow::Borrowed),
                n: 3,
                worst,
                charge,
            };
            let text = serde_json::to_string(&written).unwrap();
            let read: Entry = serde_json::from_str(&text).unwrap();
            assert_eq!(read, written);
            let owned = Entry {
                id: Cow::Owned("ä\n".into()),
                model: Cow::Owned("m".into()),
                variant: variant.map(|v| Cow::Owned(v.into())),
                ..written
            };
            assert_eq!(text, serde_json::to_string(&owned).unwrap());
        }
    }

    fn k(id: &str) -> ResultKey<'_> {
        ResultKey::new(id, "m")
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn unsettled_attempts_are_those_the_journal_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let rec = Inflight::create(&path).unwrap();
        rec.sent(k("a"), 1, d("0.5")).await.unwrap();
        rec.sent(k("b"), 3, d("0.25")).await.unwrap();
        rec.charged(k("b"), 3, d("0")).unwrap();
        rec.sent(k("b"), 4, d("0.25")).await.unwrap();
        rec.charged(k("b"), 4, d("0.01")).unwrap();
        rec.sent(k("c"), 1, d("1")).await.unwrap();
        rec.sent(k("z"), 1, d("1")).await.unwrap();
        rec.charged(k("z"), 1, d("0")).unwrap();
        // A torn last line (the process died while writing it).
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(br#"{"id":"d","mo"#)
            .unwrap();
        // results.jsonl counts 1 attempt of "a" and 2 of "b".
        let got = unsettled(&path, |key| match key.id {
            "a" => 1,
            "b" => 2,
            _ => 0,
        })
        .unwrap();
        let b = Unsettled {
            n: 3,
            worst: d("0.25"),
            charge: Some(d("0")),
        };
        let b4 = Unsettled {
            n: 4,
            worst: d("0.25"),
            charge: Some(d("0.01")),
        };
        let c = Unsettled {
            n: 1,
            worst: d("1"),
            charge: None,
        };
        assert_eq!(
            got,
            vec![
                Crashed {
                    id: "b".into(),
                    model: "m".into(),
                    variant: None,
                    attempts: vec![b, b4]
                },
                Crashed {
                    id: "c".into(),
                    model: "m".into(),
                    variant: None,
                    attempts: vec![c]
                },
            ]
        );
        rec.clear().unwrap();
        assert!(unsettled(&path, |_| 0).unwrap().is_empty());
        assert!(
            unsettled(&dir.path().join("absent"), |_| 0)
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn records_admitted_together_are_written_in_one_group() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let rec = std::sync::Arc::new(Inflight::create(&path).unwrap());
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let rec = rec.clone();
                tokio::spawn(async move { rec.sent(k(&format!("r{i}")), 1, d("1")).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(unsettled(&path, |_| 0).unwrap().len(), 50);
        assert_eq!(rec.lock().written, 50);
    }

    #[tokio::test]
    async fn a_variant_is_its_own_key_in_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let rec = Inflight::create(&path).unwrap();
        let terse = ResultKey::of("a", Some("terse"), "m");
        rec.sent(k("a"), 1, d("1")).await.unwrap();
        rec.sent(terse, 1, d("2")).await.unwrap();
        // results.jsonl accounts for (a, m) with no variant only.
        let got = unsettled(&path, |key| u32::from(key.variant.is_none())).unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].key(), terse);
        assert_eq!(got[0].attempts[0].worst, d("2"));
        // Lines without a variant are written as before (no `variant` field).
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(r#"{"id":"a","model":"m","n":1,"#),
            "{text}"
        );
    }
}
