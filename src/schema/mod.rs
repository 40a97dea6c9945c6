//! Structured output: a job's JSON Schema (draft 2020-12), compiled once per job, and the
//! check of each reply against it (parse, with a surrounding ```json fence accepted, then
//! validate). A reply that fails says why in words a model can act on: the re-ask sends them.

mod order;

pub use order::property_order;

use serde_json::Value;

/// The most validation errors named in one message (the rest are counted).
const MAX_ERRORS: usize = 5;

/// What an agreement statistic can be computed over: the kind of a top-level property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// The property's schema has an `enum`.
    Enum,
    /// `type: boolean`.
    Boolean,
    /// `type: string` without an `enum`.
    String,
    /// Anything else (numbers, arrays, objects): a results.csv column, no agreement.
    Other,
}

impl FieldKind {
    /// The name written to summary.json.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Enum => "enum",
            FieldKind::Boolean => "boolean",
            FieldKind::String => "string",
            FieldKind::Other => "other",
        }
    }

    /// Whether agreement and kappa are computed for it.
    pub fn rated(self) -> bool {
        self != FieldKind::Other
    }
}

/// A top-level property of the schema, in the schema's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The property's name (`output.<name>` in results.csv).
    pub name: String,
    /// Its kind.
    pub kind: FieldKind,
}

/// A compiled schema.
pub struct Schema {
    validator: jsonschema::Validator,
    properties: Vec<Property>,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("properties", &self.properties)
            .finish_non_exhaustive()
    }
}

/// Why a reply does not count as structured output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// What is wrong, for the user (the line's error) and the model (the re-ask).
    pub message: String,
    /// The reply was cut at `max_tokens` (`finish_reason: length`).
    pub cut: bool,
}

impl Schema {
    /// Compiles `schema` as draft 2020-12; `order` lists the top-level property names in the
    /// order they are written (JSON objects here do not keep it). An invalid schema is an
    /// error naming `source` (the file, or the job's `[output] schema`).
    pub fn compile(schema: &Value, order: &[String], source: &str) -> Result<Schema, String> {
        let validator = jsonschema::draft202012::options()
            .build(schema)
            .map_err(|e| format!("{source}: not a valid JSON Schema (draft 2020-12): {e}"))?;
        let props = schema.get("properties").and_then(Value::as_object);
        let mut names: Vec<String> = order
            .iter()
            .filter(|n| props.is_some_and(|p| p.contains_key(*n)))
            .cloned()
            .collect();
        for name in props.into_iter().flat_map(|p| p.keys()) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        let properties = names
            .into_iter()
            .map(|name| {
                let kind = props
                    .and_then(|p| p.get(&name))
                    .map_or(FieldKind::Other, kind_of);
                Property { name, kind }
            })
            .collect();
        Ok(Schema {
            validator,
            properties,
        })
    }

    /// The top-level properties, in the schema's order.
    pub fn properties(&self) -> &[Property] {
        &self.properties
    }

    /// Parses and validates a reply: its `content` (a ```json fence around it is accepted) and
    /// its `finish_reason` (`length`: cut at max_tokens, never valid).
    pub fn check(
        &self,
        content: Option<&str>,
        finish_reason: Option<&str>,
    ) -> Result<Value, Invalid> {
        let cut = finish_reason == Some("length");
        let text = unfence(content.unwrap_or(""));
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) if cut => {
                return Err(Invalid {
                    message: format!(
                        "the reply was cut at max_tokens (finish_reason: length) before the JSON ended ({e}): raise max_tokens"
                    ),
                    cut: true,
                });
            }
            Err(e) => {
                return Err(Invalid {
                    message: format!("the reply is not JSON: {e}"),
                    cut: false,
                });
            }
        };
        let errors = violations(&self.validator, &value);
        if !errors.is_empty() {
            let mut message = format!(
                "the reply does not validate against the schema: {}",
                errors[..errors.len().min(MAX_ERRORS)].join("; ")
            );
            if errors.len() > MAX_ERRORS {
                message.push_str(&format!(" (and {} more)", errors.len() - MAX_ERRORS));
            }
            return Err(Invalid { message, cut });
        }
        if cut {
            return Err(Invalid {
                message:
                    "the reply was cut at max_tokens (finish_reason: length): raise max_tokens"
                        .into(),
                cut: true,
            });
        }
        Ok(value)
    }
}

/// Every way `value` fails `validator`, each with its path (`/a/0: ...`) when not the root.
pub(crate) fn violations(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect()
}

/// The kind of a property's schema.
fn kind_of(schema: &Value) -> FieldKind {
    if schema.get("enum").is_some_and(Value::is_array) {
        return FieldKind::Enum;
    }
    let is = |t: &str| match schema.get("type") {
        Some(Value::String(s)) => s == t,
        Some(Value::Array(list)) => {
            list.iter().any(|x| x == t) && list.iter().all(|x| x == t || x == "null")
        }
        _ => false,
    };
    if is("boolean") {
        FieldKind::Boolean
    } else if is("string") {
        FieldKind::String
    } else {
        FieldKind::Other
    }
}

/// The text inside a surrounding ```json (or ```) fence, else the text trimmed.
pub fn unfence(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let Some(inner) = rest.strip_suffix("```") else {
        return t;
    };
    let inner = inner.trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    inner.trim()
}

/// A JSON value as a cell or a category: strings as they are, other values as JSON text.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
