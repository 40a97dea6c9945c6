//! The failed keys a resume found, each with its [`Prior`] (what it already cost), packed: a
//! sorted index of (key hash, offset) and the priors encoded in one byte arena, about 22 bytes
//! a key where a hash map of [`Prior`]s held about 140 (a resume of 1,000,000 failed lines
//! peaked near 200 MB). Built in bulk ([`PriorsBuilder`]); the few priors set afterwards (a
//! crash's recovered lines) are kept whole beside the packed ones and win over them.
//!
//! The encoding is exact: counts as LEB128, amounts as their sign, scale and 96-bit mantissa,
//! so a prior reads back equal to what was written, `-0` and trailing zeros included.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::results::Prior;

/// The failed keys and their priors (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Priors {
    /// (key hash, offset of its prior in `arena`), sorted by key, one entry a key.
    index: Vec<(u64, u64)>,
    arena: Vec<u8>,
    /// Set after the packed ones were built: these win.
    later: HashMap<u64, Prior>,
}

/// Gathers priors in any order; [`PriorsBuilder::finish`] sorts them once.
#[derive(Debug, Default)]
pub struct PriorsBuilder {
    index: Vec<(u64, u64)>,
    arena: Vec<u8>,
}

const RESUMABLE: u8 = 1;
const COST: u8 = 2;
const UNKNOWN_MAX: u8 = 4;

impl PriorsBuilder {
    /// A builder with room for `keys` priors.
    pub fn with_capacity(keys: usize) -> PriorsBuilder {
        PriorsBuilder {
            index: Vec::with_capacity(keys),
            arena: Vec::with_capacity(keys.saturating_mul(6)),
        }
    }

    /// Adds `key`'s prior; a key added twice keeps the later one.
    pub fn push(&mut self, key: u64, prior: &Prior) {
        self.index.push((key, self.arena.len() as u64));
        encode(prior, &mut self.arena);
    }

    /// The packed priors.
    pub fn finish(mut self) -> Priors {
        // Of a key's entries, the last pushed has the highest arena offset: it is kept.
        super::key::keep_latest(&mut self.index);
        self.index.shrink_to_fit();
        self.arena.shrink_to_fit();
        Priors {
            index: self.index,
            arena: self.arena,
            later: HashMap::new(),
        }
    }
}

impl Priors {
    /// `key`'s prior, when it failed.
    pub fn get(&self, key: &u64) -> Option<Prior> {
        if let Some(p) = self.later.get(key) {
            return Some(p.clone());
        }
        self.packed(*key).map(|at| decode(&self.arena[at..]))
    }

    /// Sets `key`'s prior (it replaces a packed one).
    pub fn insert(&mut self, key: u64, prior: Prior) {
        self.later.insert(key, prior);
    }

    /// How many failed keys.
    pub fn len(&self) -> usize {
        let both = self
            .later
            .keys()
            .filter(|k| self.packed(**k).is_some())
            .count();
        self.index.len() + self.later.len() - both
    }

    /// True when no key failed.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty() && self.later.is_empty()
    }

    /// How many failed keys are not `resumable` (a plain re-run leaves them as they are).
    pub fn not_resumable(&self) -> usize {
        let packed = self
            .index
            .iter()
            .filter(|(key, at)| {
                !self.later.contains_key(key) && self.arena[*at as usize] & RESUMABLE == 0
            })
            .count();
        packed + self.later.values().filter(|p| !p.resumable).count()
    }

    /// The arena offset of `key`'s packed prior.
    fn packed(&self, key: u64) -> Option<usize> {
        let i = self.index.binary_search_by_key(&key, |e| e.0).ok()?;
        Some(self.index[i].1 as usize)
    }
}

fn encode(p: &Prior, out: &mut Vec<u8>) {
    let mut flags = 0;
    if p.resumable {
        flags |= RESUMABLE;
    }
    if p.cost_usd.is_some() {
        flags |= COST;
    }
    if p.unknown_cost_max_usd.is_some() {
        flags |= UNKNOWN_MAX;
    }
    out.push(flags);
    for n in [p.attempts, p.unknown_cost_attempts, p.rate_limited_attempts] {
        leb128(u128::from(n), out);
    }
    for d in [p.cost_usd, p.unknown_cost_max_usd].into_iter().flatten() {
        // The scale is at most 28: bit 7 carries the sign.
        let sign = if d.is_sign_negative() { 0x80 } else { 0 };
        out.push(sign | d.scale() as u8);
        leb128(d.mantissa().unsigned_abs(), out);
    }
}

/// Reads back what [`encode`] wrote at the start of `bytes` (written by this process: every
/// prior is complete and valid).
fn decode(bytes: &[u8]) -> Prior {
    let mut at = 1;
    let flags = bytes[0];
    let mut count = || read_leb128(bytes, &mut at) as u32;
    let (attempts, unknown_cost_attempts, rate_limited_attempts) = (count(), count(), count());
    let mut amount = || {
        let head = bytes[at];
        at += 1;
        let mantissa = read_leb128(bytes, &mut at);
        let mut d = Decimal::from_i128_with_scale(mantissa as i128, u32::from(head & 0x7f));
        d.set_sign_negative(head & 0x80 != 0);
        d
    };
    let cost_usd = (flags & COST != 0).then(&mut amount);
    let unknown_cost_max_usd = (flags & UNKNOWN_MAX != 0).then(&mut amount);
    Prior {
        cost_usd,
        attempts,
        unknown_cost_attempts,
        unknown_cost_max_usd,
        rate_limited_attempts,
        resumable: flags & RESUMABLE != 0,
    }
}

fn leb128(mut n: u128, out: &mut Vec<u8>) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn read_leb128(bytes: &[u8], at: &mut usize) -> u128 {
    let mut n = 0u128;
    let mut shift = 0;
    loop {
        let b = bytes[*at];
        *at += 1;
        n |= u128::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return n;
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn prior(cost: &str, attempts: u32, resumable: bool) -> Prior {
        Prior {
            cost_usd: Some(cost.parse().unwrap()),
            attempts,
            resumable,
            ..Prior::default()
        }
    }

    #[test]
    fn a_key_pushed_twice_keeps_the_later_prior_and_a_later_insert_wins() {
        let mut b = PriorsBuilder::default();
        b.push(7, &prior("0.5", 1, false));
        b.push(3, &prior("0", 2, true));
        b.push(7, &prior("0.25", 3, false));
        let mut p = b.finish();
        assert_eq!(p.len(), 2);
        assert_eq!(p.get(&7), Some(prior("0.25", 3, false)));
        assert_eq!(p.get(&3), Some(prior("0", 2, true)));
        assert_eq!(p.get(&4), None);
        assert_eq!(p.not_resumable(), 1);
        p.insert(3, prior("1", 4, false));
        p.insert(9, prior("2", 1, true));
        assert_eq!(p.get(&3), Some(prior("1", 4, false)));
        assert_eq!(p.len(), 3);
        assert_eq!(p.not_resumable(), 2);
        assert!(!p.is_empty() && Priors::default().is_empty());
    }

    #[test]
    fn amounts_read_back_exactly_with_their_scale_and_sign() {
        for text in [
            "0",
            "-0",
            "0.000000",
            "0.00001515",
            "-1.5",
            "79228162514264337593543950335",
        ] {
            let p = prior(text, 1, false);
            let mut b = PriorsBuilder::default();
            b.push(1, &p);
            let got = b.finish().get(&1);
            let (got, want) = (got.unwrap().cost_usd.unwrap(), p.cost_usd.unwrap());
            assert_eq!(got.serialize(), want.serialize(), "{text}");
        }
    }

    fn any_decimal() -> impl Strategy<Value = Decimal> {
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<bool>(),
            0u32..=28,
        )
            .prop_map(|(lo, mid, hi, neg, scale)| Decimal::from_parts(lo, mid, hi, neg, scale))
    }

    fn any_prior() -> impl Strategy<Value = Prior> {
        (
            proptest::option::of(any_decimal()),
            any::<u32>(),
            any::<u32>(),
            proptest::option::of(any_decimal()),
            any::<u32>(),
            any::<bool>(),
        )
            .prop_map(|(cost, a, u, max, r, resumable)| Prior {
                cost_usd: cost,
                attempts: a,
                unknown_cost_attempts: u,
                unknown_cost_max_usd: max,
                rate_limited_attempts: r,
                resumable,
            })
    }

    proptest! {
        #[test]
        fn every_prior_reads_back_as_written(
            priors in proptest::collection::vec((any::<u64>(), any_prior()), 0..40)
        ) {
            let mut b = PriorsBuilder::default();
            for (k, p) in &priors {
                b.push(*k, p);
            }
            let packed = b.finish();
            let mut want: HashMap<u64, Prior> = HashMap::new();
            for (k, p) in priors {
                want.insert(k, p);
            }
            prop_assert_eq!(packed.len(), want.len());
            for (k, p) in &want {
                let got = packed.get(k).unwrap();
                prop_assert_eq!(&got, p);
                // Equal as written (scale and sign), not only as numbers.
                prop_assert_eq!(got.cost_usd.map(|d| d.serialize()), p.cost_usd.map(|d| d.serialize()));
                prop_assert_eq!(
                    got.unknown_cost_max_usd.map(|d| d.serialize()),
                    p.unknown_cost_max_usd.map(|d| d.serialize())
                );
            }
            prop_assert_eq!(
                packed.not_resumable(),
                want.values().filter(|p| !p.resumable).count()
            );
        }
    }
}
