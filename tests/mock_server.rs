//! The mock OpenRouter server over real 127.0.0.1 sockets: the chat answer's shape
//! (docs/provider-api.md, Appendix A), exact costs, determinism, the request log, `serve`.
//! Other endpoints are in `mock_server/endpoints.rs`, faults and limits in
//! `mock_server/faults.rs`, the SDK check in `mock_server/sdk.rs`.

#[path = "mock_server/endpoints.rs"]
mod endpoints;
#[path = "mock_server/faults.rs"]
mod faults;
#[path = "mock_server/sdk.rs"]
mod sdk;
#[path = "support/mod.rs"]
mod support;

pub use support::{KEY, mock as start};

use std::str::FromStr;
use std::time::Duration;

use orbatch::mock::{self, MockConfig, MockServer};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

/// A reqwest client (the ring provider installed first, as reqwest needs one).
pub fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(20))
}

/// A client whose requests time out after `t`.
pub fn client_with_timeout(t: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(t).build().unwrap()
}

pub fn msgs(text: &str) -> Value {
    json!([{"role": "system", "content": "You label reviews."}, {"role": "user", "content": text}])
}

/// POSTs a chat request with `KEY`.
pub async fn chat(srv: &MockServer, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/chat/completions", srv.base_url()))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .unwrap()
}

pub async fn get(srv: &MockServer, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", srv.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
}

/// The parts of a completion a runner reads, with `usage.cost` read exactly.
#[derive(Deserialize)]
pub struct Reply {
    pub id: String,
    pub choices: Vec<Value>,
    pub usage: UsageExact,
}

#[derive(Deserialize)]
pub struct UsageExact {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    #[serde(with = "orbatch::money")]
    pub cost: Decimal,
}

pub fn assert_fields(obj: &Value, fields: &[&str], what: &str) {
    for f in fields {
        assert!(obj.get(f).is_some(), "{what}: field {f} missing in {obj}");
    }
}

/// Checks an OpenRouter error body: JSON content type, `error.code` == status, a message.
pub async fn assert_error(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status);
    let ctype = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], status, "{body}");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    body
}

#[tokio::test]
async fn chat_shape_and_exact_cost_for_every_model() {
    let srv = start(MockConfig::default()).await;
    for model in [
        "openai/gpt-4o-mini",
        "anthropic/claude-3.5-haiku",
        "meta-llama/llama-3.3-70b-instruct",
        "google/gemini-2.0-flash-001",
        "perplexity/sonar",
    ] {
        let m = msgs(&format!("Great product, would buy again ({model})"));
        let text = chat(&srv, &json!({"model": model, "messages": m}))
            .await
            .text()
            .await
            .unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_fields(
            &v,
            &[
                "id",
                "object",
                "created",
                "model",
                "choices",
                "system_fingerprint",
                "provider",
                "usage",
            ],
            "completion",
        );
        assert_eq!(v["object"], "chat.completion");
        assert!(v["id"].as_str().unwrap().starts_with("gen-"));
        assert_fields(
            &v["choices"][0],
            &["index", "message", "finish_reason", "native_finish_reason"],
            "choice",
        );
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert_fields(
            &v["usage"],
            &[
                "prompt_tokens",
                "completion_tokens",
                "total_tokens",
                "cost",
                "prompt_tokens_details",
                "completion_tokens_details",
                "cost_details",
                "is_byok",
            ],
            "usage",
        );
        let r: Reply = serde_json::from_str(&text).unwrap();
        let (content, tokens, finish) = mock::completion_for(model, &m, None);
        assert_eq!(r.choices[0]["message"]["content"], content.as_str());
        assert_eq!(r.choices[0]["finish_reason"], finish);
        assert_eq!(r.usage.completion_tokens, tokens);
        assert_eq!(r.usage.prompt_tokens, mock::prompt_tokens(&m));
        let p = mock::price(model).unwrap();
        let want = p.prompt * Decimal::from(r.usage.prompt_tokens)
            + p.completion * Decimal::from(r.usage.completion_tokens)
            + p.request;
        assert_eq!(r.usage.cost, want, "{model}");
        let raw_cost = text
            .split("\"cost\":")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        assert!(
            !raw_cost.contains(['e', 'E']),
            "cost in exponent form: {raw_cost}"
        );
    }
    let fee = mock::price("perplexity/sonar").unwrap().request;
    assert_eq!(fee, Decimal::from_str("0.005").unwrap());
    srv.shutdown().await;
}

#[tokio::test]
async fn max_tokens_caps_the_reply_with_finish_length() {
    let srv = start(MockConfig::default()).await;
    let m = msgs("A long prompt so that the natural reply is longer than two tokens.");
    let (_, natural, _) = mock::completion_for("openai/gpt-4o-mini", &m, None);
    assert!(natural > 2);
    for field in ["max_tokens", "max_completion_tokens"] {
        let body = json!({"model": "openai/gpt-4o-mini", "messages": m, field: 2});
        let r: Reply = chat(&srv, &body).await.json().await.unwrap();
        assert_eq!(r.usage.completion_tokens, 2);
        assert_eq!(r.choices[0]["finish_reason"], "length");
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn replies_are_deterministic_across_two_servers() {
    let cfg = MockConfig {
        seed: 7,
        error_rate: 0.3,
        empty_rate: 0.3,
        ..Default::default()
    };
    let (a, b) = (start(cfg.clone()).await, start(cfg).await);
    let mut seen = Vec::new();
    for srv in [&a, &b] {
        let mut run = Vec::new();
        for i in 0..20 {
            let body = json!({"model": "google/gemini-2.0-flash-001", "messages": msgs(&format!("row {i}"))});
            let res = chat(srv, &body).await;
            let status = res.status().as_u16();
            let v: Value = res.json().await.unwrap();
            run.push((status, v["choices"].clone(), v["usage"]["cost"].clone()));
        }
        seen.push(run);
    }
    assert_eq!(seen[0], seen[1]);
    let outcomes: Vec<String> = a.requests().into_iter().map(|r| r.outcome).collect();
    assert!(outcomes.iter().any(|o| o == "ok") && outcomes.iter().any(|o| o != "ok"));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn request_log_redacts_the_key_and_is_served_over_http() {
    let srv = start(MockConfig::default()).await;
    let body = json!({"model": "openai/gpt-4o-mini", "messages": msgs("the user text")});
    let r: Reply = chat(&srv, &body).await.json().await.unwrap();
    let log = srv.requests();
    assert_eq!(log.len(), 1);
    let rec = &log[0];
    assert_eq!(
        (rec.model.as_str(), rec.user.as_str()),
        ("openai/gpt-4o-mini", "the user text")
    );
    assert_eq!((rec.status, rec.outcome.as_str()), (200, "ok"));
    assert_eq!(rec.generation_id.as_deref(), Some(r.id.as_str()));
    assert_eq!(rec.cost, Some(r.usage.cost));
    assert!(
        rec.headers
            .contains(&("authorization".into(), "[redacted]".into()))
    );
    assert!(!format!("{log:?}").contains(KEY));
    let root = format!("http://{}", srv.addr());
    let over_http: Vec<mock::RequestRecord> = client()
        .get(format!("{root}/__mock/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http[0].cost, rec.cost);
    let stats: Value = client()
        .get(format!("{root}/__mock/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["by_outcome"]["ok"], 1);
    assert!(stats["spent"].is_number());
    srv.shutdown().await;

    let quiet = start(MockConfig {
        no_log: true,
        ..Default::default()
    })
    .await;
    chat(&quiet, &body).await;
    let rec = &quiet.requests()[0];
    assert!(rec.headers.is_empty() && rec.user.is_empty() && rec.cost.is_some());
    quiet.shutdown().await;
}

#[tokio::test]
async fn serve_runs_until_its_shutdown_future() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = MockConfig {
        addr: ([127, 0, 0, 1], port).into(),
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(mock::serve(cfg, async {
        let _ = rx.await;
    }));
    let url = format!("http://127.0.0.1:{port}/api/v1/models");
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(r) = client().get(&url).send().await {
            ok = r.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok);
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// `orbatch mock-server` stops on SIGTERM (a service manager, `timeout`, a benchmark script),
/// even while a client holds an idle keep-alive connection to it.
#[tokio::test]
async fn the_mock_server_command_stops_on_sigterm_with_an_idle_connection_open() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_orbatch"))
        .args(["mock-server", "--addr", "127.0.0.1:0", "--no-log"])
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), stderr.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    // A keep-alive request answered, then the connection left open and idle.
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"GET /api/v1/models HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let pid = child.id().unwrap() as libc::pid_t;
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the mock server did not stop within 10 s of SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    drop(conn);
}
