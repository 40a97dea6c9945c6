//! The prompt variants a manifest records: each one's definition resolved over `[request]`, so
//! that a resume refuses a variant whose requests would differ (naming it) and accepts new ones
//! (a new name is a new variant; its keys were never sent). The manifest keeps every variant
//! ever run in the output dir, so one left out of a run and brought back changed is refused too.

use crate::job::Variant;

/// One phrase per field of a variant recorded in `old` that `new` defines differently.
pub(super) fn changes(old: &[Variant], new: &[Variant]) -> Vec<String> {
    let mut out = Vec::new();
    for now in new {
        let Some(was) = old.iter().find(|v| v.name == now.name) else {
            continue;
        };
        let mut cmp = |field: &str, a: String, b: String| {
            if a != b {
                out.push(format!(
                    "variant {}: {field}: was {a}, now {b} (give a changed variant a new name)",
                    now.name
                ));
            }
        };
        cmp("system", json(&was.system), json(&now.system));
        cmp("prompt", json(&was.prompt), json(&now.prompt));
        cmp("max_tokens", json(&was.max_tokens), json(&now.max_tokens));
        cmp(
            "temperature",
            json(&was.temperature),
            json(&now.temperature),
        );
        cmp("extra", json(&was.extra), json(&now.extra));
    }
    out
}

/// `old`'s variants followed by those of `new` it lacks: what the manifest keeps.
pub(super) fn union(old: &[Variant], new: &[Variant]) -> Vec<Variant> {
    let mut all = old.to_vec();
    all.extend(
        new.iter()
            .filter(|v| !old.iter().any(|o| o.name == v.name))
            .cloned(),
    );
    all
}

fn json<T: serde::Serialize>(v: &T) -> String {
    super::erased::Json::json(v)
}
