//! Concurrency, requests-per-minute and tokens-per-minute limits, and the shared 429 cool-down.
//!
//! Admissions go one at a time through a gate; each waits for the cool-down, then for room in
//! the token window, then for its RPM slot ([`window`]), and records its send time only then.
//! Repeated 429s lower the rate (or the concurrency when no rate is set) through the AIMD
//! factor ([`aimd`]).
//!
//! Which limiter does what: these windows and the AIMD factor are orbatch's own, because
//! they must stay strict to the server's clock over a long run and change rate mid-run; the
//! generation look-up rate (`runner/lookup.rs`) is a `governor` quota.

mod aimd;
#[cfg(test)]
mod tests;
mod window;

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, sleep_until};

use aimd::Aimd;
use window::Window;

/// Margin added to the window for arrival jitter.
pub const MARGIN: Duration = Duration::from_millis(50);

/// The limits a run is held to.
#[derive(Debug, Clone, Copy)]
pub struct LimitSpec {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Requests per window.
    pub rpm: Option<u32>,
    /// Estimated tokens per window.
    pub tpm: Option<u64>,
    /// The window (60 s; shorter only in tests).
    pub window: Duration,
}

/// A concurrency slot; dropping it frees the slot and wakes the waiters.
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    freed: Arc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.freed.notify_waiters();
    }
}

/// The shared limiter of a run (share it with `Arc`).
pub struct Limiter {
    spec: LimitSpec,
    slots: Arc<Semaphore>,
    freed: Arc<Notify>,
    gate: tokio::sync::Mutex<Window>,
    state: Mutex<Aimd>,
}

impl Limiter {
    /// A limiter for `spec`.
    pub fn new(spec: LimitSpec) -> Limiter {
        Limiter {
            spec,
            slots: Arc::new(Semaphore::new(spec.concurrency.max(1))),
            freed: Arc::new(Notify::new()),
            gate: tokio::sync::Mutex::new(Window::default()),
            state: Mutex::new(Aimd::new()),
        }
    }

    /// Waits for a concurrency slot (the dispatcher holds it for the whole row). When repeated
    /// 429s lowered the concurrency (no rate set), waits until in-flight work is below it: woken
    /// when a slot is freed or when the recovering factor lets one more in, never by polling.
    pub async fn slot(&self) -> Slot {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let permit = match self.slots.clone().acquire_owned().await {
                Ok(p) => p,
                // The semaphore is never closed; if it were, run unthrottled rather than hang.
                Err(_) => return self.wrap(self.unlimited_permit()),
            };
            if self.spec.rpm.is_some() {
                return self.wrap(permit);
            }
            let max = self.spec.concurrency.max(1);
            let in_flight = max - self.slots.available_permits();
            let target = ((max as f64 * self.factor()).ceil() as usize).max(1);
            if in_flight <= target {
                return self.wrap(permit);
            }
            drop(permit);
            let recovered = self.lock().recovered_enough(in_flight, max);
            tokio::select! {
                _ = freed => {}
                _ = sleep_until(recovered) => {}
            }
        }
    }

    fn wrap(&self, permit: OwnedSemaphorePermit) -> Slot {
        Slot {
            permit: Some(permit),
            freed: self.freed.clone(),
        }
    }

    fn unlimited_permit(&self) -> OwnedSemaphorePermit {
        let s = Arc::new(Semaphore::new(1));
        match s.try_acquire_owned() {
            Ok(p) => p,
            Err(_) => unreachable!("a new semaphore with one permit has a permit"),
        }
    }

    /// Waits until one attempt of `tokens` estimated tokens may be sent now, and records it.
    pub async fn admit(&self, tokens: u64) {
        if self.spec.rpm.is_none() && self.spec.tpm.is_none() {
            self.wait_cooldown().await;
            return;
        }
        let mut gate = self.gate.lock().await;
        loop {
            self.wait_cooldown().await;
            let now = Instant::now();
            let tokens = self.spec.tpm.map(|tpm| (tokens.min(tpm), tpm));
            if let Some((n, tpm)) = tokens
                && let Some(until) = gate.token_wait(now, n, tpm, self.window())
            {
                sleep_until(until).await;
                continue;
            }
            let interval = self
                .spec
                .rpm
                .map(|rpm| self.window().div_f64(rpm as f64 * self.factor()));
            if let Some(slot) = interval.and_then(|i| gate.rpm_slot(i))
                && slot > now
            {
                sleep_until(slot).await;
                continue;
            }
            gate.record(now, interval, tokens.map(|(n, _)| n));
            return;
        }
    }

    fn window(&self) -> Duration {
        self.spec.window + MARGIN
    }

    async fn wait_cooldown(&self) {
        let Some(until) = self.lock().paused_until(Instant::now()) else {
            return;
        };
        // Spread the restart so a pause does not end in a flood.
        let spread = Duration::from_millis(rand::rng().random_range(0..=250));
        sleep_until(until + spread).await;
    }

    /// A 429 arrived: pause every worker for `hint`, or for exponential back-off with full
    /// jitter when none was sent, and lower the rate (debounced).
    pub fn on_rate_limited(&self, hint: Option<Duration>) {
        self.lock().rate_limited(Instant::now(), hint);
    }

    /// A request got through: the 429 streak is over.
    pub fn on_success(&self) {
        self.lock().succeeded();
    }

    /// The current AIMD factor (1.0 = the configured limits).
    pub fn factor(&self) -> f64 {
        self.lock().factor(Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Aimd> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
