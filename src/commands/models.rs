//! `orbatch models [FILTER]`: the models of `GET /models` with their prices. Exit 0, 2 or 4.

use rust_decimal::Decimal;

use super::error::{CommandError, answer};
use super::exit::Exit;
use super::print::{print_json, print_stdout};
use super::resolve::{endpoint, query_client};
use crate::api::ModelEntry;
use crate::cli::ModelsArgs;
use crate::prices::PriceTable;

pub(super) async fn models(a: ModelsArgs) -> Result<Exit, CommandError> {
    let endpoint = endpoint(&a.query.api, &a.query.base_url).await?;
    let entries = answer("GET /models", query_client(&endpoint)?.models().await)?;
    let filter = a.filter.as_deref().unwrap_or("").to_ascii_lowercase();
    let table = PriceTable::from_entries(&entries);
    let mut rows: Vec<&ModelEntry> = entries
        .iter()
        .filter(|e| e.id.to_ascii_lowercase().contains(&filter))
        .collect();
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    if rows.is_empty() && !filter.is_empty() {
        return Err(anyhow::anyhow!(
            "no model matches {:?} (of {} listed); `orbatch models` lists them all",
            a.filter.as_deref().unwrap_or(""),
            entries.len()
        )
        .into());
    }
    if a.query.json {
        let v: Vec<_> = rows
            .iter()
            .map(|e| serde_json::json!({"id": e.id, "price": table.get(&e.id)}))
            .collect();
        print_json(&v)?;
    } else {
        print_stdout(&render(&rows, &table));
    }
    Ok(Exit::Ok)
}

/// The human table: prices per million tokens, per request, and the limits.
fn render(rows: &[&ModelEntry], table: &PriceTable) -> String {
    let mut t = crate::output::table::new_table(
        false,
        &[
            "model",
            "$/M prompt",
            "$/M completion",
            "$/request",
            "context",
            "max completion",
        ],
        &[1, 2, 3, 4, 5],
    );
    let million = Decimal::from(1_000_000);
    for e in rows {
        match table.get(&e.id) {
            Some(p) => t.add_row([
                e.id.clone(),
                (p.prompt * million).normalize().to_string(),
                (p.completion * million).normalize().to_string(),
                p.request.normalize().to_string(),
                p.context_length.map_or("-".into(), |c| c.to_string()),
                p.max_completion_tokens
                    .map_or("-".into(), |c| c.to_string()),
            ]),
            None => t.add_row([
                e.id.clone(),
                "price unknown".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
            ]),
        };
    }
    t.to_string()
}
