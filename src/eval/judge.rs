//! `judge` checks: an LLM grades an output against a rubric and answers `{score, reason}`
//! through a JSON schema.

use serde::{Deserialize, Serialize};

/// A judge check's grade on a line, and the hash of what it judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeRecord {
    /// blake3 of (judge model, rendered rubric): a re-score sends the judge again only when
    /// this changed.
    pub hash: String,
    /// The grade (0..1), `null` when the judge failed or never gave a valid reply.
    pub score: Option<f64>,
    /// The judge's reason, or why it gave no grade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The judge attempts this check has made on this line so far, across runs and scores
    /// (retries and re-asks included; 0 in lines written before it was recorded). The
    /// in-flight record numbers a judge's attempts from it: an attempt numbered above it
    /// is not accounted for by this line.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The JSON Schema a judge answers through.
pub fn reply_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "reason": {"type": "string"}
        },
        "required": ["score", "reason"],
        "additionalProperties": false
    })
}

/// The request body of a judge call: the rubric as the user message, answered through
/// [`reply_schema`].
pub fn request_body(model: &str, rubric: &str, max_tokens: u64) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": rubric}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "judge", "strict": true, "schema": reply_schema()}
        }
    })
}

/// The hash of a judge's inputs: its model and the rendered rubric (which holds the output it
/// judges).
pub fn inputs_hash(model: &str, rubric: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(model.as_bytes());
    h.update(&[0]);
    h.update(rubric.as_bytes());
    h.finalize().to_hex()[..32].to_string()
}

/// The grade of a judge's reply: `Ok((score, reason))` when it is JSON valid against
/// [`reply_schema`], else why not.
pub fn read_reply(content: &str, schema: &super::schema::Schema) -> Result<(f64, String), String> {
    let v = super::checks::parse_json(content)?;
    schema
        .check(&v)
        .map_err(|e| format!("the judge's reply does not validate: {e}"))?;
    let score = v["score"].as_f64().unwrap_or_default();
    Ok((score, v["reason"].as_str().unwrap_or_default().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_read_only_when_it_validates() {
        let schema = super::super::schema::Schema::compile(&reply_schema()).unwrap();
        assert_eq!(
            read_reply(r#"{"score": 0.5, "reason": "ok"}"#, &schema).unwrap(),
            (0.5, "ok".to_string())
        );
        assert!(read_reply(r#"{"score": 1.5, "reason": "x"}"#, &schema).is_err());
        assert!(read_reply(r#"{"score": 1}"#, &schema).is_err());
        assert!(read_reply("great answer", &schema).is_err());
        assert_ne!(inputs_hash("m", "a"), inputs_hash("m", "b"));
        assert_ne!(inputs_hash("m1", "a"), inputs_hash("m2", "a"));
    }
}
