//! Model slugs checked against `/models` before anything is sent: an unknown slug is refused
//! with the nearest known one ("did you mean ...?"), and a bare OpenAI name (`gpt-4o-mini`,
//! as OpenAI Batch files have them) is mapped to the one slug that ends with `/gpt-4o-mini`.

use crate::prices::PriceTable;

/// What the check found for a job's models.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SlugCheck {
    /// Bare names mapped to the one listed slug ending with them: (bare, slug).
    pub mapped: Vec<(String, String)>,
    /// Models `/models` does not list: (model, the nearest listed slug, if any is close).
    pub unknown: Vec<(String, Option<String>)>,
}

impl SlugCheck {
    /// The refusal message for the unknown models, `None` when there are none.
    pub fn refusal(&self) -> Option<String> {
        if self.unknown.is_empty() {
            return None;
        }
        let lines: Vec<String> = self
            .unknown
            .iter()
            .map(|(m, near)| match near {
                Some(n) => format!("unknown model {m}: did you mean {n}?"),
                None => format!("unknown model {m}: `orbatch models` lists the known ones"),
            })
            .collect();
        Some(format!(
            "{}\n(checked against the endpoint's /models before sending anything; pass --allow-unknown-models if its list is incomplete)",
            lines.join("\n")
        ))
    }
}

/// Checks `models` against `table`. A table that could not be fetched (or is empty) checks
/// nothing: the endpoint has no usable list.
pub fn check(models: &[String], table: &PriceTable) -> SlugCheck {
    let mut out = SlugCheck::default();
    if table.error.is_some() || (table.models.is_empty() && table.unpriced.is_empty()) {
        return out;
    }
    let known = || table.models.keys().chain(table.unpriced.iter());
    for model in models {
        if known().any(|k| k == model) {
            continue;
        }
        if !model.contains('/') {
            let suffix = format!("/{model}");
            let ends: Vec<&String> = known().filter(|k| k.ends_with(&suffix)).collect();
            if let [only] = ends.as_slice() {
                out.mapped.push((model.clone(), (*only).clone()));
                continue;
            }
        }
        let nearest = known()
            .map(|k| (distance(model, k), k))
            .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
            .filter(|(d, _)| *d <= model.chars().count().div_ceil(3).max(2))
            .map(|(_, k)| k.clone());
        out.unknown.push((model.clone(), nearest));
    }
    out
}

/// Levenshtein edit distance, in characters.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(slugs: &[&str]) -> PriceTable {
        PriceTable {
            unpriced: slugs.iter().map(|s| s.to_string()).collect(),
            ..PriceTable::default()
        }
    }

    #[test]
    fn edit_distance() {
        assert_eq!(distance("gpt4o-mini", "gpt-4o-mini"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("same", "same"), 0);
    }

    #[test]
    fn an_unknown_slug_gets_the_nearest_one() {
        let t = table(&[
            "openai/gpt-4o-mini",
            "openai/gpt-4o",
            "anthropic/claude-3.5-haiku",
        ]);
        let c = check(&["openai/gpt4o-mini".to_string()], &t);
        assert_eq!(
            c.unknown,
            vec![(
                "openai/gpt4o-mini".to_string(),
                Some("openai/gpt-4o-mini".to_string())
            )]
        );
        let msg = c.refusal().unwrap();
        assert!(msg.contains("did you mean openai/gpt-4o-mini?"), "{msg}");
        let far = check(&["zzz/qqqqqqqqq".to_string()], &t);
        assert_eq!(far.unknown[0].1, None);
    }

    #[test]
    fn a_bare_name_maps_to_the_one_slug_ending_with_it() {
        let t = table(&["openai/gpt-4o-mini", "openai/gpt-4o", "x/gpt-4o"]);
        let c = check(&["gpt-4o-mini".to_string(), "gpt-4o".to_string()], &t);
        assert_eq!(
            c.mapped,
            vec![("gpt-4o-mini".to_string(), "openai/gpt-4o-mini".to_string())]
        );
        // Two slugs end with /gpt-4o: ambiguous, so unknown.
        assert_eq!(c.unknown.len(), 1);
        assert_eq!(c.unknown[0].0, "gpt-4o");
    }

    #[test]
    fn no_list_checks_nothing() {
        let t = PriceTable {
            error: Some("no /models".into()),
            ..PriceTable::default()
        };
        assert_eq!(check(&["a/b".to_string()], &t), SlugCheck::default());
        assert_eq!(
            check(&["a/b".to_string()], &PriceTable::default()),
            SlugCheck::default()
        );
    }
}
