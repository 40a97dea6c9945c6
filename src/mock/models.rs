//! The mock's model catalogue (prices, metadata) and its deterministic token counting and
//! replies, public so that tests can compute the costs they expect.

use std::str::FromStr;
use std::sync::LazyLock;

use rust_decimal::Decimal;
use serde_json::{Value, json};

/// A model's prices in USD: per prompt token, per completion token, per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    /// USD per prompt token.
    pub prompt: Decimal,
    /// USD per completion token.
    pub completion: Decimal,
    /// USD per request (a flat fee, 0 for most models).
    pub request: Decimal,
}

impl Price {
    /// The charge for one request with these token counts.
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> Decimal {
        self.prompt * Decimal::from(prompt_tokens)
            + self.completion * Decimal::from(completion_tokens)
            + self.request
    }
}

/// One model of the catalogue.
pub(crate) struct ModelInfo {
    pub slug: &'static str,
    pub name: &'static str,
    pub provider: &'static str,
    pub tokenizer: &'static str,
    pub instruct_type: Option<&'static str>,
    pub context_length: u64,
    pub max_completion_tokens: Option<u64>,
    pub moderated: bool,
    pub image_input: bool,
    pub created: u64,
    /// Prices as OpenRouter writes them: prompt, completion, request.
    pub prices: [&'static str; 3],
    /// The provider's raw finish reasons for "stop" and "length".
    pub native_stop: &'static str,
    pub native_length: &'static str,
}

/// The catalogue served by `GET /models`.
pub(crate) const CATALOGUE: &[ModelInfo] = &[
    ModelInfo {
        slug: "openai/gpt-4o-mini",
        name: "OpenAI: GPT-4o-mini",
        provider: "OpenAI",
        tokenizer: "GPT",
        instruct_type: None,
        context_length: 128_000,
        max_completion_tokens: Some(16_384),
        moderated: true,
        image_input: true,
        created: 1_721_260_800,
        prices: ["0.00000015", "0.0000006", "0"],
        native_stop: "stop",
        native_length: "length",
    },
    ModelInfo {
        slug: "anthropic/claude-3.5-haiku",
        name: "Anthropic: Claude 3.5 Haiku",
        provider: "Anthropic",
        tokenizer: "Claude",
        instruct_type: None,
        context_length: 200_000,
        max_completion_tokens: Some(8_192),
        moderated: true,
        image_input: true,
        created: 1_730_678_400,
        prices: ["0.0000008", "0.000004", "0"],
        native_stop: "end_turn",
        native_length: "max_tokens",
    },
    ModelInfo {
        slug: "meta-llama/llama-3.3-70b-instruct",
        name: "Meta: Llama 3.3 70B Instruct",
        provider: "DeepInfra",
        tokenizer: "Llama3",
        instruct_type: Some("llama3"),
        context_length: 131_072,
        max_completion_tokens: Some(16_384),
        moderated: false,
        image_input: false,
        created: 1_733_506_137,
        prices: ["0.00000013", "0.0000004", "0"],
        native_stop: "stop",
        native_length: "length",
    },
    ModelInfo {
        slug: "google/gemini-2.0-flash-001",
        name: "Google: Gemini 2.0 Flash",
        provider: "Google AI Studio",
        tokenizer: "Gemini",
        instruct_type: None,
        context_length: 1_048_576,
        max_completion_tokens: Some(8_192),
        moderated: false,
        image_input: true,
        created: 1_738_769_413,
        prices: ["0.0000001", "0.0000004", "0"],
        native_stop: "STOP",
        native_length: "MAX_TOKENS",
    },
    ModelInfo {
        slug: "perplexity/sonar",
        name: "Perplexity: Sonar",
        provider: "Perplexity",
        tokenizer: "Other",
        instruct_type: None,
        context_length: 127_072,
        max_completion_tokens: None,
        moderated: false,
        image_input: false,
        created: 1_738_013_808,
        prices: ["0.000001", "0.000001", "0.005"],
        native_stop: "stop",
        native_length: "length",
    },
];

/// Prices of models answered by chat but not listed (`--unlisted-model`).
pub(crate) static UNLISTED: ModelInfo = ModelInfo {
    slug: "",
    name: "Unlisted model",
    provider: "Mock",
    tokenizer: "Other",
    instruct_type: None,
    context_length: 32_768,
    max_completion_tokens: Some(4_096),
    moderated: false,
    image_input: false,
    created: 1_700_000_000,
    prices: ["0.000001", "0.000002", "0"],
    native_stop: "stop",
    native_length: "length",
};

static PRICES: LazyLock<Vec<Price>> = LazyLock::new(|| {
    CATALOGUE
        .iter()
        .chain(std::iter::once(&UNLISTED))
        .map(|m| parse_prices(m.prices))
        .collect()
});

fn parse_prices(p: [&str; 3]) -> Price {
    let d = |s: &str| Decimal::from_str(s).unwrap_or_default();
    Price {
        prompt: d(p[0]),
        completion: d(p[1]),
        request: d(p[2]),
    }
}

/// The catalogue entry of a listed model.
pub(crate) fn lookup(model: &str) -> Option<(usize, &'static ModelInfo)> {
    CATALOGUE.iter().enumerate().find(|(_, m)| m.slug == model)
}

/// The price of a catalogue model (`None` for unknown and `--unlisted-model` slugs).
pub fn price(model: &str) -> Option<Price> {
    lookup(model).map(|(i, _)| PRICES[i])
}

/// The price charged for `--unlisted-model` slugs.
pub fn unlisted_price() -> Price {
    PRICES[CATALOGUE.len()]
}

/// The prompt tokens the mock counts (deliberately not tiktoken): for each message,
/// 4 + ceil(UTF-8 bytes of its text / 3.7); a non-text content part counts 85.
pub fn prompt_tokens(messages: &Value) -> u64 {
    let Some(list) = messages.as_array() else {
        return 0;
    };
    list.iter()
        .map(|m| {
            let (bytes, extra) = match m.get("content") {
                Some(Value::String(s)) => (s.len() as u64, 0),
                Some(Value::Array(parts)) => parts.iter().fold((0, 0), |(b, x), p| {
                    match p.get("text").and_then(Value::as_str) {
                        Some(t) => (b + t.len() as u64, x),
                        None => (b, x + 85),
                    }
                }),
                _ => (0, 0),
            };
            4 + (bytes * 10).div_ceil(37) + extra
        })
        .sum()
}

const WORDS: [&str; 32] = [
    "the", "mock", "answer", "is", "positive", "negative", "neutral", "likely", "a", "review",
    "of", "clear", "and", "short", "reply", "to", "your", "prompt", "with", "some", "tokens",
    "batch", "model", "cost", "exact", "yes", "no", "perhaps", "because", "data", "shows", "it",
];

/// The deterministic reply to `messages`: (content, completion tokens, finish reason).
/// One word is one token; 1..=60 tokens, longer for longer prompts, cut to `max_tokens`
/// (then the finish reason is "length").
pub fn completion_for(
    model: &str,
    messages: &Value,
    max_tokens: Option<u64>,
) -> (String, u64, &'static str) {
    let mut h = blake3::Hasher::new();
    h.update(model.as_bytes());
    h.update(&[0]);
    hash_value(&mut h, messages);
    let digest = h.finalize();
    let b = digest.as_bytes();
    if let Some(label) = labelled(model, messages, b[1]) {
        return match max_tokens {
            Some(0) => (String::new(), 0, "length"),
            _ => (label, 1, "stop"),
        };
    }
    let natural = 1 + u64::from(b[0]) % 40 + (prompt_tokens(messages) / 16).min(20);
    let (n, finish) = match max_tokens {
        Some(m) if m < natural => (m, "length"),
        _ => (natural, "stop"),
    };
    let mut out = String::with_capacity(n as usize * 7);
    for i in 0..n as usize {
        let w = WORDS[usize::from(b[1 + i % 31] ^ (i as u8).wrapping_mul(7)) % WORDS.len()];
        if i > 0 {
            out.push(' ');
        }
        out.push_str(w);
    }
    if finish == "stop" {
        out.push('.');
    }
    (out, n, finish)
}

/// The classifier's answer when the last user message asks for a sentiment label
/// ([`super::classify`]): the label, capitalised with a period for some replies (so that
/// checks meet case and punctuation).
fn labelled(model: &str, messages: &Value, salt: u8) -> Option<String> {
    let turns = messages.as_array()?;
    let last = turns.iter().rev().find(|m| m["role"] == "user")?;
    let text = last["content"].as_str()?;
    if !super::classify::asks_for_label(text) {
        return None;
    }
    let conversation = turns
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let label = super::classify::label_for(model, &conversation, text);
    Some(if salt.is_multiple_of(4) {
        let mut c = label.chars();
        let first = c.next().map(|f| f.to_ascii_uppercase()).unwrap_or_default();
        format!("{first}{}.", c.as_str())
    } else {
        label.to_string()
    })
}

/// Feeds a JSON value into the hasher with sorted object keys, so that the reply does not
/// depend on how the client ordered its fields.
fn hash_value(h: &mut blake3::Hasher, v: &Value) {
    match v {
        Value::Null => h.update(b"n"),
        Value::Bool(b) => h.update(if *b { b"t" } else { b"f" }),
        Value::Number(n) => h.update(b"#").update(n.to_string().as_bytes()),
        Value::String(s) => h
            .update(b"s")
            .update(&(s.len() as u64).to_le_bytes())
            .update(s.as_bytes()),
        Value::Array(a) => {
            h.update(b"[");
            a.iter().for_each(|x| hash_value(h, x));
            h.update(b"]")
        }
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            h.update(b"{");
            for k in keys {
                hash_value(h, &Value::String(k.clone()));
                hash_value(h, &o[k.as_str()]);
            }
            h.update(b"}")
        }
    };
}

/// The `GET /models` body: every Appendix A field, prices as decimal strings, each divided by
/// `divisor` (1: the prices charged; more: a lying price list).
pub(crate) fn models_body(divisor: u32) -> Value {
    let data: Vec<Value> = CATALOGUE
        .iter()
        .map(|m| model_json(m, Decimal::from(divisor.max(1))))
        .collect();
    json!({"data": data, "total_count": CATALOGUE.len(), "links": {"next": null}})
}

fn model_json(m: &ModelInfo, divisor: Decimal) -> Value {
    let inputs: &[&str] = if m.image_input {
        &["text", "image"]
    } else {
        &["text"]
    };
    let listed = |p: &str| match Decimal::from_str(p) {
        Ok(v) if divisor != Decimal::ONE => (v / divisor).normalize().to_string(),
        _ => p.to_string(),
    };
    let [prompt, completion, request] = m.prices.map(listed);
    json!({
        "id": m.slug,
        "canonical_slug": m.slug,
        "hugging_face_id": null,
        "name": m.name,
        "created": m.created,
        "description": format!("{} (served by the orbatch mock).", m.name),
        "context_length": m.context_length,
        "architecture": {
            "modality": if m.image_input { "text+image->text" } else { "text->text" },
            "input_modalities": inputs,
            "output_modalities": ["text"],
            "tokenizer": m.tokenizer,
            "instruct_type": m.instruct_type,
        },
        "pricing": {
            "prompt": prompt, "completion": completion, "request": request,
            "image": "0", "web_search": "0", "internal_reasoning": "0",
        },
        "top_provider": {
            "context_length": m.context_length,
            "max_completion_tokens": m.max_completion_tokens,
            "is_moderated": m.moderated,
        },
        "per_request_limits": null,
        "supported_parameters": ["max_tokens", "temperature", "top_p", "stop", "seed",
                                 "response_format", "structured_outputs"],
        "default_parameters": {"temperature": null, "top_p": null, "frequency_penalty": null},
        "supported_voices": null,
        "knowledge_cutoff": null,
        "expiration_date": null,
        "links": {"details": format!("/api/v1/models/{}/endpoints", m.slug)},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_and_counts() {
        let p = price("perplexity/sonar").unwrap();
        assert_eq!(p.request, Decimal::from_str("0.005").unwrap());
        assert!(price("nope/nope").is_none());
        let msgs = json!([{"role": "user", "content": "abcd"}]);
        assert_eq!(prompt_tokens(&msgs), 4 + 2);
        let parts = json!([{"role": "user", "content": [{"type": "text", "text": "abc"},
                                                         {"type": "image_url"}]}]);
        assert_eq!(prompt_tokens(&parts), 4 + 1 + 85);
    }

    #[test]
    fn replies_are_deterministic_capped_and_varied() {
        let m = json!([{"role": "user", "content": "hello"}]);
        let a = completion_for("openai/gpt-4o-mini", &m, None);
        assert_eq!(a, completion_for("openai/gpt-4o-mini", &m, None));
        assert_eq!(a.0.split(' ').count() as u64, a.1);
        assert!((1..=60).contains(&a.1));
        let capped = completion_for("openai/gpt-4o-mini", &m, Some(1));
        if a.1 > 1 {
            assert_eq!((capped.1, capped.2), (1, "length"));
        }
        let lens: std::collections::HashSet<u64> = (0..50)
            .map(|i| completion_for("x", &json!([{"content": format!("row {i}")}]), None).1)
            .collect();
        assert!(lens.len() > 10, "{lens:?}");
    }
}
