//! The checks as pure functions of text: each returns a score in 0..1 (1 or 0 for the binary
//! ones). Normalisation (`trim`, `ignore_case`) happens here, the same for the output and the
//! value it is compared with.

use std::borrow::Cow;

/// How text is normalised before a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Norm {
    /// Strip surrounding whitespace and one trailing period (then whitespace again).
    pub trim: bool,
    /// Compare lower-cased (Unicode-aware).
    pub ignore_case: bool,
}

impl Norm {
    /// `text` normalised.
    pub fn apply<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut t = text;
        if self.trim {
            t = t.trim();
            if let Some(stripped) = t.strip_suffix('.') {
                t = stripped.trim_end();
            }
        }
        if self.ignore_case {
            Cow::Owned(t.to_lowercase())
        } else {
            Cow::Borrowed(t)
        }
    }
}

fn binary(ok: bool) -> f64 {
    if ok { 1.0 } else { 0.0 }
}

/// `equals`: the output equals the value.
pub fn equals(output: &str, value: &str, norm: Norm) -> f64 {
    binary(norm.apply(output) == norm.apply(value))
}

/// `contains`: the output contains the value.
pub fn contains(output: &str, value: &str, norm: Norm) -> f64 {
    binary(norm.apply(output).contains(norm.apply(value).as_ref()))
}

/// `not_contains`: the output does not contain the value.
pub fn not_contains(output: &str, value: &str, norm: Norm) -> f64 {
    1.0 - contains(output, value, norm)
}

/// `one_of`: the output equals one of the values.
pub fn one_of(output: &str, values: &[String], norm: Norm) -> f64 {
    let out = norm.apply(output);
    binary(values.iter().any(|v| norm.apply(v) == out))
}

/// `regex`: the (trimmed, when `trim`) output matches.
pub fn regex(output: &str, re: &regex::Regex, trim: bool) -> f64 {
    binary(re.is_match(if trim { output.trim() } else { output }))
}

/// The JSON value of `text`: the whole text, or the inside of a surrounding Markdown code
/// fence (```json ... ```), as structured replies often come.
pub fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    let t = text.trim();
    let inner = t
        .strip_prefix("```")
        .and_then(|rest| rest.strip_suffix("```"))
        .map(|body| {
            let body = body.strip_prefix("json").unwrap_or(body);
            body.trim()
        })
        .unwrap_or(t);
    serde_json::from_str(inner).map_err(|e| format!("not JSON: {e}"))
}

/// `json_valid`: the output is JSON.
pub fn json_valid(output: &str) -> f64 {
    binary(parse_json(output).is_ok())
}

/// The first number in `text` (`-3`, `2.5`, `1,234.5`, `1e-3`), if any.
pub fn first_number(text: &str) -> Option<f64> {
    static NUMBER: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")
            .ok()
    });
    let re = NUMBER.as_ref()?;
    let m = re.find(text)?;
    m.as_str().replace(',', "").parse::<f64>().ok()
}

/// `number`: the first number of the output is within `tolerance` of the first number of
/// `value`; an output with no number scores 0. `Err` when `value` holds no number.
pub fn number(output: &str, value: &str, tolerance: f64) -> Result<f64, String> {
    let want = first_number(value).ok_or_else(|| format!("the value {value:?} is not a number"))?;
    Ok(binary(first_number(output).is_some_and(|got| {
        (got - want).abs() <= tolerance + f64::EPSILON
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: Norm = Norm {
        trim: true,
        ignore_case: true,
    };
    const EXACT: Norm = Norm {
        trim: false,
        ignore_case: false,
    };

    #[test]
    fn equals_handles_case_whitespace_and_a_trailing_period() {
        assert_eq!(equals(" Positive.\n", "positive", DEFAULT), 1.0);
        assert_eq!(equals("positive", "Positive", DEFAULT), 1.0);
        assert_eq!(equals("Positive", "positive", EXACT), 0.0);
        assert_eq!(equals("positive.", "positive", EXACT), 0.0);
        assert_eq!(equals("positively", "positive", DEFAULT), 0.0);
        // Only one trailing period goes; an ellipsis stays different.
        assert_eq!(equals("positive...", "positive", DEFAULT), 0.0);
    }

    #[test]
    fn equals_is_unicode_aware() {
        assert_eq!(equals("ÉTÉ", "été", DEFAULT), 1.0);
        assert_eq!(equals("Straße", "straße", DEFAULT), 1.0);
        assert_eq!(equals("été", "ete", DEFAULT), 0.0);
        assert_eq!(
            equals("日本", " 日本。", DEFAULT),
            0.0,
            "a CJK full stop is not a period"
        );
    }

    #[test]
    fn contains_and_not_contains() {
        assert_eq!(
            contains("The answer is Negative.", "negative", DEFAULT),
            1.0
        );
        assert_eq!(contains("The answer is Negative.", "negative", EXACT), 0.0);
        assert_eq!(not_contains("all fine", "error", DEFAULT), 1.0);
        assert_eq!(not_contains("an ERROR here", "error", DEFAULT), 0.0);
        assert_eq!(not_contains("an ERROR here", "error", EXACT), 1.0);
    }

    #[test]
    fn one_of_matches_any_value() {
        let v = vec!["positive".to_string(), "negative".to_string()];
        assert_eq!(one_of("NEGATIVE.", &v, DEFAULT), 1.0);
        assert_eq!(one_of("neutral", &v, DEFAULT), 0.0);
        assert_eq!(one_of("NEGATIVE", &v, EXACT), 0.0);
    }

    #[test]
    fn regex_matches_the_trimmed_output() {
        let re = regex::Regex::new(r"^\d{3}-\d{4}$").unwrap();
        assert_eq!(regex("  555-1234\n", &re, true), 1.0);
        assert_eq!(regex("  555-1234\n", &re, false), 0.0);
        assert_eq!(regex("call 555-1234", &re, true), 0.0);
    }

    #[test]
    fn json_valid_accepts_a_fence_and_refuses_broken_json() {
        assert_eq!(json_valid(r#"{"a": 1}"#), 1.0);
        assert_eq!(json_valid("```json\n{\"a\": [1, 2]}\n```"), 1.0);
        assert_eq!(json_valid(r#"{"a": 1"#), 0.0);
        assert_eq!(json_valid("positive"), 0.0);
        assert_eq!(json_valid(""), 0.0);
    }

    #[test]
    fn the_first_number_inside_text() {
        assert_eq!(
            first_number("The total is 42 apples and 7 pears"),
            Some(42.0)
        );
        assert_eq!(first_number("about -3.5 degrees"), Some(-3.5));
        assert_eq!(first_number("costs 1,234.50 EUR"), Some(1234.5));
        assert_eq!(first_number("tiny: 1e-3"), Some(0.001));
        assert_eq!(first_number("no digits here"), None);
        assert_eq!(first_number("٣ is an Arabic-Indic three"), None);
    }

    #[test]
    fn number_compares_within_the_tolerance() {
        assert_eq!(number("It is 3.14159.", "3.14", 0.01).unwrap(), 1.0);
        assert_eq!(number("It is 3.2", "3.14", 0.01).unwrap(), 0.0);
        assert_eq!(number("42", "42", 0.0).unwrap(), 1.0);
        assert_eq!(number("no number", "42", 1.0).unwrap(), 0.0);
        assert!(number("42", "forty-two", 0.0).is_err());
    }
}
