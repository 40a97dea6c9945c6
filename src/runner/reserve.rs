//! A pair's budget reservation: the worst case of its next attempt, waiting for attempts in
//! flight to settle when it does not fit yet.

use tokio_util::sync::CancellationToken;

use super::Ctx;
use crate::budget::{Budget, Reservation, Worst};

/// Which attempt of a pair a reservation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Its first attempt in this run: a model whose first answer has not settled yet sends
    /// one at a time (the budget's calibration rule).
    First,
    /// The next attempt of a pair that already went out (a retry, a re-ask, a judge's retry):
    /// not held back by that rule.
    Again,
}

/// Why no reservation was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The run stopped while it waited.
    Stopped,
    /// It does not fit under the budget with nothing in flight: the run is stopped for it.
    Budget,
}

impl Ctx {
    /// Reserves `worst` for `model` ([`reserve`]); a refusal by the budget stops the run
    /// ([`Ctx::budget_stop`]).
    pub(crate) async fn reserve(
        &self,
        model: &str,
        worst: Worst,
        turn: Turn,
    ) -> Result<Reservation, Refused> {
        match reserve(&self.budget, &self.stop, model, worst, turn).await {
            Some(r) => Ok(r),
            None if self.stop.is_cancelled() => Err(Refused::Stopped),
            None => {
                self.budget_stop(model, worst);
                Err(Refused::Budget)
            }
        }
    }
}

/// Reserves `worst` for `model`; when it does not fit while other attempts hold reservations,
/// waits for them to settle (they usually cost less than their worst case) before giving up.
/// A retry waits too: giving up at its first refusal stopped whole runs early. Each settle
/// wakes it (no polling); `None` when nothing is in flight and it still does not fit, or when
/// the run stops.
pub(crate) async fn reserve(
    budget: &Budget,
    stop: &CancellationToken,
    model: &str,
    worst: impl Into<Worst>,
    turn: Turn,
) -> Option<Reservation> {
    let worst = worst.into();
    let fits = budget.wait_until(|| {
        let tried = match turn {
            Turn::First => budget.try_reserve(model, worst),
            Turn::Again => budget.try_reserve_retry(model, worst),
        };
        match tried {
            Some(r) => Some(Some(r)),
            None if budget.in_flight() == 0 => Some(None),
            None => None,
        }
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
            tokio::spawn(async move { reserve(&b, &s, "m", Decimal::from(5), Turn::First).await })
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
            reserve(&budget, &stop, "m", Decimal::from(100), Turn::First)
                .await
                .is_none()
        );
        stop.cancel();
        assert!(
            reserve(&budget, &stop, "m", Decimal::from(1), Turn::First)
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
        let retry = reserve(&budget, &stop, "m", Decimal::from(4), Turn::Again).await;
        let Some(retry) = retry else {
            panic!("a retry is not held back by the first-answer rule")
        };
        // 8 of 10 reserved: a retry of 4 does not fit yet, and waits for a settle.
        let waiter = {
            let (b, s) = (budget.clone(), stop.clone());
            tokio::spawn(async move { reserve(&b, &s, "m", Decimal::from(4), Turn::Again).await })
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
            reserve(&budget, &stop, "m", Decimal::from(8), Turn::Again)
                .await
                .is_none()
        );
    }
}
