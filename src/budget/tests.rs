//! The budget's accounting tests.

use std::collections::HashMap;

use super::*;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn never_over_cap() {
    let b = Budget::new(Some(Decimal::new(10, 0)), Decimal::new(4, 0));
    let r1 = b.try_reserve("m", Decimal::new(5, 0)).unwrap();
    b.learn("m", None, None);
    assert!(b.try_reserve("m", Decimal::new(2, 0)).is_none());
    b.settle(r1, Some(Decimal::new(1, 0)));
    assert_eq!(b.spent(), Decimal::new(5, 0));
    let r2 = b.try_reserve("m", Decimal::new(5, 0)).unwrap();
    b.settle(r2, None);
    assert_eq!(b.spent(), Decimal::new(10, 0));
    assert!(b.try_reserve("m", Decimal::new(1, 6)).is_none());
}

#[test]
fn a_dropped_reservation_counts_its_worst_case() {
    let b = Budget::new(Some(d("10")), Decimal::ZERO);
    let r = b.try_reserve("m", d("3")).unwrap();
    drop(r);
    assert_eq!(b.spent(), d("3"));
    assert_eq!(b.reserved(), Decimal::ZERO);
    assert_eq!(b.in_flight(), 0);
}

#[tokio::test]
async fn an_aborted_task_holding_a_reservation_leaves_its_worst_case_counted() {
    let b = Budget::new(Some(d("10")), Decimal::ZERO);
    let r = b.try_reserve("m", d("4")).unwrap();
    let task = tokio::spawn(async move {
        let _held = r;
        std::future::pending::<()>().await;
    });
    tokio::task::yield_now().await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(
        b.spent(),
        d("4"),
        "the aborted attempt may have been billed"
    );
    assert_eq!(b.reserved(), Decimal::ZERO);
}

#[test]
fn a_model_is_calibrated_by_one_answer_before_more_are_reserved() {
    let b = Budget::new(Some(d("100")), Decimal::ZERO);
    let r = b.try_reserve("m", d("1")).unwrap();
    assert!(b.try_reserve("m", d("1")).is_none(), "one in flight");
    // A retry (its first attempt failed unbilled) is not held back by the gate.
    let retry = b.try_reserve_retry("m", d("1")).unwrap();
    b.settle(retry, Some(Decimal::ZERO));
    // Another model is independent.
    let other = b.try_reserve("o", d("1")).unwrap();
    // The first answer costs 4x its table price.
    assert!(b.learn("m", Some(d("0.4")), Some(d("0.1"))));
    b.settle(r, Some(d("0.4")));
    assert_eq!(b.ratio("m"), d("4"));
    let r = b.try_reserve("m", d("2")).unwrap();
    assert_eq!(b.reserved(), d("9"), "2 x 4 + 1");
    b.settle(r, Some(Decimal::ZERO));
    b.settle(other, Some(Decimal::ZERO));
    // Without a cap nothing waits.
    let free = Budget::new(None, Decimal::ZERO);
    let a = free.try_reserve("m", d("1")).unwrap();
    let c = free.try_reserve("m", d("1")).unwrap();
    free.settle(a, None);
    free.settle(c, None);
    assert_eq!(free.spent(), d("2"));
}

#[test]
fn a_ratio_rise_re_checks_the_reservations_in_flight() {
    let b = Budget::new(Some(d("10")), Decimal::ZERO);
    let first = b.try_reserve("m", d("1")).unwrap();
    b.learn("m", Some(d("1")), Some(d("1")));
    b.settle(first, Some(d("1")));
    let held: Vec<_> = (0..4)
        .map(|_| b.try_reserve("m", d("2")).unwrap())
        .collect();
    assert_eq!(b.reserved(), d("8"));
    // An answer shows the prices are 2x too low: the 4 in flight now count at 4 each.
    assert!(b.learn("m", Some(d("2")), Some(d("1"))));
    assert_eq!(b.reserved(), d("16"));
    assert!(b.try_reserve("m", d("0.01")).is_none(), "no new attempt");
    for r in held {
        b.settle(r, None);
    }
    assert_eq!(b.spent(), d("17"));
}

#[tokio::test(start_paused = true)]
async fn a_waiter_is_woken_by_a_settle_without_time_passing() {
    let b = Budget::new(Some(d("10")), Decimal::ZERO);
    let r = b.try_reserve("m", d("8")).unwrap();
    b.learn("m", None, None);
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.wait_until(|| b.try_reserve("m", d("5"))).await })
    };
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    let t = tokio::time::Instant::now();
    b.settle(r, Some(d("1")));
    let got = waiter.await.unwrap();
    assert_eq!(t.elapsed(), std::time::Duration::ZERO);
    b.settle(got, Some(d("1")));
    assert_eq!(b.spent(), d("2"));
}

#[test]
fn a_refreshed_table_restates_the_ratio_and_nothing_in_flight_counts_less() {
    let b = Budget::new(Some(d("100")), Decimal::ZERO);
    let first = b.try_reserve("m", d("1")).unwrap();
    // The table says 0.1, the charge is 0.4: every reservation of m counts 4x.
    assert!(b.learn("m", Some(d("0.4")), Some(d("0.1"))));
    b.settle(first, Some(d("0.4")));
    let old = b.try_reserve("m", d("2")).unwrap();
    assert_eq!(b.reserved(), d("8"));
    // The fresh table has m at 4x the old prices: the ratio is 1 against it.
    let fresh = Repriced {
        old_to_new: d("4"),
        new_to_old: d("0.25"),
    };
    let generation = b.adopt_prices(&HashMap::from([("m".to_string(), fresh)]));
    assert_eq!(generation, 1);
    assert_eq!(b.ratio("m"), Decimal::ONE);
    assert_eq!(b.reserved(), d("8"), "the one in flight counts as before");
    // The same attempt priced at the fresh table: 8, counted once (not 8 x 4).
    let new = b
        .try_reserve(
            "m",
            Worst {
                amount: d("8"),
                generation,
            },
        )
        .unwrap();
    assert_eq!(b.reserved(), d("16"));
    // Another model kept its price and its units.
    let other = b.try_reserve("o", d("1")).unwrap();
    assert_eq!(b.reserved(), d("17"));
    b.settle(old, None);
    assert_eq!(b.spent(), d("8.4"), "unknown: the old worst case at 4x");
    b.settle(new, None);
    b.settle(other, Some(Decimal::ZERO));
    assert_eq!(b.spent(), d("16.4"));
    assert_eq!(b.reserved(), Decimal::ZERO);
}

#[test]
fn prices_that_fell_unevenly_never_lower_what_is_in_flight() {
    let b = Budget::new(Some(d("1000")), Decimal::ZERO);
    let first = b.try_reserve("m", d("1")).unwrap();
    b.learn("m", Some(d("2")), Some(d("1")));
    b.settle(first, Some(d("2")));
    let held = b.try_reserve("m", d("10")).unwrap();
    assert_eq!(b.reserved(), d("20"));
    // One price doubled, another fell to a third: bounds 2 and 3 each way.
    b.adopt_prices(&HashMap::from([(
        "m".to_string(),
        Repriced {
            old_to_new: d("2"),
            new_to_old: d("3"),
        },
    )]));
    assert_eq!(b.ratio("m"), d("6"));
    assert!(b.reserved() >= d("20"), "{}", b.reserved());
    drop(held);
    assert!(b.spent() >= d("22"));
}
