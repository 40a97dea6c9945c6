//! The in-process mock OpenRouter: [`mock()`] for async tests, [`Mock`] (on a runtime of its own)
//! for synchronous ones, and waits on its request log.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use orbatch::mock::{MockConfig, MockServer, RequestRecord};
use rust_decimal::Decimal;

/// Starts a mock with `cfg` on 127.0.0.1 (an ephemeral port), on the caller's runtime.
pub async fn mock(cfg: MockConfig) -> MockServer {
    MockServer::start(cfg).await.unwrap()
}

/// A mock server on a dedicated two-thread runtime, so a synchronous test can run the binary
/// while the mock answers it.
pub struct Mock {
    server: Option<MockServer>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Mock {
    /// Starts a mock with `cfg` on 127.0.0.1 (an ephemeral port).
    pub fn start(cfg: MockConfig) -> Mock {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(MockServer::start(cfg)).unwrap();
        Mock {
            server: Some(server),
            rt: Some(rt),
        }
    }

    /// A mock with the default (fault-free) configuration.
    pub fn plain() -> Mock {
        Mock::start(MockConfig::default())
    }

    /// The server itself.
    pub fn server(&self) -> &MockServer {
        self.server.as_ref().unwrap()
    }

    /// `http://127.0.0.1:PORT/api/v1`.
    pub fn url(&self) -> String {
        self.server().base_url()
    }

    /// Every chat request so far, sorted by arrival time.
    pub fn requests(&self) -> Vec<RequestRecord> {
        let mut r = self.server().requests();
        r.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        r
    }

    /// The total the mock charged.
    pub fn spent(&self) -> Decimal {
        self.server().spent()
    }

    /// generation id -> the charge the mock billed for it.
    pub fn charges(&self) -> HashMap<String, Decimal> {
        self.requests()
            .into_iter()
            .filter_map(|r| Some((r.generation_id?, r.cost?)))
            .collect()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        drop(self.server.take());
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The user texts of the mock's requests from index `from` on.
pub fn users_since(srv: &MockServer, from: usize) -> Vec<String> {
    srv.requests()[from..]
        .iter()
        .map(|r| r.user.clone())
        .collect()
}

/// Polls until the mock has logged at least `n` requests (at most `limit`).
pub async fn until_requests(srv: &MockServer, n: usize, limit: Duration) {
    let t = Instant::now();
    while srv.requests().len() < n {
        assert!(t.elapsed() < limit, "the mock saw fewer than {n} requests");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
