//! The JSON the mock writes: completion bodies (typed, cheap to serialize) and OpenRouter
//! error bodies, plus the response helpers shared by the handlers.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};

/// A `chat.completion` body, with every field the official SDK requires.
#[derive(Serialize)]
pub(crate) struct Completion<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: i64,
    pub model: &'a str,
    pub provider: &'a str,
    pub system_fingerprint: Option<&'a str>,
    pub choices: [Choice<'a>; 1],
    pub usage: Usage,
}

/// `choices[0]`.
#[derive(Serialize)]
pub(crate) struct Choice<'a> {
    pub index: u32,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
    pub native_finish_reason: Option<&'static str>,
    pub message: Message<'a>,
    /// Only with `finish_reason: "error"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// `choices[0].message`.
#[derive(Serialize)]
pub(crate) struct Message<'a> {
    pub role: &'static str,
    pub content: &'a str,
    pub refusal: Option<()>,
    pub reasoning: Option<()>,
}

/// `usage`, with `cost` an exact JSON number (left out with `--no-cost`).
#[derive(Serialize)]
pub(crate) struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: PromptDetails,
    pub completion_tokens_details: CompletionDetails,
    #[serde(with = "crate::money::opt", skip_serializing_if = "Option::is_none")]
    pub cost: Option<Decimal>,
    pub is_byok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_details: Option<CostDetails>,
}

/// `usage.prompt_tokens_details` (the mock has no cache, audio or video).
#[derive(Serialize, Default)]
pub(crate) struct PromptDetails {
    pub cached_tokens: u64,
    pub cache_write_tokens: u64,
    pub audio_tokens: u64,
    pub video_tokens: u64,
}

/// `usage.completion_tokens_details` (the mock does not reason).
#[derive(Serialize, Default)]
pub(crate) struct CompletionDetails {
    pub reasoning_tokens: u64,
    pub audio_tokens: u64,
    pub image_tokens: u64,
}

/// `usage.cost_details`.
#[derive(Serialize)]
pub(crate) struct CostDetails {
    pub upstream_inference_cost: Option<()>,
    #[serde(with = "crate::money")]
    pub upstream_inference_prompt_cost: Decimal,
    #[serde(with = "crate::money")]
    pub upstream_inference_completions_cost: Decimal,
}

/// An OpenRouter error object: `{"code", "message", "metadata": {"error_type"}}`.
pub(crate) fn error_object(code: u16, message: &str, error_type: Option<&str>) -> Value {
    match error_type {
        Some(t) => json!({"code": code, "message": message, "metadata": {"error_type": t}}),
        None => json!({"code": code, "message": message}),
    }
}

/// A JSON response with `Content-Type: application/json`.
pub(crate) fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut res = Response::new(body.into());
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// A 200 with a serialized value.
pub(crate) fn ok_json(value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(v) => json_response(StatusCode::OK, v),
        Err(e) => error_response(500, &format!("mock: cannot serialize: {e}"), Some("server")),
    }
}

/// An error answer: HTTP `status` with `{"error": {"code": status, "message", "metadata"?}}`.
pub(crate) fn error_response(status: u16, message: &str, error_type: Option<&str>) -> Response {
    let body = json!({"error": error_object(status, message, error_type)}).to_string();
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, body)
}

/// A 200 whose body stops after `partial` bytes of `full` and then fails, so the server drops
/// the connection mid-body: the client sees a connection/body error, not a response.
pub(crate) fn dropped_response(full: Bytes, partial: usize) -> Response {
    let len = full.len();
    let head = full.slice(..partial.min(len));
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(head),
        Err(std::io::Error::other("mock: connection reset")),
    ];
    let mut res = json_response(
        StatusCode::OK,
        Body::from_stream(futures_util::stream::iter(chunks)),
    );
    res.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    res
}

/// Drops the connection without a response (a hang that ends, or a shutdown).
pub(crate) fn drop_connection() -> Response {
    dropped_response(Bytes::from_static(b"{\"error\":null}"), 0)
}

impl IntoResponse for Completion<'_> {
    fn into_response(self) -> Response {
        ok_json(&self)
    }
}
