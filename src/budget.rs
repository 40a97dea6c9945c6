//! The budget cap: reserve each attempt's worst case before it is sent, settle to the real
//! charge when it returns. The cap covers the output dir's recorded spend across resumes, so
//! spend plus every outstanding reservation never passes it.
//!
//! A reservation that is dropped without being settled (a panic, an aborted task) counts as
//! spent at its worst case: it may have been sent and billed.
//!
//! Prices can lie (a price rise within the cache window, a dearer provider, a hostile
//! `/models`). Each model has a learned ratio, the largest `charge / price-table cost` seen so
//! far (never below 1), and every reservation of that model counts at `worst x ratio`, the ones
//! already in flight included: a rise re-checks them at once, so no new attempt is admitted
//! until they fit again. With a cap, a model's first attempt is sent alone: nothing more of that
//! model is reserved until one answer of it settled and taught the ratio.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rust_decimal::Decimal;
use tokio::sync::Notify;

/// The shared budget of a run (cheap to clone; clones share the state).
#[derive(Clone)]
pub struct Budget {
    inner: Arc<Inner>,
}

struct Inner {
    cap: Option<Decimal>,
    state: Mutex<State>,
    /// Woken whenever a reservation settles (room may have been freed).
    settled: Notify,
}

#[derive(Default)]
struct State {
    spent: Decimal,
    models: HashMap<String, ModelState>,
}

struct ModelState {
    /// The largest charge / expected-cost ratio seen (>= 1).
    ratio: Decimal,
    /// The sum of the base worst cases of the reservations in flight.
    in_flight: Decimal,
    /// Reservations in flight.
    count: u64,
    /// An answer of this model settled: its ratio has been measured.
    calibrated: bool,
}

impl Default for ModelState {
    fn default() -> Self {
        ModelState {
            ratio: Decimal::ONE,
            in_flight: Decimal::ZERO,
            count: 0,
            calibrated: false,
        }
    }
}

impl State {
    fn reserved(&self) -> Decimal {
        self.models
            .values()
            .fold(Decimal::ZERO, |sum, m| add(sum, mul(m.in_flight, m.ratio)))
    }
}

/// `a x b`, saturating at the largest decimal (a ratio may be huge: never panic on money).
fn mul(a: Decimal, b: Decimal) -> Decimal {
    a.checked_mul(b).unwrap_or(Decimal::MAX)
}

/// `a + b`, saturating.
fn add(a: Decimal, b: Decimal) -> Decimal {
    a.checked_add(b).unwrap_or(Decimal::MAX)
}

/// An outstanding reservation. Settle it with [`Budget::settle`]; dropping it unsettled counts
/// its worst case (at the model's current ratio) as spent.
#[derive(Debug)]
#[must_use = "a reservation must be settled"]
pub struct Reservation {
    model: String,
    worst: Decimal,
    budget: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget").field("cap", &self.cap).finish()
    }
}

impl Reservation {
    /// The base worst case reserved (before the model's ratio).
    pub fn worst(&self) -> Decimal {
        self.worst
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(inner) = self.budget.take() {
            inner.release(&self.model, self.worst, None);
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends a reservation: `actual` is the charge, `None` = unknown (worst x ratio).
    fn release(&self, model: &str, worst: Decimal, actual: Option<Decimal>) {
        {
            let mut s = self.lock();
            let m = s.models.entry(model.to_string()).or_default();
            m.in_flight -= worst;
            m.count = m.count.saturating_sub(1);
            if m.count == 0 {
                m.in_flight = Decimal::ZERO;
            }
            let charge = actual.unwrap_or_else(|| mul(worst, m.ratio));
            s.spent = add(s.spent, charge);
        }
        self.settled.notify_waiters();
    }
}

impl Budget {
    /// A budget with an optional cap, starting from what the output dir already spent.
    pub fn new(cap: Option<Decimal>, already_spent: Decimal) -> Budget {
        Budget {
            inner: Arc::new(Inner {
                cap,
                state: Mutex::new(State {
                    spent: already_spent,
                    models: HashMap::new(),
                }),
                settled: Notify::new(),
            }),
        }
    }

    /// Reserves `worst` (an attempt's worst-case charge for `model` at table prices, scaled by
    /// the model's learned ratio) when it fits under the cap. With no cap every reservation
    /// fits. With a cap, a model whose first answer has not settled yet has one attempt in
    /// flight at most.
    pub fn try_reserve(&self, model: &str, worst: Decimal) -> Option<Reservation> {
        self.reserve(model, worst, true)
    }

    /// [`Budget::try_reserve`] for the retry of an attempt that already went out: the cap
    /// holds, but not the one-at-a-time rule of an uncalibrated model (the retry must not
    /// stop the run because the next row's first attempt is in flight).
    pub fn try_reserve_retry(&self, model: &str, worst: Decimal) -> Option<Reservation> {
        self.reserve(model, worst, false)
    }

    fn reserve(&self, model: &str, worst: Decimal, gate: bool) -> Option<Reservation> {
        let mut s = self.inner.lock();
        if let Some(cap) = self.inner.cap {
            let reserved = s.reserved();
            let spent = s.spent;
            let m = s.models.entry(model.to_string()).or_default();
            if gate && !m.calibrated && m.count > 0 {
                return None;
            }
            if add(add(spent, reserved), mul(worst, m.ratio)) > cap {
                return None;
            }
        }
        let m = s.models.entry(model.to_string()).or_default();
        m.in_flight = add(m.in_flight, worst);
        m.count += 1;
        Some(Reservation {
            model: model.to_string(),
            worst,
            budget: Some(self.inner.clone()),
        })
    }

    /// Settles a reservation: `Some(cost)` is the real charge (0 when not billed); `None`
    /// means the charge is unknown, and the worst case (at the model's ratio) stays counted as
    /// spent.
    pub fn settle(&self, mut r: Reservation, actual: Option<Decimal>) {
        r.budget = None;
        self.inner.release(&r.model, r.worst, actual);
    }

    /// Learns from a settled answer of `model`: `charge` was billed where `expected` was the
    /// price table's cost (or the reserved worst case when the tokens are unknown); `None`
    /// charge: unknown, which only marks the model as answered. Returns
    /// true when the model's ratio rose by more than 1% (the prices understate the charge).
    pub fn learn(&self, model: &str, charge: Option<Decimal>, expected: Option<Decimal>) -> bool {
        let raised = {
            let mut s = self.inner.lock();
            let m = s.models.entry(model.to_string()).or_default();
            m.calibrated = true;
            let charge = charge.unwrap_or_default();
            match expected {
                Some(e) if e > Decimal::ZERO && charge > e => {
                    let ratio = charge / e;
                    let raised = ratio > m.ratio * Decimal::new(101, 2);
                    m.ratio = m.ratio.max(ratio);
                    raised
                }
                // Charged for what the table says is free: nothing below the cap is safe.
                Some(e) if e.is_zero() && charge > Decimal::ZERO => {
                    m.ratio = Decimal::MAX / Decimal::from(1_000_000_000u64);
                    true
                }
                _ => false,
            }
        };
        // Waiters for a model's first answer may go on now.
        self.inner.settled.notify_waiters();
        raised
    }

    /// The learned ratio of `model` (1 until an answer costs more than its prices say).
    pub fn ratio(&self, model: &str) -> Decimal {
        self.inner
            .lock()
            .models
            .get(model)
            .map_or(Decimal::ONE, |m| m.ratio)
    }

    /// Spent so far (recorded, including earlier runs).
    pub fn spent(&self) -> Decimal {
        self.inner.lock().spent
    }

    /// Reserved by attempts in flight (each at its model's current ratio).
    pub fn reserved(&self) -> Decimal {
        self.inner.lock().reserved()
    }

    /// Attempts in flight.
    pub fn in_flight(&self) -> u64 {
        self.inner.lock().models.values().map(|m| m.count).sum()
    }

    /// Waits until `ready` holds, re-checking it each time a reservation settles or an answer
    /// teaches a ratio (no polling). `ready` runs first before any wait.
    pub async fn wait_until<T>(&self, mut ready: impl FnMut() -> Option<T>) -> T {
        loop {
            let notified = self.inner.settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = ready() {
                return v;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
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
}
