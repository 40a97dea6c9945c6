//! Prompt rendering: the job's `system` and `prompt` minijinja templates, filled from a row.
//!
//! Templates are compiled once; a [`Template`] is `Send + Sync` and cheap to share. Rendering is
//! strict: a variable that the row lacks, or a null one, is an error naming it. There is no
//! HTML escaping. `row` is the whole row (`{{ row["Product Name"] }}` for a column whose name
//! is not an identifier), unless a column is named `row`. Numbers render as written: CSV cells are text; a JSONL number keeps its text
//! (`1.50`, `2e3`: see `Row::raw_numbers`); a computed one prints in its shortest form.

use minijinja::value::Value as JValue;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};
use serde_json::{Map, Value, json};

use crate::input::{Row, RowBody};

const SYSTEM: &str = "system";
const PROMPT: &str = "prompt";
/// The variable holding the whole row.
pub const ROW: &str = "row";
/// The hidden context variable mapping a number's shortest text to its text as written.
const RAW_NUMBERS: &str = "__orbatch_numbers_as_written";
/// The detail of the error the formatter raises when a null value would be printed.
const NULL_DETAIL: &str = "a null value cannot be rendered";
/// The work one render may do (minijinja's fuel): about one unit per instruction and per 64
/// bytes of data, so about 2 million steps or 128 MB. A template whose loops never end (or
/// multiply) fails with an error instead of taking the machine's memory and time.
pub const RENDER_FUEL: u64 = 2_000_000;

/// The compiled `system` and `prompt` templates of a job.
#[derive(Debug)]
pub struct Template {
    env: Environment<'static>,
    has_system: bool,
    has_prompt: bool,
    /// Top-level variables each template uses, in sorted order, without duplicates.
    system_vars: Vec<String>,
    prompt_vars: Vec<String>,
}

impl Template {
    /// Compiles the templates (`{{ column }}` syntax). With no `prompt`, each row's `prompt`
    /// variable is the user message. A syntax error names the template and its line.
    pub fn new(system: Option<&str>, prompt: Option<&str>) -> Result<Template, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_debug(false);
        env.set_formatter(format_value);
        env.set_fuel(Some(RENDER_FUEL));
        let globals: Vec<String> = env.globals().map(|(name, _)| name.to_owned()).collect();
        let mut compile =
            |name: &'static str, source: Option<&str>| -> Result<Vec<String>, String> {
                let Some(source) = source else {
                    return Ok(Vec::new());
                };
                env.add_template_owned(name, source.to_owned())
                    .map_err(|e| format!("{name} template: {e}"))?;
                let tmpl = env
                    .get_template(name)
                    .map_err(|e| format!("{name} template: {e}"))?;
                let mut vars: Vec<String> = tmpl
                    .undeclared_variables(false)
                    .into_iter()
                    .filter(|v| !globals.contains(v))
                    .collect();
                vars.sort();
                Ok(vars)
            };
        let system_vars = compile(SYSTEM, system)?;
        let prompt_vars = compile(PROMPT, prompt)?;
        Ok(Template {
            env,
            has_system: system.is_some(),
            has_prompt: prompt.is_some(),
            system_vars,
            prompt_vars,
        })
    }

    /// The chat messages for a row. Template rows (`RowBody::Vars`): `[system?, user]`.
    /// `RowBody::Messages`: the row's messages, with the system message put first when the job
    /// has one and the row has none. `RowBody::Batch`: the body's messages as they are.
    pub fn messages(&self, row: &Row) -> Result<Vec<Value>, String> {
        match &row.body {
            RowBody::Vars => {
                let mut out = Vec::with_capacity(2);
                if let Some(system) = self.render_system(row)? {
                    out.push(system);
                }
                let user = if self.has_prompt {
                    self.render(PROMPT, &self.prompt_vars, row)?
                } else {
                    prompt_var(&row.vars)?
                };
                out.push(json!({"role": "user", "content": user}));
                Ok(out)
            }
            RowBody::Messages(messages) => {
                let has_system = messages.iter().any(|m| m["role"] == "system");
                let mut out = Vec::with_capacity(messages.len() + 1);
                if !has_system {
                    out.extend(self.render_system(row)?);
                }
                out.extend(messages.iter().cloned());
                Ok(out)
            }
            RowBody::Batch(body) => match body.get("messages").and_then(Value::as_array) {
                Some(messages) => Ok(messages.clone()),
                None => Err("batch line: `body` has no `messages` array".into()),
            },
        }
    }

    /// The variables the templates use (sorted, system's first); `prompt` when the rows bring
    /// their own prompt.
    pub fn variables(&self) -> Vec<String> {
        let mut out = self.system_vars.clone();
        let own_prompt = [PROMPT.to_owned()];
        let prompt = if self.has_prompt {
            &self.prompt_vars[..]
        } else {
            &own_prompt[..]
        };
        for v in prompt {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        out
    }

    /// The first variable a template row (`RowBody::Vars`) lacks, when its rendering failed
    /// for that reason; `None` for other rows and other errors.
    pub fn missing_variable(&self, row: &Row) -> Option<&str> {
        if row.body != RowBody::Vars {
            return None;
        }
        let prompt: &[String] = if self.has_prompt {
            &self.prompt_vars
        } else {
            &[]
        };
        self.system_vars
            .iter()
            .chain(prompt)
            .map(String::as_str)
            .find(|v| *v != ROW && !row.vars.contains_key(*v))
    }

    fn render_system(&self, row: &Row) -> Result<Option<Value>, String> {
        if !self.has_system {
            return Ok(None);
        }
        let text = self.render(SYSTEM, &self.system_vars, row)?;
        Ok(Some(json!({"role": "system", "content": text})))
    }

    /// Renders one template with a context holding only the variables it uses (plus, when a
    /// used number was written in a longer form than its shortest one, that form).
    fn render(&self, name: &str, used: &[String], row: &Row) -> Result<String, String> {
        let vars = &row.vars;
        let mut pairs: Vec<(&str, JValue)> = used
            .iter()
            .filter_map(|k| vars.get(k).map(|v| (k.as_str(), to_jinja(v))))
            .collect();
        if used.iter().any(|v| v == ROW) && !vars.contains_key(ROW) {
            pairs.push((ROW, whole_row(vars)));
        }
        let written: Vec<(String, &str)> = row
            .raw_numbers
            .iter()
            .filter(|(k, _)| used.contains(k))
            .filter_map(|(k, text)| Some((vars.get(k)?.to_string(), text.as_str())))
            .collect();
        if !written.is_empty() {
            pairs.push((
                RAW_NUMBERS,
                JValue::from_pairs(written.iter().map(|(k, v)| (k.as_str(), *v))),
            ));
        }
        let ctx = JValue::from_pairs(pairs);
        let tmpl = self
            .env
            .get_template(name)
            .map_err(|e| format!("{name} template: {e}"))?;
        tmpl.render(ctx).map_err(|e| explain(name, &e, used, vars))
    }
}

/// The row's own `prompt` variable as the user message (non-strings as JSON text).
fn prompt_var(vars: &Map<String, Value>) -> Result<String, String> {
    match vars.get("prompt") {
        None => Err("no prompt: set request.prompt or give each row a `prompt` field".into()),
        Some(Value::Null) => Err("the `prompt` field is null".into()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
    }
}

/// A rendering error in words: which variable is missing or null, or the work limit, when
/// that is the cause.
fn explain(name: &str, err: &Error, used: &[String], vars: &Map<String, Value>) -> String {
    if err.kind() == ErrorKind::OutOfFuel {
        return format!(
            "{name} template: rendering this row passed the limit of {RENDER_FUEL} steps \
             (about {} MB of output): a loop that multiplies, or a prompt far too large",
            RENDER_FUEL * 64 / 1_000_000
        );
    }
    if err.kind() == ErrorKind::UndefinedError
        && let Some(missing) = used
            .iter()
            .find(|v| *v != ROW && !vars.contains_key(v.as_str()))
    {
        let columns: Vec<&str> = vars.keys().map(String::as_str).collect();
        return format!(
            "template variable '{missing}' is missing from this row (columns: {}; \
             `{{{{ row[\"a column\"] }}}}` reads any column by its name)",
            columns.join(", ")
        );
    }
    if err.detail() == Some(NULL_DETAIL)
        && let Some(null) = used
            .iter()
            .find(|v| vars.get(v.as_str()) == Some(&Value::Null))
    {
        return format!("template variable '{null}' is null");
    }
    format!("{name} template: {err}")
}

/// Prints values without escaping; refuses nulls; prints non-integer numbers as JSON does.
fn format_value(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &JValue,
) -> Result<(), Error> {
    if value.is_none() {
        return Err(Error::new(ErrorKind::InvalidOperation, NULL_DETAIL));
    }
    if value.is_number()
        && !value.is_integer()
        && let Ok(f) = f64::try_from(value.clone())
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        let shortest = n.to_string();
        // A number the row wrote as `1.50` prints as `1.50` (its value, not its variable,
        // is known here: a computed value equal to it prints the same way).
        let written = state
            .lookup(RAW_NUMBERS)
            .and_then(|m| m.get_attr(&shortest).ok())
            .filter(|v| !v.is_undefined() && !v.is_none())
            .map(|v| v.to_string());
        return out
            .write_str(written.as_deref().unwrap_or(&shortest))
            .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()));
    }
    minijinja::escape_formatter(out, state, value)
}

/// The whole row as the template value `row`.
fn whole_row(vars: &Map<String, Value>) -> JValue {
    JValue::from_pairs(vars.iter().map(|(k, v)| (k.as_str(), to_jinja(v))))
}

/// A JSON value as a template value (objects and arrays stay navigable: `{{ a.b }}`).
pub(crate) fn to_jinja(value: &Value) -> JValue {
    match value {
        Value::Null => JValue::from(()),
        Value::Bool(b) => JValue::from(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                JValue::from(i)
            } else if let Some(u) = n.as_u64() {
                JValue::from(u)
            } else {
                JValue::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => JValue::from(s.as_str()),
        Value::Array(items) => items.iter().map(to_jinja).collect(),
        Value::Object(map) => {
            JValue::from_pairs(map.iter().map(|(k, v)| (k.as_str(), to_jinja(v))))
        }
    }
}

#[cfg(test)]
mod tests;
