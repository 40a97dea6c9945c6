//! The limiter's timing tests (tokio's paused clock), and the measurement behind keeping
//! the RPM window orbatch's own rather than a `governor` quota.

use super::aimd::{DEBOUNCE, FLOOR};
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

#[test]
fn a_slightly_late_wake_keeps_the_schedule_and_a_very_late_one_restarts_it() {
    let t0 = Instant::now();
    let i = Duration::from_millis(100);
    let mut w = window::Window::default();
    w.record(t0, Some(i), None);
    // Woke 3 ms after its slot: the next slot is two intervals after the first send.
    w.record(t0 + i + Duration::from_millis(3), Some(i), None);
    assert_eq!(w.rpm_slot(i), Some(t0 + 2 * i));
    // A wake later than LATE_WAKE (a pause, a busy machine): the schedule restarts from now,
    // so no burst makes up for the lost time.
    let late = t0 + 2 * i + window::LATE_WAKE;
    w.record(late, Some(i), None);
    assert_eq!(w.rpm_slot(i), Some(late + i));
}

/// The measurement behind keeping the RPM window orbatch's own (real clock, ~4 s; run with
/// `cargo test --lib governor_drift -- --ignored --nocapture`): the same spacing through a
/// `governor` GCRA quota with a burst of 1, and through [`Limiter::admit`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a real-clock measurement, not a pass/fail check"]
async fn governor_drift_against_the_own_window() {
    use std::num::NonZeroU32;
    const N: u32 = 100;
    let interval = Duration::from_millis(21);
    let quota = governor::Quota::with_period(interval)
        .expect("non-zero period")
        .allow_burst(NonZeroU32::MIN);
    let gov = governor::RateLimiter::direct(quota);
    let start = std::time::Instant::now();
    for _ in 0..N {
        gov.until_ready().await;
    }
    let gov_took = start.elapsed();
    // 50 per 1 s window + 50 ms margin = one per 21 ms.
    let own = Limiter::new(LimitSpec {
        concurrency: 1,
        rpm: Some(50),
        tpm: None,
        window: Duration::from_millis(1000),
    });
    let start = std::time::Instant::now();
    for _ in 0..N {
        own.admit(1).await;
    }
    let own_took = start.elapsed();
    let ideal = interval * (N - 1);
    let lost = |took: Duration| (took.as_secs_f64() / ideal.as_secs_f64() - 1.0) * 100.0;
    println!(
        "{N} sends at one per {interval:?}: ideal {ideal:?}; governor {gov_took:?} ({:.2}% slower); own window {own_took:?} ({:.2}% slower)",
        lost(gov_took),
        lost(own_took)
    );
}
