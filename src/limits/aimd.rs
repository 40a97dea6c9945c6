//! The shared 429 state: the cool-down every worker waits for, and the AIMD factor that
//! lowers the rate (or the concurrency) multiplicatively on repeated 429s, to a floor of 10%,
//! and recovers it linearly within about a minute once they stop. The factor changes the rate
//! mid-run, which a fixed `governor` quota cannot do: it is orbatch's own.

use std::time::Duration;

use tokio::time::Instant;

/// The lowest AIMD factor.
pub(super) const FLOOR: f64 = 0.1;
/// From the floor to full speed once 429s stop.
const RECOVERY: Duration = Duration::from_secs(45);
/// Two 429s closer than this count as one (they are usually the same burst).
pub(super) const DEBOUNCE: Duration = Duration::from_secs(2);

/// The cool-down and the AIMD factor (behind the limiter's mutex).
pub(super) struct Aimd {
    paused_until: Option<Instant>,
    consecutive_429: u32,
    factor_base: f64,
    factor_at: Instant,
    last_decrease: Option<Instant>,
}

impl Aimd {
    /// Full speed, no pause.
    pub(super) fn new() -> Aimd {
        Aimd {
            paused_until: None,
            consecutive_429: 0,
            factor_base: 1.0,
            factor_at: Instant::now(),
            last_decrease: None,
        }
    }

    /// The end of the current pause, when one is running.
    pub(super) fn paused_until(&self, now: Instant) -> Option<Instant> {
        self.paused_until.filter(|&u| u > now)
    }

    /// A 429 arrived: pause for `hint`, or for exponential back-off with full jitter when
    /// none was sent, and halve the factor (debounced).
    pub(super) fn rate_limited(&mut self, now: Instant, hint: Option<Duration>) {
        self.consecutive_429 += 1;
        let pause = hint.unwrap_or_else(|| crate::retry::backoff(self.consecutive_429 - 1, None));
        let until = now + pause;
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
        if self
            .last_decrease
            .is_none_or(|t| now.duration_since(t) >= DEBOUNCE)
        {
            let current = self.factor(now);
            self.factor_base = (current * 0.5).max(FLOOR);
            self.factor_at = now;
            self.last_decrease = Some(now);
        }
    }

    /// A request got through: the 429 streak is over.
    pub(super) fn succeeded(&mut self) {
        self.consecutive_429 = 0;
    }

    /// The factor at `now` (1.0 = the configured limits).
    pub(super) fn factor(&self, now: Instant) -> f64 {
        let recovered = now.duration_since(self.factor_at).as_secs_f64() / RECOVERY.as_secs_f64();
        (self.factor_base + recovered * (1.0 - FLOOR)).min(1.0)
    }

    /// When the recovering factor lets `in_flight` slots of `max` be held.
    pub(super) fn recovered_enough(&self, in_flight: usize, max: usize) -> Instant {
        // ceil(max x f) >= k  <=>  f > (k - 1) / max.
        let need = (in_flight.saturating_sub(1)) as f64 / max as f64;
        let secs = ((need - self.factor_base) / (1.0 - FLOOR)).max(0.0) * RECOVERY.as_secs_f64();
        self.factor_at + Duration::from_secs_f64(secs.min(3600.0)) + Duration::from_millis(1)
    }
}
