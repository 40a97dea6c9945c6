//! The mock's Batch API: `POST {path}` (create), `GET {path}/{id}` (status, inline results once
//! finished) and `GET {path}/{id}/results` (cursor pages), under `/api/v1/batches` and the
//! older `/api/beta/batches`.
//!
//! A batch is decided whole when it is created (each item's answer, tokens and charge, from
//! the same deterministic replies as chat) and billed then, at the batch price: the `:batch`
//! variant's price where `/models` lists one, else the model's own price. Its status moves
//! `validating` -> `in_progress` -> `finalizing` -> `completed` (or `expired`) over
//! `--batch-ms`. Only the batch-level `usage.cost` is reported unless `--batch-item-cost`.
//! Faults: `--batch-fail-rate` (items that fail, not billed), `--batch-expire` (the second half
//! of every batch never runs, not billed). The ledger ([`super::MockServer::batch_ledger`])
//! lists every batch's charge.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rust_decimal::Decimal;
use serde_json::Value;
use serde_json::value::RawValue;

use super::batch_items::{Item, decide_items, order_error};
use super::state::{Shared, unix_now};
use super::wire;

/// The batch endpoints' settings (flags of `orbatch mock-server`).
#[derive(clap::Args, Clone, Debug)]
pub struct BatchMockConfig {
    /// How long a batch takes from created to finished, in milliseconds.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub batch_ms: u64,
    /// Fraction of batch items that fail with an item error (not billed).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub batch_fail_rate: f64,
    /// Every batch ends `expired`: its second half never runs (not billed).
    #[arg(long)]
    pub batch_expire: bool,
    /// Each item carries its own `usage.cost` (by default only the batch's `usage.cost`).
    #[arg(long)]
    pub batch_item_cost: bool,
    /// Results are only in `GET .../results` pages of N items (no inline `results`).
    #[arg(long, value_name = "N")]
    pub batch_page_size: Option<usize>,
    /// The most requests one batch may hold.
    #[arg(long, default_value_t = 5000, value_name = "N")]
    pub batch_max_requests: usize,
    /// The largest batch body accepted, in bytes.
    #[arg(long, default_value_t = 200_000_000, value_name = "BYTES")]
    pub batch_max_bytes: usize,
}

impl Default for BatchMockConfig {
    fn default() -> Self {
        BatchMockConfig {
            batch_ms: 2000,
            batch_fail_rate: 0.0,
            batch_expire: false,
            batch_item_cost: false,
            batch_page_size: None,
            batch_max_requests: 5000,
            batch_max_bytes: 200_000_000,
        }
    }
}

/// One batch's charge, as billed.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BatchCharge {
    /// The batch id.
    pub id: String,
    /// The batch-level model.
    pub model: String,
    /// Requests in the batch.
    pub requests: usize,
    /// What the batch was charged (the sum of its billed items).
    #[serde(with = "crate::money")]
    pub cost: Decimal,
}

/// A batch the mock holds.
pub(crate) struct Batch {
    id: String,
    model: String,
    created: Instant,
    created_unix: i64,
    items: Vec<Item>,
    cost: Decimal,
}

/// Every batch, and the ledger.
#[derive(Default)]
pub(crate) struct Store {
    seq: std::sync::atomic::AtomicU64,
    batches: std::sync::Mutex<HashMap<String, Batch>>,
    ledger: std::sync::Mutex<Vec<BatchCharge>>,
}

impl Store {
    /// The next batch number (1, 2, ...).
    pub fn next(&self) -> u64 {
        self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    /// The ledger, in creation order.
    pub fn ledger(&self) -> Vec<BatchCharge> {
        self.ledger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The batch routes, under `/api/v1/batches` and the older `/api/beta/batches`.
pub(crate) fn routes() -> axum::Router<std::sync::Arc<Shared>> {
    use axum::routing::{get, post};
    let mut r = axum::Router::new();
    for base in ["/api/v1/batches", "/api/beta/batches"] {
        r = r
            .route(base, post(create))
            .route(&format!("{base}/{{id}}"), get(status))
            .route(&format!("{base}/{{id}}/results"), get(results));
    }
    r
}

/// `POST .../batches`.
pub(crate) async fn create(
    State(st): State<std::sync::Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(m) = st.check_key(&headers) {
        return wire::error_response(401, m, Some("authentication"));
    }
    let cfg = &st.cfg.batch;
    if body.len() > cfg.batch_max_bytes {
        return wire::error_response(
            413,
            &format!(
                "batch body of {} bytes exceeds the limit of {} bytes",
                body.len(),
                cfg.batch_max_bytes
            ),
            None,
        );
    }
    if let Some(m) = order_error(&body) {
        return wire::error_response(400, &m, None);
    }
    let items = match decide_items(&st, &body) {
        Ok(items) => items,
        Err(m) => return wire::error_response(400, &m, None),
    };
    let model = items.model.clone();
    let n = st.batch_seq();
    let id = format!("batch_mock_{n:06}");
    // Billed now: every item that runs and does not fail (an expiring batch runs half).
    let runs = if cfg.batch_expire {
        items.items.len() / 2
    } else {
        items.items.len()
    };
    let cost: Decimal = items.items[..runs].iter().filter_map(|i| i.cost).sum();
    st.add_spent(cost);
    st.batches
        .ledger
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(BatchCharge {
            id: id.clone(),
            model: model.clone(),
            requests: items.items.len(),
            cost,
        });
    let batch = Batch {
        id: id.clone(),
        model,
        created: Instant::now(),
        created_unix: unix_now(),
        items: items.items,
        cost,
    };
    let mut view = object(&st, &batch, false);
    *view.status_mut() = StatusCode::ACCEPTED;
    st.batches
        .batches
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, batch);
    view
}

/// `GET .../batches/{id}`.
pub(crate) async fn status(
    State(st): State<std::sync::Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(m) = st.check_key(&headers) {
        return wire::error_response(401, m, Some("authentication"));
    }
    let batches = st.batches.batches.lock().unwrap_or_else(|e| e.into_inner());
    match batches.get(&id) {
        Some(b) => object(&st, b, st.cfg.batch.batch_page_size.is_none()),
        None => wire::error_response(404, &format!("batch {id} not found"), None),
    }
}

/// `?cursor=&limit=` of the results pages.
#[derive(serde::Deserialize)]
pub(crate) struct PageQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

/// `GET .../batches/{id}/results`.
pub(crate) async fn results(
    State(st): State<std::sync::Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    if let Err(m) = st.check_key(&headers) {
        return wire::error_response(401, m, Some("authentication"));
    }
    let batches = st.batches.batches.lock().unwrap_or_else(|e| e.into_inner());
    let Some(b) = batches.get(&id) else {
        return wire::error_response(404, &format!("batch {id} not found"), None);
    };
    let (state, _) = progress(&st, b);
    if !matches!(state, "completed" | "expired") {
        return wire::error_response(409, &format!("batch {id} is {state}: no results yet"), None);
    }
    let all = result_items(&st, b);
    let start = match q.cursor.as_deref().map(str::parse::<usize>) {
        None => 0,
        Some(Ok(c)) if c <= all.len() => c,
        Some(_) => return wire::error_response(400, "invalid cursor", None),
    };
    let size = q
        .limit
        .or(st.cfg.batch.batch_page_size)
        .unwrap_or(100)
        .clamp(1, 1000);
    let end = (start + size).min(all.len());
    let has_more = end < all.len();
    #[derive(serde::Serialize)]
    struct Page<'a> {
        object: &'static str,
        data: &'a [Box<RawValue>],
        has_more: bool,
        next_cursor: Option<String>,
    }
    wire::ok_json(&Page {
        object: "list",
        data: &all[start..end],
        has_more,
        next_cursor: has_more.then(|| end.to_string()),
    })
}

/// The status of `b` now, and how many of its items have run.
fn progress(st: &Shared, b: &Batch) -> (&'static str, usize) {
    let total = st.cfg.batch.batch_ms.max(1) as f64;
    let f = b.created.elapsed().as_secs_f64() * 1000.0 / total;
    let runs = runnable(st, b);
    match f {
        f if f < 0.1 => ("validating", 0),
        f if f < 0.8 => ("in_progress", ((runs as f64) * (f - 0.1) / 0.7) as usize),
        f if f < 1.0 => ("finalizing", runs),
        _ if st.cfg.batch.batch_expire => ("expired", runs),
        _ => ("completed", runs),
    }
}

/// The items that run at all (the first half when batches expire).
fn runnable(st: &Shared, b: &Batch) -> usize {
    if st.cfg.batch.batch_expire {
        b.items.len() / 2
    } else {
        b.items.len()
    }
}

/// The result items of a finished batch.
fn result_items(st: &Shared, b: &Batch) -> Vec<Box<RawValue>> {
    b.items[..runnable(st, b)]
        .iter()
        .map(|i| i.result(st.cfg.batch.batch_item_cost))
        .collect()
}

#[derive(serde::Serialize)]
struct Counts {
    total: usize,
    completed: usize,
    failed: usize,
}

#[derive(serde::Serialize)]
struct BatchUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    #[serde(with = "crate::money")]
    cost: Decimal,
    is_byok: bool,
}

#[derive(serde::Serialize)]
struct View<'a> {
    id: &'a str,
    object: &'static str,
    endpoint: &'static str,
    model: &'a str,
    completion_window: &'static str,
    status: &'static str,
    created_at: i64,
    finalized_at: Option<i64>,
    expires_at: i64,
    request_counts: Counts,
    usage: Option<BatchUsage>,
    results: Option<Vec<Box<RawValue>>>,
    error: Option<Value>,
    provider: Option<Value>,
}

/// The batch object as the API shows it; `inline`: with `results` once finished.
fn object(st: &Shared, b: &Batch, inline: bool) -> Response {
    let (state, done) = progress(st, b);
    let finished = matches!(state, "completed" | "expired");
    let failed = b.items[..done].iter().filter(|i| i.cost.is_none()).count();
    let (prompt, completion) = b.items[..done]
        .iter()
        .filter(|i| i.cost.is_some())
        .fold((0, 0), |(p, c), i| {
            (p + i.prompt_tokens, c + i.completion_tokens)
        });
    let view = View {
        id: &b.id,
        object: "batch",
        endpoint: "/v1/chat/completions",
        model: &b.model,
        completion_window: "24h",
        status: state,
        created_at: b.created_unix,
        finalized_at: finished.then(unix_now),
        expires_at: b.created_unix + 86_400,
        request_counts: Counts {
            total: b.items.len(),
            completed: done - failed,
            failed,
        },
        usage: finished.then_some(BatchUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            cost: b.cost,
            is_byok: false,
        }),
        results: (finished && inline).then(|| result_items(st, b)),
        error: None,
        provider: None,
    };
    wire::ok_json(&view)
}
