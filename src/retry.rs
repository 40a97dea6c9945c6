//! Error classification and the back-off policy (docs/contract.md §7).
//!
//! Classification goes by HTTP status first, then `error.code` / `error.metadata.error_type`,
//! so any OpenAI-compatible server is understood.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use reqwest::header::HeaderMap;

use crate::api::ApiError;
use crate::output::ErrorKind;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Worth another attempt.
    Retry,
    /// Fail the row now (the provider's message is kept).
    Fail,
    /// Credits exhausted (402): stop dispatching; the run is resumable (exit 3).
    StopCredits,
    /// Authentication refused: stop everything (exit 4).
    StopAuth,
}

/// Classifies an HTTP error status (with its parsed error body, if any).
pub fn classify_status(status: u16, err: Option<&ApiError>) -> (ErrorKind, Verdict) {
    let etype = err.and_then(ApiError::error_type).unwrap_or("");
    match status {
        401 => (ErrorKind::Auth, Verdict::StopAuth),
        403 if matches!(etype, "authentication" | "permission_denied") => {
            (ErrorKind::Auth, Verdict::StopAuth)
        }
        403 if etype == "region_restricted" => (ErrorKind::Http, Verdict::Fail),
        403 => (ErrorKind::Moderation, Verdict::Fail),
        402 => {
            let in_flight_budget = err
                .and_then(|e| e.metadata.as_ref())
                .and_then(|m| m.get("limit_source"))
                .and_then(|v| v.as_str())
                == Some("openrouter_in_flight_budget");
            if in_flight_budget {
                (ErrorKind::Credits, Verdict::Retry)
            } else {
                (ErrorKind::Credits, Verdict::StopCredits)
            }
        }
        404 if err
            .and_then(|e| e.availability.as_ref())
            .is_some_and(|a| a.retryable) =>
        {
            (ErrorKind::Provider, Verdict::Retry)
        }
        408 => (ErrorKind::Timeout, Verdict::Retry),
        429 => (ErrorKind::RateLimited, Verdict::Retry),
        400 | 404 | 413 | 422 => (
            kind_of_type(etype).unwrap_or(ErrorKind::Http),
            Verdict::Fail,
        ),
        500..=599 => (ErrorKind::Provider, Verdict::Retry),
        _ => (
            kind_of_type(etype).unwrap_or(ErrorKind::Http),
            Verdict::Fail,
        ),
    }
}

/// Classifies an error that arrived inside an HTTP 200 (a top-level `error`, or a choice with
/// `finish_reason: "error"`): by `error.code`, then `error_type`; unknown means retry.
pub fn classify_embedded(err: &ApiError) -> (ErrorKind, Verdict) {
    let etype = err.error_type().unwrap_or("");
    match kind_of_type(etype) {
        Some(kind @ (ErrorKind::Moderation | ErrorKind::ContextLength)) => (kind, Verdict::Fail),
        Some(ErrorKind::Auth) => (ErrorKind::Auth, Verdict::StopAuth),
        Some(ErrorKind::RateLimited) => (ErrorKind::RateLimited, Verdict::Retry),
        _ => match err.status() {
            Some(s @ (400..=499)) if s != 408 && s != 429 => {
                let (kind, verdict) = classify_status(s, Some(err));
                // A 4xx inside a 200 that is not about the request itself is a provider fault.
                if verdict == Verdict::Fail && kind == ErrorKind::Http {
                    (ErrorKind::Provider, Verdict::Fail)
                } else {
                    (kind, verdict)
                }
            }
            Some(429) => (ErrorKind::RateLimited, Verdict::Retry),
            _ => (ErrorKind::Provider, Verdict::Retry),
        },
    }
}

fn kind_of_type(etype: &str) -> Option<ErrorKind> {
    Some(match etype {
        "context_length_exceeded"
        | "max_tokens_exceeded"
        | "token_limit_exceeded"
        | "string_too_long" => ErrorKind::ContextLength,
        "content_policy_violation" | "refusal" => ErrorKind::Moderation,
        "authentication" | "permission_denied" => ErrorKind::Auth,
        "rate_limit_exceeded" => ErrorKind::RateLimited,
        "payment_required" => ErrorKind::Credits,
        "timeout" => ErrorKind::Timeout,
        "provider_overloaded" | "provider_unavailable" | "server" => ErrorKind::Provider,
        _ => return None,
    })
}

/// The longest wait a server's hint can ask for by default (`[limits] max_retry_wait_secs`).
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(300);

/// The headers [`retry_hint`] reads: the only ones an answer's classification needs, so the
/// transport copies these instead of every header of every answer.
pub const HINT_HEADERS: [&str; 3] = ["retry-after-ms", "retry-after", "x-ratelimit-reset"];

/// The server's own minimum wait: `retry-after-ms`, `Retry-After` (seconds or an HTTP date),
/// `X-RateLimit-Reset` (epoch seconds or milliseconds), then the body's hint.
pub fn retry_hint(headers: &HeaderMap, err: Option<&ApiError>) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let [after_ms, after, reset] = HINT_HEADERS;
    if let Some(ms) = get(after_ms).and_then(|v| v.parse::<f64>().ok()) {
        return secs(ms / 1000.0);
    }
    if let Some(v) = get(after) {
        if let Ok(s) = v.parse::<f64>() {
            return secs(s);
        }
        if let Ok(t) = httpdate_to_unix(v) {
            return secs((t - now_unix()).max(0.0));
        }
    }
    if let Some(reset) = get(reset).and_then(|v| v.parse::<f64>().ok()) {
        let reset_secs = if reset > 1e11 { reset / 1000.0 } else { reset };
        if reset_secs > 1e9 {
            return secs((reset_secs - now_unix()).max(0.0));
        }
        return secs(reset_secs);
    }
    err.and_then(ApiError::retry_after_secs).and_then(secs)
}

fn secs(s: f64) -> Option<Duration> {
    (s.is_finite() && s >= 0.0)
        .then(|| Duration::from_secs_f64(s.min(MAX_RETRY_WAIT.as_secs_f64())))
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into epoch seconds.
fn httpdate_to_unix(s: &str) -> Result<f64, ()> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s, &format)
        .map(|t| t.assume_utc().unix_timestamp() as f64)
        .map_err(|_| ())
}

/// Exponential back-off with full jitter: a uniform wait in `[0, min(cap, base * 2^retry))`,
/// never less than the server's hint. `retry` counts from 0.
pub fn backoff(retry: u32, hint: Option<Duration>) -> Duration {
    const BASE: Duration = Duration::from_millis(500);
    const CAP: Duration = Duration::from_secs(60);
    let ceiling = BASE.saturating_mul(1u32 << retry.min(16)).min(CAP);
    let jittered = ceiling.mul_f64(rand::rng().random::<f64>());
    match hint {
        Some(h) => h.max(jittered),
        None => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn err(json: &str) -> ApiError {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn statuses() {
        assert_eq!(
            classify_status(401, None),
            (ErrorKind::Auth, Verdict::StopAuth)
        );
        let e = err(r#"{"code":403,"message":"m","metadata":{"error_type":"permission_denied"}}"#);
        assert_eq!(classify_status(403, Some(&e)).1, Verdict::StopAuth);
        let e = err(r#"{"code":403,"message":"flagged","metadata":{"reasons":["x"]}}"#);
        assert_eq!(
            classify_status(403, Some(&e)),
            (ErrorKind::Moderation, Verdict::Fail)
        );
        assert_eq!(classify_status(402, None).1, Verdict::StopCredits);
        assert_eq!(
            classify_status(429, None),
            (ErrorKind::RateLimited, Verdict::Retry)
        );
        assert_eq!(classify_status(524, None).1, Verdict::Retry);
        assert_eq!(classify_status(400, None), (ErrorKind::Http, Verdict::Fail));
        let e = err(r#"{"message":"x","availability":{"code":"capacity","retryable":true}}"#);
        assert_eq!(classify_status(404, Some(&e)).1, Verdict::Retry);
        assert_eq!(classify_status(404, None).1, Verdict::Fail);
        let e = err(
            r#"{"code":400,"message":"too long","metadata":{"error_type":"context_length_exceeded"}}"#,
        );
        assert_eq!(classify_status(400, Some(&e)).0, ErrorKind::ContextLength);
    }

    #[test]
    fn embedded() {
        assert_eq!(
            classify_embedded(&err(r#"{"code":502,"message":"down"}"#)).1,
            Verdict::Retry
        );
        let e = err(
            r#"{"code":"x","message":"m","metadata":{"error_type":"content_policy_violation"}}"#,
        );
        assert_eq!(
            classify_embedded(&e),
            (ErrorKind::Moderation, Verdict::Fail)
        );
    }

    #[test]
    fn hints() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_hint(&h, None), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_hint(&h, None), Some(Duration::from_millis(1500)));
        let mut h = HeaderMap::new();
        let reset_ms = (now_unix() * 1000.0) as u64 + 2000;
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_str(&reset_ms.to_string()).unwrap(),
        );
        let d = retry_hint(&h, None).unwrap();
        assert!(
            d > Duration::from_millis(1500) && d <= Duration::from_millis(2000),
            "{d:?}"
        );
        let e = err(r#"{"code":429,"message":"m","metadata":{"retry_after_seconds":4}}"#);
        assert_eq!(
            retry_hint(&HeaderMap::new(), Some(&e)),
            Some(Duration::from_secs(4))
        );
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_hint(&h, None), Some(Duration::ZERO));
        // An hour-long hint is capped (a hostile or broken server cannot park the run).
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3600"));
        assert_eq!(retry_hint(&h, None), Some(MAX_RETRY_WAIT));
    }

    #[test]
    fn backoff_is_bounded_and_honours_hint() {
        for r in 0..20 {
            assert!(backoff(r, None) <= Duration::from_secs(60));
        }
        assert!(backoff(0, Some(Duration::from_secs(5))) >= Duration::from_secs(5));
    }
}
