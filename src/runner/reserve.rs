//! A pair's budget reservation: the worst case of its next attempt, waiting for attempts in
//! flight to settle when it does not fit yet.

use tokio_util::sync::CancellationToken;

use crate::budget::{Budget, Reservation, Worst};

/// Reserves `worst` for `model`; when it does not fit while other attempts hold reservations,
/// waits for them to settle (they usually cost less than their worst case) before giving up.
/// Each settle wakes it (no polling); `None` when nothing is in flight and it still does not
/// fit, or when the run stops.
pub(crate) async fn reserve(
    budget: &Budget,
    stop: &CancellationToken,
    model: &str,
    worst: impl Into<Worst>,
) -> Option<Reservation> {
    let worst = worst.into();
    let fits = budget.wait_until(|| match budget.try_reserve(model, worst) {
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
}
