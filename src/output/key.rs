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

/// A set of key hashes held as one sorted `Vec<u64>`: 8 bytes a key, where a hash set holds
/// about 18 at a million keys (and half as much again while it grows). Built in bulk
/// ([`FromIterator`]); [`KeySet::insert`] shifts the tail, for a few keys at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet(Vec<u64>);

impl KeySet {
    /// Whether `key` is in the set.
    pub fn contains(&self, key: &u64) -> bool {
        self.0.binary_search(key).is_ok()
    }

    /// Adds `key`; false when it was there already.
    pub fn insert(&mut self, key: u64) -> bool {
        match self.0.binary_search(&key) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, key);
                true
            }
        }
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u64>> for KeySet {
    fn from(mut keys: Vec<u64>) -> KeySet {
        keys.sort_unstable();
        keys.dedup();
        keys.shrink_to_fit();
        KeySet(keys)
    }
}

impl FromIterator<u64> for KeySet {
    fn from_iter<I: IntoIterator<Item = u64>>(keys: I) -> KeySet {
        KeySet::from(keys.into_iter().collect::<Vec<u64>>())
    }
}

/// Sorts (key hash, position) pairs and keeps one per key, the one with the highest position
/// (a key's latest line), in place.
pub(crate) fn keep_latest(pairs: &mut Vec<(u64, u64)>) {
    pairs.sort_unstable();
    pairs.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            *earlier = *later;
        }
        same
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_set_holds_each_key_once_in_any_order() {
        let mut set: KeySet = [9u64, 3, 9, u64::MAX, 0].into_iter().collect();
        assert_eq!(set.len(), 4);
        for k in [0, 3, 9, u64::MAX] {
            assert!(set.contains(&k), "{k}");
        }
        assert!(!set.contains(&4));
        assert!(set.insert(4));
        assert!(!set.insert(4));
        assert!(set.contains(&4) && set.len() == 5);
        assert!(KeySet::default().is_empty());
    }

    #[test]
    fn keep_latest_keeps_the_highest_position_of_each_key() {
        let mut pairs = vec![(7, 1), (3, 2), (7, 9), (3, 4), (5, 0)];
        keep_latest(&mut pairs);
        assert_eq!(pairs, [(3, 4), (5, 0), (7, 9)]);
    }

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
