//! A chat answer read in place: the texts borrowed from the body (`Cow`, owned only when a
//! string has escapes), the optional fields kept as raw JSON and read leniently when the
//! [`Completion`] is built, so a normal answer is parsed once with few allocations. The
//! leniency is the one of [`crate::api::ChatResponse`]: a value of the wrong type, a negative
//! count or an unusable cost reads as absent; a malformed `usage` as no usage (the body is
//! then read a second time, with `usage` kept raw: [`parse`]).

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::Completion;
use crate::api::ApiError;
use crate::api::lenient::usable_cost;

/// A `POST /chat/completions` answer (also an error body: `error` set, no `choices`); `U`
/// is how `usage` is read.
#[derive(Deserialize)]
pub(super) struct Chat<'a, U = Usage<'a>> {
    #[serde(borrow, default, deserialize_with = "text")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    provider: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub choices: Vec<Choice<'a>>,
    usage: Option<U>,
    /// A top-level error (also inside an HTTP 200).
    pub error: Option<ApiError>,
}

/// One choice.
#[derive(Deserialize)]
pub(super) struct Choice<'a> {
    #[serde(borrow)]
    message: Option<Message<'a>>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub finish_reason: Option<Cow<'a, str>>,
    /// A choice-level error (`finish_reason: "error"`).
    pub error: Option<ApiError>,
}

/// The assistant message.
#[derive(Deserialize)]
struct Message<'a> {
    /// A string, or (rarely) an array of parts: any JSON value.
    #[serde(borrow)]
    content: Option<&'a RawValue>,
}

/// `usage`, each field raw until it is read.
#[derive(Deserialize)]
pub(super) struct Usage<'a> {
    #[serde(borrow, default)]
    prompt_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    completion_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    prompt_tokens_details: Option<&'a RawValue>,
    #[serde(borrow, default)]
    completion_tokens_details: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cost: Option<&'a RawValue>,
}

/// `usage.prompt_tokens_details`.
#[derive(Deserialize)]
struct PromptDetails<'a> {
    #[serde(borrow, default)]
    cached_tokens: Option<&'a RawValue>,
}

/// `usage.completion_tokens_details`.
#[derive(Deserialize)]
struct CompletionDetails<'a> {
    #[serde(borrow, default)]
    reasoning_tokens: Option<&'a RawValue>,
}

/// A string field: `None` when it is not a string.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    let raw: Option<&'de RawValue> = Deserialize::deserialize(d)?;
    Ok(raw.and_then(string))
}

/// The string a raw value holds, borrowed when it has no escapes.
fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    if !raw.get().starts_with('"') {
        return None;
    }
    match serde_json::from_str::<&str>(raw.get()) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(raw.get())
            .ok()
            .map(Cow::Owned),
    }
}

/// An object of `T`'s shape, else `None`.
fn object<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>) -> Option<T> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
}

/// A token count: a non-negative integer (or a string holding one), else `None`.
fn count(raw: Option<&RawValue>) -> Option<u64> {
    raw.and_then(|r| r.get().trim().trim_matches('"').parse::<u64>().ok())
}

/// The text content: a string as is, parts' `text` joined, other values as JSON text.
fn content(raw: &RawValue) -> Option<String> {
    if let Some(s) = string(raw) {
        return Some(s.into_owned());
    }
    let value = serde_json::from_str::<Value>(raw.get()).ok()?;
    crate::api::Message {
        content: Some(value),
    }
    .into_text()
}

/// Reads a chat answer: in one pass when `usage` is an object (any fields), else a second
/// time with `usage` raw, read as no usage when it is not an object.
pub(super) fn parse(bytes: &[u8]) -> Result<Chat<'_>, serde_json::Error> {
    if let Ok(chat) = crate::json::from_bytes::<Chat<'_>>(bytes) {
        return Ok(chat);
    }
    let chat = crate::json::from_bytes::<Chat<'_, &RawValue>>(bytes)?;
    Ok(Chat {
        id: chat.id,
        model: chat.model,
        provider: chat.provider,
        choices: chat.choices,
        usage: object(chat.usage),
        error: chat.error,
    })
}

impl Chat<'_> {
    /// True when `usage` is an object.
    pub(super) fn has_usage(&self) -> bool {
        self.usage.is_some()
    }

    /// The reply of the answer (its first choice).
    pub(super) fn completion(&self) -> Completion {
        let usage = self.usage.as_ref();
        let choice = self.choices.first();
        let owned = |s: &Option<Cow<'_, str>>| s.as_deref().map(str::to_owned);
        let prompt: Option<PromptDetails<'_>> = usage.and_then(|u| object(u.prompt_tokens_details));
        let completion: Option<CompletionDetails<'_>> =
            usage.and_then(|u| object(u.completion_tokens_details));
        Completion {
            generation_id: owned(&self.id),
            response_model: owned(&self.model),
            provider: owned(&self.provider),
            content: choice
                .and_then(|c| c.message.as_ref())
                .and_then(|m| m.content)
                .and_then(content),
            finish_reason: choice.and_then(|c| owned(&c.finish_reason)),
            prompt_tokens: usage.and_then(|u| count(u.prompt_tokens)),
            completion_tokens: usage.and_then(|u| count(u.completion_tokens)),
            reasoning_tokens: completion.and_then(|d| count(d.reasoning_tokens)),
            cached_tokens: prompt.and_then(|d| count(d.cached_tokens)),
            cost: usage
                .and_then(|u| u.cost)
                .and_then(|r| usable_cost(r.get())),
        }
    }
}
