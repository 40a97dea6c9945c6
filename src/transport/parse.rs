//! Classifies one chat answer (status, headers, body) into an [`Attempt`]: HTTP status
//! first, then the errors that arrive inside a 200. Optional fields are read leniently, so a
//! delivered answer is kept whatever its `usage` says. The body is read in place
//! ([`wire::Chat`]): one parse, its texts borrowed until the [`Completion`] is built.

use reqwest::header::HeaderMap;

use super::{Attempt, Completion, Failure};
use crate::api::{ApiError, ErrorBody, lenient};
use crate::output::ErrorKind;
use crate::retry::{Verdict, classify_embedded, classify_status, retry_hint};

/// Classifies a chat answer: HTTP status first, then the errors that arrive inside a 200.
pub fn parse_chat(status: u16, headers: &HeaderMap, bytes: &[u8]) -> Attempt {
    if status != 200 {
        let err = serde_json::from_slice::<ErrorBody>(bytes)
            .ok()
            .and_then(|b| b.error);
        let (kind, verdict) = classify_status(status, err.as_ref());
        let message = err
            .as_ref()
            .map(ApiError::describe)
            .unwrap_or_else(|| format!("HTTP {status}: {}", snippet(bytes)));
        return Attempt::Failed(Failure {
            kind,
            verdict,
            status: Some(status),
            message,
            retry_after: retry_hint(headers, err.as_ref()),
            ambiguous: false,
            partial: None,
        });
    }
    let fixed;
    let parsed = match wire::parse(bytes) {
        Ok(body) => Ok(body),
        Err(e) => {
            // `NaN` or `Infinity` in an optional number: read them as null rather than lose
            // the answer.
            fixed = lenient::nulls_for_non_finite(bytes);
            fixed.as_deref().and_then(|f| wire::parse(f).ok()).ok_or(e)
        }
    };
    let body = match parsed {
        Ok(b) => b,
        Err(e) => {
            return Attempt::Failed(Failure {
                kind: ErrorKind::InvalidResponse,
                verdict: Verdict::Retry,
                status: Some(200),
                message: format!("malformed response body: {e}"),
                retry_after: None,
                ambiguous: true,
                partial: None,
            });
        }
    };
    let embedded = body
        .error
        .as_ref()
        .or_else(|| body.choices.iter().find_map(|c| c.error.as_ref()));
    let finish_error = body
        .choices
        .iter()
        .any(|c| c.finish_reason.as_deref() == Some("error"));
    if embedded.is_some() || finish_error {
        let default = ApiError::default();
        let err = embedded.unwrap_or(&default);
        let (kind, verdict) = classify_embedded(err);
        let status = err.status().or(Some(200));
        let message = err.message.clone().map_or_else(
            || "the provider reported an error inside an HTTP 200".to_string(),
            |_| err.describe(),
        );
        let retry_after = retry_hint(headers, Some(err));
        let has_usage = body.has_usage();
        let completion = body.completion();
        return Attempt::Failed(Failure {
            kind,
            verdict,
            status,
            message,
            retry_after,
            ambiguous: completion.cost.is_none() && has_usage,
            partial: Some(completion),
        });
    }
    let no_choices = body.choices.is_empty();
    let completion = body.completion();
    if no_choices {
        return Attempt::Failed(Failure {
            kind: ErrorKind::InvalidResponse,
            verdict: Verdict::Retry,
            status: Some(200),
            message: "response has no choices".into(),
            retry_after: None,
            ambiguous: completion.cost.is_none(),
            partial: Some(completion),
        });
    }
    let empty = completion.content.as_deref().is_none_or(str::is_empty);
    if empty && completion.finish_reason.is_none() {
        return Attempt::Failed(Failure {
            kind: ErrorKind::Provider,
            verdict: Verdict::Retry,
            status: Some(200),
            message: "empty content with no finish reason (provider cold start)".into(),
            retry_after: None,
            ambiguous: completion.cost.is_none(),
            partial: Some(completion),
        });
    }
    Attempt::Answered(completion)
}

/// The first 200 bytes of a body, as text (for an error message).
pub fn snippet(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    s.trim().to_string()
}

mod wire;

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn parse(status: u16, body: &str) -> Attempt {
        parse_chat(status, &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn answered() {
        let a = parse(
            200,
            r#"{"id":"gen-1","model":"m","provider":"P","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hi "}}],
               "usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,"cost":0.0000085,"completion_tokens_details":{"reasoning_tokens":0}}}"#,
        );
        let Attempt::Answered(c) = a else {
            panic!("{a:?}")
        };
        assert_eq!(c.content.as_deref(), Some("hi "));
        assert_eq!(c.cost, Some(Decimal::new(85, 7)));
        assert_eq!(c.provider.as_deref(), Some("P"));
    }

    #[test]
    fn errors_inside_200() {
        let top = parse(200, r#"{"error":{"code":502,"message":"upstream down"}}"#);
        assert!(matches!(
            top,
            Attempt::Failed(Failure {
                verdict: Verdict::Retry,
                ..
            })
        ));
        let choice = parse(
            200,
            r#"{"id":"g","choices":[{"finish_reason":"error","message":{"role":"assistant","content":"par"},"error":{"code":500,"message":"boom","metadata":{"error_type":"server"}}}],"usage":{"prompt_tokens":1,"completion_tokens":1,"cost":0.001}}"#,
        );
        let Attempt::Failed(f) = choice else { panic!() };
        assert_eq!(
            (f.kind, f.verdict, f.ambiguous),
            (ErrorKind::Provider, Verdict::Retry, false)
        );
        assert_eq!(f.partial.and_then(|p| p.cost), Some(Decimal::new(1, 3)));
        let empty = parse(
            200,
            r#"{"id":"g","choices":[{"finish_reason":null,"message":{"role":"assistant","content":""}}]}"#,
        );
        assert!(matches!(
            empty,
            Attempt::Failed(Failure {
                verdict: Verdict::Retry,
                ambiguous: true,
                ..
            })
        ));
        let bad = parse(200, r#"{"id":"g","choices":[{"#);
        assert!(matches!(
            bad,
            Attempt::Failed(Failure {
                kind: ErrorKind::InvalidResponse,
                ambiguous: true,
                ..
            })
        ));
    }

    #[test]
    fn http_errors() {
        let a = parse(
            401,
            r#"{"error":{"code":401,"message":"No auth credentials found"}}"#,
        );
        let Attempt::Failed(f) = a else { panic!() };
        assert_eq!((f.kind, f.verdict), (ErrorKind::Auth, Verdict::StopAuth));
        assert_eq!(f.message, "No auth credentials found");
        let a = parse(503, "<html>oops</html>");
        let Attempt::Failed(f) = a else { panic!() };
        assert_eq!(f.verdict, Verdict::Retry);
        assert!(f.message.contains("503"));
    }

    fn answer_with_usage(usage: &str) -> Attempt {
        parse(
            200,
            &format!(
                r#"{{"id":"gen-1","choices":[{{"finish_reason":"stop","message":{{"role":"assistant","content":"kept"}}}}],"usage":{usage}}}"#
            ),
        )
    }

    /// One bad optional field never throws a delivered answer away: the answer is kept and an
    /// unusable cost is unknown (`None`), so the generation look-up or the table takes over.
    #[test]
    fn hostile_usage_keeps_the_answer_and_makes_the_cost_unknown() {
        for cost in [
            "1e308",
            "\"abc\"",
            "NaN",
            "Infinity",
            "-Infinity",
            "true",
            "-5",
            "-0.001",
            "{}",
        ] {
            let a = answer_with_usage(&format!(
                r#"{{"prompt_tokens":3,"completion_tokens":1,"cost":{cost}}}"#
            ));
            let Attempt::Answered(c) = a else {
                panic!("cost {cost}: {a:?}")
            };
            assert_eq!(c.content.as_deref(), Some("kept"), "cost {cost}");
            assert_eq!(c.cost, None, "cost {cost}");
            assert_eq!((c.prompt_tokens, c.completion_tokens), (Some(3), Some(1)));
        }
        let a = answer_with_usage(
            r#"{"prompt_tokens":-3,"completion_tokens":"x","cost":0.5,"prompt_tokens_details":7,"completion_tokens_details":{"reasoning_tokens":-1}}"#,
        );
        let Attempt::Answered(c) = a else {
            panic!("{a:?}")
        };
        assert_eq!((c.prompt_tokens, c.completion_tokens), (None, None));
        assert_eq!((c.cached_tokens, c.reasoning_tokens), (None, None));
        assert_eq!(c.cost, Some(Decimal::new(5, 1)));
        let a = parse(
            200,
            r#"{"id":7,"model":[],"provider":{},"choices":[{"finish_reason":1,"message":{"content":"kept"}}]}"#,
        );
        let Attempt::Answered(c) = a else {
            panic!("{a:?}")
        };
        assert_eq!(c.content.as_deref(), Some("kept"));
        assert_eq!((c.generation_id, c.provider), (None, None));
        for usage in ["\"garbage\"", "[1,2]", "42"] {
            let a = answer_with_usage(usage);
            assert!(
                matches!(a, Attempt::Answered(Completion { cost: None, .. })),
                "{usage}: {a:?}"
            );
        }
    }

    /// A negative charge inside a billed error is unknown too, never subtracted.
    #[test]
    fn negative_cost_in_a_billed_error_is_unknown() {
        let a = parse(
            200,
            r#"{"id":"g","choices":[{"finish_reason":"error","message":{"role":"assistant","content":"p"},"error":{"code":500,"message":"boom"}}],"usage":{"prompt_tokens":1,"cost":-5}}"#,
        );
        let Attempt::Failed(f) = a else {
            panic!("{a:?}")
        };
        assert!(f.ambiguous);
        assert_eq!(f.partial.and_then(|p| p.cost), None);
    }

    fn content_of(message: &str) -> Completion {
        let body = format!(
            r#"{{"id":"gen-\u0031","provider":"P\"Q","choices":[{{"finish_reason":"stop","message":{message}}}],"usage":{{"cost":0.5,"prompt_tokens":"4","prompt_tokens_details":{{"cached_tokens":2}},"completion_tokens_details":{{"reasoning_tokens":1}}}}}}"#
        );
        match parse(200, &body) {
            Attempt::Answered(c) => c,
            other => panic!("{message}: {other:?}"),
        }
    }

    /// Texts with escapes are decoded, content parts are joined, other content is its JSON
    /// text, and the nested usage details are read.
    #[test]
    fn texts_with_escapes_and_content_parts() {
        let c = content_of(r#"{"role":"assistant","content":"a\"b\n\u00e9"}"#);
        assert_eq!(c.content.as_deref(), Some("a\"b\né"));
        assert_eq!(c.generation_id.as_deref(), Some("gen-1"));
        assert_eq!(c.provider.as_deref(), Some("P\"Q"));
        assert_eq!((c.prompt_tokens, c.cached_tokens), (Some(4), Some(2)));
        assert_eq!(c.reasoning_tokens, Some(1));
        assert_eq!(c.cost, Some(Decimal::new(5, 1)));
        let parts = r#"{"content":[{"type":"text","text":"x"},{"type":"image"},{"text":"y"}]}"#;
        assert_eq!(content_of(parts).content.as_deref(), Some("xy"));
        assert_eq!(
            content_of(r#"{"content":{"k":1}}"#).content.as_deref(),
            Some(r#"{"k":1}"#)
        );
        let none = parse(
            200,
            r#"{"choices":[{"finish_reason":"stop","message":{"content":null}}]}"#,
        );
        assert!(
            matches!(none, Attempt::Answered(Completion { content: None, .. })),
            "{none:?}"
        );
    }

    /// `usage.*_details` of any shape: its count when it is an object holding one, else no
    /// count, and never the loss of the rest of `usage`.
    #[test]
    fn usage_details_of_any_shape_keep_the_rest_of_usage() {
        for (details, cached) in [
            (r#"{"cached_tokens":2,"audio_tokens":0}"#, Some(2)),
            (r#"{"audio_tokens":{"x":[1]},"cached_tokens":"3"}"#, Some(3)),
            (r#"{"cached\u005ftokens":4}"#, Some(4)),
            (r#"{"cached_tokens":1,"cached_tokens":5}"#, Some(5)),
            (r#"{"cached_tokens":null}"#, None),
            (r#"{}"#, None),
            ("null", None),
            ("7", None),
            ("-1.5", None),
            ("true", None),
            (r#""text""#, None),
            (r#"[{"cached_tokens":2}]"#, None),
        ] {
            let a = answer_with_usage(&format!(
                r#"{{"prompt_tokens":3,"prompt_tokens_details":{details},"completion_tokens":1,"cost":0.5,"completion_tokens_details":{details}}}"#
            ));
            let Attempt::Answered(c) = a else {
                panic!("{details}: {a:?}")
            };
            assert_eq!(c.cached_tokens, cached, "{details}");
            assert_eq!(c.reasoning_tokens, None, "{details}");
            assert_eq!(
                (c.prompt_tokens, c.completion_tokens),
                (Some(3), Some(1)),
                "{details}"
            );
            assert_eq!(c.cost, Some(Decimal::new(5, 1)), "{details}");
        }
    }
}
