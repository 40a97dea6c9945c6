//! Structured outputs in the mock: a request with `response_format: {type: "json_schema"}` is
//! answered with a JSON object that validates against the schema, with deterministic values:
//! an enum holding sentiment labels from the classifier ([`super::classify::label_for`]),
//! other enums, booleans and numbers by hash, strings and string lists from the prompt.
//!
//! Fault flags make replies that do not validate (`--schema-enum-rate`: a value outside an
//! enum; `--schema-prose-rate`: prose instead of JSON; `--schema-truncated-rate`: the object
//! cut short with `finish_reason: length`). Whether a request gets one is a hash of the seed,
//! the model and the messages (so a test knows it without the server's dice), and
//! `--schema-fault-turns N` limits faults to conversations with fewer than N assistant turns
//! (1: only first attempts fail, so every re-ask validates).

use serde_json::{Map, Value, json};

use super::MockConfig;
use super::classify::{LABELS, label_for};

/// Which invalid reply a request gets, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaFault {
    /// A value outside an enum (or a required property missing when there is no enum).
    Enum,
    /// Prose instead of JSON.
    Prose,
    /// The object cut short, `finish_reason: length`.
    Truncated,
}

/// The schema of a `response_format` of type `json_schema` (`Ok(None)`: no such request);
/// `Err` is the 400 message of a malformed one.
pub(crate) fn requested_schema(body: &Map<String, Value>) -> Result<Option<Value>, String> {
    if let Some(p) = body.get("provider")
        && let Some(r) = p.get("require_parameters")
        && !r.is_boolean()
    {
        return Err("provider.require_parameters must be a boolean".into());
    }
    let Some(rf) = body.get("response_format") else {
        return Ok(None);
    };
    match rf.get("type").and_then(Value::as_str) {
        Some("json_schema") => rf
            .get("json_schema")
            .and_then(|j| j.get("schema"))
            .filter(|s| s.is_object())
            .cloned()
            .map(Some)
            .ok_or_else(|| "response_format.json_schema.schema must be an object".into()),
        Some("json_object" | "text") => Ok(None),
        _ => Err("response_format.type must be json_schema, json_object or text".into()),
    }
}

/// The fault `cfg` gives a request of `model` with these `messages`, if any.
pub fn fault_for(cfg: &MockConfig, model: &str, messages: &Value) -> Option<SchemaFault> {
    let turns = messages.as_array().map_or(0, |l| {
        l.iter().filter(|m| m["role"] == "assistant").count() as u32
    });
    if cfg.schema_fault_turns > 0 && turns >= cfg.schema_fault_turns {
        return None;
    }
    let draw = unit(&[
        &cfg.seed.to_le_bytes(),
        model.as_bytes(),
        messages.to_string().as_bytes(),
    ]);
    let rates = [
        (cfg.schema_enum_rate, SchemaFault::Enum),
        (cfg.schema_prose_rate, SchemaFault::Prose),
        (cfg.schema_truncated_rate, SchemaFault::Truncated),
    ];
    let mut edge = 0.0;
    for (rate, fault) in rates {
        edge += rate;
        if draw < edge {
            return Some(fault);
        }
    }
    None
}

/// The reply to a structured request: (content, completion tokens, finish reason).
pub(crate) fn answer(
    cfg: &MockConfig,
    model: &str,
    messages: &Value,
    schema: &Value,
    max_tokens: Option<u64>,
) -> (String, u64, &'static str) {
    let text = first_user_text(messages);
    let mut value = value_for(schema, model, &text, "");
    let fault = fault_for(cfg, model, messages);
    if fault == Some(SchemaFault::Enum) {
        break_enum(schema, &mut value);
    }
    let content = match fault {
        Some(SchemaFault::Prose) => format!(
            "Sure! Here is my analysis: {}",
            text.chars().take(60).collect::<String>()
        ),
        _ => value.to_string(),
    };
    let tokens = |s: &str| (s.len() as u64).div_ceil(4).max(1);
    let (content, finish) = match (fault, max_tokens) {
        (Some(SchemaFault::Truncated), _) => (cut(&content, content.len() / 2), "length"),
        (_, Some(m)) if m < tokens(&content) => (cut(&content, m as usize * 4), "length"),
        _ => (content, "stop"),
    };
    let n = tokens(&content);
    (content, n, finish)
}

/// `s`'s first `bytes` bytes (at a character boundary).
fn cut(s: &str, bytes: usize) -> String {
    let mut end = bytes.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Puts a value outside the first enum property (or drops the first required property).
fn break_enum(schema: &Value, value: &mut Value) {
    let Some(obj) = value.as_object_mut() else {
        *value = json!("not an object");
        return;
    };
    let props = schema.get("properties").and_then(Value::as_object);
    let with_enum = props.and_then(|p| p.iter().find(|(_, s)| s.get("enum").is_some()));
    if let Some((name, _)) = with_enum {
        obj.insert(name.clone(), json!("not-in-the-enum"));
    } else if let Some(first) = schema
        .get("required")
        .and_then(|r| r.get(0))
        .and_then(Value::as_str)
    {
        obj.remove(first);
    } else {
        obj.insert("\u{0}".into(), Value::Null);
    }
}

/// A deterministic value that validates against `schema` (the subset structured outputs use:
/// type, enum, const, properties, items, min/max, anyOf/oneOf).
fn value_for(schema: &Value, model: &str, text: &str, path: &str) -> Value {
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(list) = schema
        .get("enum")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
    {
        let labels = list.iter().any(|v| LABELS.iter().any(|l| v == l));
        if labels {
            let label = label_for(model, text, text);
            if let Some(v) = list.iter().find(|v| *v == label) {
                return v.clone();
            }
        }
        return list[pick(model, text, path, list.len() as u64) as usize].clone();
    }
    if let Some(branch) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(|b| b.get(0))
    {
        return value_for(branch, model, text, path);
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(l)) => l
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    match ty {
        "object" => {
            let mut out = Map::new();
            for (name, s) in schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                out.insert(
                    name.clone(),
                    value_for(s, model, text, &format!("{path}/{name}")),
                );
            }
            Value::Object(out)
        }
        "array" => {
            let min = num("minItems").unwrap_or(1.0).max(0.0) as u64;
            let max = num("maxItems").map_or(min.max(2), |m| m as u64).max(min);
            let n = min + pick(model, text, path, max - min + 1);
            let items = schema
                .get("items")
                .cloned()
                .unwrap_or(json!({"type": "string"}));
            let words = words(text);
            (0..n)
                .map(
                    |i| match (items.get("type").and_then(Value::as_str), items.get("enum")) {
                        (Some("string"), None) if !words.is_empty() => {
                            json!(words[(pick(model, text, path, 97) + i) as usize % words.len()])
                        }
                        _ => value_for(&items, model, text, &format!("{path}/{i}")),
                    },
                )
                .collect::<Vec<_>>()
                .into()
        }
        "boolean" => Value::Bool(pick(model, text, path, 2) == 1),
        "integer" => {
            let lo = num("minimum").unwrap_or(0.0).ceil() as i64;
            let hi = num("maximum").map_or(lo + 10, |m| m.floor() as i64).max(lo);
            json!(lo + pick(model, text, path, (hi - lo + 1) as u64) as i64)
        }
        "number" => {
            let lo = num("minimum").unwrap_or(0.0);
            let hi = num("maximum").unwrap_or(lo + 1.0).max(lo);
            let step = pick(model, text, path, 101) as f64 / 100.0;
            json!(((lo + (hi - lo) * step) * 100.0).round() / 100.0)
        }
        "null" => Value::Null,
        _ => {
            let max = num("maxLength").map_or(80, |m| m as usize);
            let s: String = text.chars().take(max.min(80)).collect();
            let min = num("minLength").unwrap_or(0.0) as usize;
            let pad = min.saturating_sub(s.chars().count());
            json!(format!("{s}{}", "x".repeat(pad)))
        }
    }
}

/// The prompt's words of four letters or more, lowercased (topic candidates).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 4)
        .map(str::to_lowercase)
        .collect()
}

/// A hash of (model, text, path) into `0..n`.
fn pick(model: &str, text: &str, path: &str, n: u64) -> u64 {
    let draw = unit(&[model.as_bytes(), text.as_bytes(), path.as_bytes()]);
    ((draw * n as f64) as u64).min(n.saturating_sub(1))
}

/// A uniform draw in `0..1` from the hash of `parts`.
fn unit(parts: &[&[u8]]) -> f64 {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.finalize().as_bytes()[..8]);
    (u64::from_le_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// The text of the first user message (the row's prompt: re-asks add later ones).
fn first_user_text(messages: &Value) -> String {
    messages
        .as_array()
        .and_then(|l| l.iter().find(|m| m["role"] == "user"))
        .map_or_else(String::new, super::chat::content_text)
}

#[cfg(test)]
mod tests;
