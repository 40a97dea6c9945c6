//! The output dir's manifest (the request shape a resume must match) and its advisory lock.
//!
//! The manifest holds what shapes each request (system, template, body fields, the input's
//! fingerprint, the id column), not limits, budget, retries or timeouts: those may change
//! between resumes. Models are not in it either: adding a model sends only the new pairs.

use std::fs::File;
use std::path::Path;

use fs2::FileExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The manifest file name.
pub const MANIFEST: &str = "manifest.json";
/// The lock file name.
pub const LOCK: &str = ".orbatch.lock";

/// The request shape recorded before the first request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// The system prompt template.
    pub system: Option<String>,
    /// The user prompt template.
    pub prompt: Option<String>,
    /// `max_tokens`.
    pub max_tokens: Option<u64>,
    /// `temperature`.
    pub temperature: Option<f64>,
    /// Extra body fields.
    pub extra: Map<String, Value>,
    /// The id column.
    pub id_column: Option<String>,
    /// blake3 of the whole input file.
    pub input_fingerprint: String,
    /// The input's length in bytes (lets a resume accept rows appended to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_bytes: Option<u64>,
    /// Spend of results `--fresh` set aside (`results.jsonl.<timestamp>`), still counted
    /// against `budget_usd`; not part of the request shape.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::money::opt"
    )]
    pub carried_spend_usd: Option<rust_decimal::Decimal>,
    /// Every prompt variant run in the output dir, resolved over `[request]` (absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<crate::job::Variant>,
    /// Where the results came from (absent in manifests of earlier versions: not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointRecord>,
}

/// The endpoint an output dir's results came from: a resume against another is refused, so
/// the built-in mock's replies are never reported as a real run's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// The API base URL.
    pub base_url: String,
    /// True for the built-in mock (`--mock`), whose URL changes with every run.
    pub mock: bool,
}

impl EndpointRecord {
    /// How it is named in messages.
    pub fn describe(&self) -> String {
        if self.mock {
            "the built-in mock (--mock)".to_string()
        } else {
            crate::client::without_userinfo(&self.base_url)
        }
    }

    /// The same endpoint: both the mock, or the same base URL (a loopback server's port
    /// aside: a local server gets a new port when restarted).
    pub fn same_as(&self, other: &EndpointRecord) -> bool {
        match (self.mock, other.mock) {
            (true, true) => true,
            (false, false) => identity(&self.base_url) == identity(&other.base_url),
            _ => false,
        }
    }
}

/// A base URL without its trailing `/`, and without its port when the host is a loopback one.
fn identity(base_url: &str) -> String {
    let trimmed = base_url.trim_end_matches('/');
    let Ok(mut url) = reqwest::Url::parse(trimmed) else {
        return trimmed.to_string();
    };
    let host = url.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        let _ = url.set_port(None);
    }
    url.as_str().trim_end_matches('/').to_string()
}

impl Manifest {
    /// What changed from `old` to `self`, one phrase per field.
    pub fn changes_from(&self, old: &Manifest) -> Vec<String> {
        let mut out = Vec::new();
        let mut cmp = |name: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{name}: was {a}, now {b}"));
            }
        };
        let j = |v: &dyn erased::Json| v.json();
        cmp("request.system", j(&old.system), j(&self.system));
        cmp("request.prompt", j(&old.prompt), j(&self.prompt));
        cmp(
            "request.max_tokens",
            j(&old.max_tokens),
            j(&self.max_tokens),
        );
        cmp(
            "request.temperature",
            j(&old.temperature),
            j(&self.temperature),
        );
        cmp("request.extra", j(&old.extra), j(&self.extra));
        cmp("id_column", j(&old.id_column), j(&self.id_column));
        out.extend(variants::changes(&old.variants, &self.variants));
        if let (Some(was), Some(now)) = (&old.endpoint, &self.endpoint)
            && !was.same_as(now)
        {
            out.push(format!(
                "endpoint: the results there came from {}, this run is against {}",
                was.describe(),
                now.describe()
            ));
        }
        if old.input_fingerprint != self.input_fingerprint {
            out.push("the input file's contents changed since the first run".to_string());
        }
        out
    }

    /// Checks `dir`'s manifest against `self` (writing it when there is none). Returns the
    /// changes when they differ. An `input` that only grew (its old content, as long as the
    /// manifest recorded, is an unchanged prefix ending at a line break) is no change: the
    /// manifest is rewritten for the longer input and `Ok(Ok(Some(old length)))` returned.
    pub fn check_or_write(
        &self,
        dir: &Path,
        input: &Path,
    ) -> std::io::Result<Result<Option<u64>, Vec<String>>> {
        let path = dir.join(MANIFEST);
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Manifest>(&bytes) {
                Ok(old) => {
                    let grew = old.input_fingerprint != self.input_fingerprint
                        && old.input_bytes.is_some_and(|n| {
                            self.input_bytes.is_some_and(|now| now > n)
                                && starts_with(input, n, &old.input_fingerprint).unwrap_or(false)
                        });
                    let compared = Manifest {
                        input_fingerprint: old.input_fingerprint.clone(),
                        input_bytes: old.input_bytes,
                        ..self.clone()
                    };
                    // New variants join the recorded ones (a dropped one stays recorded).
                    let all = variants::union(&old.variants, &self.variants);
                    let new_variants = all.len() > old.variants.len();
                    let changes = if grew {
                        compared.changes_from(&old)
                    } else {
                        self.changes_from(&old)
                    };
                    if !changes.is_empty() {
                        return Ok(Err(changes));
                    }
                    if grew || new_variants {
                        let kept = Manifest {
                            variants: all,
                            ..if grew { self.clone() } else { old.clone() }
                        };
                        crate::fsutil::write_atomic(&path, &serde_json::to_vec_pretty(&kept)?)?;
                    }
                    Ok(Ok(if grew { old.input_bytes } else { None }))
                }
                Err(e) => Ok(Err(vec![format!("{} is unreadable ({e})", path.display())])),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::fsutil::write_atomic(&path, &serde_json::to_vec_pretty(self)?)?;
                Ok(Ok(None))
            }
            Err(e) => Err(e),
        }
    }
}

/// True when the first `len` bytes of `input` hash to `fingerprint` and end a line (the byte
/// before them, or the one after, is a line break): rows were appended, none changed.
fn starts_with(input: &Path, len: u64, fingerprint: &str) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(input)?;
    let mut hasher = blake3::Hasher::new();
    let copied = std::io::copy(&mut (&mut file).take(len), &mut hasher)?;
    if copied != len || hasher.finalize().to_hex().as_str() != fingerprint {
        return Ok(false);
    }
    if len == 0 {
        return Ok(true);
    }
    let mut around = [0u8; 2];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut around)?;
    Ok(around[0] == b'\n' || around[1] == b'\n' || around[1] == b'\r')
}

mod variants;

mod erased {
    /// Renders a value as compact JSON for change messages.
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            let s = serde_json::to_string(self).unwrap_or_default();
            if s.len() > 80 {
                format!("{}...", s.chars().take(77).collect::<String>())
            } else {
                s
            }
        }
    }
}

/// An exclusive advisory lock on an output dir, released on drop (and by the OS on `kill -9`).
///
/// The lock is taken on the directory itself (its own file descriptor, which cannot be deleted
/// from under a run the way a file can) and, for older orbatch versions, on `.orbatch.lock`.
pub struct DirLock {
    _dir: File,
    _file: File,
}

impl DirLock {
    /// Takes the lock, or says another run holds it. Then removes the temp files a killed run
    /// left (their process is gone, and no other run can be writing them now).
    pub fn acquire(dir: &Path) -> Result<DirLock, String> {
        let held = || {
            format!(
                "another orbatch run is using {} (it holds the directory's lock); wait for it to finish or use another --output-dir",
                dir.display()
            )
        };
        let dir_fd = File::open(dir)
            .map_err(|e| format!("cannot open output dir {}: {e}", dir.display()))?;
        let contended =
            |e: &std::io::Error| e.raw_os_error() == fs2::lock_contended_error().raw_os_error();
        match dir_fd.try_lock_exclusive() {
            Ok(()) => {}
            Err(e) if contended(&e) => return Err(held()),
            // A file system that cannot lock a directory (some network mounts): the lock file
            // alone guards the dir, as in earlier versions.
            Err(e) => tracing::warn!(
                "cannot lock {} itself ({e}); relying on {LOCK} alone",
                dir.display()
            ),
        }
        let path = dir.join(LOCK);
        let file = crate::fsutil::open_regular(
            &path,
            File::options().create(true).truncate(false).write(true),
        )
        .map_err(|e| format!("cannot open lock file {}: {e}", path.display()))?;
        file.try_lock_exclusive().map_err(|_| held())?;
        match crate::fsutil::remove_stale_temps(dir) {
            Ok(removed) => {
                for p in removed {
                    tracing::info!("removed {} (left by a run that was killed)", p.display());
                }
            }
            Err(e) => tracing::warn!("cannot clean temp files in {}: {e}", dir.display()),
        }
        Ok(DirLock {
            _dir: dir_fd,
            _file: file,
        })
    }
}

#[cfg(test)]
mod tests;
