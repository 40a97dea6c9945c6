//! The mock OpenRouter server over real 127.0.0.1 sockets: the shape of every endpoint
//! (openrouter-api.md, Appendix A), exact costs, the generation lag, determinism, the log.
//! Faults and limits are in `mock_server/faults.rs`, the SDK check in `mock_server/sdk.rs`.

#[path = "mock_server/faults.rs"]
mod faults;
#[path = "mock_server/sdk.rs"]
mod sdk;

use std::str::FromStr;
use std::time::Duration;

use orbatch::mock::{self, MockConfig, MockServer};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

pub const KEY: &str = "sk-or-v1-mock-test";

/// A reqwest client (the ring provider installed first, as reqwest needs one).
pub fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(20))
}

/// A client whose requests time out after `t`.
pub fn client_with_timeout(t: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(t).build().unwrap()
}

pub async fn start(cfg: MockConfig) -> MockServer {
    MockServer::start(cfg).await.unwrap()
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

const GENERATION_FIELDS: &[&str] = &[
    "id",
    "upstream_id",
    "total_cost",
    "usage",
    "cache_discount",
    "upstream_inference_cost",
    "created_at",
    "model",
    "app_id",
    "streamed",
    "cancelled",
    "provider_name",
    "latency",
    "moderation_latency",
    "generation_time",
    "finish_reason",
    "native_finish_reason",
    "tokens_prompt",
    "tokens_completion",
    "native_tokens_prompt",
    "native_tokens_completion",
    "native_tokens_reasoning",
    "native_tokens_cached",
    "native_tokens_completion_images",
    "num_media_prompt",
    "num_input_audio_prompt",
    "num_media_completion",
    "num_search_results",
    "num_fetches",
    "origin",
    "is_byok",
    "api_type",
    "data_region",
    "external_user",
    "http_referer",
    "user_agent",
    "preset_id",
    "provider_responses",
    "router",
    "service_tier",
    "web_search_engine",
    "workspace_id",
];

const MODEL_FIELDS: &[&str] = &[
    "id",
    "canonical_slug",
    "name",
    "created",
    "context_length",
    "architecture",
    "pricing",
    "top_provider",
    "per_request_limits",
    "supported_parameters",
    "default_parameters",
    "supported_voices",
    "links",
];

const KEY_FIELDS: &[&str] = &[
    "label",
    "limit",
    "limit_remaining",
    "limit_reset",
    "usage",
    "usage_daily",
    "usage_weekly",
    "usage_monthly",
    "byok_usage",
    "byok_usage_daily",
    "byok_usage_weekly",
    "byok_usage_monthly",
    "include_byok_in_limit",
    "is_free_tier",
    "is_management_key",
    "is_provisioning_key",
    "rate_limit",
    "free_model_daily_requests",
    "allowed_data_regions",
    "budgets",
    "effective_budget",
    "creator_user_id",
    "organization_id",
    "workspace_id",
];

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
async fn generation_lags_then_matches_the_completion() {
    let srv = start(MockConfig {
        generation_lag_ms: 400,
        ..Default::default()
    })
    .await;
    let body = json!({"model": "anthropic/claude-3.5-haiku", "messages": msgs("hi"), "user": "u1"});
    let r: Reply = chat(&srv, &body).await.json().await.unwrap();
    let path = format!("/generation?id={}", r.id);
    assert_error(get(&srv, &path).await, 404).await;
    tokio::time::sleep(Duration::from_millis(450)).await;
    let text = get(&srv, &path).await.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_fields(&v["data"], GENERATION_FIELDS, "generation");
    assert_eq!(v["data"]["id"], r.id.as_str());
    assert_eq!(v["data"]["provider_name"], "Anthropic");
    assert_eq!(v["data"]["native_tokens_prompt"], r.usage.prompt_tokens);
    assert_eq!(v["data"]["external_user"], "u1");
    #[derive(Deserialize)]
    struct G {
        data: GD,
    }
    #[derive(Deserialize)]
    struct GD {
        #[serde(with = "orbatch::money")]
        total_cost: Decimal,
    }
    let g: G = serde_json::from_str(&text).unwrap();
    assert_eq!(g.data.total_cost, r.usage.cost);
    assert_error(get(&srv, "/generation?id=gen-nope").await, 404).await;
    assert_error(get(&srv, "/generation").await, 400).await;
    srv.shutdown().await;
}

#[tokio::test]
async fn no_generation_and_no_cost() {
    let srv = start(MockConfig {
        no_generation: true,
        no_cost: true,
        ..Default::default()
    })
    .await;
    let v: Value = chat(
        &srv,
        &json!({"model": "openai/gpt-4o-mini", "messages": msgs("x")}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(v["usage"].get("cost").is_none() && v["usage"].get("cost_details").is_none());
    assert!(v["usage"]["prompt_tokens"].is_u64());
    let id = v["id"].as_str().unwrap();
    assert_error(get(&srv, &format!("/generation?id={id}")).await, 404).await;
    assert!(
        srv.spent() > Decimal::ZERO,
        "still billed, just not reported"
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn models_list_every_field_without_a_key_and_hides_unlisted() {
    let cfg = MockConfig {
        unlisted_models: vec!["secret/model".into()],
        ..Default::default()
    };
    let srv = start(cfg).await;
    let res = client()
        .get(format!("{}/models", srv.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["links"], json!({"next": null}));
    let data = v["data"].as_array().unwrap();
    assert_eq!(v["total_count"], data.len());
    assert!(data.len() >= 5);
    for m in data {
        assert_fields(m, MODEL_FIELDS, "model");
        let id = m["id"].as_str().unwrap();
        let p = mock::price(id).unwrap();
        assert_eq!(
            Decimal::from_str(m["pricing"]["prompt"].as_str().unwrap()).unwrap(),
            p.prompt
        );
        assert_eq!(
            Decimal::from_str(m["pricing"]["completion"].as_str().unwrap()).unwrap(),
            p.completion
        );
        assert!(m["architecture"]["tokenizer"].is_string());
        assert!(m["links"]["details"].is_string());
    }
    assert!(data.iter().all(|m| m["id"] != "secret/model"));
    let ok = chat(
        &srv,
        &json!({"model": "secret/model", "messages": msgs("x")}),
    )
    .await;
    assert_eq!(ok.status(), 200);
    srv.shutdown().await;
}

#[tokio::test]
async fn key_and_credits_show_spend_and_limit() {
    let srv = start(MockConfig::default()).await;
    for path in ["/key", "/auth/key"] {
        let v: Value = get(&srv, path).await.json().await.unwrap();
        assert_fields(&v["data"], KEY_FIELDS, "key");
        assert!(v["data"]["limit"].is_null() && v["data"]["limit_remaining"].is_null());
    }
    let limit = Decimal::from_str("1.5").unwrap();
    let srv2 = start(MockConfig {
        credit_limit: Some(limit),
        ..Default::default()
    })
    .await;
    let r: Reply = chat(
        &srv2,
        &json!({"model": "perplexity/sonar", "messages": msgs("x")}),
    )
    .await
    .json()
    .await
    .unwrap();
    #[derive(Deserialize)]
    struct K {
        data: KD,
    }
    #[derive(Deserialize)]
    struct KD {
        #[serde(with = "orbatch::money")]
        usage: Decimal,
        #[serde(with = "orbatch::money")]
        limit: Decimal,
        #[serde(with = "orbatch::money")]
        limit_remaining: Decimal,
    }
    let k: K = get(&srv2, "/key").await.json().await.unwrap();
    assert_eq!((k.data.usage, k.data.limit), (r.usage.cost, limit));
    assert_eq!(k.data.limit_remaining, limit - r.usage.cost);
    assert_eq!(srv2.spent(), r.usage.cost);
    let c: Value = get(&srv2, "/credits").await.json().await.unwrap();
    assert_eq!(c["data"]["total_credits"], 1.5);
    assert!(c["data"]["total_usage"].is_number());
    srv.shutdown().await;
    srv2.shutdown().await;
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
