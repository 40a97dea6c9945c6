//! The OpenRouter HTTP client: chat completions, generation look-ups, models, key and credits.
//!
//! One attempt = one HTTP request. [`Client::chat`] never retries: it turns every outcome into
//! an [`Attempt`] (an answer, or a classified [`Failure`]); retries live in the runner, where
//! the rate limiter and the budget see every attempt.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::api::{
    ApiError, ChatResponse, ErrorBody, GenerationResponse, ModelEntry, ModelsResponse,
};
use crate::output::ErrorKind;
use crate::retry::{Verdict, classify_embedded, classify_status, retry_hint};

/// The app name sent in the attribution headers.
pub const APP_TITLE: &str = "orbatch";
/// The app URL sent as `HTTP-Referer`.
pub const APP_URL: &str = "https://github.com/orbatch/orbatch";

/// A configured API client (cheap to clone).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    /// `{base}/chat/completions`, parsed once (not per request).
    chat_url: reqwest::Url,
}

/// A model's reply.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    /// The generation id.
    pub generation_id: Option<String>,
    /// The model that answered.
    pub response_model: Option<String>,
    /// The provider that served it.
    pub provider: Option<String>,
    /// `message.content`, verbatim.
    pub content: Option<String>,
    /// The finish reason.
    pub finish_reason: Option<String>,
    /// Prompt tokens.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens.
    pub completion_tokens: Option<u64>,
    /// Reasoning tokens.
    pub reasoning_tokens: Option<u64>,
    /// Cached prompt tokens.
    pub cached_tokens: Option<u64>,
    /// `usage.cost`.
    pub cost: Option<Decimal>,
}

/// A failed attempt, classified.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The kind recorded when the row fails with it.
    pub kind: ErrorKind,
    /// What to do next.
    pub verdict: Verdict,
    /// The HTTP status (or the embedded error's code).
    pub status: Option<u16>,
    /// The provider's message, or ours.
    pub message: String,
    /// The server's minimum wait before a retry.
    pub retry_after: Option<Duration>,
    /// The attempt may have been billed and its charge is unknown.
    pub ambiguous: bool,
    /// What the failed attempt reported (a billed error inside a 200 carries usage).
    pub partial: Option<Completion>,
}

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub enum Attempt {
    /// The model answered.
    Answered(Completion),
    /// It did not.
    Failed(Failure),
}

/// Why a non-chat call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// 404: not there (for `/generation`: not yet).
    #[error("not found")]
    NotFound,
    /// 401/403: the key was refused.
    #[error("authentication refused (HTTP {0}): {1}")]
    Auth(u16, String),
    /// Any other HTTP status.
    #[error("HTTP {0}: {1}")]
    Status(u16, String),
    /// Transport or decoding failure.
    #[error("{0}")]
    Other(String),
}

impl Client {
    /// Builds a client for `base_url` (`.../api/v1`). The key, when given, is sent in a header
    /// marked sensitive, so it is redacted from reqwest's debug output.
    pub fn new(
        base_url: &str,
        key: Option<&SecretString>,
        timeout: Duration,
        max_idle: usize,
    ) -> anyhow::Result<Client> {
        // reqwest is built without a default TLS provider; ring is ours. Installing twice is
        // harmless (the second call returns Err and changes nothing).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = HeaderMap::new();
        if let Some(key) = key {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())).map_err(
                |_| {
                    anyhow::anyhow!("the API key contains characters not allowed in an HTTP header")
                },
            )?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        headers.insert("HTTP-Referer", HeaderValue::from_static(APP_URL));
        headers.insert("X-OpenRouter-Title", HeaderValue::from_static(APP_TITLE));
        headers.insert("X-Title", HeaderValue::from_static(APP_TITLE));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("orbatch/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(30)))
            .pool_max_idle_per_host(max_idle)
            .tcp_nodelay(true)
            // Every attempt is orbatch's own: seen by the limiter, the budget and the counts.
            .retry(reqwest::retry::never())
            .build()?;
        let base = base_url.trim_end_matches('/').to_string();
        let chat_url = reqwest::Url::parse(&format!("{base}/chat/completions"))
            .map_err(|e| anyhow::anyhow!("invalid base URL {base}: {e}"))?;
        Ok(Client {
            http,
            base,
            chat_url,
        })
    }

    /// A client for a job: its base URL, per-attempt timeout and concurrency.
    pub fn for_job(job: &crate::job::Job, key: Option<&SecretString>) -> anyhow::Result<Client> {
        Client::new(
            &job.base_url,
            key,
            job.limits.timeout,
            job.limits.concurrency,
        )
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends one chat completion request (`body` is the JSON request) and classifies the outcome.
    pub async fn chat(&self, body: bytes::Bytes) -> Attempt {
        let sent = self
            .http
            .post(self.chat_url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return Attempt::Failed(transport_failure(&e)),
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Attempt::Failed(transport_failure(&e)),
        };
        parse_chat(status, &headers, &bytes)
    }

    /// `GET /generation?id=`: the exact charge and the provider, once the record exists.
    pub async fn generation(&self, id: &str) -> Result<crate::api::Generation, CallError> {
        let url = format!("{}/generation", self.base);
        let v: GenerationResponse = self
            .get_json(self.http.get(url).query(&[("id", id)]))
            .await?;
        Ok(v.data)
    }

    /// `GET /models`: the catalogue with prices.
    pub async fn models(&self) -> Result<Vec<ModelEntry>, CallError> {
        let url = format!("{}/models", self.base);
        let v: ModelsResponse = self.get_json(self.http.get(url)).await?;
        Ok(v.data)
    }

    /// `GET /key`: the key's label, usage and limits (`data` as sent).
    pub async fn key_info(&self) -> Result<Value, CallError> {
        let url = format!("{}/key", self.base);
        let v: Value = self.get_json(self.http.get(url)).await?;
        Ok(v.get("data").cloned().unwrap_or(v))
    }

    /// `GET /credits` with a management key: `data` as sent.
    pub async fn credits(&self, management_key: &SecretString) -> Result<Value, CallError> {
        let url = format!("{}/credits", self.base);
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", management_key.expose_secret()))
            .map_err(|_| {
                CallError::Other(
                    "the management key contains characters not allowed in a header".into(),
                )
            })?;
        auth.set_sensitive(true);
        let v: Value = self
            .get_json(self.http.get(url).header(AUTHORIZATION, auth))
            .await?;
        Ok(v.get("data").cloned().unwrap_or(v))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, CallError> {
        let resp = req
            .send()
            .await
            .map_err(|e| CallError::Other(describe_transport(&e)))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| CallError::Other(describe_transport(&e)))?;
        if status == 200 {
            return serde_json::from_slice(&bytes)
                .map_err(|e| CallError::Other(format!("unexpected answer: {e}")));
        }
        let msg = serde_json::from_slice::<ErrorBody>(&bytes)
            .ok()
            .and_then(|b| b.error)
            .map(|e| e.describe())
            .unwrap_or_else(|| snippet(&bytes));
        Err(match status {
            404 => CallError::NotFound,
            401 | 403 => CallError::Auth(status, msg),
            _ => CallError::Status(status, msg),
        })
    }
}

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
    let body: ChatResponse = match serde_json::from_slice(bytes) {
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
        let has_usage = body.usage.is_some();
        let completion = completion_of(body);
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
    let completion = completion_of(body);
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

/// The reply of a parsed answer (its strings moved, not copied).
fn completion_of(body: ChatResponse) -> Completion {
    let usage = body.usage.as_ref();
    let (content, finish_reason) = match body.choices.into_iter().next() {
        Some(c) => (c.message.and_then(|m| m.into_text()), c.finish_reason),
        None => (None, None),
    };
    Completion {
        generation_id: body.id,
        response_model: body.model,
        provider: body.provider,
        content,
        finish_reason,
        prompt_tokens: usage.and_then(|u| u.prompt_tokens),
        completion_tokens: usage.and_then(|u| u.completion_tokens),
        reasoning_tokens: usage
            .and_then(|u| u.completion_tokens_details.as_ref())
            .and_then(|d| d.reasoning_tokens),
        cached_tokens: usage
            .and_then(|u| u.prompt_tokens_details.as_ref())
            .and_then(|d| d.cached_tokens),
        cost: usage.and_then(|u| u.cost),
    }
}

fn transport_failure(e: &reqwest::Error) -> Failure {
    let connect = e.is_connect();
    let (kind, message) = if e.is_timeout() {
        (ErrorKind::Timeout, "the attempt timed out".to_string())
    } else if e.is_decode() {
        (ErrorKind::InvalidResponse, describe_transport(e))
    } else {
        (ErrorKind::Network, describe_transport(e))
    };
    Failure {
        kind,
        verdict: Verdict::Retry,
        status: None,
        message,
        retry_after: None,
        // Only a refused connection is known not to have reached the server.
        ambiguous: !connect,
        partial: None,
    }
}

/// A transport error's chain, without the URL (which may name a private host).
fn describe_transport(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut parts = Vec::new();
    let mut src: Option<&dyn Error> = e.source();
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    let head = if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response body was cut off or unreadable"
    } else {
        "request failed"
    };
    if parts.is_empty() {
        head.to_string()
    } else {
        format!("{head}: {}", parts.join(": "))
    }
}

fn snippet(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    s.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
