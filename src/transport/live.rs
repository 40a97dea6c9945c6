//! The live [`Transport`]: one HTTP POST per attempt, over a shared `reqwest` connection pool.
//! Bodies are read with a size cap, `Retry-After` waits are capped, and the API key is
//! redacted from every message a server sends back.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_TYPE, HeaderMap};

use super::{Attempt, BoxFuture, Failure, Redactor, Transport, parse_chat};
use crate::output::ErrorKind;

/// How much of a server's answer orbatch accepts.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// The largest response body read, in bytes.
    pub max_body: u64,
    /// The longest `Retry-After` honoured.
    pub max_wait: Duration,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_body: super::DEFAULT_MAX_RESPONSE_BYTES,
            max_wait: crate::retry::MAX_RETRY_WAIT,
        }
    }
}

/// The chat endpoint over HTTP.
#[derive(Clone)]
pub struct Live {
    http: reqwest::Client,
    chat_url: reqwest::Url,
    caps: Caps,
    redactor: Redactor,
}

impl Live {
    /// A transport posting to `chat_url` with `http` (which carries the key header).
    pub fn new(
        http: reqwest::Client,
        chat_url: reqwest::Url,
        caps: Caps,
        redactor: Redactor,
    ) -> Live {
        Live {
            http,
            chat_url,
            caps,
            redactor,
        }
    }

    async fn attempt(&self, body: Bytes) -> Attempt {
        let sent = self
            .http
            .post(self.chat_url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return self.failed(transport_failure(&e)),
        };
        let status = resp.status().as_u16();
        let headers = hint_headers(resp.headers());
        let bytes = match read_capped(resp, self.caps.max_body).await {
            Ok(b) => b,
            Err(ReadError::Transport(e)) => return self.failed(transport_failure(&e)),
            Err(e @ ReadError::TooLarge(_)) => {
                // The server processed the request: it may have been billed.
                return self.failed(Failure {
                    status: Some(status),
                    ..Failure::retryable(ErrorKind::InvalidResponse, e.to_string(), true)
                });
            }
        };
        match parse_chat(status, &headers, &bytes) {
            Attempt::Failed(f) => self.failed(f),
            Attempt::Answered(mut c) => {
                self.redactor.clean_completion(&mut c);
                Attempt::Answered(c)
            }
        }
    }

    /// A failure with its key redacted and its wait capped.
    fn failed(&self, mut f: Failure) -> Attempt {
        f.message = self.redactor.clean(f.message);
        if let Some(p) = f.partial.as_mut() {
            self.redactor.clean_completion(p);
        }
        f.retry_after = f.retry_after.map(|d| d.min(self.caps.max_wait));
        Attempt::Failed(f)
    }
}

impl Transport for Live {
    fn chat(&self, body: Bytes) -> BoxFuture<'_, Attempt> {
        Box::pin(self.attempt(body))
    }
}

/// The headers [`parse_chat`] reads (the retry hints), copied out of the answer: a copy of
/// every header cost a header map per request.
fn hint_headers(all: &HeaderMap) -> HeaderMap {
    let mut hints = HeaderMap::new();
    for name in crate::retry::HINT_HEADERS {
        if let Some(value) = all.get(name) {
            hints.insert(name, value.clone());
        }
    }
    hints
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The body passed the cap.
    #[error(
        "the response body is larger than {0} bytes (limits.max_response_bytes); it may have been billed"
    )]
    TooLarge(u64),
    /// The connection failed mid-body.
    #[error("{}", describe_transport(.0))]
    Transport(reqwest::Error),
}

/// Reads a response body, at most `max` bytes (an endless body fails, it never fills memory).
pub async fn read_capped(mut resp: reqwest::Response, max: u64) -> Result<Bytes, ReadError> {
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(ReadError::TooLarge(max));
    }
    // A body that comes in one chunk (most answers) is kept as it is, not copied.
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Transport)? {
        let held = first.as_ref().map_or(0, Bytes::len) + buf.len();
        if (held + chunk.len()) as u64 > max {
            return Err(ReadError::TooLarge(max));
        }
        match first.take() {
            None if buf.is_empty() => first = Some(chunk),
            earlier => {
                if let Some(earlier) = earlier {
                    buf.extend_from_slice(&earlier);
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

fn transport_failure(e: &reqwest::Error) -> Failure {
    if head_too_large(e) {
        // The server answered, so it may have billed the request, but the HTTP stack refuses
        // a response head over ~400 KiB before the body can be read. Sending it again would
        // buy the same refused answer again: fail the pair (possibly billed) instead.
        return Failure {
            verdict: crate::retry::Verdict::Fail,
            ..Failure::retryable(
                ErrorKind::InvalidResponse,
                "the response's headers are larger than the HTTP client accepts (about 400 KiB): the server answered and may have billed it; not re-sent (--retry-failed sends it again)".into(),
                true,
            )
        };
    }
    let (kind, message) = if e.is_timeout() {
        (ErrorKind::Timeout, "the attempt timed out".to_string())
    } else if e.is_decode() {
        (ErrorKind::InvalidResponse, describe_transport(e))
    } else {
        (ErrorKind::Network, describe_transport(e))
    };
    // Only a refused connection is known not to have reached the server.
    Failure::retryable(kind, message, !e.is_connect())
}

/// hyper's "message head is too large": a response whose headers passed its read buffer.
fn head_too_large(e: &reqwest::Error) -> bool {
    use std::error::Error;
    let mut src: Option<&dyn Error> = e.source();
    while let Some(s) = src {
        if s.to_string().contains("message head is too large") {
            return true;
        }
        src = s.source();
    }
    false
}

/// A transport error's chain, without the URL (which may name a private host or userinfo).
pub fn describe_transport(e: &reqwest::Error) -> String {
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
