//! Agreement between raters (models, or variant x model) on one field, aggregated row by row:
//! value counts per rater, the share of rows where every answer agrees, and kappa (Cohen's for
//! two raters, Fleiss' for more). Memory is per distinct value, never per row.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Distinct values counted per field; later new values count as [`OTHER`].
const MAX_VALUES: usize = 1000;
/// The bucket of values past [`MAX_VALUES`].
pub const OTHER: &str = "(other)";

/// One field's agreement, as summary.json shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldAgreement {
    /// The property's kind: `enum`, `boolean` or `string`.
    pub kind: String,
    /// Rows every rater answered (the rows agreement and kappa are computed on).
    pub rows: u64,
    /// Share of those rows where every answer is the same (`null`: no such row).
    pub agreement: Option<f64>,
    /// Cohen's kappa (two raters) or Fleiss' kappa (more); `null` when undefined (no rows, or
    /// every answer in one category).
    pub kappa: Option<f64>,
    /// `cohen` or `fleiss`.
    pub kappa_method: String,
    /// Per value, the count of each rater that answered it (all rows it answered).
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
}

/// The running tally of one field.
#[derive(Debug, Clone)]
pub struct FieldAcc {
    raters: usize,
    /// Per rater: value -> count, over every row the rater answered.
    counts: Vec<BTreeMap<String, u64>>,
    /// Per rater: value -> count, over complete rows only (Cohen's marginals).
    complete: Vec<BTreeMap<String, u64>>,
    rows: u64,
    agree: u64,
    /// Sum over complete rows of Fleiss' P_i.
    sum_p: f64,
}

impl FieldAcc {
    /// A tally for `raters` raters.
    pub fn new(raters: usize) -> FieldAcc {
        FieldAcc {
            raters,
            counts: vec![BTreeMap::new(); raters],
            complete: vec![BTreeMap::new(); raters],
            rows: 0,
            agree: 0,
            sum_p: 0.0,
        }
    }

    /// Adds one row: each rater's value (`None`: no valid answer).
    pub fn add(&mut self, values: &[Option<&str>]) {
        for (r, v) in values.iter().enumerate().take(self.raters) {
            if let Some(v) = v {
                bump(&mut self.counts[r], v);
            }
        }
        if values.len() != self.raters || values.iter().any(Option::is_none) || self.raters < 2 {
            return;
        }
        self.rows += 1;
        let first = values[0];
        if values.iter().all(|v| *v == first) {
            self.agree += 1;
        }
        let mut per_value: Vec<(&str, u64)> = Vec::new();
        for (r, v) in values.iter().enumerate() {
            let v = v.unwrap_or_default();
            bump(&mut self.complete[r], v);
            match per_value.iter_mut().find(|(x, _)| *x == v) {
                Some((_, n)) => *n += 1,
                None => per_value.push((v, 1)),
            }
        }
        let n = self.raters as f64;
        let sum_sq: f64 = per_value.iter().map(|(_, c)| (*c as f64).powi(2)).sum();
        self.sum_p += (sum_sq - n) / (n * (n - 1.0));
    }

    /// The field's figures, with `names` the raters' names.
    pub fn finish(&self, kind: &str, names: &[String]) -> FieldAgreement {
        let rows = self.rows as f64;
        let agreement = (self.rows > 0).then(|| round(self.agree as f64 / rows));
        let kappa = if self.rows == 0 {
            None
        } else if self.raters == 2 {
            let p_o = self.agree as f64 / rows;
            let p_e: f64 = self.complete[0]
                .iter()
                .map(|(v, a)| {
                    let b = self.complete[1].get(v).copied().unwrap_or(0);
                    (*a as f64 / rows) * (b as f64 / rows)
                })
                .sum();
            kappa(p_o, p_e)
        } else {
            let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
            for per in &self.complete {
                for (v, c) in per {
                    *totals.entry(v.as_str()).or_default() += c;
                }
            }
            let all = rows * self.raters as f64;
            let p_e: f64 = totals.values().map(|c| (*c as f64 / all).powi(2)).sum();
            kappa(self.sum_p / rows, p_e)
        };
        FieldAgreement {
            kind: kind.to_string(),
            rows: self.rows,
            agreement,
            kappa,
            kappa_method: if self.raters == 2 { "cohen" } else { "fleiss" }.into(),
            counts: per_value(names, &self.counts),
        }
    }
}

/// Each rater's value counts turned into each value's counts per rater.
fn per_value(
    names: &[String],
    counts: &[BTreeMap<String, u64>],
) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (name, per) in names.iter().zip(counts) {
        for (value, n) in per {
            out.entry(value.clone())
                .or_default()
                .insert(name.clone(), *n);
        }
    }
    out
}

/// Counts `v`, or [`OTHER`] once `MAX_VALUES` distinct values are held.
fn bump(map: &mut BTreeMap<String, u64>, v: &str) {
    if let Some(n) = map.get_mut(v) {
        *n += 1;
    } else if map.len() < MAX_VALUES {
        map.insert(v.to_string(), 1);
    } else {
        *map.entry(OTHER.to_string()).or_default() += 1;
    }
}

/// (p_o - p_e) / (1 - p_e), `None` when every answer fell in one category (p_e = 1).
fn kappa(p_o: f64, p_e: f64) -> Option<f64> {
    let d = 1.0 - p_e;
    (d.abs() > 1e-12).then(|| round((p_o - p_e) / d))
}

/// Four decimals.
fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The value most raters gave (ties: the one the earliest rater gave), `None` when none did.
pub fn majority<'a>(values: &[Option<&'a str>]) -> Option<&'a str> {
    let mut best: Option<(&str, usize)> = None;
    for v in values.iter().flatten() {
        let n = values.iter().filter(|x| **x == Some(*v)).count();
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((v, n));
        }
    }
    best.map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fleiss (1971) as Wikipedia's "Fleiss' kappa" article works it: 10 subjects, 14 raters,
    /// 5 categories; P-bar = 0.378, P-bar_e = 0.213, kappa = 0.210.
    #[test]
    fn fleiss_kappa_of_the_textbook_table() {
        let table: [[u64; 5]; 10] = [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ];
        let cats = ["1", "2", "3", "4", "5"];
        let mut acc = FieldAcc::new(14);
        for row in table {
            let values: Vec<Option<&str>> = row
                .iter()
                .zip(cats)
                .flat_map(|(n, c)| std::iter::repeat_n(Some(c), *n as usize))
                .collect();
            acc.add(&values);
        }
        let names: Vec<String> = (0..14).map(|i| format!("r{i}")).collect();
        let f = acc.finish("enum", &names);
        assert_eq!(f.kappa_method, "fleiss");
        assert_eq!(f.rows, 10);
        assert_eq!(f.kappa, Some(0.2099), "(0.378 - 0.2128) / (1 - 0.2128)");
        assert_eq!(f.agreement, Some(0.1), "only subject 1 is unanimous");
    }

    /// Cohen's kappa of Wikipedia's worked example: 50 items, yes/yes 20, yes/no 5, no/yes 10,
    /// no/no 15: p_o = 0.7, p_e = 0.5, kappa = 0.4.
    #[test]
    fn cohen_kappa_of_the_textbook_table() {
        let mut acc = FieldAcc::new(2);
        let cells = [
            (("yes", "yes"), 20),
            (("yes", "no"), 5),
            (("no", "yes"), 10),
            (("no", "no"), 15),
        ];
        for ((a, b), n) in cells {
            for _ in 0..n {
                acc.add(&[Some(a), Some(b)]);
            }
        }
        acc.add(&[Some("yes"), None]);
        let f = acc.finish("boolean", &["a".into(), "b".into()]);
        assert_eq!((f.rows, f.agreement, f.kappa), (50, Some(0.7), Some(0.4)));
        assert_eq!(f.counts["yes"]["a"], 26, "counts include incomplete rows");
        assert_eq!(f.counts["yes"]["b"], 30);
    }

    #[test]
    fn unanimous_single_category_has_no_kappa_and_majority_breaks_ties_by_rater_order() {
        let mut acc = FieldAcc::new(3);
        acc.add(&[Some("x"), Some("x"), Some("x")]);
        let f = acc.finish("enum", &["a".into(), "b".into(), "c".into()]);
        assert_eq!((f.agreement, f.kappa), (Some(1.0), None));
        assert_eq!(majority(&[Some("a"), Some("b"), Some("b")]), Some("b"));
        assert_eq!(majority(&[Some("a"), Some("b"), None]), Some("a"));
        assert_eq!(majority(&[None, None]), None);
    }
}
