//! The items of a mock batch: the create body's checks (`endpoint` and `model` before
//! `requests`, one model, unique `custom_id`s, the request limit), each item's deterministic
//! answer and charge at the batch price, and the result items as the API writes them.

use std::fmt;

use rust_decimal::Decimal;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::models::{self, Price};
use super::state::{Shared, unix_now};
use super::wire::{Choice, Completion, CostDetails, Message, Usage};

/// Models whose `:batch` variant `/models` lists, at half their price; the others have none.
pub(crate) const BATCH_VARIANTS: &[&str] = &["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"];

/// The price of a `:batch` variant slug (`None`: not a listed variant).
pub(crate) fn variant_price(slug: &str) -> Option<Price> {
    let base = slug.strip_suffix(":batch")?;
    if !BATCH_VARIANTS.contains(&base) {
        return None;
    }
    let p = models::price(base)?;
    let half = Decimal::new(5, 1);
    Some(Price {
        prompt: p.prompt * half,
        completion: p.completion * half,
        request: p.request * half,
    })
}

/// The `/models` entries of the `:batch` variants: each its model's entry at half the price
/// (`model_json(info, divisor)` writes an entry with every price divided by `divisor`).
pub(crate) fn variants_json(
    divisor: Decimal,
    model_json: fn(&models::ModelInfo, Decimal) -> Value,
) -> Vec<Value> {
    BATCH_VARIANTS
        .iter()
        .filter_map(|slug| models::lookup(slug))
        .map(|(_, info)| {
            let mut v = model_json(info, divisor * Decimal::TWO);
            let id = format!("{}:batch", info.slug);
            v["name"] = Value::String(format!("{} (batch)", info.name));
            v["canonical_slug"] = Value::String(id.clone());
            v["id"] = Value::String(id);
            v
        })
        .collect()
}

/// What a batch of `model` is billed per token: its variant's price, else its own.
fn batch_price(model: &str) -> Option<Price> {
    variant_price(&format!("{model}:batch")).or_else(|| models::price(model))
}

/// One request of a batch, decided when the batch is created.
pub(crate) struct Item {
    custom_id: String,
    generation_id: String,
    model: String,
    content: String,
    finish: &'static str,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Its charge; `None`: the item failed (not billed).
    pub cost: Option<Decimal>,
}

/// A created batch's model and items.
pub(crate) struct Decided {
    pub model: String,
    pub items: Vec<Item>,
}

/// The top-level keys of a body, in order.
struct TopKeys(Vec<String>);

impl<'de> Deserialize<'de> for TopKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopKeys;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopKeys, A::Error> {
                let mut keys = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    keys.push(k);
                }
                Ok(TopKeys(keys))
            }
        }
        d.deserialize_map(V)
    }
}

/// The 400 message when `requests` comes before `endpoint` or `model` (or the body is no
/// JSON object).
pub(crate) fn order_error(body: &[u8]) -> Option<String> {
    let keys = match serde_json::from_slice::<TopKeys>(body) {
        Ok(k) => k.0,
        Err(e) => return Some(format!("Invalid JSON in request body: {e}")),
    };
    let at = |name: &str| keys.iter().position(|k| k == name);
    let requests = at("requests")?;
    for first in ["endpoint", "model"] {
        match at(first) {
            Some(i) if i < requests => {}
            _ => {
                return Some(format!(
                    "\"{first}\" must be serialized before \"requests\" in the batch body"
                ));
            }
        }
    }
    None
}

#[derive(Deserialize)]
struct CreateBody {
    endpoint: String,
    model: String,
    requests: Vec<RequestItem>,
}

#[derive(Deserialize)]
struct RequestItem {
    custom_id: String,
    body: Value,
}

/// Checks a create body and decides every item; `Err` is the 400 message.
pub(crate) fn decide_items(st: &Shared, body: &[u8]) -> Result<Decided, String> {
    let b: CreateBody =
        serde_json::from_slice(body).map_err(|e| format!("invalid batch body: {e}"))?;
    if b.endpoint != "/v1/chat/completions" {
        return Err(format!("unsupported endpoint {:?}", b.endpoint));
    }
    let base = b
        .model
        .strip_suffix(":batch")
        .unwrap_or(&b.model)
        .to_string();
    let Some(price) = batch_price(&base) else {
        return Err(format!("{} is not a valid model ID", b.model));
    };
    let limit = st.cfg.batch.batch_max_requests;
    if b.requests.is_empty() || b.requests.len() > limit {
        return Err(format!(
            "a batch holds 1 to {limit} requests, got {}",
            b.requests.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut items = Vec::with_capacity(b.requests.len());
    for r in b.requests {
        if !seen.insert(r.custom_id.clone()) {
            return Err(format!("duplicate custom_id {:?}", r.custom_id));
        }
        let m = r.body.get("model").and_then(Value::as_str).unwrap_or(&base);
        if m != base && m != b.model {
            return Err(format!(
                "request {}: model {m} differs from the batch model {}",
                r.custom_id, b.model
            ));
        }
        let messages = r.body.get("messages").cloned().unwrap_or(Value::Null);
        if messages.as_array().is_none_or(|a| a.is_empty()) {
            return Err(format!(
                "request {}: messages must be a non-empty array",
                r.custom_id
            ));
        }
        let max_tokens = ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| r.body.get(*k).and_then(Value::as_u64));
        let prompt_tokens = models::prompt_tokens(&messages);
        let (content, n, finish) = models::completion_for(&base, &messages, max_tokens);
        let fails = fails(st, &r.custom_id);
        let cost = (!fails).then(|| price.cost(prompt_tokens, n));
        items.push(Item {
            generation_id: format!(
                "gen-batch-{}",
                &blake3::hash(r.custom_id.as_bytes()).to_hex()[..16]
            ),
            custom_id: r.custom_id,
            model: base.clone(),
            content,
            finish,
            prompt_tokens,
            completion_tokens: if fails { 0 } else { n },
            cost,
        });
    }
    Ok(Decided {
        model: b.model,
        items,
    })
}

/// Whether an item fails (`--batch-fail-rate`), decided from its custom_id and the seed.
fn fails(st: &Shared, custom_id: &str) -> bool {
    let rate = st.cfg.batch.batch_fail_rate;
    if rate <= 0.0 {
        return false;
    }
    let mut h = blake3::Hasher::new();
    h.update(&st.cfg.seed.to_le_bytes());
    h.update(custom_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.finalize().as_bytes()[..8]);
    ((u64::from_le_bytes(first) >> 11) as f64 / (1u64 << 53) as f64) < rate
}

#[derive(Serialize)]
struct ResultItem<'a> {
    id: String,
    custom_id: &'a str,
    response: Option<ItemResponse<'a>>,
    error: Option<Value>,
}

#[derive(Serialize)]
struct ItemResponse<'a> {
    status_code: u16,
    request_id: String,
    body: Completion<'a>,
}

impl Item {
    /// The result item (`item_cost`: its body carries `usage.cost`), as raw JSON so that
    /// money keeps every digit.
    pub fn result(&self, item_cost: bool) -> Box<RawValue> {
        let id = format!("batch_req_{}", &self.generation_id[10..]);
        let item = match self.cost {
            None => ResultItem {
                id,
                custom_id: &self.custom_id,
                response: None,
                error: Some(serde_json::json!({
                    "type": "server_error", "message": "Upstream provider failed this request",
                    "param": null, "error_type": "provider_unavailable"})),
            },
            Some(cost) => ResultItem {
                id,
                custom_id: &self.custom_id,
                response: Some(ItemResponse {
                    status_code: 200,
                    request_id: format!("req_{}", &self.generation_id[10..]),
                    body: self.completion(item_cost.then_some(cost)),
                }),
                error: None,
            },
        };
        let text = serde_json::to_string(&item).unwrap_or_else(|_| "null".into());
        RawValue::from_string(text).unwrap_or_else(|_| Box::<RawValue>::default())
    }

    fn completion(&self, cost: Option<Decimal>) -> Completion<'_> {
        Completion {
            id: &self.generation_id,
            object: "chat.completion",
            created: unix_now(),
            model: &self.model,
            provider: "Mock Batch",
            system_fingerprint: Some("fp_orbatch_mock"),
            choices: [Choice {
                index: 0,
                logprobs: None,
                finish_reason: Some(self.finish),
                native_finish_reason: Some(self.finish),
                message: Message {
                    role: "assistant",
                    content: &self.content,
                    refusal: None,
                    reasoning: None,
                },
                error: None,
            }],
            usage: Usage {
                prompt_tokens: self.prompt_tokens,
                completion_tokens: self.completion_tokens,
                total_tokens: self.prompt_tokens + self.completion_tokens,
                prompt_tokens_details: Default::default(),
                completion_tokens_details: Default::default(),
                cost,
                is_byok: false,
                cost_details: cost.map(|_| CostDetails {
                    upstream_inference_cost: None,
                    upstream_inference_prompt_cost: Decimal::ZERO,
                    upstream_inference_completions_cost: Decimal::ZERO,
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_before_endpoint_or_model_is_refused() {
        let ok = br#"{"endpoint":"/v1/chat/completions","model":"m","requests":[]}"#;
        assert_eq!(order_error(ok), None);
        let late = br#"{"endpoint":"/v1/chat/completions","requests":[],"model":"m"}"#;
        assert!(order_error(late).is_some_and(|m| m.contains("\"model\"")));
        let first = br#"{"requests":[],"endpoint":"/v1/chat/completions","model":"m"}"#;
        assert!(order_error(first).is_some());
    }

    #[test]
    fn only_some_models_have_a_batch_variant_at_half_price() {
        let p = variant_price("openai/gpt-4o-mini:batch").expect("listed");
        assert_eq!(
            p.prompt * Decimal::TWO,
            models::price("openai/gpt-4o-mini").expect("x").prompt
        );
        assert!(variant_price("meta-llama/llama-3.3-70b-instruct:batch").is_none());
        assert!(variant_price("openai/gpt-4o-mini").is_none());
    }
}
