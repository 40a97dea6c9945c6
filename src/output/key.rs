//! The resume key of a result line: (id, variant, model). `variant` is `None` when the job
//! defines no prompt variants (and on every line written before variants existed), and then
//! the hash is the one of (id, model), so those output dirs resume unchanged.

/// The key a result line is stored, resumed and compacted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResultKey<'a> {
    /// The row's id.
    pub id: &'a str,
    /// The prompt variant (`None`: the job defines none).
    pub variant: Option<&'a str>,
    /// The requested model slug.
    pub model: &'a str,
}

impl<'a> ResultKey<'a> {
    /// The key of (id, model) with no variant.
    pub fn new(id: &'a str, model: &'a str) -> Self {
        ResultKey {
            id,
            variant: None,
            model,
        }
    }

    /// The key of (id, variant, model).
    pub fn of(id: &'a str, variant: Option<&'a str>, model: &'a str) -> Self {
        ResultKey { id, variant, model }
    }

    /// Stable 64-bit hash: the first 8 bytes (little-endian) of `blake3(id || 0x00 || model)`
    /// with no variant, `blake3(id || 0x00 || model || 0x01 || variant)` with one (so every
    /// existing journal keeps its hashes).
    pub fn hash(&self) -> u64 {
        let mut h = blake3::Hasher::new();
        h.update(self.id.as_bytes());
        h.update(&[0]);
        h.update(self.model.as_bytes());
        if let Some(v) = self.variant {
            h.update(&[1]);
            h.update(v.as_bytes());
        }
        let bytes = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes.as_bytes()[..8]);
        u64::from_le_bytes(first)
    }
}

impl crate::output::ResultLine {
    /// The line's key: (id, variant, model).
    pub fn key(&self) -> ResultKey<'_> {
        ResultKey::of(&self.id, self.variant.as_deref(), &self.model)
    }
}

/// The hash of (id, model) with no variant: [`ResultKey::hash`].
pub fn key_hash(id: &str, model: &str) -> u64 {
    ResultKey::new(id, model).hash()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_stable_and_separates_fields() {
        assert_eq!(key_hash("1", "m"), key_hash("1", "m"));
        assert_ne!(key_hash("ab", "c"), key_hash("a", "bc"));
        assert_eq!(key_hash("17", "openai/gpt-4o-mini"), PINNED);
        let with = ResultKey {
            variant: Some("v"),
            ..ResultKey::new("17", "openai/gpt-4o-mini")
        };
        assert_ne!(with.hash(), PINNED);
    }

    /// Pinned so that a change of the hash (which would break resume) fails a test.
    const PINNED: u64 = 16542609426403077585;
}
