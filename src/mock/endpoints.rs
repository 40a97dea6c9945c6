//! The mock's other endpoints: `GET /generation`, `/models`, `/key` (and `/auth/key`),
//! `/credits`, and the test hooks `/__mock/requests` and `/__mock/stats`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};

use super::state::{Generation, Shared};
use super::wire;

/// A `{"data": ...}` body whose money fields are exact JSON numbers; `rest` holds the others.
#[derive(Serialize)]
struct Data<M: Serialize> {
    data: WithMoney<M>,
}

#[derive(Serialize)]
struct WithMoney<M: Serialize> {
    #[serde(flatten)]
    money: M,
    #[serde(flatten)]
    rest: Value,
}

/// `GET /generation?id=`: the record of a billed completion, 404 until `--generation-lag-ms`
/// has passed, for unknown ids, and always with `--no-generation`.
pub(crate) async fn generation(
    State(st): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(msg) = st.check_key(&headers) {
        return wire::error_response(401, msg, Some("authentication"));
    }
    let id = query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("id="))
        .unwrap_or("");
    if id.is_empty() {
        return wire::error_response(
            400,
            "Missing required query parameter: id",
            Some("invalid_request"),
        );
    }
    let not_found = || {
        wire::error_response(
            404,
            &format!("Generation {id} not found"),
            Some("not_found"),
        )
    };
    if st.cfg.no_generation {
        return not_found();
    }
    let now = Instant::now();
    match st.with_generation(id, |g| (now >= g.ready_at).then(|| generation_body(id, g))) {
        Some(Some(body)) => wire::ok_json(&body),
        _ => not_found(),
    }
}

#[derive(Serialize)]
struct GenMoney {
    #[serde(with = "crate::money")]
    total_cost: Decimal,
    #[serde(with = "crate::money")]
    usage: Decimal,
}

/// Every field of Appendix A, `total_cost` == the completion's `usage.cost`.
fn generation_body(id: &str, g: &Generation) -> Data<GenMoney> {
    let created_at = time::OffsetDateTime::from_unix_timestamp(g.created_unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let origin = g.origin.as_deref();
    let pick =
        |f: fn(&super::state::GenOrigin) -> &Option<String>| origin.and_then(|o| f(o).clone());
    let mut rest = json!({
        "id": id,
        "upstream_id": format!("chatcmpl-{}", &id[id.len().saturating_sub(12)..]),
        "cache_discount": null,
        "upstream_inference_cost": null,
        "created_at": created_at,
        "model": &*g.model,
        "app_id": null,
        "streamed": false,
        "cancelled": false,
        "provider_name": g.provider,
        "latency": g.latency_ms,
        "moderation_latency": null,
        "generation_time": g.latency_ms,
        "finish_reason": g.finish_reason,
        "native_finish_reason": g.native_finish_reason,
        "tokens_prompt": g.prompt_tokens,
        "tokens_completion": g.completion_tokens,
        "native_tokens_prompt": g.prompt_tokens,
        "native_tokens_completion": g.completion_tokens,
        "native_tokens_reasoning": 0,
        "native_tokens_cached": 0,
        "native_tokens_completion_images": 0,
        "num_media_prompt": 0,
        "num_input_audio_prompt": 0,
        "num_media_completion": 0,
        "num_search_results": 0,
        "num_fetches": 0,
    });
    let more = json!({
        "origin": pick(|o| &o.http_referer).unwrap_or_default(),
        "is_byok": false,
        "api_type": "completions",
        "data_region": "global",
        "external_user": pick(|o| &o.external_user),
        "http_referer": pick(|o| &o.http_referer),
        "user_agent": pick(|o| &o.user_agent),
        "preset_id": null,
        "provider_responses": [{
            "status": 200, "provider_name": g.provider, "latency": g.latency_ms,
            "is_byok": false, "id": id, "model_permaslug": &*g.model,
        }],
        "router": null,
        "service_tier": null,
        "web_search_engine": null,
        "workspace_id": null,
        "request_id": null,
        "session_id": pick(|o| &o.session_id),
    });
    if let (Some(a), Value::Object(b)) = (rest.as_object_mut(), more) {
        a.extend(b);
    }
    Data {
        data: WithMoney {
            money: GenMoney {
                total_cost: g.cost,
                usage: g.cost,
            },
            rest,
        },
    }
}

/// `GET /models` (no key needed): the catalogue, without `--unlisted-model` slugs.
pub(crate) async fn models(State(st): State<Arc<Shared>>) -> Response {
    let n = st
        .models_calls
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let lying = st.cfg.listed_price_divisor_calls;
    let body = if lying == 0 || n < u64::from(lying) {
        &st.models_body
    } else {
        &st.true_models_body
    };
    wire::json_response(StatusCode::OK, body.clone())
}

#[derive(Serialize)]
struct KeyMoney {
    #[serde(with = "crate::money::opt")]
    limit: Option<Decimal>,
    #[serde(with = "crate::money::opt")]
    limit_remaining: Option<Decimal>,
    #[serde(with = "crate::money")]
    usage: Decimal,
    #[serde(with = "crate::money")]
    usage_daily: Decimal,
    #[serde(with = "crate::money")]
    usage_weekly: Decimal,
    #[serde(with = "crate::money")]
    usage_monthly: Decimal,
}

/// `GET /key` and `GET /auth/key`: usage = spent so far; limit from `--credit-limit`.
pub(crate) async fn key(State(st): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(msg) = st.check_key(&headers) {
        return wire::error_response(401, msg, Some("authentication"));
    }
    let spent = st.spent();
    let limit = st.cfg.credit_limit;
    let money = KeyMoney {
        limit,
        limit_remaining: limit.map(|l| (l - spent).max(Decimal::ZERO)),
        usage: spent,
        usage_daily: spent,
        usage_weekly: spent,
        usage_monthly: spent,
    };
    let rest = json!({
        "label": "sk-or-v1-moc...mock",
        "limit_reset": null,
        "include_byok_in_limit": false,
        "byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0, "byok_usage_monthly": 0,
        "is_free_tier": false,
        "is_management_key": false,
        "is_provisioning_key": false,
        "rate_limit": {"requests": -1, "interval": "10s",
                       "note": "This field is deprecated and safe to ignore."},
        "free_model_daily_requests": {"limit": 1000, "remaining": 1000, "used": 0},
        "allowed_data_regions": ["global"],
        "budgets": [],
        "effective_budget": null,
        "expires_at": null,
        "creator_user_id": null,
        "organization_id": null,
        "workspace_id": null,
    });
    wire::ok_json(&Data {
        data: WithMoney { money, rest },
    })
}

#[derive(Serialize)]
struct CreditMoney {
    #[serde(with = "crate::money")]
    total_credits: Decimal,
    #[serde(with = "crate::money")]
    total_usage: Decimal,
}

/// `GET /credits`: total credits (`--credit-limit`, else 100) and usage = spent.
pub(crate) async fn credits(State(st): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(msg) = st.check_key(&headers) {
        return wire::error_response(401, msg, Some("authentication"));
    }
    let money = CreditMoney {
        total_credits: st.cfg.credit_limit.unwrap_or(Decimal::ONE_HUNDRED),
        total_usage: st.spent(),
    };
    wire::ok_json(&Data {
        data: WithMoney {
            money,
            rest: json!({}),
        },
    })
}

/// `GET /__mock/requests`: the request log (every chat request, in arrival order).
pub(crate) async fn mock_requests(State(st): State<Arc<Shared>>) -> Response {
    wire::ok_json(&st.requests())
}

/// `GET /__mock/stats`: counts by outcome and the total spent.
pub(crate) async fn mock_stats(State(st): State<Arc<Shared>>) -> Response {
    wire::ok_json(&st.stats())
}

/// Any other path: an OpenRouter-shaped 404.
pub(crate) async fn not_found() -> Response {
    wire::error_response(404, "Not Found", Some("not_found"))
}
