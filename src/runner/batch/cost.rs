//! A batch's charge split back onto its items. An item that carries its own `usage.cost`
//! keeps it. The rest of the batch's `usage.cost` (its charge less those) is split over the
//! other items in proportion to their tokens at the batch price, each share rounded down to
//! [`DP`] places and the rounding remainder on the last item with a share, so the items sum
//! exactly to what the batch was billed.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::prices::ModelPrice;

/// Decimal places of a split share.
pub const DP: u32 = 15;

/// What one item reported.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ItemUsage {
    /// Its own `usage.cost`, when it carries one.
    pub own: Option<Decimal>,
    /// Prompt tokens (0 when unknown).
    pub prompt_tokens: u64,
    /// Completion tokens (0 when unknown).
    pub completion_tokens: u64,
}

/// Each item's cost (`None`: unknown, when neither the item nor the batch reports one).
/// `batch_cost` is the batch's `usage.cost`; `price` the batch price (else the live one;
/// without either the split goes by tokens).
pub fn split(
    batch_cost: Option<Decimal>,
    items: &[ItemUsage],
    price: Option<&ModelPrice>,
) -> Vec<Option<Decimal>> {
    let mut out: Vec<Option<Decimal>> = items.iter().map(|i| i.own).collect();
    let Some(total) = batch_cost else {
        return out;
    };
    let rest_idx: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].own.is_none())
        .collect();
    if rest_idx.is_empty() {
        return out;
    }
    let own_sum: Decimal = items.iter().filter_map(|i| i.own).sum();
    let rest = (total - own_sum).max(Decimal::ZERO);
    let weight = |i: &ItemUsage| -> Decimal {
        let (p, c) = (
            Decimal::from(i.prompt_tokens),
            Decimal::from(i.completion_tokens),
        );
        match price {
            Some(m) if !(m.prompt.is_zero() && m.completion.is_zero()) => {
                m.prompt * p + m.completion * c
            }
            _ => p + c,
        }
    };
    let mut weights: Vec<Decimal> = rest_idx.iter().map(|&i| weight(&items[i])).collect();
    let mut sum: Decimal = weights.iter().sum();
    if sum.is_zero() {
        weights.iter_mut().for_each(|w| *w = Decimal::ONE);
        sum = Decimal::from(weights.len());
    }
    // The remainder goes to the last item with a share (a failed item with no tokens keeps 0).
    let last = weights.iter().rposition(|w| !w.is_zero()).unwrap_or(0);
    let mut given = Decimal::ZERO;
    for (k, &i) in rest_idx.iter().enumerate() {
        let share = if k == last {
            Decimal::ZERO
        } else {
            (rest * weights[k] / sum).round_dp_with_strategy(DP, RoundingStrategy::ToZero)
        };
        given += share;
        out[i] = Some(share);
    }
    out[rest_idx[last]] = Some(rest - given + Decimal::ZERO);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(own: Option<&str>, p: u64, c: u64) -> ItemUsage {
        ItemUsage {
            own: own.map(|s| s.parse().expect("decimal")),
            prompt_tokens: p,
            completion_tokens: c,
        }
    }

    fn price(p: &str, c: &str) -> ModelPrice {
        ModelPrice {
            prompt: p.parse().expect("decimal"),
            completion: c.parse().expect("decimal"),
            request: Decimal::ZERO,
            context_length: None,
            max_completion_tokens: None,
            tokenizer: None,
        }
    }

    #[test]
    fn shares_follow_tokens_at_the_price_and_sum_exactly() {
        let total: Decimal = "0.0000100000000000000001".parse().expect("decimal");
        let items = [
            usage(None, 10, 1),
            usage(None, 10, 1),
            usage(None, 7, 3),
            usage(None, 0, 0),
        ];
        let p = price("0.000000075", "0.0000003");
        let got = split(Some(total), &items, Some(&p));
        let sum: Decimal = got.iter().map(|c| c.expect("known")).sum();
        assert_eq!(sum, total, "rows sum exactly to the charge");
        assert_eq!(got[0], got[1], "equal tokens, equal shares");
        assert_eq!(got[3], Some(Decimal::ZERO), "no tokens, no share");
        // Proportional: item 2 weighs 7*0.075+3*0.3 = 1.425 against 1.05.
        assert!(got[2] > got[0]);
    }

    #[test]
    fn own_costs_are_kept_and_the_rest_is_split() {
        let items = [
            usage(Some("0.4"), 5, 5),
            usage(None, 1, 0),
            usage(None, 3, 0),
        ];
        let got = split(Some(Decimal::ONE), &items, None);
        assert_eq!(got[0], Some("0.4".parse().expect("d")));
        assert_eq!(got[1], Some("0.15".parse().expect("d")));
        assert_eq!(got[2], Some("0.45".parse().expect("d")));
        let unknown = split(None, &items, None);
        assert_eq!(unknown[1], None);
        let zero_tokens = split(
            Some(Decimal::ONE),
            &[usage(None, 0, 0), usage(None, 0, 0)],
            None,
        );
        assert_eq!(
            zero_tokens,
            vec![
                Some("0.5".parse().expect("d")),
                Some("0.5".parse().expect("d"))
            ]
        );
    }
}
