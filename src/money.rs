//! Money as `rust_decimal::Decimal`, written to JSON as a plain number with every digit
//! (`0.0000123`, never `1.23e-5` and never a float round-trip).

use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::value::RawValue;

/// Serializes a `Decimal` as an exact JSON number.
pub fn serialize<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    let raw =
        RawValue::from_string(value.normalize().to_string()).map_err(serde::ser::Error::custom)?;
    serde::Serialize::serialize(&raw, s)
}

/// Reads a JSON number (or a decimal string) as a `Decimal`, exactly as written.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let raw: &RawValue = Deserialize::deserialize(d)?;
    parse(raw.get()).ok_or_else(|| D::Error::custom(format!("not a decimal amount: {}", raw.get())))
}

/// Parses a JSON number or a JSON string holding a decimal (scientific notation accepted).
pub fn parse(text: &str) -> Option<Decimal> {
    let t = text.trim().trim_matches('"');
    t.parse::<Decimal>()
        .ok()
        .or_else(|| Decimal::from_scientific(t).ok())
}

/// The same for `Option<Decimal>` (`null` <-> `None`).
pub mod opt {
    use super::*;

    /// Serializes `Some` as an exact JSON number and `None` as `null`.
    pub fn serialize<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => super::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    /// Reads `null` as `None`, a number or decimal string as `Some`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        let raw: Option<&RawValue> = Deserialize::deserialize(d)?;
        match raw {
            None => Ok(None),
            Some(r) if r.get() == "null" => Ok(None),
            Some(r) => parse(r.get())
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("not a decimal amount: {}", r.get()))),
        }
    }
}

/// Formats an amount in USD with enough digits to see a $0.0000001 row.
pub fn usd(value: Decimal) -> String {
    format!("${}", value.round_dp(7).normalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct T {
        #[serde(with = "super")]
        a: Decimal,
        #[serde(with = "super::opt")]
        b: Option<Decimal>,
    }

    #[test]
    fn round_trips_exactly() {
        let t = T {
            a: Decimal::from_str("0.0000123").unwrap(),
            b: None,
        };
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(s, r#"{"a":0.0000123,"b":null}"#);
        assert_eq!(serde_json::from_str::<T>(&s).unwrap(), t);
        let t2: T = serde_json::from_str(r#"{"a":1.5e-7,"b":"0.25"}"#).unwrap();
        assert_eq!(t2.a, Decimal::from_str("0.00000015").unwrap());
        assert_eq!(t2.b, Some(Decimal::from_str("0.25").unwrap()));
    }
}
