//! `/generation`, `/models`, `/key`, `/credits`: every Appendix A field, exact money.

use std::str::FromStr;
use std::time::Duration;

use orbatch::mock::{self, MockConfig};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Reply, assert_error, assert_fields, chat, client, get, msgs, start};

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
