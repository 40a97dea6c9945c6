//! The strict RPM and TPM windows, as the server sees them: no rolling window may hold more
//! requests than the RPM or more estimated tokens than the TPM.
//!
//! RPM: each send waits for its slot, `last slot + interval` with interval = (window + margin)
//! / (rpm x AIMD factor), so consecutive sends are at least one interval apart by our own clock
//! (a burst of one, never a whole minute at t = 0). A wake that is late by less than
//! [`LATE_WAKE`] records the scheduled slot, not the wake time: timer lateness (~1 ms per wake
//! with tokio) must not add up over a long run, or a 600-rpm run loses ~1% of its rate. This,
//! and the rate that AIMD changes mid-run, is why this is not a `governor` quota (a GCRA with
//! burst 1 re-bases its schedule on the late "now"; measured in `limits::tests`).
//!
//! TPM: the estimated tokens of each send are kept for one window; a send waits until the
//! oldest leave enough room.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// A wake later than its slot by less than this keeps the slot's schedule.
pub(super) const LATE_WAKE: Duration = Duration::from_millis(10);

/// The admission gate's record of recent sends.
#[derive(Default)]
pub(super) struct Window {
    last_send: Option<Instant>,
    tokens: VecDeque<(Instant, u64)>,
    token_sum: u64,
}

impl Window {
    /// The RPM slot of the next send (`None`: now is fine), at `interval` between sends.
    pub(super) fn rpm_slot(&self, interval: Duration) -> Option<Instant> {
        self.last_send.map(|last| last + interval)
    }

    /// Records a send at `now`: the RPM schedule moves to the slot it woke for (or to `now`
    /// when the wake was late by [`LATE_WAKE`] or more, or when there was no slot), and `n`
    /// tokens enter the token window.
    pub(super) fn record(&mut self, now: Instant, interval: Option<Duration>, n: Option<u64>) {
        let slot = interval.and_then(|i| self.rpm_slot(i));
        self.last_send = Some(match slot {
            Some(s) if now.duration_since(s) < LATE_WAKE => s,
            _ => now,
        });
        if let Some(n) = n {
            self.tokens.push_back((now, n));
            self.token_sum += n;
        }
    }

    /// When `n` more tokens do not fit the window now, the instant they will.
    pub(super) fn token_wait(
        &mut self,
        now: Instant,
        n: u64,
        tpm: u64,
        window: Duration,
    ) -> Option<Instant> {
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
