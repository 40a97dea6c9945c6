//! The end-of-run sweep: generation records that were not there yet when their pair finished
//! are looked up once more, and an updated line is appended for each one found.

use std::time::Duration;

use rust_decimal::Decimal;

use super::{Ctx, Deferred, lookup, writer};
use crate::output::{CostSource, ResultLine};

/// Looks up once more the generations that were not there yet, and appends an updated line
/// for each one found (the latest line wins). The others keep their price-table cost. Every
/// pending look-up is tried together (within the look-up budget) at 0, 1 and 3 s, so the sweep
/// takes seconds however many there are.
pub(crate) async fn sweep_deferred(ctx: &Ctx, tx: &writer::Sink) {
    let mut pending = std::mem::take(&mut *ctx.deferred.lock().unwrap_or_else(|e| e.into_inner()));
    // A server found to have no usable /generation has nothing to sweep.
    if pending.is_empty()
        || ctx.abort.is_cancelled()
        || ctx
            .lookups
            .disabled
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        return;
    }
    tracing::info!("sweeping {} pending generation look-ups", pending.len());
    for wait in [0u64, 1000, 2000] {
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let found = futures_util::future::join_all(
            pending.iter().map(|d| lookup::once(ctx, &d.generation_id)),
        )
        .await;
        let mut missing = Vec::new();
        for (d, g) in pending.into_iter().zip(found) {
            match g {
                Ok(g) => {
                    if let Some(line) = with_generation(d, g) {
                        tx.send(line).await;
                    }
                }
                Err(_) => missing.push(d),
            }
        }
        pending = missing;
    }
}

/// A deferred line updated with its generation record (None when the record has no cost).
fn with_generation(d: Deferred, g: crate::api::Generation) -> Option<ResultLine> {
    let total = g.total_cost?;
    let mut line = d.line;
    // Replace the stand-in table cost by the charge.
    let stand_in = if line.cost_source == Some(CostSource::PriceTable) {
        d.table.unwrap_or_default()
    } else {
        Decimal::ZERO
    };
    line.cost_usd = Some(line.cost_usd.unwrap_or_default() - stand_in + total);
    line.cost_source = Some(CostSource::Generation);
    line.cost_mismatch = d.table.is_some_and(|t| crate::prices::mismatch(total, t));
    if line.provider.is_none() {
        line.provider = g.provider_name;
    }
    line.finished_at = None;
    Some(line)
}
