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
//!
//! When the run refreshes its price table ([`Budget::adopt_prices`]), each model's worst cases
//! change units: a reservation carries the table generation its worst case was priced at, and
//! every generation's in-flight sum has a factor into the current table's terms, chosen so that
//! no reservation counts less after the refresh than before it.

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
    /// Per model (looked up on every reservation: no key copy, a fast hash).
    models: hashbrown::HashMap<String, ModelState>,
    /// The price table generation in use (0 = the table the run started with).
    generation: usize,
}

struct ModelState {
    /// The largest charge / expected-cost ratio seen against the current table (>= 1).
    ratio: Decimal,
    /// Reservations in flight, per price table generation.
    epochs: Vec<Epoch>,
    /// An answer of this model settled: its ratio has been measured.
    calibrated: bool,
}

/// The reservations in flight whose worst cases were priced at one table generation.
#[derive(Clone, Copy)]
struct Epoch {
    /// Turns this generation's prices into the current table's (1 for the current one).
    to_current: Decimal,
    /// The sum of their base worst cases.
    in_flight: Decimal,
    /// How many.
    count: u64,
}

impl Default for Epoch {
    fn default() -> Self {
        Epoch {
            to_current: Decimal::ONE,
            in_flight: Decimal::ZERO,
            count: 0,
        }
    }
}

impl Default for ModelState {
    fn default() -> Self {
        ModelState {
            ratio: Decimal::ONE,
            epochs: Vec::new(),
            calibrated: false,
        }
    }
}

impl ModelState {
    /// What the reservations in flight count (each at the current ratio).
    fn reserved(&self) -> Decimal {
        self.epochs.iter().fold(Decimal::ZERO, |sum, e| {
            add(sum, mul(mul(e.in_flight, e.to_current), self.ratio))
        })
    }

    /// Reservations in flight.
    fn count(&self) -> u64 {
        self.epochs.iter().map(|e| e.count).sum()
    }

    /// What `worst`, priced at `generation`, counts now.
    fn counted(&self, worst: Decimal, generation: usize) -> Decimal {
        let to_current = self
            .epochs
            .get(generation)
            .map_or(Decimal::ONE, |e| e.to_current);
        mul(mul(worst, to_current), self.ratio)
    }

    fn epoch(&mut self, generation: usize) -> &mut Epoch {
        if self.epochs.len() <= generation {
            self.epochs.resize(generation + 1, Epoch::default());
        }
        &mut self.epochs[generation]
    }
}

impl State {
    fn reserved(&self) -> Decimal {
        self.models
            .values()
            .fold(Decimal::ZERO, |sum, m| add(sum, m.reserved()))
    }
}

/// An attempt's worst-case charge at table prices, and the price table generation it was
/// priced at. A bare `Decimal` is priced at the run's first table (generation 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Worst {
    /// The worst case (before the model's ratio).
    pub amount: Decimal,
    /// The price table generation (`prices::LivePrices`).
    pub generation: usize,
}

impl From<Decimal> for Worst {
    fn from(amount: Decimal) -> Worst {
        Worst {
            amount,
            generation: 0,
        }
    }
}

/// How a refreshed price of one model relates to the one it replaces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Repriced {
    /// An upper bound of `new cost / old cost` for any token counts.
    pub old_to_new: Decimal,
    /// An upper bound of `old cost / new cost` for any token counts.
    pub new_to_old: Decimal,
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
    generation: usize,
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

    /// The price table generation its worst case was priced at.
    pub fn generation(&self) -> usize {
        self.generation
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(inner) = self.budget.take() {
            inner.release(&self.model, self.worst, self.generation, None);
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends a reservation: `actual` is the charge, `None` = unknown (worst x ratio).
    fn release(&self, model: &str, worst: Decimal, generation: usize, actual: Option<Decimal>) {
        {
            let mut s = self.lock();
            let m = s.models.entry_ref(model).or_default();
            let counted = m.counted(worst, generation);
            let e = m.epoch(generation);
            e.in_flight -= worst;
            e.count = e.count.saturating_sub(1);
            if e.count == 0 {
                e.in_flight = Decimal::ZERO;
            }
            let charge = actual.unwrap_or(counted);
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
                    ..State::default()
                }),
                settled: Notify::new(),
            }),
        }
    }

    /// Reserves `worst` (an attempt's worst-case charge for `model` at table prices, scaled by
    /// the model's learned ratio) when it fits under the cap. With no cap every reservation
    /// fits. With a cap, a model whose first answer has not settled yet has one attempt in
    /// flight at most.
    pub fn try_reserve(&self, model: &str, worst: impl Into<Worst>) -> Option<Reservation> {
        self.reserve(model, worst.into(), true)
    }

    /// [`Budget::try_reserve`] for the retry of an attempt that already went out: the cap
    /// holds, but not the one-at-a-time rule of an uncalibrated model (the retry must not
    /// stop the run because the next row's first attempt is in flight).
    pub fn try_reserve_retry(&self, model: &str, worst: impl Into<Worst>) -> Option<Reservation> {
        self.reserve(model, worst.into(), false)
    }

    fn reserve(&self, model: &str, worst: Worst, gate: bool) -> Option<Reservation> {
        let mut s = self.inner.lock();
        if let Some(cap) = self.inner.cap {
            let reserved = s.reserved();
            let spent = s.spent;
            let m = s.models.entry_ref(model).or_default();
            if gate && !m.calibrated && m.count() > 0 {
                return None;
            }
            if add(
                add(spent, reserved),
                m.counted(worst.amount, worst.generation),
            ) > cap
            {
                return None;
            }
        }
        let m = s.models.entry_ref(model).or_default();
        let e = m.epoch(worst.generation);
        e.in_flight = add(e.in_flight, worst.amount);
        e.count += 1;
        Some(Reservation {
            model: model.to_string(),
            worst: worst.amount,
            generation: worst.generation,
            budget: Some(self.inner.clone()),
        })
    }

    /// The run moved to a refreshed price table (the next generation): the worst cases of
    /// `repriced` models priced at earlier tables now count `old_to_new` times more in the new
    /// table's terms, and their ratio is restated against the new prices
    /// (`max(1, ratio x new_to_old)`), so nothing in flight counts less than before. Models
    /// not listed kept their price. Returns the new generation.
    pub fn adopt_prices(&self, repriced: &HashMap<String, Repriced>) -> usize {
        let mut s = self.inner.lock();
        s.generation += 1;
        let generation = s.generation;
        for (model, r) in repriced {
            let m = s.models.entry_ref(model.as_str()).or_default();
            m.epoch(generation);
            let (old, _) = m.epochs.split_at_mut(generation);
            for e in old {
                e.to_current = mul(e.to_current, r.old_to_new);
            }
            m.ratio = mul(m.ratio, r.new_to_old).max(Decimal::ONE);
        }
        drop(s);
        // A lower ratio may make room for waiters.
        self.inner.settled.notify_waiters();
        generation
    }

    /// Settles a reservation: `Some(cost)` is the real charge (0 when not billed); `None`
    /// means the charge is unknown, and the worst case (at the model's ratio) stays counted as
    /// spent.
    pub fn settle(&self, mut r: Reservation, actual: Option<Decimal>) {
        r.budget = None;
        self.inner.release(&r.model, r.worst, r.generation, actual);
    }

    /// Learns from a settled answer of `model`: `charge` was billed where `expected` was the
    /// price table's cost (or the reserved worst case when the tokens are unknown); `None`
    /// charge: unknown, which only marks the model as answered. Returns
    /// true when the model's ratio rose by more than 1% (the prices understate the charge).
    pub fn learn(&self, model: &str, charge: Option<Decimal>, expected: Option<Decimal>) -> bool {
        let raised = {
            let mut s = self.inner.lock();
            let m = s.models.entry_ref(model).or_default();
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

    /// What a reservation of `worst` for `model` counts against the cap now (the model's
    /// learned ratio and any price table change applied).
    pub fn counted(&self, model: &str, worst: impl Into<Worst>) -> Decimal {
        let worst = worst.into();
        let s = self.inner.lock();
        match s.models.get(model) {
            Some(m) => m.counted(worst.amount, worst.generation),
            None => worst.amount,
        }
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
        self.inner
            .lock()
            .models
            .values()
            .map(ModelState::count)
            .sum()
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
mod tests;
