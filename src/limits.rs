//! Concurrency, requests-per-minute and tokens-per-minute limits, and the shared 429 cool-down.
//!
//! The limits are strict as the server sees them: no rolling window may hold more requests than
//! the RPM or more estimated tokens than the TPM. Admissions go one at a time through a gate;
//! each waits for the cool-down, then for room in the token window, then for its RPM slot
//! (`last send + interval`, interval = (window + margin) / rpm), and records its send time only
//! then. So consecutive sends are at least one interval apart by our own clock, and the margin
//! absorbs arrival jitter. A burst of one, never a whole minute at t = 0.
//!
//! Repeated 429s lower the rate (or the concurrency when no rate is set) multiplicatively, to a
//! floor of 10% (or 1), and it recovers linearly within about a minute once 429s stop.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, sleep_until};

/// Margin added to the window for arrival jitter.
pub const MARGIN: Duration = Duration::from_millis(50);
/// The lowest AIMD factor.
const FLOOR: f64 = 0.1;
/// From the floor to full speed once 429s stop.
const RECOVERY: Duration = Duration::from_secs(45);
/// Two 429s closer than this count as one (they are usually the same burst).
const DEBOUNCE: Duration = Duration::from_secs(2);

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
    gate: tokio::sync::Mutex<Gate>,
    state: Mutex<Shared>,
}

struct Gate {
    last_send: Option<Instant>,
    tokens: VecDeque<(Instant, u64)>,
    token_sum: u64,
}

struct Shared {
    paused_until: Option<Instant>,
    consecutive_429: u32,
    factor_base: f64,
    factor_at: Instant,
    last_decrease: Option<Instant>,
}

impl Limiter {
    /// A limiter for `spec`.
    pub fn new(spec: LimitSpec) -> Limiter {
        Limiter {
            spec,
            slots: Arc::new(Semaphore::new(spec.concurrency.max(1))),
            freed: Arc::new(Notify::new()),
            gate: tokio::sync::Mutex::new(Gate {
                last_send: None,
                tokens: VecDeque::new(),
                token_sum: 0,
            }),
            state: Mutex::new(Shared {
                paused_until: None,
                consecutive_429: 0,
                factor_base: 1.0,
                factor_at: Instant::now(),
                last_decrease: None,
            }),
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
            let recovered = self.recovered_enough(in_flight, max);
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

    /// When the recovering AIMD factor lets `in_flight` slots of `max` be held.
    fn recovered_enough(&self, in_flight: usize, max: usize) -> Instant {
        let s = self.lock();
        // ceil(max x f) >= k  <=>  f > (k - 1) / max.
        let need = (in_flight.saturating_sub(1)) as f64 / max as f64;
        let secs = ((need - s.factor_base) / (1.0 - FLOOR)).max(0.0) * RECOVERY.as_secs_f64();
        s.factor_at + Duration::from_secs_f64(secs.min(3600.0)) + Duration::from_millis(1)
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
            if let Some(tpm) = self.spec.tpm
                && let Some(until) = gate.token_wait(now, tokens.min(tpm), tpm, self.window())
            {
                sleep_until(until).await;
                continue;
            }
            if let (Some(rpm), Some(last)) = (self.spec.rpm, gate.last_send) {
                let interval = self.window().div_f64(rpm as f64 * self.factor());
                let slot = last + interval;
                if slot > now {
                    sleep_until(slot).await;
                    continue;
                }
            }
            // Record the scheduled slot when we woke for it (timer lateness must not add up
            // over a long run); the margin covers the lateness of single sends.
            gate.last_send = Some(match (self.spec.rpm, gate.last_send) {
                (Some(rpm), Some(last)) => {
                    let slot = last + self.window().div_f64(rpm as f64 * self.factor());
                    if now.duration_since(slot) < Duration::from_millis(10) {
                        slot
                    } else {
                        now
                    }
                }
                _ => now,
            });
            if let Some(tpm) = self.spec.tpm {
                let n = tokens.min(tpm);
                gate.tokens.push_back((now, n));
                gate.token_sum += n;
            }
            return;
        }
    }

    fn window(&self) -> Duration {
        self.spec.window + MARGIN
    }

    async fn wait_cooldown(&self) {
        let until = match self.lock().paused_until {
            Some(u) if u > Instant::now() => u,
            _ => return,
        };
        // Spread the restart so a pause does not end in a flood.
        let spread = Duration::from_millis(rand::rng().random_range(0..=250));
        sleep_until(until + spread).await;
    }

    /// A 429 arrived: pause every worker for `hint`, or for exponential back-off with full
    /// jitter when none was sent, and lower the rate (debounced).
    pub fn on_rate_limited(&self, hint: Option<Duration>) {
        let now = Instant::now();
        let mut s = self.lock();
        s.consecutive_429 += 1;
        let pause = hint.unwrap_or_else(|| crate::retry::backoff(s.consecutive_429 - 1, None));
        let until = now + pause;
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
        if s.last_decrease
            .is_none_or(|t| now.duration_since(t) >= DEBOUNCE)
        {
            let current = factor_at(&s, now);
            s.factor_base = (current * 0.5).max(FLOOR);
            s.factor_at = now;
            s.last_decrease = Some(now);
        }
    }

    /// A request got through: the 429 streak is over.
    pub fn on_success(&self) {
        let mut s = self.lock();
        if s.consecutive_429 != 0 {
            s.consecutive_429 = 0;
        }
    }

    /// The current AIMD factor (1.0 = the configured limits).
    pub fn factor(&self) -> f64 {
        factor_at(&self.lock(), Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn factor_at(s: &Shared, now: Instant) -> f64 {
    let recovered = now.duration_since(s.factor_at).as_secs_f64() / RECOVERY.as_secs_f64();
    (s.factor_base + recovered * (1.0 - FLOOR)).min(1.0)
}

impl Gate {
    /// When `n` more tokens do not fit the window now, the instant they will.
    fn token_wait(&mut self, now: Instant, n: u64, tpm: u64, window: Duration) -> Option<Instant> {
        while let Some(&(t, k)) = self.tokens.front() {
            if now.duration_since(t) >= window {
                self.tokens.pop_front();
                self.token_sum -= k;
            } else {
                break;
            }
        }
        if self.token_sum + n <= tpm {
            return None;
        }
        let mut freed = 0;
        for &(t, k) in &self.tokens {
            freed += k;
            if self.token_sum - freed + n <= tpm {
                return Some(t + window);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rpm: Option<u32>, tpm: Option<u64>, window_ms: u64) -> LimitSpec {
        LimitSpec {
            concurrency: 64,
            rpm,
            tpm,
            window: Duration::from_millis(window_ms),
        }
    }

    /// No rolling window (plus margin) holds more than `limit` sends.
    fn max_in_window(times: &[Instant], window: Duration) -> usize {
        let mut best = 0;
        for (i, &t) in times.iter().enumerate() {
            let n = times[i..]
                .iter()
                .take_while(|&&u| u.duration_since(t) < window)
                .count();
            best = best.max(n);
        }
        best
    }

    #[tokio::test(start_paused = true)]
    async fn rpm_is_strict_and_smooth() {
        let lim = Arc::new(Limiter::new(spec(Some(20), None, 1000)));
        let start = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..60 {
            let l = lim.clone();
            handles.push(tokio::spawn(async move {
                l.admit(1).await;
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for h in handles {
            times.push(h.await.unwrap());
        }
        times.sort();
        assert_eq!(max_in_window(&times, Duration::from_millis(1000)), 20);
        // 60 requests at 20 per second: about 3 s, and no faster than the limit allows.
        let span = times[59].duration_since(start);
        assert!(
            span >= Duration::from_millis(2950) && span < Duration::from_millis(3100),
            "{span:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tpm_window_holds() {
        let lim = Limiter::new(spec(None, Some(100), 1000));
        let mut sends = Vec::new();
        for _ in 0..10 {
            lim.admit(30).await;
            sends.push(Instant::now());
        }
        // 30-token requests under 100 tokens per window: at most 3 per window.
        assert_eq!(max_in_window(&sends, Duration::from_millis(1000)), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_pauses_and_backs_off_then_recovers() {
        let lim = Limiter::new(spec(Some(600), None, 60_000));
        lim.on_rate_limited(Some(Duration::from_secs(2)));
        assert!((lim.factor() - 0.5).abs() < 0.01);
        let t = Instant::now();
        lim.admit(1).await;
        assert!(t.elapsed() >= Duration::from_secs(2));
        lim.on_rate_limited(None); // debounced: within 2 s of... no, 2 s passed: halves again
        assert!(lim.factor() < 0.3 && lim.factor() >= FLOOR);
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(3)).await;
            lim.on_rate_limited(None);
        }
        assert!(lim.factor() >= FLOOR - 1e-9);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(lim.factor(), 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_waiter_is_woken_when_a_slot_frees_without_time_passing() {
        let lim = Arc::new(Limiter::new(LimitSpec {
            concurrency: 4,
            rpm: None,
            tpm: None,
            window: Duration::from_secs(60),
        }));
        let held: Vec<Slot> = vec![lim.slot().await, lim.slot().await];
        // 429s halve the concurrency twice: 4 -> 1 (recovery takes tens of seconds).
        lim.on_rate_limited(Some(Duration::ZERO));
        tokio::time::advance(DEBOUNCE).await;
        lim.on_rate_limited(Some(Duration::ZERO));
        let t = Instant::now();
        let waiter = {
            let lim = lim.clone();
            tokio::spawn(async move { lim.slot().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        let _s = waiter.await.unwrap();
        assert_eq!(t.elapsed(), Duration::ZERO, "woken by the freed slots");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_waiter_is_woken_when_the_factor_recovers() {
        let lim = Arc::new(Limiter::new(LimitSpec {
            concurrency: 10,
            rpm: None,
            tpm: None,
            window: Duration::from_secs(60),
        }));
        let mut held = Vec::new();
        for _ in 0..5 {
            held.push(lim.slot().await);
        }
        lim.on_rate_limited(Some(Duration::ZERO)); // factor 0.5: 5 slots
        let t = Instant::now();
        let _sixth = lim.slot().await;
        // 6 of 10 needs f > 0.5: just after the factor starts recovering, not 20 ms polls.
        assert!(t.elapsed() <= Duration::from_millis(5), "{:?}", t.elapsed());
        assert_eq!(held.len(), 5);
    }
}
