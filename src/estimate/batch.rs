//! The live vs batch quote of an estimate: the same requests priced at the Batch API's price
//! (the `:batch` variant's price in `/models`), side by side with the live price, and the
//! wait to expect. A model without a `:batch` variant is "batch price unknown": never a guessed
//! discount.

use rust_decimal::Decimal;

use super::model::{Range, estimate_rest};
use super::report::{Inputs, Report, Usd};
use crate::job::batch::batch_variant;

/// What to expect of a batch's turnaround (the provider's figures).
pub const EXPECTED_WAIT: &str = "median about 7 min, 90% within an hour, at most 24 h";

/// The batch quote of an estimate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BatchQuote {
    /// Per model, in the report's order.
    pub models: Vec<ModelBatch>,
    /// The total at batch prices (`None` when a model's batch price is unknown).
    pub cost_usd: Option<Range<Option<Usd>>>,
    /// Models whose batch price is unknown (no `:batch` variant listed).
    pub price_unknown_models: Vec<String>,
    /// The wait to expect.
    pub expected_wait: &'static str,
}

/// One model's batch quote.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelBatch {
    /// The model.
    pub model: String,
    /// Its cost at the batch price (`None`: batch price unknown).
    pub cost_usd: Option<Range<Option<Usd>>>,
}

/// Prices the requests still to send at each model's batch price (the pilot's spend, already
/// paid, is added as in the live figures).
pub fn quote(inp: &Inputs) -> BatchQuote {
    let mut models = Vec::new();
    for (model, all) in &inp.tally.models {
        let mp = inp.pilot.as_ref().and_then(|p| p.cal.models.get(model));
        let rest = all.minus(&mp.map(|m| m.known).unwrap_or_default());
        let fit = mp.and_then(|m| m.fit());
        let factor = mp.map_or(Decimal::ONE, |m| m.cost_factor);
        let spent = mp.map_or(Decimal::ZERO, |m| m.spent);
        let cost = inp.prices.get(&batch_variant(model)).and_then(|bp| {
            let c = estimate_rest(&rest, Some(bp), fit.as_ref(), factor).cost?;
            let plus = |v: Option<Decimal>| v.map(|v| Usd(v + spent));
            Some(Range {
                low: plus(c.low),
                expected: plus(c.expected),
                high: plus(c.high),
            })
        });
        models.push(ModelBatch {
            model: model.clone(),
            cost_usd: cost,
        });
    }
    let unknown: Vec<String> = models
        .iter()
        .filter(|m| m.cost_usd.is_none())
        .map(|m| m.model.clone())
        .collect();
    let sum = |f: fn(&Range<Option<Usd>>) -> Option<Usd>| -> Option<Usd> {
        models
            .iter()
            .map(|m| m.cost_usd.as_ref().and_then(f).map(|u| u.0))
            .sum::<Option<Decimal>>()
            .map(Usd)
    };
    let cost_usd = unknown.is_empty().then(|| Range {
        low: sum(|r| r.low),
        expected: sum(|r| r.expected),
        high: sum(|r| r.high),
    });
    BatchQuote {
        models,
        cost_usd,
        price_unknown_models: unknown,
        expected_wait: EXPECTED_WAIT,
    }
}

/// The side-by-side table: live expected, batch expected / high, per model and total (the live
/// high is in the estimate's own table above; four columns fit 80).
pub fn render(r: &Report) -> String {
    let Some(q) = &r.batch else {
        return String::new();
    };
    let mut t = crate::output::table::new_table(
        false,
        &["model", "live expected", "batch expected", "batch high"],
        &[1, 2, 3],
    );
    let money = |v: Option<Usd>| v.map_or("unknown".into(), |u| crate::money::usd(u.0));
    let batch = |c: &Option<Range<Option<Usd>>>| match c {
        Some(c) => [money(c.expected), money(c.high)],
        None => ["unknown".into(), "unknown".into()],
    };
    for (live, b) in r.models.iter().zip(&q.models) {
        let [be, bh] = batch(&b.cost_usd);
        t.add_row([live.model.clone(), money(live.cost_usd.expected), be, bh]);
    }
    let [be, bh] = batch(&q.cost_usd);
    t.add_row(["TOTAL".into(), money(r.total.cost_usd.expected), be, bh]);
    let unknown = match q.price_unknown_models.is_empty() {
        true => String::new(),
        false => format!(
            "batch price unknown for {} (no :batch variant in /models; never guessed)\n",
            q.price_unknown_models.join(", ")
        ),
    };
    format!(
        "live vs batch (--mode batch; the :batch price from /models):\n{t}\n{unknown}batch wait: {}\n",
        q.expected_wait
    )
}
