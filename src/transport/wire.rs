//! What the two HTTP chat transports ([`super::live::Live`] over reqwest,
//! [`super::direct::Direct`] over hyper) share: the caps on an answer, the capped body read,
//! the retry-hint headers, the classification of a transport fault, and the end of an attempt
//! (parse, key redaction, capped wait).

use std::error::Error;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::BodyExt;

use super::{Attempt, Failure, Redactor, parse_chat};
use crate::output::ErrorKind;
use crate::retry::Verdict;

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

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError<E> {
    /// The body passed the cap (the bytes, `limits.max_response_bytes`).
    TooLarge(u64),
    /// The connection failed mid-body.
    Transport(E),
}

/// The message of [`BodyError::TooLarge`].
pub fn too_large_message(max: u64) -> String {
    format!(
        "the response body is larger than {max} bytes (limits.max_response_bytes); it may have been billed"
    )
}

/// Reads a response body, at most `max` bytes (an endless body fails, it never fills memory).
pub async fn read_body<B>(mut body: B, max: u64) -> Result<Bytes, BodyError<B::Error>>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    if body.size_hint().lower() > max {
        return Err(BodyError::TooLarge(max));
    }
    // A body that comes in one chunk (most answers) is kept as it is, not copied.
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame.map_err(BodyError::Transport)?.into_data() else {
            continue; // trailers
        };
        let held = first.as_ref().map_or(0, Bytes::len) + buf.len();
        if (held + chunk.len()) as u64 > max {
            return Err(BodyError::TooLarge(max));
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

/// The headers [`parse_chat`] reads (the retry hints), copied out of the answer: a copy of
/// every header cost a header map per request.
pub fn hint_headers(all: &HeaderMap) -> HeaderMap {
    let mut hints = HeaderMap::new();
    for name in crate::retry::HINT_HEADERS {
        if let Some(value) = all.get(name) {
            hints.insert(name, value.clone());
        }
    }
    hints
}

/// Where an attempt failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Connecting (TCP, TLS): the request never reached the server.
    Connect,
    /// Sending the request or reading the answer's head.
    Send,
    /// Reading the answer's body.
    Body,
}

/// A transport fault, described without the stack's own error type.
#[derive(Debug)]
pub struct Fault {
    /// Where it happened.
    pub stage: Stage,
    /// A timer (connect timeout, the attempt's timeout) ended it.
    pub timed_out: bool,
    /// The answer's head passed the HTTP stack's read buffer.
    pub head_too_large: bool,
    /// The error's chain of causes (never the URL).
    pub causes: Vec<String>,
}

impl Fault {
    /// A fault at `stage` whose causes are `first` and its sources; a timer is recognised by
    /// an `io::ErrorKind::TimedOut` in the chain and an oversized head by hyper's own error.
    pub fn of(stage: Stage, first: Option<&(dyn Error + 'static)>) -> Fault {
        let mut fault = Fault {
            stage,
            timed_out: false,
            head_too_large: false,
            causes: Vec::new(),
        };
        let mut src = first;
        while let Some(s) = src {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                fault.timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
            }
            fault.head_too_large |= s
                .downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_parse_too_large);
            fault.causes.push(s.to_string());
            src = s.source();
        }
        fault
    }

    /// What the fault says, headed by where it happened.
    pub fn describe(&self) -> String {
        let head = match self.stage {
            Stage::Connect => "connection failed",
            Stage::Send => "request failed",
            Stage::Body => "the response body was cut off or unreadable",
        };
        if self.causes.is_empty() {
            head.to_string()
        } else {
            format!("{head}: {}", self.causes.join(": "))
        }
    }

    /// The classified failure: a timer is a `timeout`, a body fault an `invalid_response`,
    /// anything else `network`; only a fault while connecting is known not to have reached the
    /// server (not ambiguous). An oversized head is not re-sent: it would buy the same
    /// refused answer again (`head_limit` names the limit it passed).
    pub fn failure(self, head_limit: &str) -> Failure {
        if self.head_too_large {
            return Failure {
                verdict: Verdict::Fail,
                ..Failure::retryable(
                    ErrorKind::InvalidResponse,
                    format!(
                        "the response's headers are larger than {head_limit}: the server answered and may have billed it; not re-sent (--retry-failed sends it again)"
                    ),
                    true,
                )
            };
        }
        let (kind, message) = if self.timed_out {
            (ErrorKind::Timeout, "the attempt timed out".to_string())
        } else if self.stage == Stage::Body {
            (ErrorKind::InvalidResponse, self.describe())
        } else {
            (ErrorKind::Network, self.describe())
        };
        Failure::retryable(kind, message, self.stage != Stage::Connect)
    }
}

/// The end of an attempt, shared by both transports: a body read or an answer parsed into an
/// [`Attempt`], with the key redacted from every server text and the wait capped.
#[derive(Clone)]
pub struct Finish {
    /// The caps.
    pub caps: Caps,
    /// The key's redactor.
    pub redactor: Redactor,
    /// The largest response head the HTTP stack reads, described for a message.
    pub head_limit: String,
}

impl Finish {
    /// The attempt for an answer with `status`, the retry hints and the body as read.
    pub fn answer<E>(
        &self,
        status: u16,
        hints: &HeaderMap,
        body: Result<Bytes, BodyError<E>>,
        fault: impl FnOnce(E) -> Fault,
    ) -> Attempt {
        let bytes = match body {
            Ok(b) => b,
            Err(BodyError::Transport(e)) => return self.fault(fault(e)),
            Err(BodyError::TooLarge(max)) => {
                // The server processed the request: it may have been billed.
                return self.failed(Failure {
                    status: Some(status),
                    ..Failure::retryable(ErrorKind::InvalidResponse, too_large_message(max), true)
                });
            }
        };
        match parse_chat(status, hints, &bytes) {
            Attempt::Failed(f) => self.failed(f),
            Attempt::Answered(mut c) => {
                self.redactor.clean_completion(&mut c);
                Attempt::Answered(c)
            }
        }
    }

    /// A transport fault, classified.
    pub fn fault(&self, fault: Fault) -> Attempt {
        self.failed(fault.failure(&self.head_limit))
    }

    /// A failure with its key redacted and its wait capped.
    pub fn failed(&self, mut f: Failure) -> Attempt {
        f.message = self.redactor.clean(f.message);
        if let Some(p) = f.partial.as_mut() {
            self.redactor.clean_completion(p);
        }
        f.retry_after = f.retry_after.map(|d| d.min(self.caps.max_wait));
        Attempt::Failed(f)
    }
}
