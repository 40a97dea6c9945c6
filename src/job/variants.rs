//! `[[variants]]`: prompt variants. Every row is sent for every variant x every model; each
//! variant's fields override `[request]`'s for its requests (its `extra` is merged over
//! `[request].extra`, key by key). A job without variants sends each row once per model, as
//! the variant `None`.
//!
//! ```toml
//! [[variants]]
//! name = "terse"                 # unique, [A-Za-z0-9_.-]+
//! prompt = "Label: {{ text }}"
//! max_tokens = 2
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use toml::Spanned;

use super::{JobError, RequestSpec};

/// Body fields a variant (like `[request].extra`) may not set inside `extra`.
pub const RESERVED_EXTRA: [&str; 5] = ["messages", "model", "stream", "max_tokens", "temperature"];

/// One `[[variants]]` table as written in the job file (spans for error lines).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VariantFile {
    name: Spanned<String>,
    system: Option<String>,
    prompt: Option<String>,
    max_tokens: Option<Spanned<u64>>,
    temperature: Option<f64>,
    extra: Option<Spanned<Map<String, Value>>>,
}

/// One prompt variant: its name and the `[request]` fields it overrides (`None`: inherited).
/// It is also what the manifest records of it, resolved over `[request]` (see
/// [`Variant::resolved`]), so that a resume can refuse a changed variant by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// Unique within the job, `[A-Za-z0-9_.-]+`.
    pub name: String,
    /// The system prompt template.
    pub system: Option<String>,
    /// The user prompt template.
    pub prompt: Option<String>,
    /// `max_tokens`.
    pub max_tokens: Option<u64>,
    /// `temperature`.
    pub temperature: Option<f64>,
    /// Body fields merged over `[request].extra` (after a resolve: the whole merged map).
    #[serde(default)]
    pub extra: Map<String, Value>,
}

impl Variant {
    /// The request `base` becomes for this variant: each field the variant sets replaces
    /// `base`'s, and its `extra` keys replace `base.extra`'s.
    pub fn apply(&self, base: &RequestSpec) -> RequestSpec {
        let mut spec = base.clone();
        if self.system.is_some() {
            spec.system.clone_from(&self.system);
        }
        if self.prompt.is_some() {
            spec.prompt.clone_from(&self.prompt);
        }
        spec.max_tokens = self.max_tokens.or(base.max_tokens);
        spec.temperature = self.temperature.or(base.temperature);
        for (k, v) in &self.extra {
            spec.extra.insert(k.clone(), v.clone());
        }
        spec
    }

    /// The variant as its requests are shaped: every field resolved over `base` (what the
    /// manifest records and a resume compares).
    pub fn resolved(&self, base: &RequestSpec) -> Variant {
        let spec = self.apply(base);
        Variant {
            name: self.name.clone(),
            system: spec.system,
            prompt: spec.prompt,
            max_tokens: spec.max_tokens,
            temperature: spec.temperature,
            extra: spec.extra,
        }
    }
}

/// Checks the variants of the job file `path` (whose text is `text`): names unique and of
/// `[A-Za-z0-9_.-]+`, `max_tokens` at least 1, no reserved key in `extra`. Errors name the
/// file, the line and the field.
pub(super) fn check(path: &Path, text: &str, variants: &[VariantFile]) -> Result<(), JobError> {
    let line = |span: std::ops::Range<usize>| line_at(text, span.start);
    let at = |span: std::ops::Range<usize>, msg: String| {
        JobError(format!("{}:{}: {msg}", path.display(), line(span)))
    };
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for v in variants {
        let name = v.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(at(
                v.name.span(),
                format!("variants.name {name:?}: use only letters, digits, '_', '.' and '-'"),
            ));
        }
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            return Err(at(
                v.name.span(),
                format!("variants.name {name:?} is used twice (first on line {first})"),
            ));
        }
        seen.push((name, line(v.name.span())));
        if let Some(m) = &v.max_tokens
            && *m.get_ref() == 0
        {
            return Err(at(
                m.span(),
                format!("variants.max_tokens of {name:?} must be at least 1"),
            ));
        }
        if let Some(extra) = &v.extra
            && let Some(k) = RESERVED_EXTRA
                .iter()
                .find(|k| extra.get_ref().contains_key(**k))
        {
            return Err(at(
                extra.span(),
                format!(
                    "variants.extra.{k} of {name:?}: set this with the variant's own key, not inside `extra`"
                ),
            ));
        }
    }
    Ok(())
}

/// The 1-based line of the byte offset `at` in `text`.
pub(super) fn line_at(text: &str, at: usize) -> usize {
    text.get(..at).unwrap_or(text).matches('\n').count() + 1
}

/// The variants of a checked job file, in file order.
pub(super) fn resolve(files: Vec<VariantFile>) -> Vec<Variant> {
    files
        .into_iter()
        .map(|v| Variant {
            name: v.name.into_inner(),
            system: v.system,
            prompt: v.prompt,
            max_tokens: v.max_tokens.map(Spanned::into_inner),
            temperature: v.temperature,
            extra: v.extra.map(Spanned::into_inner).unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::parse_job_file;
    use super::*;

    fn err(text: &str) -> String {
        parse_job_file(Path::new("jobs/v.toml"), text)
            .unwrap_err()
            .0
    }

    const HEAD: &str =
        "input = \"a.csv\"\n[request]\nmodels = [\"a/b\"]\nprompt = \"{{ text }}\"\n";

    #[test]
    fn variants_parse_and_override_the_request() {
        let text = format!(
            "{HEAD}max_tokens = 4\nextra = {{ seed = 1, top_p = 0.5 }}\n\n[[variants]]\nname = \"terse\"\nprompt = \"Label: {{{{ text }}}}\"\n\n[[variants]]\nname = \"v.2-x_y\"\nsystem = \"careful\"\nmax_tokens = 9\ntemperature = 0.5\nextra = {{ seed = 2 }}\n"
        );
        let jf = parse_job_file(Path::new("j.toml"), &text).unwrap();
        let base = RequestSpec {
            models: vec!["a/b".into()],
            system: None,
            prompt: jf.request.prompt.clone(),
            max_tokens: jf.request.max_tokens,
            temperature: None,
            extra: jf.request.extra.clone().unwrap(),
            aliases: Vec::new(),
        };
        let vs = resolve(jf.variants);
        assert_eq!(vs.len(), 2);
        let terse = vs[0].apply(&base);
        assert_eq!(terse.prompt.as_deref(), Some("Label: {{ text }}"));
        assert_eq!(terse.max_tokens, Some(4));
        assert_eq!(terse.extra, base.extra);
        let second = vs[1].resolved(&base);
        assert_eq!(second.prompt.as_deref(), Some("{{ text }}"));
        assert_eq!(second.system.as_deref(), Some("careful"));
        assert_eq!(
            (second.max_tokens, second.temperature),
            (Some(9), Some(0.5))
        );
        assert_eq!(second.extra["seed"], 2);
        assert_eq!(second.extra["top_p"], 0.5);
    }

    #[test]
    fn bad_variants_name_file_line_and_field() {
        let e = err(&format!("{HEAD}[[variants]]\nname = \"a b\"\n"));
        assert!(
            e.starts_with("jobs/v.toml:6:") && e.contains("variants.name"),
            "{e}"
        );
        let e = err(&format!(
            "{HEAD}[[variants]]\nname = \"a\"\n[[variants]]\nname = \"a\"\n"
        ));
        assert!(e.starts_with("jobs/v.toml:8:"), "{e}");
        assert!(e.contains("used twice (first on line 6)"), "{e}");
        let e = err(&format!(
            "{HEAD}[[variants]]\nname = \"a\"\nmax_tokens = 0\n"
        ));
        assert!(
            e.starts_with("jobs/v.toml:7:") && e.contains("variants.max_tokens"),
            "{e}"
        );
        let e = err(&format!(
            "{HEAD}[[variants]]\nname = \"a\"\nextra = {{ model = \"x\" }}\n"
        ));
        assert!(
            e.starts_with("jobs/v.toml:7:") && e.contains("variants.extra.model"),
            "{e}"
        );
        let e = err(&format!(
            "{HEAD}[[variants]]\nname = \"a\"\nmodels = [\"x\"]\n"
        ));
        assert!(
            e.starts_with("jobs/v.toml:7:") && e.contains("models"),
            "{e}"
        );
        let e = err(&format!("{HEAD}[[variants]]\nprompt = \"x\"\n"));
        assert!(e.starts_with("jobs/v.toml:5:") && e.contains("name"), "{e}");
    }
}
