//! The written order of a schema's top-level `properties`: JSON objects here are sorted maps,
//! so the order results.csv shows the columns in is read from the text itself.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

/// The keys of a map, in the order they were written (values skipped).
struct Keys(Vec<String>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    m.next_value::<IgnoredAny>()?;
                    keys.push(k);
                }
                Ok(Keys(keys))
            }
        }
        d.deserialize_map(V)
    }
}

/// A schema's `properties` keys in order; anything else is skipped.
#[derive(Deserialize, Default)]
struct SchemaKeys {
    #[serde(default)]
    properties: Option<Keys>,
}

/// A job file's `[output] schema` table, when it is one.
#[derive(Deserialize, Default)]
struct JobKeys {
    #[serde(default)]
    output: Option<OutputKeys>,
}

#[derive(Deserialize, Default)]
struct OutputKeys {
    #[serde(default, deserialize_with = "table_or_skip")]
    schema: Option<SchemaKeys>,
}

fn table_or_skip<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SchemaKeys>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Table(SchemaKeys),
        #[allow(dead_code)]
        Other(de::IgnoredAny),
    }
    Ok(match Either::deserialize(d)? {
        Either::Table(t) => Some(t),
        Either::Other(_) => None,
    })
}

/// The top-level property names of a schema, in written order: from a JSON schema file's text
/// (`json = true`), or from a job file's text whose `[output] schema` is an inline table.
/// Empty when they cannot be read (the caller falls back to sorted order).
pub fn property_order(text: &str, json: bool) -> Vec<String> {
    let keys = if json {
        serde_json::from_str::<SchemaKeys>(text)
            .ok()
            .and_then(|s| s.properties)
    } else {
        toml::from_str::<JobKeys>(text)
            .ok()
            .and_then(|j| j.output)
            .and_then(|o| o.schema)
            .and_then(|s| s.properties)
    };
    keys.map(|k| k.0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_toml_keep_the_written_order() {
        let json =
            r#"{"type":"object","properties":{"zeta":{},"alpha":{"type":"string"},"mid":{}}}"#;
        assert_eq!(property_order(json, true), ["zeta", "alpha", "mid"]);
        let toml = "name = \"x\"\n[output.schema]\ntype = \"object\"\n[output.schema.properties]\nzeta = { type = \"string\" }\nalpha = { type = \"boolean\" }\n";
        assert_eq!(property_order(toml, false), ["zeta", "alpha"]);
        assert!(property_order("[output]\nschema = \"a.json\"\n", false).is_empty());
        assert!(property_order("not json", true).is_empty());
    }
}
