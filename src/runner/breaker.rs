//! The per-model circuit breaker: when the first [`TRIP_AFTER`] pairs of a model in a run all
//! fail with the same error that no retry can fix (a model the endpoint does not serve, a
//! parameter it rejects), the model's remaining pairs are not sent: a wrong name costs 20
//! errors, not one per row. A model that answered once, or failed in different ways, is
//! never cut off.

use std::sync::Mutex;

use crate::output::ErrorKind;

/// How many identical non-retryable failures, with nothing else before them, stop a model.
pub(crate) const TRIP_AFTER: u32 = 20;

/// The breakers of a run's models.
pub(crate) struct Breakers {
    trip_after: u32,
    models: Mutex<hashbrown::HashMap<String, State>>,
}

#[derive(Default)]
struct State {
    failed: u32,
    first: Option<(ErrorKind, String)>,
    /// Answered, or failed in a way that breaks the streak: never trips.
    healthy: bool,
    open: bool,
}

impl Breakers {
    /// Breakers that open after `trip_after` identical failures.
    pub fn new(trip_after: u32) -> Breakers {
        Breakers {
            trip_after: trip_after.max(1),
            models: Mutex::new(hashbrown::HashMap::new()),
        }
    }

    /// A pair of `model` ended: `failure` is its non-retryable error (kind, message), `None`
    /// for an answer or any other end. Returns why the breaker opened, when this opened it.
    pub fn record(&self, model: &str, failure: Option<(ErrorKind, &str)>) -> Option<String> {
        let mut models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        let s = models.entry_ref(model).or_default();
        if s.healthy || s.open {
            return None;
        }
        let Some((kind, message)) = failure else {
            s.healthy = true;
            return None;
        };
        match &s.first {
            None => s.first = Some((kind, message.to_string())),
            Some((k, m)) if *k == kind && m == message => {}
            Some(_) => {
                s.healthy = true;
                return None;
            }
        }
        s.failed += 1;
        if s.failed < self.trip_after {
            return None;
        }
        s.open = true;
        Some(format!(
            "model {model}: its first {} requests all failed with the same error ({}: {message}); its remaining pairs are not sent (fix the model or the job, then run again)",
            s.failed,
            kind.as_str()
        ))
    }

    /// True when `model`'s pairs are no longer sent.
    pub fn is_open(&self, model: &str) -> bool {
        let models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        models.get(model).is_some_and(|s| s.open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAD: Option<(ErrorKind, &str)> = Some((ErrorKind::Http, "x is not a valid model ID"));

    #[test]
    fn opens_after_n_identical_failures() {
        let b = Breakers::new(3);
        assert_eq!(b.record("x", BAD), None);
        assert_eq!(b.record("x", BAD), None);
        assert!(!b.is_open("x"));
        let why = b.record("x", BAD).unwrap();
        assert!(why.contains("first 3 requests") && why.contains("not a valid model"));
        assert!(b.is_open("x") && !b.is_open("y"));
        assert_eq!(b.record("x", BAD), None, "said once");
    }

    #[test]
    fn an_answer_or_another_error_keeps_it_closed() {
        let b = Breakers::new(2);
        b.record("a", None);
        b.record("a", BAD);
        b.record("a", BAD);
        assert!(!b.is_open("a"));
        b.record("b", BAD);
        b.record("b", Some((ErrorKind::Moderation, "flagged")));
        b.record("b", BAD);
        b.record("b", BAD);
        assert!(!b.is_open("b"));
    }
}
