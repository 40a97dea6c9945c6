//! The run's price table, refreshed once when a charge shows it understates a model's price:
//! `/models` is fetched again (not from the disk cache) in the background, never blocking the
//! run; on success the fresh table prices later worst cases and the table cost, and the budget
//! restates what is in flight in its terms; on failure the learned ratios stay the guard.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use rust_decimal::Decimal;

use super::{ModelPrice, PriceTable, worst_case};
use crate::budget::{Budget, Repriced, Worst};
use crate::client::Client;

/// One price table generation: 0 is the table the run started with, 1 the refreshed one.
#[derive(Debug, Clone)]
pub struct Priced {
    /// The table.
    pub table: Arc<PriceTable>,
    /// Its generation (what the budget needs to count a worst case priced at it).
    pub generation: usize,
}

impl Deref for Priced {
    type Target = PriceTable;
    fn deref(&self) -> &PriceTable {
        &self.table
    }
}

/// The price table of a run, refreshable once.
#[derive(Debug)]
pub struct LivePrices {
    current: RwLock<Priced>,
    refresh_started: AtomicBool,
}

impl Default for LivePrices {
    fn default() -> Self {
        LivePrices::new(PriceTable::default())
    }
}

impl LivePrices {
    /// The run's first table (generation 0).
    pub fn new(table: PriceTable) -> LivePrices {
        LivePrices {
            current: RwLock::new(Priced {
                table: Arc::new(table),
                generation: 0,
            }),
            refresh_started: AtomicBool::new(false),
        }
    }

    /// The table in use now.
    pub fn current(&self) -> Priced {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// An attempt's worst case at the current table, with the generation it was priced at
    /// (see [`worst_case`]).
    pub fn worst_case(
        &self,
        model: &str,
        messages: &[serde_json::Value],
        cap: Option<u64>,
    ) -> Option<Worst> {
        let priced = self.current();
        worst_case(&priced, model, messages, cap).map(|amount| Worst {
            amount,
            generation: priced.generation,
        })
    }

    /// Starts the run's one refresh in the background (false: it already started).
    pub fn refresh_once(self: &Arc<Self>, client: &Client, budget: &Budget) -> bool {
        if self.refresh_started.swap(true, Ordering::SeqCst) {
            return false;
        }
        tracing::warn!("re-fetching /models once: the price table understates a charge");
        let (me, client, budget) = (self.clone(), client.clone(), budget.clone());
        tokio::spawn(async move { me.refresh(&client, &budget).await });
        true
    }

    /// Fetches `/models` (bypassing the disk cache, which it updates) and adopts it; on
    /// failure keeps the table and returns false.
    pub async fn refresh(&self, client: &Client, budget: &Budget) -> bool {
        let fresh = PriceTable::fetch(client).await;
        if let Some(e) = &fresh.error {
            tracing::warn!("the price refresh failed ({e}); the learned price ratios stay");
            return false;
        }
        self.adopt(fresh, budget);
        true
    }

    /// Makes `fresh` the table in use and restates the budget's reservations in its terms.
    /// A model the fresh table lacks, or prices in a way that cannot be compared (a price
    /// that became or stopped being zero), keeps its old price. Returns the new generation.
    pub fn adopt(&self, fresh: PriceTable, budget: &Budget) -> usize {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let mut table = fresh;
        let mut repriced = HashMap::new();
        for (model, before) in &current.table.models {
            match table
                .models
                .get(model)
                .and_then(|after| before.repriced(after))
            {
                Some(r) if r.old_to_new == Decimal::ONE && r.new_to_old == Decimal::ONE => {}
                Some(r) => {
                    repriced.insert(model.clone(), r);
                }
                None => {
                    table.models.insert(model.clone(), before.clone());
                }
            }
        }
        // The budget moves first, under the table's lock: a worst case priced at either
        // table is counted in the right terms.
        let generation = budget.adopt_prices(&repriced);
        tracing::warn!(
            "prices refreshed from /models: {}",
            describe(repriced.keys().map(String::as_str))
        );
        *current = Priced {
            table: Arc::new(table),
            generation,
        };
        generation
    }
}

/// "N model(s) repriced: a, b, ..." (the first few by name).
fn describe<'a>(models: impl Iterator<Item = &'a str>) -> String {
    const SHOWN: usize = 8;
    let mut names: Vec<&str> = models.collect();
    if names.is_empty() {
        return "no price changed".to_string();
    }
    names.sort_unstable();
    let more = names.len().saturating_sub(SHOWN);
    let mut s = format!("{} model(s) repriced: ", names.len());
    s.push_str(&names[..names.len().min(SHOWN)].join(", "));
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s
}

impl ModelPrice {
    /// Bounds of the cost ratio between this price and `new` for any token counts; `None`
    /// when a component is zero in one and not in the other (no bound).
    pub fn repriced(&self, new: &ModelPrice) -> Option<Repriced> {
        // Decimal division rounds: a hair of slack keeps an inexact bound an upper bound.
        let bound = |a: Decimal, b: Decimal| -> Option<Decimal> {
            let q = a.checked_div(b)?;
            Some(if q.checked_mul(b) == Some(a) {
                q
            } else {
                q + Decimal::new(1, 20)
            })
        };
        let mut r = Repriced {
            old_to_new: Decimal::ZERO,
            new_to_old: Decimal::ZERO,
        };
        for (old, new) in [
            (self.prompt, new.prompt),
            (self.completion, new.completion),
            (self.request, new.request),
        ] {
            match (old.is_zero(), new.is_zero()) {
                (true, true) => {}
                (false, false) => {
                    r.old_to_new = r.old_to_new.max(bound(new, old)?);
                    r.new_to_old = r.new_to_old.max(bound(old, new)?);
                }
                _ => return None,
            }
        }
        if r.old_to_new.is_zero() {
            // Free before and after.
            r.old_to_new = Decimal::ONE;
            r.new_to_old = Decimal::ONE;
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn price(prompt: &str, completion: &str, request: &str) -> ModelPrice {
        ModelPrice {
            prompt: d(prompt),
            completion: d(completion),
            request: d(request),
            context_length: Some(1000),
            max_completion_tokens: None,
            tokenizer: None,
        }
    }

    fn table(entries: &[(&str, ModelPrice)]) -> PriceTable {
        PriceTable {
            models: entries
                .iter()
                .map(|(m, p)| (m.to_string(), p.clone()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn repricing_bounds_every_token_mix_both_ways() {
        let old = price("0.000001", "0.000002", "0.005");
        let new = price("0.000004", "0.000001", "0.005");
        let r = old.repriced(&new).unwrap();
        assert_eq!(r.old_to_new, d("4"));
        assert_eq!(r.new_to_old, d("2"));
        for (pt, ct) in [(0, 0), (1000, 0), (0, 1000), (123, 4567)] {
            let (o, n) = (old.cost(pt, ct), new.cost(pt, ct));
            assert!(n <= o * r.old_to_new && o <= n * r.new_to_old);
        }
        // A price that became free (or stopped being free) has no bound.
        assert!(old.repriced(&price("0", "0.000002", "0.005")).is_none());
        assert!(
            price("0", "0", "0")
                .repriced(&price("0", "0", "0"))
                .is_some()
        );
    }

    #[test]
    fn adopting_a_fresh_table_moves_the_generation_and_keeps_what_it_cannot_compare() {
        let live = LivePrices::new(table(&[
            ("a", price("0.000001", "0.000001", "0")),
            ("b", price("0.000001", "0.000001", "0")),
            ("gone", price("0.000001", "0.000001", "0")),
        ]));
        let budget = Budget::new(None, Decimal::ZERO);
        let fresh = table(&[
            ("a", price("0.000004", "0.000004", "0")),
            ("b", price("0", "0.000001", "0")),
        ]);
        assert_eq!(live.adopt(fresh, &budget), 1);
        let now = live.current();
        assert_eq!(now.generation, 1);
        assert_eq!(now.get("a").unwrap().prompt, d("0.000004"));
        assert_eq!(
            now.get("b").unwrap().prompt,
            d("0.000001"),
            "not comparable: kept"
        );
        assert!(
            now.get("gone").is_some(),
            "missing from the fresh table: kept"
        );
        let w = live.worst_case("a", &[], Some(10)).unwrap();
        assert_eq!(w.generation, 1);
        assert_eq!(w.amount, d("0.000004") * Decimal::from(16 + 10));
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_table_and_the_learned_ratio() {
        let live = LivePrices::new(table(&[("a", price("0.000001", "0.000001", "0"))]));
        let budget = Budget::new(Some(d("1")), Decimal::ZERO);
        let r = budget.try_reserve("a", d("0.01")).unwrap();
        assert!(budget.learn("a", Some(d("0.03")), Some(d("0.01"))));
        budget.settle(r, Some(d("0.03")));
        // Nothing listens on port 1 of the loopback: the fetch fails at once.
        let client = Client::new("http://127.0.0.1:1/api/v1", None, Duration::from_secs(2), 1)
            .expect("a client");
        assert!(!live.refresh(&client, &budget).await);
        assert_eq!(live.current().generation, 0);
        assert_eq!(live.current().get("a").unwrap().prompt, d("0.000001"));
        assert_eq!(
            budget.ratio("a"),
            d("3"),
            "the learned ratio stays the guard"
        );
    }
}
