//! The response cache (never pay twice): ok answers keyed by the endpoint and the exact request
//! body, shared by every run and every orbatch process on the host.
//!
//! The store is SQLite (bundled, through `rusqlite`) in WAL mode with a busy timeout: several
//! processes (shards, two jobs) read and write one file at once without corruption or lost
//! writes, and readers never wait for a writer. It lives on a thread of its own
//! ([`ResponseCache`]): the runtime thread only sends it messages, and inserts come in batches
//! (one transaction per batch of result lines the writer wrote).
//!
//! The runner looks a pair up before it reserves budget or waits for the limiter (a hit costs
//! nothing and sends nothing), and inserts an answer only after its result line is in
//! results.jsonl, so a crash never turns an answer this output dir paid for into a free hit. A
//! cache that cannot be opened or read is reported once and bypassed: never fatal to a run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

/// The cache file inside the cache dir.
pub const FILE_NAME: &str = "responses.sqlite3";
/// The endpoint identity of the built-in mock (its port changes every run). No real base URL
/// looks like it, so a mock answer can never be a hit for a real endpoint.
pub const MOCK_IDENTITY: &str = "mock:";
/// How long a statement waits for another process's write lock before it gives up.
const BUSY: Duration = Duration::from_secs(30);

/// A cache key: blake3 of the endpoint identity and the canonical request body.
pub type Key = [u8; 32];

/// The default cache dir: `$ORBATCH_CACHE_DIR`, else `$XDG_CACHE_HOME/orbatch`, else
/// `~/.cache/orbatch` (`None` when none of them is set).
pub fn default_dir() -> Option<PathBuf> {
    std::env::var_os("ORBATCH_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("orbatch")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/orbatch")))
}

/// The key of `body` sent to `identity` (the base URL, or [`MOCK_IDENTITY`]). The body is
/// canonicalised (object keys sorted at every depth) so that the same request always has the
/// same key; a body that is not JSON is hashed as it is.
pub fn key(identity: &str, body: &[u8]) -> Key {
    let mut h = blake3::Hasher::new();
    h.update(identity.as_bytes());
    h.update(b"\n");
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let mut out = String::with_capacity(body.len());
            canonical(&v, &mut out);
            h.update(out.as_bytes());
        }
        Err(_) => {
            h.update(body);
        }
    }
    *h.finalize().as_bytes()
}

/// Writes `v` as JSON with every object's keys in sorted order.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        leaf => out.push_str(&leaf.to_string()),
    }
}

/// What the cache keeps of an ok answer: the reply, with `cost` what it cost when it was paid.
pub type CachedAnswer = super::Completion;

/// The numbers of `orbatch cache stats`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// The cache file.
    pub path: PathBuf,
    /// Answers stored.
    pub entries: u64,
    /// What they cost when they were paid (what a hit on each saves).
    #[serde(with = "crate::money")]
    pub paid_usd: Decimal,
    /// Bytes on disk (the database and its WAL).
    pub bytes: u64,
    /// When the oldest entry was stored (Unix seconds).
    pub oldest: Option<i64>,
    /// When the newest entry was stored (Unix seconds).
    pub newest: Option<i64>,
}

/// An open cache file (one connection). Used by the cache thread and `orbatch cache`.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating when missing) the cache in `dir`: WAL mode, a busy timeout, the table.
    /// A file that is not a cache database is an error.
    pub fn open(dir: &Path) -> rusqlite::Result<Store> {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return Err(rusqlite::Error::InvalidPath(
                format!("{}: {e}", dir.display()).into(),
            ));
        }
        let path = dir.join(FILE_NAME);
        let conn = Connection::open(&path)?;
        conn.busy_timeout(BUSY)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS responses (
                 key BLOB PRIMARY KEY,
                 answer TEXT NOT NULL,
                 stored_at INTEGER NOT NULL
             )",
        )?;
        Ok(Store { conn, path })
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The answer stored under `key`.
    pub fn get(&self, key: &Key) -> rusqlite::Result<Option<CachedAnswer>> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT answer FROM responses WHERE key = ?1")?
            .query_row(params![key.as_slice()], |r| r.get(0))
            .optional()?;
        // An entry that does not parse is a miss (it is replaced when the answer is paid again).
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Stores `entries` in one transaction (a key stored again is replaced).
    pub fn put(&mut self, entries: &[(Key, CachedAnswer)]) -> rusqlite::Result<()> {
        let now = now_secs();
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO responses (key, answer, stored_at) VALUES (?1, ?2, ?3)",
            )?;
            for (key, answer) in entries {
                let text = serde_json::to_string(answer)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                stmt.execute(params![key.as_slice(), text, now])?;
            }
        }
        tx.commit()
    }

    /// Entries, their paid cost, size and ages.
    pub fn stats(&self) -> rusqlite::Result<Stats> {
        let (entries, oldest, newest): (i64, Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT COUNT(*), MIN(stored_at), MAX(stored_at) FROM responses",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut paid = Decimal::ZERO;
        let mut stmt = self.conn.prepare("SELECT answer FROM responses")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let text: String = row.get(0)?;
            if let Ok(a) = serde_json::from_str::<CachedAnswer>(&text) {
                paid += a.cost.unwrap_or_default();
            }
        }
        let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        Ok(Stats {
            path: self.path.clone(),
            entries: u64::try_from(entries).unwrap_or(0),
            paid_usd: paid,
            bytes: size(self.path.clone()) + size(wal),
            oldest,
            newest,
        })
    }

    /// Deletes the entries stored more than `days` days ago (every entry with `None`) and
    /// returns how many went.
    pub fn prune(&self, days: Option<f64>) -> rusqlite::Result<u64> {
        let n = match days {
            None => self.conn.execute("DELETE FROM responses", [])?,
            Some(d) => {
                let cutoff = now_secs() - (d * 86_400.0) as i64;
                self.conn
                    .execute("DELETE FROM responses WHERE stored_at < ?1", [cutoff])?
            }
        };
        // Give the space back (best effort: another process may be reading).
        let _ = self
            .conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;");
        Ok(n as u64)
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// One batch of answers for the store thread to insert.
type Inserts = Vec<(Key, CachedAnswer)>;

/// The run's handle on the cache: inserts go to a thread owning one connection (batched, off
/// the runtime thread); look-ups read through a second connection on the caller's thread (a
/// primary-key read of a WAL database, which never waits for the writer: cheaper than a
/// round trip to another thread for every pair). Cheap to share (`Arc`). Once the cache
/// fails it is bypassed for the rest of the run (one warning).
pub struct ResponseCache {
    identity: String,
    reader: std::sync::Mutex<Store>,
    tx: std::sync::Mutex<Option<mpsc::Sender<Inserts>>>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    broken: Arc<AtomicBool>,
}

impl ResponseCache {
    /// Opens the cache in `dir` for requests sent to `identity`; a cache that cannot be opened
    /// is reported (one warning) and the run goes on without it (`None`).
    pub fn open(dir: &Path, identity: &str) -> Option<Arc<ResponseCache>> {
        let (store, reader) = match Store::open(dir).and_then(|s| Ok((s, Store::open(dir)?))) {
            Ok(s) => s,
            Err(e) => {
                warn_bypassed(&dir.join(FILE_NAME), &e);
                return None;
            }
        };
        let (tx, rx) = mpsc::channel();
        let broken = Arc::new(AtomicBool::new(false));
        let flag = broken.clone();
        let thread = std::thread::Builder::new()
            .name("orbatch-cache".into())
            .spawn(move || serve(store, rx, flag))
            .ok()?;
        Some(Arc::new(ResponseCache {
            identity: identity.to_string(),
            reader: std::sync::Mutex::new(reader),
            tx: std::sync::Mutex::new(Some(tx)),
            thread: std::sync::Mutex::new(Some(thread)),
            broken,
        }))
    }

    /// The key of `body` for this run's endpoint.
    pub fn key(&self, body: &[u8]) -> Key {
        key(&self.identity, body)
    }

    /// The answer stored under `key` (`None`: a miss, or the cache is bypassed).
    pub fn get(&self, key: Key) -> Option<CachedAnswer> {
        if self.broken.load(Relaxed) {
            return None;
        }
        let reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        match reader.get(&key) {
            Ok(answer) => answer,
            Err(e) => {
                if !self.broken.swap(true, Relaxed) {
                    warn_bypassed(reader.path(), &e);
                }
                None
            }
        }
    }

    /// Stores answers whose result lines are written (in the background, one transaction).
    pub fn put(&self, entries: Inserts) {
        if entries.is_empty() || self.broken.load(Relaxed) {
            return;
        }
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = tx.as_ref() {
            let _ = tx.send(entries);
        }
    }

    /// Waits until every insert sent so far is done (the end of a run).
    pub fn close(&self) {
        drop(self.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

fn warn_bypassed(path: &Path, e: &rusqlite::Error) {
    tracing::warn!(
        "response cache {} is unusable ({e}); going on without it (remove the file or run `orbatch cache clear` to start a new one)",
        path.display()
    );
}

/// The cache thread: stores batches, and bypasses the cache after its first failure. Batches
/// that queued up while it was storing go into one transaction (fewer commits when the
/// journal writer is faster than the store).
fn serve(mut store: Store, rx: mpsc::Receiver<Inserts>, broken: Arc<AtomicBool>) {
    while let Ok(mut entries) = rx.recv() {
        while let Ok(more) = rx.try_recv() {
            entries.extend(more);
        }
        if broken.load(Relaxed) {
            continue;
        }
        if let Err(e) = store.put(&entries)
            && !broken.swap(true, Relaxed)
        {
            warn_bypassed(store.path(), &e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_ignores_key_order_but_not_values_or_endpoint() {
        let a = key(
            "https://x/api/v1",
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":8}"#,
        );
        let b = key(
            "https://x/api/v1",
            br#"{"max_tokens":8,"messages":[{"content":"hi","role":"user"}],"model":"m"}"#,
        );
        let c = key(
            "https://x/api/v1",
            br#"{"max_tokens":9,"messages":[{"content":"hi","role":"user"}],"model":"m"}"#,
        );
        let d = key(
            MOCK_IDENTITY,
            br#"{"max_tokens":8,"messages":[{"content":"hi","role":"user"}],"model":"m"}"#,
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn stored_answers_come_back_and_prune_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let k = key("e", b"{}");
        assert_eq!(s.get(&k).unwrap(), None);
        let a = CachedAnswer {
            content: Some("yes".into()),
            cost: Some(Decimal::new(12, 6)),
            ..CachedAnswer::default()
        };
        s.put(&[(k, a.clone())]).unwrap();
        assert_eq!(s.get(&k).unwrap(), Some(a));
        let st = s.stats().unwrap();
        assert_eq!((st.entries, st.paid_usd), (1, Decimal::new(12, 6)));
        assert_eq!(s.prune(Some(1.0)).unwrap(), 0, "younger than a day");
        assert_eq!(s.prune(None).unwrap(), 1);
        assert_eq!(s.stats().unwrap().entries, 0);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), vec![0x5au8; 8192]).unwrap();
        assert!(Store::open(dir.path()).is_err());
        assert!(ResponseCache::open(dir.path(), "e").is_none());
    }
}
