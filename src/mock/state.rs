//! The state shared by the mock's handlers: the request log, the money charged, the
//! generation records, the RPM window and the fault dice. No lock is held across an await.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::HeaderMap;
use rust_decimal::Decimal;
use tokio_util::sync::CancellationToken;

use super::{MockConfig, RequestRecord, models};

/// Generation records kept (and, with `--no-log`, request-log entries): the latest ones.
const KEPT_GENERATIONS: u64 = 10_000;

/// What the mock answered to one chat request (`RequestRecord::outcome`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    RateLimited,
    ServerError,
    Error200,
    FinishError,
    Empty,
    Hang,
    Reset,
    Malformed,
    Credits,
    Unauthorized,
    BadRequest,
    Moderation,
}

impl Outcome {
    pub const ALL: [Outcome; 13] = [
        Outcome::Ok,
        Outcome::RateLimited,
        Outcome::ServerError,
        Outcome::Error200,
        Outcome::FinishError,
        Outcome::Empty,
        Outcome::Hang,
        Outcome::Reset,
        Outcome::Malformed,
        Outcome::Credits,
        Outcome::Unauthorized,
        Outcome::BadRequest,
        Outcome::Moderation,
    ];

    /// The name written in `RequestRecord::outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::RateLimited => "rate_limited",
            Outcome::ServerError => "server_error",
            Outcome::Error200 => "error200",
            Outcome::FinishError => "finish_error",
            Outcome::Empty => "empty",
            Outcome::Hang => "hang",
            Outcome::Reset => "reset",
            Outcome::Malformed => "malformed",
            Outcome::Credits => "credits",
            Outcome::Unauthorized => "unauthorized",
            Outcome::BadRequest => "bad_request",
            Outcome::Moderation => "moderation",
        }
    }
}

/// A completion the mock billed, as `GET /generation` shows it.
pub(crate) struct Generation {
    pub model: Box<str>,
    pub provider: &'static str,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: Decimal,
    pub finish_reason: Option<&'static str>,
    pub native_finish_reason: Option<&'static str>,
    pub created_unix: i64,
    /// When the record becomes visible (completion sent + `--generation-lag-ms`).
    pub ready_at: Instant,
    pub latency_ms: u64,
    pub origin: Option<Box<GenOrigin>>,
}

/// Who asked for a generation (kept unless `--no-log`).
pub(crate) struct GenOrigin {
    pub http_referer: Option<String>,
    pub user_agent: Option<String>,
    pub external_user: Option<String>,
    pub session_id: Option<String>,
}

/// Everything the handlers share.
pub(crate) struct Shared {
    pub cfg: MockConfig,
    pub addr: SocketAddr,
    pub start: Instant,
    pub token: CancellationToken,
    /// `gen-<unix start>-<server nonce>`: generation ids are this plus a sequence number.
    gen_prefix: String,
    gen_seq: AtomicU64,
    dice_seq: AtomicU64,
    server_errors: AtomicU64,
    rpm: Mutex<VecDeque<Instant>>,
    spent: Mutex<Decimal>,
    log: Mutex<VecDeque<RequestRecord>>,
    gens: Mutex<HashMap<u64, Generation>>,
    counts: [AtomicU64; 13],
    /// The `/models` body, built once.
    pub models_body: Bytes,
    /// The `/models` body with the true prices (after `--listed-price-divisor-calls`).
    pub true_models_body: Bytes,
    /// `/models` answers so far.
    pub models_calls: AtomicU64,
    /// The Batch API's batches and ledger.
    pub batches: super::batch::Store,
}

/// Locks a mutex, ignoring poisoning (a panicking handler must not wedge the server).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The unix time now, in seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The unix time now, in milliseconds.
pub(crate) fn unix_now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// A fast, well-mixed 64-bit hash (SplitMix64's finalizer).
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps 53 random bits to a float in `[0, 1)`.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

impl Shared {
    /// New state for a server bound to `addr`.
    pub fn new(cfg: MockConfig, addr: SocketAddr, token: CancellationToken) -> Shared {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let nonce = blake3::hash(format!("{nanos}/{}/{addr}", std::process::id()).as_bytes());
        let models_body =
            serde_json::to_vec(&models::models_body(cfg.listed_price_divisor)).unwrap_or_default();
        Shared {
            gen_prefix: format!("gen-{}-{}", unix_now(), &nonce.to_hex()[..10]),
            cfg,
            addr,
            start: Instant::now(),
            token,
            gen_seq: AtomicU64::new(1),
            dice_seq: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            rpm: Mutex::new(VecDeque::new()),
            spent: Mutex::new(Decimal::ZERO),
            log: Mutex::new(VecDeque::new()),
            gens: Mutex::new(HashMap::new()),
            counts: Default::default(),
            models_body: Bytes::from(models_body),
            true_models_body: Bytes::from(
                serde_json::to_vec(&models::models_body(1)).unwrap_or_default(),
            ),
            models_calls: AtomicU64::new(0),
            batches: Default::default(),
        }
    }

    /// Milliseconds from the server's start to `t`.
    pub fn ms_since_start(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.start).as_secs_f64() * 1000.0
    }

    /// Checks `Authorization: Bearer KEY`; `Err` carries the 401 message.
    pub fn check_key(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        let Some(value) = headers.get("authorization") else {
            return Err("No auth credentials found");
        };
        let key = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .unwrap_or("");
        let ok = if self.cfg.keys.is_empty() {
            key.starts_with("sk-or-v1-mock")
        } else {
            self.cfg.keys.iter().any(|k| k == key)
        };
        if ok { Ok(()) } else { Err("User not found.") }
    }

    /// Counts an arrival in the RPM window. `Err(wait)`: over the limit (the arrival is not
    /// counted); `wait` is how long until the oldest counted arrival leaves the window.
    pub fn admit(&self, now: Instant) -> Result<(), Duration> {
        let Some(limit) = self.cfg.rpm_limit else {
            return Ok(());
        };
        let window = Duration::from_millis(self.cfg.rpm_window_ms);
        let mut q = lock(&self.rpm);
        while q
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= window)
        {
            q.pop_front();
        }
        if q.len() >= limit as usize {
            let oldest = q.front().copied().unwrap_or(now);
            return Err((oldest + window).saturating_duration_since(now));
        }
        q.push_back(now);
        Ok(())
    }

    /// Two dice for the next request that reaches the fault stage: (fault, jitter), in `[0, 1)`.
    pub fn roll(&self) -> (f64, f64) {
        let n = self.dice_seq.fetch_add(1, Ordering::Relaxed);
        let a = splitmix64(self.cfg.seed ^ splitmix64(n.wrapping_mul(2)));
        let b = splitmix64(self.cfg.seed ^ splitmix64(n.wrapping_mul(2) + 1));
        (unit(a), unit(b))
    }

    /// The fault for a die in `[0, 1)`: the rates stacked in a fixed order.
    pub fn pick_fault(&self, die: f64) -> Outcome {
        let c = &self.cfg;
        let mut acc = 0.0;
        for (rate, outcome) in [
            (c.hang_rate, Outcome::Hang),
            (c.reset_rate, Outcome::Reset),
            (c.error_rate, Outcome::ServerError),
            (c.error200_rate, Outcome::Error200),
            (c.finish_error_rate, Outcome::FinishError),
            (c.empty_rate, Outcome::Empty),
            (c.malformed_rate, Outcome::Malformed),
            (c.moderation_rate, Outcome::Moderation),
        ] {
            acc += rate;
            if die < acc {
                return outcome;
            }
        }
        Outcome::Ok
    }

    /// The next server-error status, rotating 500, 502, 503.
    pub fn next_server_error(&self) -> u16 {
        [500, 502, 503][(self.server_errors.fetch_add(1, Ordering::Relaxed) % 3) as usize]
    }

    /// True once the total charged has reached `--credit-limit`.
    pub fn credits_exhausted(&self) -> bool {
        self.cfg
            .credit_limit
            .is_some_and(|limit| *lock(&self.spent) >= limit)
    }

    /// Adds a batch's charge to the total charged.
    pub fn add_spent(&self, cost: Decimal) {
        *lock(&self.spent) += cost;
    }

    /// The next batch number (1, 2, ...).
    pub fn batch_seq(&self) -> u64 {
        self.batches.next()
    }

    /// Total charged so far.
    pub fn spent(&self) -> Decimal {
        *lock(&self.spent)
    }

    /// Charges `cost` and files the generation record; returns the generation id.
    pub fn bill(&self, generation: Generation) -> String {
        *lock(&self.spent) += generation.cost;
        let n = self.gen_seq.fetch_add(1, Ordering::Relaxed);
        let mut gens = lock(&self.gens);
        gens.insert(n, generation);
        // Memory stays flat over long rehearsals: the oldest records expire (their look-ups
        // answer 404, as for an unknown id).
        if let Some(old) = n.checked_sub(KEPT_GENERATIONS) {
            gens.remove(&old);
        }
        format!("{}{n:010}", self.gen_prefix)
    }

    /// Runs `f` on the generation record `id`, if this server issued it.
    pub fn with_generation<R>(&self, id: &str, f: impl FnOnce(&Generation) -> R) -> Option<R> {
        let n: u64 = id.strip_prefix(&self.gen_prefix)?.parse().ok()?;
        lock(&self.gens).get(&n).map(f)
    }

    /// Appends a record to the request log and counts its outcome.
    pub fn record(&self, rec: RequestRecord, outcome: Outcome) {
        self.counts[outcome as usize].fetch_add(1, Ordering::Relaxed);
        let mut log = lock(&self.log);
        // With --no-log the log keeps only the latest records, so a long run stays flat.
        if self.cfg.no_log && log.len() >= KEPT_GENERATIONS as usize {
            log.pop_front();
        }
        log.push_back(rec);
    }

    /// A copy of the request log.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.log).iter().cloned().collect()
    }

    /// `GET /__mock/stats`: counts by outcome, spent, generations.
    pub fn stats(&self) -> Stats {
        let by_outcome = Outcome::ALL
            .iter()
            .map(|o| (o.as_str(), self.counts[*o as usize].load(Ordering::Relaxed)))
            .collect();
        Stats {
            requests: self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum(),
            by_outcome,
            spent: self.spent(),
            generations: lock(&self.gens).len(),
        }
    }
}

/// The body of `GET /__mock/stats`.
#[derive(serde::Serialize)]
pub(crate) struct Stats {
    /// Chat requests received.
    pub requests: u64,
    /// Chat requests by `RequestRecord::outcome`.
    pub by_outcome: std::collections::BTreeMap<&'static str, u64>,
    /// Total charged, an exact JSON number.
    #[serde(with = "crate::money")]
    pub spent: Decimal,
    /// Generation records filed.
    pub generations: usize,
}
