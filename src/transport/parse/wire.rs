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
    prompt_tokens_details: Detail<'a, CachedTokens>,
    #[serde(borrow, default)]
    completion_tokens_details: Detail<'a, ReasoningTokens>,
    #[serde(borrow, default)]
    cost: Option<&'a RawValue>,
}

/// The name of the one field a [`Detail`] reads.
pub(super) trait DetailName {
    /// The field's name.
    const NAME: &'static str;
}

/// `usage.prompt_tokens_details.cached_tokens`.
pub(super) struct CachedTokens;
impl DetailName for CachedTokens {
    const NAME: &'static str = "cached_tokens";
}

/// `usage.completion_tokens_details.reasoning_tokens`.
pub(super) struct ReasoningTokens;
impl DetailName for ReasoningTokens {
    const NAME: &'static str = "reasoning_tokens";
}

/// One field of a `usage.*_details` object, raw, read in the same pass as the rest: an
/// object without it, or any other JSON value, reads as `None` (never an error: the answer
/// is kept whatever its details say; a repeated field: the last one).
pub(super) struct Detail<'a, N>(Option<&'a RawValue>, std::marker::PhantomData<N>);

impl<N> Default for Detail<'_, N> {
    fn default() -> Self {
        Detail(None, std::marker::PhantomData)
    }
}

impl<'de: 'a, 'a, N: DetailName> Deserialize<'de> for Detail<'a, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        use std::marker::PhantomData;

        /// A map key: is it `N::NAME`?
        struct IsName<N>(PhantomData<N>);
        impl<'de, N: DetailName> serde::de::DeserializeSeed<'de> for IsName<N> {
            type Value = bool;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
                d.deserialize_str(self)
            }
        }
        impl<N: DetailName> Visitor<'_> for IsName<N> {
            type Value = bool;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
                Ok(v == N::NAME)
            }
        }

        struct AnyValue<'a, N>(PhantomData<(&'a (), N)>);
        impl<'de: 'a, 'a, N: DetailName> Visitor<'de> for AnyValue<'a, N> {
            type Value = Detail<'a, N>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut found = None;
                while let Some(wanted) = map.next_key_seed(IsName::<N>(PhantomData))? {
                    if wanted {
                        found = Some(map.next_value::<&'a RawValue>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Detail(found, PhantomData))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Detail::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Detail::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Detail::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Detail::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Detail::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Detail::default())
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Detail::default())
            }
        }
        d.deserialize_any(AnyValue::<N>(PhantomData))
    }
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
            reasoning_tokens: usage.and_then(|u| count(u.completion_tokens_details.0)),
            cached_tokens: usage.and_then(|u| count(u.prompt_tokens_details.0)),
            cost: usage
                .and_then(|u| u.cost)
                .and_then(|r| usable_cost(r.get())),
        }
    }
}
