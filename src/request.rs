//! Request bodies: the rendered messages plus the job's fields, one body per (row, model).
//!
//! The fields that are the same for every row (model, max_tokens, temperature, extra fields,
//! `usage`) are serialized once per model; a row adds only its messages.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::input::{Row, RowBody};
use crate::job::RequestSpec;

/// Builds request bodies for a job.
pub struct BodyBuilder {
    spec: RequestSpec,
    tails: Vec<(String, String)>,
}

impl BodyBuilder {
    /// Prepares the per-model parts of `spec`.
    pub fn new(spec: &RequestSpec) -> BodyBuilder {
        let tails = spec
            .models
            .iter()
            .map(|m| (m.clone(), tail(spec, m)))
            .collect();
        BodyBuilder {
            spec: spec.clone(),
            tails,
        }
    }

    /// The models a row is sent to: the job's models, or a batch line's own `body.model`.
    pub fn models_for<'a>(&'a self, row: &'a Row) -> Vec<&'a str> {
        if !self.spec.models.is_empty() {
            return self.spec.models.iter().map(String::as_str).collect();
        }
        match &row.body {
            RowBody::Batch(body) => body
                .get("model")
                .and_then(Value::as_str)
                .map(|m| self.spec.slug(m))
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The JSON body for `row` sent to `model`, with `messages` already rendered.
    pub fn body(&self, row: &Row, model: &str, messages: &[Value]) -> Bytes {
        if let RowBody::Batch(body) = &row.body {
            return batch_body(body, model, &self.spec);
        }
        let msgs = serde_json::to_string(messages).unwrap_or_else(|_| "[]".into());
        let tail = match self.tails.iter().find(|(m, _)| m == model) {
            Some((_, t)) => t.clone(),
            None => tail(&self.spec, model),
        };
        let mut out = String::with_capacity(msgs.len() + tail.len() + 16);
        out.push_str("{\"messages\":");
        out.push_str(&msgs);
        out.push(',');
        out.push_str(&tail);
        Bytes::from(out)
    }
}

/// The most completion tokens a request for `row` may ask for, as [`BodyBuilder`] writes its
/// body: a batch line's own `max_tokens` (else the job's), or `max_completion_tokens` (the
/// line's, else the job's extra field). When both are set the larger is taken, since a
/// provider may honour either; `None` when neither is (the model's own cap applies).
pub fn completion_cap(row: &Row, spec: &RequestSpec) -> Option<u64> {
    let own = |key: &str| match &row.body {
        RowBody::Batch(b) => b.get(key).and_then(Value::as_u64),
        _ => None,
    };
    let max_tokens = own("max_tokens").or(spec.max_tokens);
    let max_completion = own("max_completion_tokens").or_else(|| {
        spec.extra
            .get("max_completion_tokens")
            .and_then(Value::as_u64)
    });
    match (max_tokens, max_completion) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// `"model":..,"max_tokens":..,...,"usage":{"include":true}}` for one model.
fn tail(spec: &RequestSpec, model: &str) -> String {
    let mut m = Map::new();
    m.insert("model".into(), Value::String(model.into()));
    if let Some(n) = spec.max_tokens {
        m.insert("max_tokens".into(), n.into());
    }
    if let Some(t) = spec.temperature {
        m.insert("temperature".into(), t.into());
    }
    for (k, v) in &spec.extra {
        m.insert(k.clone(), v.clone());
    }
    m.entry("usage")
        .or_insert_with(|| serde_json::json!({"include": true}));
    let s = serde_json::to_string(&Value::Object(m)).unwrap_or_else(|_| "{}".into());
    // Drop the leading '{': the caller writes `{"messages":..,` before it.
    s[1..].to_string()
}

/// An OpenAI Batch line's body: used as it is, `model` overridden when the job names models,
/// the job's `max_tokens`/`temperature`/extra fields added where the line has none.
fn batch_body(body: &Map<String, Value>, model: &str, spec: &RequestSpec) -> Bytes {
    let mut b = body.clone();
    b.insert("model".into(), Value::String(model.into()));
    if let Some(n) = spec.max_tokens {
        b.entry("max_tokens").or_insert(n.into());
    }
    if let Some(t) = spec.temperature {
        b.entry("temperature").or_insert(t.into());
    }
    for (k, v) in &spec.extra {
        b.entry(k.clone()).or_insert_with(|| v.clone());
    }
    b.remove("stream");
    b.entry("usage")
        .or_insert_with(|| serde_json::json!({"include": true}));
    Bytes::from(serde_json::to_vec(&Value::Object(b)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(models: &[&str]) -> RequestSpec {
        RequestSpec {
            models: models.iter().map(|s| s.to_string()).collect(),
            system: None,
            prompt: None,
            max_tokens: Some(4),
            temperature: Some(0.0),
            extra: json!({"seed": 7, "provider": {"sort": "price"}})
                .as_object()
                .unwrap()
                .clone(),
            aliases: Vec::new(),
        }
    }

    fn row(body: RowBody) -> Row {
        Row {
            id: "1".into(),
            line: 2,
            index: 0,
            vars: Map::new(),
            body,
            raw_numbers: Vec::new(),
        }
    }

    #[test]
    fn body_has_every_field() {
        let b = BodyBuilder::new(&spec(&["a/b"]));
        let msgs = vec![json!({"role": "user", "content": "hi"})];
        let v: Value = serde_json::from_slice(&b.body(&row(RowBody::Vars), "a/b", &msgs)).unwrap();
        assert_eq!(
            v,
            json!({"messages": msgs, "model": "a/b", "max_tokens": 4, "temperature": 0.0, "seed": 7,
                   "provider": {"sort": "price"}, "usage": {"include": true}})
        );
    }

    #[test]
    fn caps_follow_the_body() {
        let batch = |v: Value| row(RowBody::Batch(v.as_object().cloned().unwrap_or_default()));
        let plain = row(RowBody::Vars);
        let mut s = spec(&["a/b"]);
        assert_eq!(completion_cap(&plain, &s), Some(4));
        assert_eq!(
            completion_cap(&batch(json!({"max_tokens": 99})), &s),
            Some(99)
        );
        s.max_tokens = None;
        assert_eq!(completion_cap(&plain, &s), None);
        let both = batch(json!({"max_tokens": 99, "max_completion_tokens": 40}));
        assert_eq!(completion_cap(&both, &s), Some(99));
        let only = batch(json!({"max_completion_tokens": 40}));
        assert_eq!(completion_cap(&only, &s), Some(40));
    }

    #[test]
    fn batch_lines_keep_their_body() {
        let body = json!({"model": "x/y", "messages": [{"role": "user", "content": "q"}], "max_tokens": 9});
        let r = row(RowBody::Batch(body.as_object().unwrap().clone()));
        let b = BodyBuilder::new(&spec(&[]));
        assert_eq!(b.models_for(&r), vec!["x/y"]);
        let v: Value = serde_json::from_slice(&b.body(&r, "x/y", &[])).unwrap();
        assert_eq!(v["max_tokens"], 9);
        assert_eq!(v["seed"], 7);
        assert_eq!(v["usage"]["include"], true);
    }
}
