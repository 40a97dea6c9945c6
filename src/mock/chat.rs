//! `POST /api/v1/chat/completions`: key, body and model checks, the RPM window, the credit
//! limit, the fault dice, billing, then (after the latency) the answer.
//!
//! Everything is decided synchronously on arrival (and logged in arrival order); only the
//! latency and the hang are awaited, and both end early when the server shuts down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::RequestRecord;
use super::models::{self, ModelInfo, Price};
use super::state::{GenOrigin, Generation, Outcome, Shared, unix_now, unix_now_ms};
use super::wire::{self, Choice, Completion, CostDetails, Message, Usage};

/// The model used when a request names none.
const DEFAULT_MODEL: &str = "openai/gpt-4o-mini";

/// What to do once the request has been decided.
enum Plan {
    /// Answer at once (401, 400, 429, 402).
    Now(Response),
    /// Answer after the latency.
    Later(Duration, Reply),
}

/// The answer of a processed request.
enum Reply {
    Answer(Response),
    /// Send this body's first `usize` bytes, then drop the connection.
    Dropped(Bytes, usize),
    Hang,
}

/// The fields of a chat request the mock uses.
struct ChatRequest {
    model: String,
    messages: Value,
    max_tokens: Option<u64>,
    response_format: Option<Value>,
    user: Option<String>,
    session_id: Option<String>,
    /// `response_format.json_schema.schema`, when asked for.
    schema: Option<Value>,
}

/// The handler.
pub(crate) async fn chat(
    State(st): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrival = Instant::now();
    let mut rec = RequestRecord {
        at_ms: st.ms_since_start(arrival),
        model: String::new(),
        user: String::new(),
        status: 0,
        outcome: String::new(),
        generation_id: None,
        cost: None,
        headers: if st.cfg.no_log {
            Vec::new()
        } else {
            redact(&headers)
        },
        body: if st.cfg.no_log {
            String::new()
        } else {
            String::from_utf8_lossy(&body).into_owned()
        },
    };
    let (outcome, plan) = decide(&st, &headers, &body, arrival, &mut rec);
    rec.outcome = outcome.as_str().to_string();
    st.record(rec, outcome);
    match plan {
        Plan::Now(res) => res,
        Plan::Later(delay, reply) => {
            if !delay.is_zero() && !pause(&st, delay).await {
                return wire::drop_connection();
            }
            match reply {
                Reply::Answer(res) => res,
                Reply::Dropped(body, n) => wire::dropped_response(body, n),
                Reply::Hang => {
                    pause(&st, Duration::from_secs(st.cfg.hang_secs)).await;
                    wire::drop_connection()
                }
            }
        }
    }
}

/// Sleeps; false when the server shut down first.
async fn pause(st: &Shared, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = st.token.cancelled() => false,
    }
}

/// Decides the outcome of a request on arrival, bills it, and fills in its record.
fn decide(
    st: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    arrival: Instant,
    rec: &mut RequestRecord,
) -> (Outcome, Plan) {
    let now = |rec: &mut RequestRecord, outcome, status: u16, msg: &str, kind| {
        rec.status = status;
        (outcome, Plan::Now(wire::error_response(status, msg, kind)))
    };
    if let Err(msg) = st.check_key(headers) {
        return now(rec, Outcome::Unauthorized, 401, msg, Some("authentication"));
    }
    let req = match parse(body) {
        Ok(r) => r,
        Err(msg) => return now(rec, Outcome::BadRequest, 400, &msg, Some("invalid_request")),
    };
    rec.model.clone_from(&req.model);
    if !st.cfg.no_log {
        rec.user = last_user_text(&req.messages);
    }
    let (info, price) = match models::lookup(&req.model) {
        Some((_, info)) => (
            info,
            models::price(&req.model).unwrap_or_else(models::unlisted_price),
        ),
        None if st.cfg.unlisted_models.contains(&req.model) => {
            (&models::UNLISTED, models::unlisted_price())
        }
        None => {
            let msg = format!("{} is not a valid model ID", req.model);
            return now(rec, Outcome::BadRequest, 400, &msg, None);
        }
    };
    let prompt_tokens = models::prompt_tokens(&req.messages);
    let requested = prompt_tokens + req.max_tokens.unwrap_or(0);
    if requested > info.context_length {
        let msg = format!(
            "This endpoint's maximum context length is {} tokens. However, you requested about {requested} tokens ({prompt_tokens} of text input, {} in the output). Please reduce the length of either one, or use the \"middle-out\" transform to compress your prompt automatically.",
            info.context_length,
            req.max_tokens.unwrap_or(0)
        );
        return now(
            rec,
            Outcome::BadRequest,
            400,
            &msg,
            Some("context_length_exceeded"),
        );
    }
    if let Err(wait) = st.admit(arrival) {
        rec.status = 429;
        return (Outcome::RateLimited, Plan::Now(rate_limited(st, wait)));
    }
    if st.credits_exhausted() {
        let msg = "Insufficient credits. This key's credit limit has been reached; \
                   add credits or raise the limit.";
        return now(rec, Outcome::Credits, 402, msg, Some("payment_required"));
    }
    let (die, jitter_die) = st.roll();
    let jitter =
        ((jitter_die * (st.cfg.latency_jitter_ms + 1) as f64) as u64).min(st.cfg.latency_jitter_ms);
    let delay = Duration::from_millis(st.cfg.latency_ms + jitter);
    match st.pick_fault(die) {
        Outcome::Hang => (Outcome::Hang, Plan::Later(Duration::ZERO, Reply::Hang)),
        Outcome::ServerError => {
            rec.status = st.next_server_error();
            let (msg, kind) = match rec.status {
                500 => ("Internal Server Error", "server"),
                502 => ("Provider returned error", "provider_unavailable"),
                _ => (
                    "Provider is overloaded, try again later",
                    "provider_overloaded",
                ),
            };
            let res = wire::error_response(rec.status, msg, Some(kind));
            (Outcome::ServerError, Plan::Later(delay, Reply::Answer(res)))
        }
        Outcome::Error200 => {
            rec.status = 200;
            let err =
                wire::error_object(502, "Provider returned error", Some("provider_unavailable"));
            let body = json!({"error": err, "user_id": "user_mock"}).to_string();
            let res = wire::json_response(StatusCode::OK, body);
            (Outcome::Error200, Plan::Later(delay, Reply::Answer(res)))
        }
        Outcome::Moderation => {
            rec.status = 403;
            let res = moderation(&req);
            (Outcome::Moderation, Plan::Later(delay, Reply::Answer(res)))
        }
        fault => {
            let reply = billed(st, &req, info, price, fault, headers, arrival, delay, rec);
            (fault, Plan::Later(delay, reply))
        }
    }
}

/// A processed request (ok, finish_error, empty, malformed, reset): charge it, file its
/// generation record and build the answer.
#[allow(clippy::too_many_arguments)]
fn billed(
    st: &Shared,
    req: &ChatRequest,
    info: &'static ModelInfo,
    price: Price,
    fault: Outcome,
    headers: &HeaderMap,
    arrival: Instant,
    delay: Duration,
    rec: &mut RequestRecord,
) -> Reply {
    let prompt_tokens = models::prompt_tokens(&req.messages);
    // A judge's {score, reason} schema is graded; any other schema answered to validate.
    let judged = super::judge::reply(
        &st.cfg,
        &req.model,
        req.response_format.as_ref(),
        &req.messages,
    );
    let (full, n, finish) = match (judged, &req.schema) {
        (Some((text, n)), _) => (text, n, "stop"),
        (None, Some(schema)) => {
            super::structured::answer(&st.cfg, &req.model, &req.messages, schema, req.max_tokens)
        }
        (None, None) => models::completion_for(&req.model, &req.messages, req.max_tokens),
    };
    let (content, completion_tokens, finish, native) = match fault {
        Outcome::FinishError => {
            let keep = n / 2;
            let partial: Vec<&str> = full.split(' ').take(keep as usize).collect();
            (partial.join(" "), keep, Some("error"), Some("error"))
        }
        Outcome::Empty => (String::new(), 0, None, None),
        _ => {
            let native = if finish == "length" {
                info.native_length
            } else {
                info.native_stop
            };
            (full, n, Some(finish), Some(native))
        }
    };
    let cost = price.cost(prompt_tokens, completion_tokens);
    let created = unix_now();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let origin = (!st.cfg.no_log).then(|| {
        Box::new(GenOrigin {
            http_referer: header("http-referer"),
            user_agent: header("user-agent"),
            external_user: req.user.clone(),
            session_id: req.session_id.clone(),
        })
    });
    let id = st.bill(Generation {
        model: req.model.as_str().into(),
        provider: info.provider,
        prompt_tokens,
        completion_tokens,
        cost,
        finish_reason: finish,
        native_finish_reason: native,
        created_unix: created,
        ready_at: arrival + delay + Duration::from_millis(st.cfg.generation_lag_ms),
        latency_ms: delay.as_millis() as u64,
        origin,
    });
    let error = (fault == Outcome::FinishError).then(|| {
        json!({"code": 502, "message": "Upstream provider stopped generating",
               "metadata": {"error_type": "provider_unavailable", "provider_code": "stream_interrupted"}})
    });
    let body = Completion {
        id: &id,
        object: "chat.completion",
        created,
        model: &req.model,
        provider: info.provider,
        system_fingerprint: Some("fp_orbatch_mock"),
        choices: [Choice {
            index: 0,
            logprobs: None,
            finish_reason: finish,
            native_finish_reason: native,
            message: Message {
                role: "assistant",
                content: &content,
                refusal: None,
                reasoning: None,
            },
            error,
        }],
        usage: Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            prompt_tokens_details: Default::default(),
            completion_tokens_details: Default::default(),
            cost: (!st.cfg.no_cost).then_some(cost),
            is_byok: false,
            cost_details: (!st.cfg.no_cost).then(|| CostDetails {
                upstream_inference_cost: None,
                upstream_inference_prompt_cost: price.prompt
                    * rust_decimal::Decimal::from(prompt_tokens),
                upstream_inference_completions_cost: price.completion
                    * rust_decimal::Decimal::from(completion_tokens),
            }),
        },
    };
    let bytes = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    rec.generation_id = Some(id);
    rec.cost = Some(cost);
    rec.status = if fault == Outcome::Reset { 0 } else { 200 };
    match fault {
        Outcome::Reset => Reply::Dropped(bytes.clone(), bytes.len() / 2),
        Outcome::Malformed => {
            let cut = bytes.slice(..bytes.len() * 2 / 3);
            Reply::Answer(wire::json_response(StatusCode::OK, cut))
        }
        _ => Reply::Answer(wire::json_response(StatusCode::OK, bytes)),
    }
}

/// A moderation 403 (not billed): the shape of OpenRouter's, with the flagged input (at most
/// 100 characters) in its metadata and no `error_type`.
fn moderation(req: &ChatRequest) -> Response {
    let flagged: String = last_user_text(&req.messages).chars().take(100).collect();
    let msg = format!(
        "{} requires moderation on OpenAI. Your input was flagged for \"harassment\". No credits were charged.",
        req.model
    );
    let body = json!({
        "error": {"code": 403, "message": msg, "metadata": {
            "reasons": ["harassment"], "flagged_input": flagged,
            "provider_name": "OpenAI", "model_slug": req.model}},
        "user_id": "user_mock",
    });
    wire::json_response(StatusCode::FORBIDDEN, body.to_string())
}

/// A rate-limit 429 with Retry-After (seconds, rounded up, at least `--retry-after-secs`) and
/// the X-RateLimit-* headers (reset in epoch milliseconds).
fn rate_limited(st: &Shared, wait: Duration) -> Response {
    let limit = st.cfg.rpm_limit.unwrap_or(0);
    let msg = format!(
        "Rate limit exceeded: limit of {limit} requests per {} ms",
        st.cfg.rpm_window_ms
    );
    let mut res = wire::error_response(429, &msg, Some("rate_limit_exceeded"));
    let retry = (wait.as_millis() as u64)
        .div_ceil(1000)
        .max(st.cfg.retry_after_secs);
    let reset = unix_now_ms() + wait.as_millis();
    let h = res.headers_mut();
    h.insert("retry-after", HeaderValue::from(retry));
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
    if let Ok(v) = HeaderValue::from_str(&reset.to_string()) {
        h.insert("x-ratelimit-reset", v);
    }
    res
}

/// Parses and checks the request body; `Err` is the 400 message.
fn parse(body: &[u8]) -> Result<ChatRequest, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("Invalid JSON in request body: {e}"))?;
    let Value::Object(mut o) = value else {
        return Err("The request body must be a JSON object".into());
    };
    let messages = match o.remove("messages") {
        Some(Value::Array(list)) if list.is_empty() => {
            return Err("messages must not be empty".into());
        }
        Some(Value::Array(list)) => {
            if !list
                .iter()
                .all(|m| m.get("role").is_some_and(Value::is_string))
            {
                return Err("every message must be an object with a string role".into());
            }
            Value::Array(list)
        }
        Some(_) => return Err("messages must be an array".into()),
        None => return Err("Input required: specify \"prompt\" or \"messages\"".into()),
    };
    let model = match o.get("model") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => o
            .get("models")
            .and_then(|m| m.get(0))
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_MODEL)
            .to_string(),
        Some(_) => return Err("model must be a string".into()),
    };
    let max_tokens = match uint(&o, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => uint(&o, "max_tokens")?,
    };
    let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    let schema = super::structured::requested_schema(&o)?;
    Ok(ChatRequest {
        schema,
        model,
        max_tokens,
        user: text("user"),
        session_id: text("session_id"),
        response_format: o.get("response_format").cloned(),
        messages,
    })
}

/// An optional non-negative integer field.
fn uint(o: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{key} must be a non-negative integer")),
    }
}

/// The text of the last user message ("" if none).
fn last_user_text(messages: &Value) -> String {
    messages
        .as_array()
        .and_then(|l| {
            l.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .map_or_else(String::new, content_text)
}

/// A message's text: its `content` string, or its text parts joined with newlines.
pub(super) fn content_text(m: &Value) -> String {
    match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The request headers, with the Authorization value replaced by "[redacted]".
fn redact(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            let value = if k == "authorization" {
                "[redacted]".to_string()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (k.as_str().to_string(), value)
        })
        .collect()
}
