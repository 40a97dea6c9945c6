//! Wire types of the OpenRouter API that orbatch reads (lenient: every field optional, so an
//! OpenAI-compatible server that sends less still parses).

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

pub mod lenient;

/// A `POST /chat/completions` answer (also an error body: `error` set, no `choices`). The
/// optional strings are lenient too: a number where a string belongs reads as absent.
#[derive(Debug, Deserialize)]
pub struct ChatResponse {
    /// The generation id (`gen-...`).
    #[serde(default, deserialize_with = "lenient::object")]
    pub id: Option<String>,
    /// The model that answered.
    #[serde(default, deserialize_with = "lenient::object")]
    pub model: Option<String>,
    /// The provider that served it (not in the OpenAPI schema, sent by OpenRouter).
    #[serde(default, deserialize_with = "lenient::object")]
    pub provider: Option<String>,
    /// The choices.
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// Tokens and cost (parsed leniently: a malformed `usage` never throws the answer away).
    #[serde(default, deserialize_with = "lenient::object")]
    pub usage: Option<Usage>,
    /// A top-level error (also inside an HTTP 200).
    pub error: Option<ApiError>,
}

/// One choice.
#[derive(Debug, Deserialize)]
pub struct Choice {
    /// The assistant message.
    pub message: Option<Message>,
    /// `stop`, `length`, `error`, ... or null.
    #[serde(default, deserialize_with = "lenient::object")]
    pub finish_reason: Option<String>,
    /// A choice-level error (`finish_reason: "error"`).
    pub error: Option<ApiError>,
}

/// The assistant message.
#[derive(Debug, Deserialize)]
pub struct Message {
    /// The content: a string, or (rarely) an array of parts.
    pub content: Option<Value>,
}

impl Message {
    /// The text content: a string as is, parts' `text` joined.
    pub fn into_text(self) -> Option<String> {
        match self.content? {
            Value::String(s) => Some(s),
            Value::Array(parts) => Some(
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect(),
            ),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

/// `usage`. Every field is lenient: a value of the wrong type, a negative count or an
/// unusable cost reads as absent (unknown), never as an error.
#[derive(Debug, Deserialize)]
pub struct Usage {
    /// Prompt tokens (native tokenizer; billing uses these).
    #[serde(default, deserialize_with = "lenient::count")]
    pub prompt_tokens: Option<u64>,
    /// Completion tokens.
    #[serde(default, deserialize_with = "lenient::count")]
    pub completion_tokens: Option<u64>,
    /// Cache details.
    #[serde(default, deserialize_with = "lenient::object")]
    pub prompt_tokens_details: Option<PromptDetails>,
    /// Reasoning details.
    #[serde(default, deserialize_with = "lenient::object")]
    pub completion_tokens_details: Option<CompletionDetails>,
    /// USD charged: `None` when absent, negative, non-finite or not a number.
    #[serde(default, deserialize_with = "lenient::cost")]
    pub cost: Option<Decimal>,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Deserialize)]
pub struct PromptDetails {
    /// Prompt tokens read from a cache.
    #[serde(default, deserialize_with = "lenient::count")]
    pub cached_tokens: Option<u64>,
}

/// `usage.completion_tokens_details`.
#[derive(Debug, Deserialize)]
pub struct CompletionDetails {
    /// Reasoning tokens.
    #[serde(default, deserialize_with = "lenient::count")]
    pub reasoning_tokens: Option<u64>,
}

/// An OpenRouter error object. `code` is parsed leniently (int or string).
#[derive(Debug, Default, Deserialize)]
pub struct ApiError {
    /// Usually the HTTP status as an integer.
    pub code: Option<Value>,
    /// The message.
    pub message: Option<String>,
    /// `error_type`, `provider_name`, `reasons`, `retry_after_seconds`, ...
    pub metadata: Option<Value>,
    /// Model-availability details.
    pub availability: Option<Availability>,
    /// Some bodies carry `error_type` directly under `error`.
    pub error_type: Option<String>,
}

impl ApiError {
    /// `metadata.error_type`, or `error_type`.
    pub fn error_type(&self) -> Option<&str> {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("error_type"))
            .and_then(Value::as_str)
            .or(self.error_type.as_deref())
    }

    /// `code` as an HTTP-like status, when it is one.
    pub fn status(&self) -> Option<u16> {
        match self.code.as_ref()? {
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// `metadata.retry_after_seconds` or `availability.retry_after`, in seconds.
    pub fn retry_after_secs(&self) -> Option<f64> {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("retry_after_seconds"))
            .and_then(Value::as_f64)
            .or_else(|| self.availability.as_ref().and_then(|a| a.retry_after))
    }

    /// The message, with the provider's name when known.
    pub fn describe(&self) -> String {
        let msg = self.message.clone().unwrap_or_else(|| "no message".into());
        let provider = self
            .metadata
            .as_ref()
            .and_then(|m| m.get("provider_name"))
            .and_then(Value::as_str);
        match provider {
            Some(p) if !msg.contains(p) => format!("{msg} (provider: {p})"),
            _ => msg,
        }
    }
}

/// `error.availability`.
#[derive(Debug, Default, Deserialize)]
pub struct Availability {
    /// Whether retrying may help.
    #[serde(default)]
    pub retryable: bool,
    /// Seconds to wait.
    pub retry_after: Option<f64>,
}

/// An error-only body (`{"error": {...}}`).
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: Option<ApiError>,
}

/// `GET /generation` answer.
#[derive(Debug, Deserialize)]
pub struct GenerationResponse {
    /// The record.
    pub data: Generation,
}

/// The generation record (the fields orbatch uses).
#[derive(Debug, Deserialize)]
pub struct Generation {
    /// USD charged: `None` when absent, negative, non-finite or not a number.
    #[serde(default, deserialize_with = "lenient::cost")]
    pub total_cost: Option<Decimal>,
    /// The provider that served it.
    #[serde(default, deserialize_with = "lenient::object")]
    pub provider_name: Option<String>,
    /// Native prompt tokens.
    #[serde(default, deserialize_with = "lenient::count")]
    pub native_tokens_prompt: Option<u64>,
    /// Native completion tokens.
    #[serde(default, deserialize_with = "lenient::count")]
    pub native_tokens_completion: Option<u64>,
    /// Native reasoning tokens.
    #[serde(default, deserialize_with = "lenient::count")]
    pub native_tokens_reasoning: Option<u64>,
    /// Native cached tokens.
    #[serde(default, deserialize_with = "lenient::count")]
    pub native_tokens_cached: Option<u64>,
}

/// `GET /models` answer.
#[derive(Debug, Deserialize)]
pub struct ModelsResponse {
    /// The models.
    #[serde(default)]
    pub data: Vec<ModelEntry>,
}

/// One model of `/models`.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    /// The slug.
    pub id: String,
    /// Context length in tokens.
    pub context_length: Option<u64>,
    /// Tokenizer family and modality.
    pub architecture: Option<Architecture>,
    /// Prices (decimal strings, USD per token / per request).
    pub pricing: Option<Pricing>,
    /// The top provider's limits.
    pub top_provider: Option<TopProvider>,
}

/// `architecture`.
#[derive(Debug, Clone, Deserialize)]
pub struct Architecture {
    /// `GPT`, `Claude`, `Llama3`, ...
    pub tokenizer: Option<String>,
}

/// `pricing`: decimal strings.
#[derive(Debug, Clone, Deserialize)]
pub struct Pricing {
    /// USD per prompt token.
    pub prompt: Option<String>,
    /// USD per completion token.
    pub completion: Option<String>,
    /// USD per request.
    pub request: Option<String>,
    /// USD per reasoning token, when priced apart.
    pub internal_reasoning: Option<String>,
    /// USD per cached prompt token read.
    pub input_cache_read: Option<String>,
}

/// `top_provider`.
#[derive(Debug, Clone, Deserialize)]
pub struct TopProvider {
    /// Context length.
    pub context_length: Option<u64>,
    /// Max completion tokens.
    pub max_completion_tokens: Option<u64>,
}
