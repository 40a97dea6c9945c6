//! `[request] mode` and the `[batch]` section: how a job goes through the provider's Batch API
//! (`--mode batch`) instead of one request at a time.
//!
//! The Batch API's path and the form of the batch-level model slug have changed within weeks,
//! so both are settings: `path` (default `/batches` under the base URL; `/api/beta/batches` for
//! the older beta) and `model_suffix` (default none: the base slug; `":batch"` for servers that
//! want the batch variant's slug).

use std::time::Duration;

use serde::Deserialize;

use super::JobError;

/// The most requests one batch may hold (the API's limit).
pub const MAX_REQUESTS: usize = 5000;
/// The largest batch body the API accepts (200 MB).
pub const MAX_BYTES: u64 = 200_000_000;

/// How a job's requests are sent (`[request] mode`, `--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One request per key, as it goes.
    #[default]
    Live,
    /// Through the provider's Batch API: cheaper, minutes to hours.
    Batch,
}

/// The `[batch]` section as written in a job file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BatchFile {
    max_requests: Option<usize>,
    max_bytes: Option<u64>,
    path: Option<String>,
    model_suffix: Option<String>,
    poll_min_secs: Option<f64>,
    poll_max_secs: Option<f64>,
}

/// The resolved batch settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSpec {
    /// `live` or `batch`.
    pub mode: Mode,
    /// Requests per batch at most ([`MAX_REQUESTS`]).
    pub max_requests: usize,
    /// Body bytes per batch at most ([`MAX_BYTES`]).
    pub max_bytes: u64,
    /// The batches endpoint: a path under the base URL (`/batches`), or from the host's root
    /// when it starts with `/api/` (`/api/beta/batches`).
    pub path: String,
    /// Appended to the batch-level model slug (`""`, or `":batch"`).
    pub model_suffix: String,
    /// The first wait between polls.
    pub poll_min: Duration,
    /// The longest wait between polls (the back-off doubles up to it).
    pub poll_max: Duration,
}

impl Default for BatchSpec {
    fn default() -> Self {
        BatchSpec {
            mode: Mode::Live,
            max_requests: MAX_REQUESTS,
            max_bytes: MAX_BYTES,
            path: "/batches".into(),
            model_suffix: String::new(),
            poll_min: Duration::from_secs(5),
            poll_max: Duration::from_secs(60),
        }
    }
}

impl BatchSpec {
    /// Resolves `[batch]` with the mode (`--mode` beats `[request] mode`).
    pub(super) fn resolve(f: BatchFile, mode: Option<Mode>) -> Result<BatchSpec, JobError> {
        let d = BatchSpec::default();
        let max_requests = f.max_requests.unwrap_or(d.max_requests);
        if !(1..=MAX_REQUESTS).contains(&max_requests) {
            return Err(JobError(format!(
                "batch.max_requests must be 1..={MAX_REQUESTS}, got {max_requests}"
            )));
        }
        let max_bytes = f.max_bytes.unwrap_or(d.max_bytes);
        if !(1..=MAX_BYTES).contains(&max_bytes) {
            return Err(JobError(format!(
                "batch.max_bytes must be 1..={MAX_BYTES}, got {max_bytes}"
            )));
        }
        let path = f.path.unwrap_or(d.path);
        if !path.starts_with('/') || path.contains(['?', '#']) || path.ends_with('/') {
            return Err(JobError(format!(
                "batch.path must be a path starting with '/' (like \"/batches\" or \"/api/beta/batches\"), got {path:?}"
            )));
        }
        let secs = |name: &str, v: Option<f64>, default: Duration| match v {
            None => Ok(default),
            Some(s) if s > 0.0 && s.is_finite() && s <= 3600.0 => Ok(Duration::from_secs_f64(s)),
            Some(s) => Err(JobError(format!(
                "batch.{name} must be a number of seconds in (0, 3600], got {s}"
            ))),
        };
        let poll_min = secs("poll_min_secs", f.poll_min_secs, d.poll_min)?;
        let poll_max = secs("poll_max_secs", f.poll_max_secs, d.poll_max)?;
        if poll_max < poll_min {
            return Err(JobError(
                "batch.poll_max_secs must not be below batch.poll_min_secs".into(),
            ));
        }
        Ok(BatchSpec {
            mode: mode.unwrap_or_default(),
            max_requests,
            max_bytes,
            path,
            model_suffix: f.model_suffix.unwrap_or_default(),
            poll_min,
            poll_max,
        })
    }

    /// The batches endpoint's URL for a base URL (`https://host/api/v1`).
    pub fn url(&self, base_url: &str) -> String {
        let base = base_url.trim_end_matches('/');
        if self.path.starts_with("/api/") {
            // From the host's root: scheme://host[:port] of the base URL.
            let root_end = base
                .find("://")
                .and_then(|s| base[s + 3..].find('/').map(|p| s + 3 + p))
                .unwrap_or(base.len());
            format!("{}{}", &base[..root_end], self.path)
        } else {
            format!("{base}{}", self.path)
        }
    }

    /// The batch-level model slug sent for `model`.
    pub fn batch_model(&self, model: &str) -> String {
        format!("{model}{}", self.model_suffix)
    }
}

/// The `/models` slug of a model's batch variant, whose price is the batch price.
pub fn batch_variant(model: &str) -> String {
    if model.ends_with(":batch") {
        model.to_string()
    } else {
        format!("{model}:batch")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(toml_text: &str) -> BatchFile {
        toml::from_str(toml_text).expect("a valid [batch] table")
    }

    #[test]
    fn defaults_and_overrides() {
        let d = BatchSpec::resolve(BatchFile::default(), None).expect("defaults");
        assert_eq!(d.mode, Mode::Live);
        assert_eq!(d.max_requests, 5000);
        assert_eq!(
            d.url("http://127.0.0.1:9/api/v1/"),
            "http://127.0.0.1:9/api/v1/batches"
        );
        let b = BatchSpec::resolve(
            file("max_requests = 500\npath = \"/api/beta/batches\"\npoll_min_secs = 0.05\npoll_max_secs = 0.2\nmodel_suffix = \":batch\""),
            Some(Mode::Batch),
        )
        .expect("valid");
        assert_eq!(b.mode, Mode::Batch);
        assert_eq!(b.max_requests, 500);
        assert_eq!(
            b.url("https://openrouter.ai/api/v1"),
            "https://openrouter.ai/api/beta/batches"
        );
        assert_eq!(
            b.batch_model("openai/gpt-4o-mini"),
            "openai/gpt-4o-mini:batch"
        );
        assert_eq!(b.poll_min, Duration::from_millis(50));
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        for (text, key) in [
            ("max_requests = 0", "max_requests"),
            ("max_requests = 5001", "max_requests"),
            ("max_bytes = 300000000", "max_bytes"),
            ("path = \"batches\"", "path"),
            ("poll_min_secs = -1.0", "poll_min_secs"),
            ("poll_min_secs = 10.0\npoll_max_secs = 1.0", "poll_max_secs"),
        ] {
            let err = BatchSpec::resolve(file(text), None).expect_err(text).0;
            assert!(err.contains(key), "{text}: {err}");
        }
        assert!(toml::from_str::<BatchFile>("nope = 1").is_err());
    }

    #[test]
    fn the_batch_variant_slug() {
        assert_eq!(batch_variant("a/b"), "a/b:batch");
        assert_eq!(batch_variant("a/b:batch"), "a/b:batch");
    }
}
