//! `[output]`: structured output against a JSON Schema (a file relative to the job file, or an
//! inline table), and the flags `--schema FILE` and `--schema-retries N`.
//!
//! The schema is compiled when the job is resolved, so a schema that is not a valid JSON
//! Schema is a config error before anything is sent. What it changes in the request lives in
//! the request itself ([`apply`]): `response_format` and `provider.require_parameters` join
//! `request.extra`, or (`mode = "prompt"`) the schema joins the system prompt. So the body,
//! the response-cache key, the manifest (a resume with another schema is refused) and the
//! estimate all see it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{JobError, RequestSpec};
use crate::schema::{Schema, property_order};

/// How the schema reaches the model (`[output] mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaMode {
    /// `response_format: {type: "json_schema", ...}` (structured outputs).
    #[default]
    ResponseFormat,
    /// The schema is appended to the system message (endpoints without structured outputs).
    Prompt,
}

/// `[output]` as written in a job file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutputFile {
    schema: Option<SchemaSource>,
    name: Option<String>,
    strict: Option<bool>,
    schema_retries: Option<u32>,
    mode: Option<SchemaMode>,
    require_parameters: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SchemaSource {
    File(PathBuf),
    Inline(Map<String, Value>),
}

/// `--schema FILE` and `--schema-retries N`.
#[derive(Debug, Clone, Default)]
pub struct OutputOverrides {
    /// `--schema FILE` (relative to the current directory).
    pub schema: Option<PathBuf>,
    /// `--schema-retries N`.
    pub schema_retries: Option<u32>,
}

/// A job's structured output, resolved.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    /// The schema, as JSON.
    pub schema: Arc<Value>,
    /// The compiled schema (validator and top-level properties).
    pub compiled: Arc<Schema>,
    /// `json_schema.name`.
    pub name: String,
    /// `json_schema.strict`.
    pub strict: bool,
    /// Re-asks after a reply that does not validate.
    pub schema_retries: u32,
    /// How the schema reaches the model.
    pub mode: SchemaMode,
    /// `provider.require_parameters`.
    pub require_parameters: bool,
}

/// Resolves `[output]` and the flags (`None`: no structured output). `base_dir` is the job
/// file's directory, `job_text` its text (for the written order of an inline schema).
pub(super) fn resolve(
    file: Option<OutputFile>,
    flags: OutputOverrides,
    base_dir: &Path,
    job_text: Option<&str>,
    job_name: &str,
) -> Result<Option<OutputSpec>, JobError> {
    let file = match (file, &flags.schema) {
        (None, None) => {
            if flags.schema_retries.is_some() {
                return Err(JobError(
                    "--schema-retries needs a schema ([output] schema or --schema FILE)".into(),
                ));
            }
            return Ok(None);
        }
        (f, _) => f.unwrap_or_default(),
    };
    let (schema, order, source) = match (flags.schema, file.schema) {
        (Some(path), _) => read_schema(&path)?,
        (None, Some(SchemaSource::File(p))) => {
            read_schema(&if p.is_relative() { base_dir.join(p) } else { p })?
        }
        (None, Some(SchemaSource::Inline(table))) => {
            let order = job_text.map_or_else(Vec::new, |t| property_order(t, false));
            (Value::Object(table), order, "[output] schema".to_string())
        }
        (None, None) => {
            return Err(JobError(
                "[output] needs `schema` (a JSON Schema file or an inline table), or --schema FILE"
                    .into(),
            ));
        }
    };
    let compiled = Schema::compile(&schema, &order, &source).map_err(JobError)?;
    let name = file.name.unwrap_or_else(|| schema_name(job_name));
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(JobError(format!(
            "[output] name {name:?}: use 1 to 64 letters, digits, `_` or `-`"
        )));
    }
    Ok(Some(OutputSpec {
        schema: Arc::new(schema),
        compiled: Arc::new(compiled),
        name,
        strict: file.strict.unwrap_or(true),
        schema_retries: flags.schema_retries.or(file.schema_retries).unwrap_or(2),
        mode: file.mode.unwrap_or_default(),
        require_parameters: file.require_parameters.unwrap_or(true),
    }))
}

/// Reads a schema file: (schema, written property order, the file's name for messages).
fn read_schema(path: &Path) -> Result<(Value, Vec<String>, String), JobError> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| JobError(format!("{source}: cannot read the schema file: {e}")))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        JobError(format!(
            "{source}:{}: the schema file is not JSON: {e}",
            e.line()
        ))
    })?;
    Ok((value, property_order(&text, true), source))
}

/// The job name as a `json_schema.name`: other characters become `_`, at most 64.
fn schema_name(job: &str) -> String {
    let n: String = job
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' => c,
            _ => '_',
        })
        .take(64)
        .collect();
    if n.is_empty() { "output".into() } else { n }
}

/// Puts the structured output into the request: `response_format` and
/// `provider.require_parameters` (merged with any `extra.provider`), or in `prompt` mode the
/// schema after the system prompt.
pub(super) fn apply(spec: &OutputSpec, request: &mut RequestSpec) -> Result<(), JobError> {
    if request.extra.contains_key("response_format") {
        return Err(JobError(
            "request.extra.response_format and [output]: give the schema in [output] only".into(),
        ));
    }
    match spec.mode {
        SchemaMode::ResponseFormat => {
            request.extra.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": {
                    "name": spec.name, "strict": spec.strict, "schema": *spec.schema}}),
            );
        }
        SchemaMode::Prompt => {
            let text = format!(
                "Answer with only a JSON object that validates against this JSON Schema:\n{{% raw %}}{}{{% endraw %}}",
                spec.schema
            );
            request.system = Some(match request.system.take() {
                Some(s) if !s.is_empty() => format!("{s}\n\n{text}"),
                _ => text,
            });
        }
    }
    if spec.require_parameters {
        let provider = request
            .extra
            .entry("provider")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(p) = provider else {
            return Err(JobError(
                "request.extra.provider must be a table to add require_parameters".into(),
            ));
        };
        p.insert("require_parameters".into(), Value::Bool(true));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
