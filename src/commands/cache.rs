//! `orbatch cache stats|clear|prune --older-than DAYS`: the response cache. Exit 0, or 2 when
//! the cache cannot be opened (the message names the file).

use super::error::CommandError;
use super::exit::Exit;
use super::print::{print_json, print_stdout};
use crate::cli::{CacheAction, CacheArgs};
use crate::money::usd;
use crate::transport::cache::{FILE_NAME, Stats, Store, default_dir};

pub(super) fn cache(a: CacheArgs) -> Result<Exit, CommandError> {
    let Some(dir) = a.cache_dir.clone().or_else(default_dir) else {
        return Err(anyhow::anyhow!(
            "no cache dir: set XDG_CACHE_HOME or HOME, or pass --cache-dir DIR"
        )
        .into());
    };
    let store = Store::open(&dir).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot open the response cache: {e} (delete the file to start a new one)",
            dir.join(FILE_NAME).display()
        )
    })?;
    let fail =
        |e: rusqlite::Error| CommandError::from(anyhow::anyhow!("{}: {e}", store.path().display()));
    match a.action {
        CacheAction::Stats => {
            let s = store.stats().map_err(fail)?;
            if a.json {
                print_json(&s)?;
            } else {
                print_stdout(&render(&s));
            }
        }
        CacheAction::Clear => report(store.prune(None).map_err(fail)?, &store, a.json)?,
        CacheAction::Prune { older_than } => {
            if !(older_than >= 0.0 && older_than.is_finite()) {
                return Err(anyhow::anyhow!(
                    "--older-than must be a non-negative number of days, got {older_than}"
                )
                .into());
            }
            report(store.prune(Some(older_than)).map_err(fail)?, &store, a.json)?
        }
    }
    Ok(Exit::Ok)
}

fn report(removed: u64, store: &Store, json: bool) -> serde_json::Result<()> {
    if json {
        print_json(&serde_json::json!({ "removed": removed, "path": store.path() }))
    } else {
        print_stdout(&format!(
            "removed {removed} entr{} from {}",
            if removed == 1 { "y" } else { "ies" },
            store.path().display()
        ));
        Ok(())
    }
}

fn render(s: &Stats) -> String {
    let when = |t: Option<i64>| {
        t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| "-".into())
    };
    format!(
        "cache: {}\nentries: {}\npaid for them: {}\nsize: {} bytes\noldest: {}\nnewest: {}",
        s.path.display(),
        s.entries,
        usd(s.paid_usd),
        s.bytes,
        when(s.oldest),
        when(s.newest)
    )
}
