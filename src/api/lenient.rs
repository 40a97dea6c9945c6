//! Lenient readers for the optional fields of an answer: a field that cannot be used reads as
//! absent, so one bad optional value (a cost of `"abc"`, `1e308`, `true` or `-5`, a negative
//! token count) never throws away an answer that was delivered and paid for.
//!
//! Values are read as raw JSON text (not through `f64`), so a good cost stays exact.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// Any value: `None` when it does not have `T`'s shape.
pub fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let raw: Option<Box<RawValue>> = Deserialize::deserialize(d)?;
    Ok(raw.and_then(|r| serde_json::from_str(r.get()).ok()))
}

/// A token count: a non-negative integer (or a string holding one), else `None`.
pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let raw: Option<Box<RawValue>> = Deserialize::deserialize(d)?;
    Ok(raw.and_then(|r| r.get().trim().trim_matches('"').parse::<u64>().ok()))
}

/// A charge in USD: a finite, non-negative decimal (number or decimal string), else `None`
/// (unknown). A negative charge is never subtracted; an absurd one is never believed.
pub fn cost<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let raw: Option<Box<RawValue>> = Deserialize::deserialize(d)?;
    Ok(raw.and_then(|r| usable_cost(r.get())))
}

/// The charge a JSON value states, when it is usable (finite, non-negative, a decimal).
pub fn usable_cost(text: &str) -> Option<Decimal> {
    let t = text.trim();
    if t == "null" || t == "true" || t == "false" {
        return None;
    }
    crate::money::parse(t).filter(|d| !d.is_sign_negative() || d.is_zero())
}

/// Replaces the bare non-JSON tokens `NaN`, `Infinity` and `-Infinity` outside strings with
/// `null` (some servers write them for a float they could not compute). `None`: none found.
pub fn nulls_for_non_finite(bytes: &[u8]) -> Option<Vec<u8>> {
    const TOKENS: [&[u8]; 3] = [b"-Infinity", b"Infinity", b"NaN"];
    let mut out = Vec::with_capacity(bytes.len());
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if let Some(t) = TOKENS.iter().find(|t| bytes[i..].starts_with(t)) {
            out.extend_from_slice(b"null");
            i += t.len();
            changed = true;
            continue;
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs() {
        assert_eq!(usable_cost("0.0000085"), Some(Decimal::new(85, 7)));
        assert_eq!(usable_cost("\"0.25\""), Some(Decimal::new(25, 2)));
        assert_eq!(usable_cost("0"), Some(Decimal::ZERO));
        for bad in [
            "-5", "1e308", "\"abc\"", "true", "null", "\"NaN\"", "[]", "{}",
        ] {
            assert_eq!(usable_cost(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_generation_record_with_a_negative_cost_is_unknown() {
        let g: crate::api::GenerationResponse = serde_json::from_str(
            r#"{"data":{"total_cost":-5,"native_tokens_prompt":-1,"provider_name":7}}"#,
        )
        .expect("lenient");
        assert_eq!(g.data.total_cost, None);
        assert_eq!(g.data.native_tokens_prompt, None);
        assert_eq!(g.data.provider_name, None);
    }

    #[test]
    fn non_finite_tokens_outside_strings_only() {
        let fixed = nulls_for_non_finite(br#"{"a":NaN,"b":"NaN \" Infinity","c":-Infinity}"#);
        assert_eq!(
            fixed.as_deref(),
            Some(&br#"{"a":null,"b":"NaN \" Infinity","c":null}"#[..])
        );
        assert_eq!(nulls_for_non_finite(br#"{"a":"NaN"}"#), None);
    }
}
