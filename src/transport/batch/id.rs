//! `custom_id`: the result key (id, variant, model) of a batch item, encoded reversibly in
//! characters every batch API accepts (`[A-Za-z0-9_-]`, `.` as the escape and `~` between
//! the fields), whatever the id holds.
//!
//! Form: `k1~<id>~<variant>~<model>`; each field keeps `[A-Za-z0-9_-]` and writes every other
//! byte as `.XX` (upper-case hex); no variant is an empty field, a variant is `v` + the field.

use crate::output::key::ResultKey;

/// A key decoded from a `custom_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemKey {
    /// The row's id.
    pub id: String,
    /// The prompt variant.
    pub variant: Option<String>,
    /// The requested model slug.
    pub model: String,
}

impl ItemKey {
    /// The key's hash ([`ResultKey::hash`]).
    pub fn hash(&self) -> u64 {
        ResultKey {
            id: &self.id,
            variant: self.variant.as_deref(),
            model: &self.model,
        }
        .hash()
    }
}

/// The `custom_id` of `key`.
pub fn encode(key: &ResultKey<'_>) -> String {
    let mut out = String::from("k1~");
    escape(key.id, &mut out);
    out.push('~');
    if let Some(v) = key.variant {
        out.push('v');
        escape(v, &mut out);
    }
    out.push('~');
    escape(key.model, &mut out);
    out
}

/// The key of a `custom_id` written by [`encode`] (`None`: not one of ours).
pub fn decode(custom_id: &str) -> Option<ItemKey> {
    let mut parts = custom_id.split('~');
    if parts.next()? != "k1" {
        return None;
    }
    let id = unescape(parts.next()?)?;
    let variant = match parts.next()? {
        "" => None,
        v => Some(unescape(v.strip_prefix('v')?)?),
    };
    let model = unescape(parts.next()?)?;
    if parts.next().is_some() {
        return None;
    }
    Some(ItemKey { id, variant, model })
}

fn escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!(".{b:02X}"));
        }
    }
}

fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_id_round_trips_in_safe_characters() {
        for id in ["1", "row 7", "a~b.c", "k1~x~~y", "é/ü\n\"'", "", ".41"] {
            for variant in [None, Some("terse"), Some("")] {
                let key = ResultKey {
                    id,
                    variant,
                    model: "openai/gpt-4o-mini",
                };
                let c = encode(&key);
                assert!(
                    c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.~".contains(&b)),
                    "{c}"
                );
                let back = decode(&c).expect("decodes");
                assert_eq!(back.id, id);
                assert_eq!(back.variant.as_deref(), variant);
                assert_eq!(back.model, "openai/gpt-4o-mini");
                assert_eq!(back.hash(), key.hash());
            }
        }
    }

    #[test]
    fn foreign_ids_are_refused() {
        for bad in [
            "row-1",
            "k1~a~b",
            "k1~a~~b~c",
            "k1~a.G1~~m",
            "k1~a b~~m",
            "k1~a~x~m",
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
