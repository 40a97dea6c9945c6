//! The price table from `GET /models`: per-row table cost, worst-case reservations for the
//! budget, and the tokenizer family for estimates. Cached on disk with its age.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::api::ModelEntry;
use crate::client::{CallError, Client};

mod live;
pub use live::{LivePrices, Priced};

/// How old a cached price table `run` (and its pre-flight) accepts: `/models` is fetched at
/// most once per command, and prices change far more slowly than that.
pub const RUN_MAX_AGE: Duration = Duration::from_secs(3600);

/// Set by [`disable_cache`]: this process neither reads nor writes the disk cache.
static NO_CACHE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Keeps this process's price tables off the disk cache: `--mock` runs against a throw-away
/// in-process server, whose table must not be left in `~/.cache/orbatch`.
pub fn disable_cache() {
    NO_CACHE.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// What orbatch knows of one model's price and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPrice {
    /// USD per prompt token.
    pub prompt: Decimal,
    /// USD per completion token.
    pub completion: Decimal,
    /// USD per request.
    pub request: Decimal,
    /// Context length in tokens.
    pub context_length: Option<u64>,
    /// The top provider's max completion tokens.
    pub max_completion_tokens: Option<u64>,
    /// `architecture.tokenizer` (`GPT`, `Claude`, ...).
    pub tokenizer: Option<String>,
}

impl ModelPrice {
    /// From a `/models` entry; `None` when the prompt or completion price is missing or
    /// variable (negative, as router models report).
    pub fn from_entry(e: &ModelEntry) -> Option<ModelPrice> {
        let p = e.pricing.as_ref()?;
        let parse = |s: &Option<String>| s.as_deref().and_then(crate::money::parse);
        let prompt = parse(&p.prompt)?;
        let completion = parse(&p.completion)?;
        let request = parse(&p.request).unwrap_or_default();
        if prompt.is_sign_negative() || completion.is_sign_negative() || request.is_sign_negative()
        {
            return None;
        }
        Some(ModelPrice {
            prompt,
            completion,
            request,
            context_length: e
                .context_length
                .or_else(|| e.top_provider.as_ref().and_then(|t| t.context_length)),
            max_completion_tokens: e
                .top_provider
                .as_ref()
                .and_then(|t| t.max_completion_tokens),
            tokenizer: e.architecture.as_ref().and_then(|a| a.tokenizer.clone()),
        })
    }

    /// Prompt and completion tokens priced, plus the request fee.
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> Decimal {
        self.prompt * Decimal::from(prompt_tokens)
            + self.completion * Decimal::from(completion_tokens)
            + self.request
    }

    /// The most completion tokens one request can produce: `max_tokens`, else the model's max
    /// completion, else its context length.
    pub fn completion_cap(&self, max_tokens: Option<u64>) -> Option<u64> {
        max_tokens
            .or(self.max_completion_tokens)
            .or(self.context_length)
    }
}

/// The price table (may be empty: a server without `/models` means "price unknown").
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PriceTable {
    /// Slug -> price.
    pub models: HashMap<String, ModelPrice>,
    /// Slugs listed without a usable price.
    #[serde(default)]
    pub unpriced: Vec<String>,
    /// When the table was fetched (Unix seconds).
    pub fetched_at: u64,
    /// Why the table is empty, when it could not be fetched.
    #[serde(skip)]
    pub error: Option<String>,
}

impl PriceTable {
    /// Builds a table from `/models` entries.
    pub fn from_entries(entries: &[ModelEntry]) -> PriceTable {
        let mut t = PriceTable {
            fetched_at: now_secs(),
            ..Default::default()
        };
        for e in entries {
            match ModelPrice::from_entry(e) {
                Some(p) => {
                    t.models.insert(e.id.clone(), p);
                }
                None => t.unpriced.push(e.id.clone()),
            }
        }
        t
    }

    /// The price of `model`, when known.
    pub fn get(&self, model: &str) -> Option<&ModelPrice> {
        self.models.get(model)
    }

    /// How old the table is.
    pub fn age(&self) -> Duration {
        Duration::from_secs(now_secs().saturating_sub(self.fetched_at))
    }

    /// Fetches `/models` (once). A failure gives an empty table with the reason, never an error:
    /// prices are then "unknown".
    pub async fn fetch(client: &Client) -> PriceTable {
        match client.models().await {
            Ok(entries) => {
                let t = PriceTable::from_entries(&entries);
                t.save(client.base_url());
                t
            }
            Err(e) => {
                let reason = match e {
                    CallError::NotFound => "the server has no /models endpoint".to_string(),
                    other => format!("GET /models failed: {other}"),
                };
                tracing::warn!(
                    "price table unavailable ({reason}); costs from prices will be unknown"
                );
                PriceTable {
                    error: Some(reason),
                    ..Default::default()
                }
            }
        }
    }

    /// The cached table for `base_url` when younger than `max_age`, else a fresh fetch (which
    /// falls back to an older cache when the fetch fails).
    pub async fn cached_or_fetch(client: &Client, max_age: Duration) -> PriceTable {
        let cached = Self::load(client.base_url());
        if let Some(c) = &cached
            && c.age() <= max_age
        {
            return c.clone();
        }
        let fresh = Self::fetch(client).await;
        match (fresh.error.is_some(), cached) {
            (true, Some(c)) => c,
            _ => fresh,
        }
    }

    fn cache_path(base_url: &str) -> Option<PathBuf> {
        if NO_CACHE.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let dir = std::env::var_os("ORBATCH_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("orbatch"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/orbatch"))
            })?;
        let tag = blake3::hash(base_url.as_bytes()).to_hex();
        Some(dir.join(format!("models-{}.json", &tag[..16])))
    }

    fn load(base_url: &str) -> Option<PriceTable> {
        let text = std::fs::read(Self::cache_path(base_url)?).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn save(&self, base_url: &str) {
        let Some(path) = Self::cache_path(base_url) else {
            return;
        };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            crate::fsutil::write_atomic(&path, &serde_json::to_vec(self)?)
        };
        if let Err(e) = write() {
            tracing::debug!("could not cache prices at {}: {e}", path.display());
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// True when the reported and table costs differ by more than 1% + $1e-9.
pub fn mismatch(reported: Decimal, table: Decimal) -> bool {
    let tolerance = table.abs() / Decimal::from(100) + Decimal::new(1, 9);
    (reported - table).abs() > tolerance
}

/// An attempt's worst-case charge at table prices: the prompt's token upper bound plus the
/// completion cap (`cap`, else the model's), priced; `None` when the model has no price.
pub fn worst_case(
    prices: &PriceTable,
    model: &str,
    messages: &[serde_json::Value],
    cap: Option<u64>,
) -> Option<Decimal> {
    let p = prices.get(model)?;
    Some(p.cost(
        prompt_tokens_upper_bound(messages),
        p.completion_cap(cap).unwrap_or(0),
    ))
}

/// A prompt-token count that cannot undercount: UTF-8 bytes of the messages' text (no
/// tokenizer yields more tokens than bytes) plus a generous per-message overhead for role
/// markers and chat templates.
pub fn prompt_tokens_upper_bound(messages: &[serde_json::Value]) -> u64 {
    const PER_MESSAGE: u64 = 16;
    const PER_REQUEST: u64 = 16;
    let mut total = PER_REQUEST;
    for m in messages {
        total += PER_MESSAGE;
        match m.get("content") {
            Some(serde_json::Value::String(s)) => total += s.len() as u64,
            Some(other) => total += other.to_string().len() as u64,
            None => {}
        }
        if let Some(name) = m.get("name").and_then(|n| n.as_str()) {
            total += name.len() as u64;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_tolerance() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert!(!mismatch(d("0.000100"), d("0.000100")));
        assert!(!mismatch(d("0.0001005"), d("0.000100")));
        assert!(mismatch(d("0.000102"), d("0.000100")));
        assert!(!mismatch(d("0.0000000005"), d("0")));
    }

    #[test]
    fn entries_parse() {
        let e: ModelEntry = serde_json::from_str(
            r#"{"id":"a/b","context_length":1000,"pricing":{"prompt":"0.0000001","completion":"0.0000004","request":"0.005"},"top_provider":{"max_completion_tokens":100}}"#,
        )
        .unwrap();
        let t = PriceTable::from_entries(&[e]);
        let p = t.get("a/b").unwrap();
        assert_eq!(p.cost(10, 5), "0.005003".parse::<Decimal>().unwrap());
        assert_eq!(p.completion_cap(None), Some(100));
        let e: ModelEntry = serde_json::from_str(
            r#"{"id":"openrouter/auto","pricing":{"prompt":"-1","completion":"-1"}}"#,
        )
        .unwrap();
        assert!(
            PriceTable::from_entries(&[e])
                .get("openrouter/auto")
                .is_none()
        );
    }
}
