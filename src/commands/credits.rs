//! `orbatch credits`: the key's usage, limit and remaining credit (`GET /key`), and the
//! account's credits (`GET /credits`) when `OPENROUTER_MANAGEMENT_KEY` is set. Exit 0, 2 or 4.

use super::error::{CommandError, answer};
use super::exit::Exit;
use super::print::{print_json, print_stdout};
use super::resolve::{endpoint, query_client};
use crate::cli::CreditsArgs;

pub(super) async fn credits(a: CreditsArgs) -> Result<Exit, CommandError> {
    let endpoint = endpoint(&a.query.api, &a.query.base_url).await?;
    endpoint.require_key()?;
    let client = query_client(&endpoint)?;
    let key = answer("GET /key", client.key_info().await)?;
    let credits = match crate::endpoint::management_key() {
        Some(m) => match client.credits(&m).await {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("orbatch: GET /credits with OPENROUTER_MANAGEMENT_KEY failed: {e}");
                None
            }
        },
        None => None,
    };
    if a.query.json {
        print_json(&serde_json::json!({"key": key, "credits": credits}))?;
    } else {
        print_stdout(&crate::estimate::render_credits(&key, credits.as_ref()));
    }
    Ok(Exit::Ok)
}
