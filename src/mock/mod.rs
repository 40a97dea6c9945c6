//! The built-in mock OpenRouter server (axum), used by every test and by the offline demo.
//!
//! It serves `docs/provider-api.md`'s endpoints under `/api/v1` (`POST /chat/completions`,
//! `GET /generation?id=`, `/models`, `/key`, `/auth/key`, `/credits`) with deterministic
//! replies, token counts and prices for a handful of models ([`price`], [`prompt_tokens`],
//! [`completion_for`]), every field the official SDK requires, and injected faults
//! ([`MockConfig`]). `GET /__mock/requests` and `GET /__mock/stats` expose its log to tests
//! that run it in another process.
//!
//! # Billing
//! A chat request is billed (its cost added to [`MockServer::spent`], shown by `/key`, and
//! filed for `/generation`) when the mock "processed" it:
//! - `ok`: prompt + completion tokens + the request fee;
//! - `finish_error`: prompt + the partial completion (half the reply's tokens);
//! - `empty`: prompt tokens + the request fee (no completion);
//! - `malformed`, `reset`: the full reply, though the client never reads it.
//!
//! Not billed: `rate_limited` (429), `server_error` (5xx), `error200`, `credits` (402),
//! `unauthorized` (401), `bad_request` (400), `moderation` (403) and `hang`.
//!
//! # Order of checks
//! key (401) -> body (400) -> model (400) -> RPM window (429) -> credit limit (402) -> fault
//! dice -> latency -> answer. The RPM window counts only accepted arrivals (a 429 is not
//! counted); a request accepted by the window and then refused by the credit check is counted.
//! Latency applies to processed requests (faults included), not to 401/400/429/402.

mod batch;
mod batch_items;
mod chat;
pub mod classify;
mod config;
mod endpoints;
mod judge;
mod models;
mod state;
pub mod structured;
mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use rust_decimal::Decimal;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use batch::{BatchCharge, BatchMockConfig};
pub use config::MockConfig;
pub use models::{Price, completion_for, price, prompt_tokens, unlisted_price};

use state::Shared;

/// One chat request as the mock saw it (`GET /__mock/requests`, [`MockServer::requests`]).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RequestRecord {
    /// Arrival time, ms since the server started (monotonic clock).
    pub at_ms: f64,
    /// The model requested ("" when the body could not be read).
    pub model: String,
    /// The text of the last user message ("" if none, or with `--no-log`).
    pub user: String,
    /// The HTTP status answered (200 for error200/malformed; 0 for reset and hang).
    pub status: u16,
    /// "ok", "rate_limited", "server_error", "error200", "finish_error", "empty", "hang",
    /// "reset", "malformed", "credits", "unauthorized", "bad_request" or "moderation".
    pub outcome: String,
    /// The generation id, for billed outcomes.
    pub generation_id: Option<String>,
    /// What this request was charged (`None` when not billed; see the module docs).
    #[serde(with = "crate::money::opt")]
    pub cost: Option<Decimal>,
    /// The request headers, Authorization redacted (empty with `--no-log`).
    pub headers: Vec<(String, String)>,
    /// The raw request body as text (lossy UTF-8; empty with `--no-log`), so tests can check
    /// the fields a client sent.
    #[serde(default)]
    pub body: String,
}

/// A mock server running in this process, on its own tokio task.
pub struct MockServer {
    shared: Arc<Shared>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl MockServer {
    /// Binds `cfg.addr` (`127.0.0.1:0` = an ephemeral port) and starts serving.
    pub async fn start(cfg: MockConfig) -> std::io::Result<MockServer> {
        let listener = bind_loopback(cfg.addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(cfg, addr, CancellationToken::new()));
        let task = tokio::spawn(run(listener, shared.clone()));
        Ok(MockServer {
            shared,
            task: Some(task),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT/api/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v1", self.shared.addr)
    }

    /// Every `POST /chat/completions` so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests()
    }

    /// The total charged so far (the sum of the billed requests' costs).
    pub fn spent(&self) -> Decimal {
        self.shared.spent()
    }

    /// Every batch created so far and its charge (the Batch API's billing ledger).
    pub fn batch_ledger(&self) -> Vec<BatchCharge> {
        self.shared.batches.ledger()
    }

    /// Stops the server: hung and delayed requests end at once (their connections dropped);
    /// waits at most a few seconds for the rest.
    pub async fn shutdown(mut self) {
        self.shared.token.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shared.token.cancel();
    }
}

/// Serves until `shutdown` resolves (for `orbatch mock-server`); prints
/// "orbatch mock: listening on http://ADDR/api/v1" to stderr once bound.
pub async fn serve(
    cfg: MockConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = bind_loopback(cfg.addr).await?;
    let addr = listener.local_addr()?;
    eprintln!("orbatch mock: listening on http://{addr}/api/v1");
    let token = CancellationToken::new();
    let shared = Arc::new(Shared::new(cfg, addr, token.clone()));
    let watcher = tokio::spawn(async move {
        shutdown.await;
        token.cancel();
    });
    let result = run(listener, shared).await;
    watcher.abort();
    result
}

/// Binds `addr` if it is a loopback address: the mock serves the prompts it received and
/// accepts mock keys, so it never listens where another machine could reach it.
async fn bind_loopback(addr: SocketAddr) -> std::io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "the mock server listens on loopback only (127.0.0.1 or ::1), not {}",
                addr.ip()
            ),
        ));
    }
    TcpListener::bind(addr).await
}

/// Serves `listener` until the shared token is cancelled.
async fn run(listener: TcpListener, shared: Arc<Shared>) -> std::io::Result<()> {
    let token = shared.token.clone();
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(token.cancelled_owned())
        .await
}

/// The routes.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/chat/completions", post(chat::chat))
        .route("/api/v1/generation", get(endpoints::generation))
        .route("/api/v1/models", get(endpoints::models))
        .route("/api/v1/key", get(endpoints::key))
        .route("/api/v1/auth/key", get(endpoints::key))
        .route("/api/v1/credits", get(endpoints::credits))
        .merge(batch::routes())
        .route("/__mock/requests", get(endpoints::mock_requests))
        .route("/__mock/stats", get(endpoints::mock_stats))
        .fallback(endpoints::not_found)
        .layer(DefaultBodyLimit::max(64 << 20))
        .with_state(shared)
}
