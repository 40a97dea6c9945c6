//! The `[eval]` section and the `[[checks]]` of a job file, resolved into an [`EvalSpec`].
//!
//! Everything a check needs is read here (a `json_schema` file, relative to the job file);
//! [`crate::eval::Scorer::compile`] then compiles the templates, regexes and schemas, so a
//! check that cannot be evaluated is a config error naming the job file and the check before
//! anything is sent.

use std::path::Path;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::JobError;

/// `[eval]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EvalFile {
    expected: Option<String>,
    threshold: Option<f64>,
    min_pass_rate: Option<f64>,
}

/// One `[[checks]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckFile {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    value: Option<toml::Value>,
    values: Option<Vec<String>>,
    pattern: Option<String>,
    schema: Option<toml::Value>,
    tolerance: Option<f64>,
    ignore_case: Option<bool>,
    trim: Option<bool>,
    weight: Option<f64>,
    field: Option<String>,
    model: Option<String>,
    rubric: Option<String>,
}

/// The evaluation of a job: the reference answer, the pass threshold and the checks.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSpec {
    /// The job file (for messages).
    pub file: String,
    /// `[eval] expected`: the reference answer, a template over the row.
    pub expected: Option<String>,
    /// A result passes when its weighted score is at least this (default 1.0).
    pub threshold: f64,
    /// `run` and `score` exit 5 when a cell's pass rate is below it.
    pub min_pass_rate: Option<f64>,
    /// The checks, in the job file's order.
    pub checks: Vec<CheckSpec>,
}

/// One check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    /// Unique; a key of `scores`.
    pub name: String,
    /// What it checks.
    pub kind: CheckKind,
    /// Its weight in `score` (0: recorded, not counted).
    pub weight: f64,
    /// Compare without case (equals, contains, not_contains, one_of).
    pub ignore_case: bool,
    /// Strip whitespace and a trailing period first.
    pub trim: bool,
    /// Check this property of `parsed` instead of `output`.
    pub field: Option<String>,
}

/// The type of a check and its parameters. Text parameters are templates over the row.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// The output equals `value`.
    Equals(String),
    /// The output contains `value`.
    Contains(String),
    /// The output does not contain `value`.
    NotContains(String),
    /// The output equals one of `values`.
    OneOf(Vec<String>),
    /// The output matches `pattern` (Rust regex).
    Regex(String),
    /// The output is JSON.
    JsonValid,
    /// The output is JSON valid against this schema.
    JsonSchema(Value),
    /// The first number of the output is within `tolerance` of `value`.
    Number {
        /// The expected number (a template).
        value: String,
        /// Absolute tolerance.
        tolerance: f64,
    },
    /// The row's `cost_usd` is at most this.
    MaxCostUsd(Decimal),
    /// The row's `latency_ms` is at most this.
    MaxLatencyMs(u64),
    /// An LLM grades the output.
    Judge {
        /// The judge model.
        model: String,
        /// The rubric template (`{{ output }}`, `{{ expected }}`, the row's columns).
        rubric: String,
    },
}

impl CheckKind {
    /// The type's name as written in a job file.
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::Equals(_) => "equals",
            CheckKind::Contains(_) => "contains",
            CheckKind::NotContains(_) => "not_contains",
            CheckKind::OneOf(_) => "one_of",
            CheckKind::Regex(_) => "regex",
            CheckKind::JsonValid => "json_valid",
            CheckKind::JsonSchema(_) => "json_schema",
            CheckKind::Number { .. } => "number",
            CheckKind::MaxCostUsd(_) => "max_cost_usd",
            CheckKind::MaxLatencyMs(_) => "max_latency_ms",
            CheckKind::Judge { .. } => "judge",
        }
    }
}

/// Resolves `[eval]` and `[[checks]]` of the job file `file` (relative paths from `base`).
/// `None` when the job has neither.
pub(super) fn resolve(
    file: Option<&Path>,
    base: &Path,
    eval: Option<EvalFile>,
    checks: Option<Vec<CheckFile>>,
) -> Result<Option<EvalSpec>, JobError> {
    if eval.is_none() && checks.is_none() {
        return Ok(None);
    }
    let file = file.map_or("the job".to_string(), |p| p.display().to_string());
    let eval = eval.unwrap_or_default();
    let err = |what: String| JobError(format!("{file}: {what}"));
    let threshold = eval.threshold.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&threshold) {
        return Err(err(format!(
            "[eval] threshold must be within 0..1, got {threshold}"
        )));
    }
    if let Some(r) = eval.min_pass_rate
        && !(0.0..=1.0).contains(&r)
    {
        return Err(err(format!(
            "[eval] min_pass_rate must be within 0..1, got {r}"
        )));
    }
    let mut out = Vec::new();
    for c in checks.unwrap_or_default() {
        let check = resolve_check(c, base, eval.expected.as_deref())
            .map_err(|(name, why)| err(format!("check \"{name}\": {why}")))?;
        if out.iter().any(|o: &CheckSpec| o.name == check.name) {
            return Err(err(format!("check \"{}\" is defined twice", check.name)));
        }
        out.push(check);
    }
    if out.is_empty() {
        return Err(err(
            "[eval] needs at least one [[checks]] entry to score results".into(),
        ));
    }
    Ok(Some(EvalSpec {
        file,
        expected: eval.expected,
        threshold,
        min_pass_rate: eval.min_pass_rate,
        checks: out,
    }))
}

fn resolve_check(
    c: CheckFile,
    base: &Path,
    expected: Option<&str>,
) -> Result<CheckSpec, (String, String)> {
    let name = c.name.clone();
    let fail = |why: String| (name.clone(), why);
    if name.is_empty() {
        return Err(fail("a check needs a non-empty name".into()));
    }
    let text_value = || -> Result<String, (String, String)> {
        match &c.value {
            Some(toml::Value::String(s)) => Ok(s.clone()),
            Some(toml::Value::Integer(i)) => Ok(i.to_string()),
            Some(toml::Value::Float(f)) => Ok(f.to_string()),
            Some(other) => Err(fail(format!("`value` must be text, got {other}"))),
            None => expected.map(str::to_owned).ok_or_else(|| {
                fail(format!(
                    "type \"{}\" needs `value` (or [eval] expected)",
                    c.kind
                ))
            }),
        }
    };
    let limit = || -> Result<String, (String, String)> {
        match &c.value {
            Some(toml::Value::Integer(i)) => Ok(i.to_string()),
            Some(toml::Value::Float(f)) => Ok(f.to_string()),
            Some(toml::Value::String(s)) => Ok(s.clone()),
            _ => Err(fail(format!("type \"{}\" needs a number `value`", c.kind))),
        }
    };
    let kind = match c.kind.as_str() {
        "equals" => CheckKind::Equals(text_value()?),
        "contains" => CheckKind::Contains(text_value()?),
        "not_contains" => CheckKind::NotContains(text_value()?),
        "one_of" => match &c.values {
            Some(v) if !v.is_empty() => CheckKind::OneOf(v.clone()),
            _ => return Err(fail("type \"one_of\" needs `values = [..]`".into())),
        },
        "regex" => match &c.pattern {
            Some(p) => CheckKind::Regex(p.clone()),
            None => return Err(fail("type \"regex\" needs `pattern`".into())),
        },
        "json_valid" => CheckKind::JsonValid,
        "json_schema" => CheckKind::JsonSchema(load_schema(c.schema.as_ref(), base).map_err(fail)?),
        "number" => {
            let tolerance = c.tolerance.unwrap_or(0.0);
            if !(tolerance >= 0.0 && tolerance.is_finite()) {
                return Err(fail(format!(
                    "`tolerance` must be a non-negative number, got {tolerance}"
                )));
            }
            CheckKind::Number {
                value: text_value()?,
                tolerance,
            }
        }
        "max_cost_usd" => {
            let v = limit()?;
            CheckKind::MaxCostUsd(
                crate::money::parse(&v)
                    .ok_or_else(|| fail(format!("`value` is not an amount: {v}")))?,
            )
        }
        "max_latency_ms" => {
            let v = limit()?;
            CheckKind::MaxLatencyMs(
                v.parse()
                    .map_err(|_| fail(format!("`value` is not a whole number of ms: {v}")))?,
            )
        }
        "judge" => match (&c.model, &c.rubric) {
            (Some(m), Some(r)) if !m.is_empty() => CheckKind::Judge {
                model: m.clone(),
                rubric: r.clone(),
            },
            _ => return Err(fail("type \"judge\" needs `model` and `rubric`".into())),
        },
        other => {
            return Err(fail(format!(
                "unknown type \"{other}\" (equals, contains, not_contains, one_of, regex, json_valid, json_schema, number, max_cost_usd, max_latency_ms, judge)"
            )));
        }
    };
    let weight = c.weight.unwrap_or(1.0);
    if !(weight >= 0.0 && weight.is_finite()) {
        return Err(fail(format!(
            "`weight` must be a non-negative number, got {weight}"
        )));
    }
    Ok(CheckSpec {
        name,
        kind,
        weight,
        ignore_case: c.ignore_case.unwrap_or(true),
        trim: c.trim.unwrap_or(true),
        field: c.field,
    })
}

/// A `schema`: a file (relative to the job file) or an inline table.
fn load_schema(schema: Option<&toml::Value>, base: &Path) -> Result<Value, String> {
    match schema {
        Some(toml::Value::String(path)) => {
            let p = Path::new(path);
            let p = if p.is_relative() {
                base.join(p)
            } else {
                p.to_path_buf()
            };
            let text = std::fs::read_to_string(&p)
                .map_err(|e| format!("cannot read schema {}: {e}", p.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| format!("schema {} is not JSON: {e}", p.display()))
        }
        Some(table @ toml::Value::Table(_)) => {
            serde_json::to_value(table).map_err(|e| format!("`schema`: {e}"))
        }
        _ => Err("type \"json_schema\" needs `schema` (a file or an inline table)".into()),
    }
}
