//! `--fresh`: start over without losing what was paid for. The previous `results.jsonl` is
//! kept as `results.jsonl.<UTC timestamp>`, and its spend keeps counting against
//! `budget_usd` (recorded in the new manifest as `carried_spend_usd`) unless
//! `--forget-spend`.

use std::path::{Path, PathBuf};

use rust_decimal::Decimal;

use crate::manifest::{MANIFEST, Manifest};
use crate::output::summary::{SummaryMeta, summarize};

/// The spend earlier (`--fresh`) runs left in `dir`, as its manifest records it (zero when
/// there is none).
pub(crate) fn carried_spend(dir: &Path) -> Decimal {
    std::fs::read(dir.join(MANIFEST))
        .ok()
        .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
        .and_then(|m| m.carried_spend_usd)
        .unwrap_or_default()
}

/// The spend earlier runs left in `dir` that the coming run's budget counts: the manifest's
/// carried spend, plus, for `--fresh` (unless `--forget-spend`), what the results about to
/// be set aside cost. The pre-flight asks before [`start_fresh`] moves anything.
pub fn spend_to_carry(dir: &Path, fresh: bool, forget_spend: bool) -> Decimal {
    if !fresh {
        return carried_spend(dir);
    }
    if forget_spend {
        return Decimal::ZERO;
    }
    let results = dir.join("results.jsonl");
    let spent = match std::fs::metadata(&results) {
        Ok(m) if m.len() > 0 => summarize(std::slice::from_ref(&results), &SummaryMeta::default())
            .map(|s| s.cost_usd.total)
            .unwrap_or_default(),
        _ => Decimal::ZERO,
    };
    carried_spend(dir) + spent
}

/// Sets `dir` aside for a fresh start: keeps `results.jsonl` as `results.jsonl.<timestamp>`
/// (saying so), removes the files derived from it, and returns the spend to carry on.
pub(crate) fn start_fresh(dir: &Path, forget_spend: bool) -> Result<Decimal, String> {
    let mut carried = if forget_spend {
        Decimal::ZERO
    } else {
        carried_spend(dir)
    };
    let results = dir.join("results.jsonl");
    let kept = match std::fs::metadata(&results) {
        Ok(m) if m.len() > 0 => Some(archive_name(dir)),
        _ => None,
    };
    if let Some(kept) = &kept {
        let spent = summarize(std::slice::from_ref(&results), &SummaryMeta::default())
            .map(|s| s.cost_usd.total)
            .map_err(|e| format!("--fresh: cannot read {}: {e}", results.display()))?;
        std::fs::rename(&results, kept).map_err(|e| {
            format!(
                "--fresh: cannot keep {} as {}: {e}",
                results.display(),
                kept.display()
            )
        })?;
        let counted = if forget_spend {
            "no longer counted against budget_usd (--forget-spend)".to_string()
        } else {
            carried += spent;
            "still counted against budget_usd; --forget-spend stops counting it".to_string()
        };
        eprintln!(
            "orbatch: --fresh: the previous results are kept as {} ({} spent, {counted})",
            kept.display(),
            crate::money::usd(spent)
        );
    }
    for name in ["results.jsonl", "results.csv", "summary.json", MANIFEST] {
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("--fresh: cannot remove {name}: {e}")),
        }
    }
    Ok(carried)
}

/// `results.jsonl.<YYYYMMDDTHHMMSSZ>`, with `-2`, `-3`... when that name is taken.
fn archive_name(dir: &Path) -> PathBuf {
    let t = time::OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let base = dir.join(format!("results.jsonl.{stamp}"));
    let mut candidate = base.clone();
    let mut n = 2;
    while candidate.exists() {
        candidate = dir.join(format!("results.jsonl.{stamp}-{n}"));
        n += 1;
    }
    candidate
}
