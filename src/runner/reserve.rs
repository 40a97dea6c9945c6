//! A pair's budget reservation: the worst case of its next attempt, waiting for attempts in
//! flight to settle when it does not fit yet.

use tokio_util::sync::CancellationToken;

use crate::budget::{Budget, Reservation, Worst};

/// Reserves `worst` for `model`'s first attempt of a pair; when it does not fit while other
/// attempts hold reservations, waits for them to settle (they usually cost less than their worst
/// case) before giving up. Each settle wakes it (no polling); `None` when nothing is in flight
/// and it still does not fit, or when the run stops.
pub(crate) async fn reserve(
    budget: &Budget,
    stop: &CancellationToken,
    model: &str,
    worst: impl Into<Worst>,
) -> Option<Reservation> {
    let worst = worst.into();
    wait_for_room(budget, stop, || budget.try_reserve(model, worst)).await
}

/// [`reserve`] for the next attempt of a pair that already went out (a retry, a re-ask, a
/// judge's retry): it waits for room the same way, without the one-at-a-time rule of a model
/// not calibrated yet. Giving up at the first refusal stopped whole runs early while the
/// reservations in flight would have settled well under their worst cases.
pub(crate) async fn reserve_retry(
    budget: &Budget,
    stop: &CancellationToken,
    model: &str,
    worst: impl Into<Worst>,
) -> Option<Reservation> {
    let worst = worst.into();
    wait_for_room(budget, stop, || budget.try_reserve_retry(model, worst)).await
}

/// Tries `try_reserve` now and after each settle until it fits, nothing is in flight (it never
/// will), or the run stops.
async fn wait_for_room(
    budget: &Budget,
    stop: &CancellationToken,
    mut try_reserve: impl FnMut() -> Option<Reservation>,
) -> Option<Reservation> {
    let fits = budget.wait_until(|| match try_reserve() {
        Some(r) => Some(Some(r)),
        None if budget.in_flight() == 0 => Some(None),
        None => None,
    });
    tokio::select! {
        biased;
        _ = stop.cancelled() => None,
        r = fits => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_reservation_waiting_near_the_cap_is_woken_by_a_settle() {
        let budget = Budget::new(Some(Decimal::from(10)), Decimal::ZERO);
        let stop = CancellationToken::new();
        let held = budget.try_reserve("m", Decimal::from(8)).unwrap();
        budget.learn("m", None, None);
        let waiter = {
            let (b, s) = (budget.clone(), stop.clone());
            tokio::spawn(async move { reserve(&b, &s, "m", Decimal::from(5)).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        let t = tokio::time::Instant::now();
        budget.settle(held, Some(Decimal::ONE));
        let got = waiter.await.unwrap();
        assert_eq!(
            t.elapsed(),
            Duration::ZERO,
            "woken by the settle, not a timer"
        );
        let Some(got) = got else {
            panic!("the reservation fits after the settle")
        };
        budget.settle(got, Some(Decimal::ONE));
        // Nothing in flight and still no room: give up at once; a stop ends the wait.
        assert!(
            reserve(&budget, &stop, "m", Decimal::from(100))
                .await
                .is_none()
        );
        stop.cancel();
        assert!(
            reserve(&budget, &stop, "m", Decimal::from(1))
                .await
                .is_none()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_waits_for_room_instead_of_giving_up_and_skips_the_first_answer_rule() {
        let budget = Budget::new(Some(Decimal::from(10)), Decimal::ZERO);
        let stop = CancellationToken::new();
        // The model's first attempt is in flight and nothing has settled: a first attempt of
        // another pair is held back, a retry is not.
        let held = budget.try_reserve("m", Decimal::from(4)).unwrap();
        assert!(budget.try_reserve("m", Decimal::ONE).is_none());
        let retry = reserve_retry(&budget, &stop, "m", Decimal::from(4)).await;
        let Some(retry) = retry else {
            panic!("a retry is not held back by the first-answer rule")
        };
        // 8 of 10 reserved: a retry of 4 does not fit yet, and waits for a settle.
        let waiter = {
            let (b, s) = (budget.clone(), stop.clone());
            tokio::spawn(async move { reserve_retry(&b, &s, "m", Decimal::from(4)).await })
        };
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "it waits while attempts are in flight"
        );
        budget.settle(held, Some(Decimal::ONE));
        let Some(got) = waiter.await.unwrap() else {
            panic!("room was freed by the settle")
        };
        budget.settle(got, Some(Decimal::ONE));
        budget.settle(retry, Some(Decimal::ONE));
        // Nothing in flight and no room: it gives up at once.
        assert!(
            reserve_retry(&budget, &stop, "m", Decimal::from(8))
                .await
                .is_none()
        );
    }
}
