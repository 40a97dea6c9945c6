//! JSON Schema validation (draft 2020-12, the `jsonschema` crate) for `json_schema` checks and
//! the judge's `{score, reason}` reply: a bare validator of a value (the job's `[output]`
//! schema, with its properties and the reply parsing, is [`crate::schema::Schema`]; both report
//! violations through [`crate::schema::violations`]). Each schema is compiled once per job.

use serde_json::Value;

/// A compiled JSON Schema.
pub struct Schema(jsonschema::Validator);

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schema")
    }
}

impl Schema {
    /// Compiles `schema` (draft 2020-12); `Err` names what is wrong with it.
    pub fn compile(schema: &Value) -> Result<Schema, String> {
        jsonschema::draft202012::new(schema)
            .map(Schema)
            .map_err(|e| format!("invalid JSON Schema: {e}"))
    }

    /// `Ok` when `value` validates, else the first few errors, each with its path.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let mut errors = crate::schema::violations(&self.0, value);
        errors.truncate(3);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_schema_violation_is_named_and_a_bad_schema_refused() {
        let s = Schema::compile(&json!({
            "type": "object",
            "properties": {"score": {"type": "number", "minimum": 0, "maximum": 1}},
            "required": ["score"]
        }))
        .unwrap();
        assert!(s.check(&json!({"score": 0.5})).is_ok());
        let err = s.check(&json!({"score": 2})).unwrap_err();
        assert!(err.contains("/score"), "{err}");
        assert!(s.check(&json!({})).unwrap_err().contains("score"));
        assert!(Schema::compile(&json!({"type": 12})).is_err());
    }
}
