//! The reqwest [`Transport`]: one HTTP POST per attempt, over the shared `reqwest` connection
//! pool. Chat attempts go through [`super::direct::Direct`] unless a proxy applies to the chat
//! URL (reqwest honours `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`), the URL
//! carries userinfo, or `ORBATCH_HTTP=reqwest` asks for this one. Bodies are read with a size
//! cap, `Retry-After` waits are capped, and the API key is redacted from every message a
//! server sends back ([`Finish`]).

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;

use super::wire::{BodyError, Fault, Finish, Stage, hint_headers, read_body, too_large_message};
use super::{Attempt, BoxFuture, Redactor, Transport};

pub use super::wire::Caps;

/// The chat endpoint over reqwest.
#[derive(Clone)]
pub struct Live {
    http: reqwest::Client,
    chat_url: reqwest::Url,
    finish: Finish,
}

impl Live {
    /// A transport posting to `chat_url` with `http` (which carries the key header).
    pub fn new(
        http: reqwest::Client,
        chat_url: reqwest::Url,
        caps: Caps,
        redactor: Redactor,
    ) -> Live {
        let finish = Finish {
            caps,
            redactor,
            head_limit: "the HTTP client accepts (about 400 KiB)".into(),
        };
        Live {
            http,
            chat_url,
            finish,
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
            Err(e) => return self.finish.fault(fault(&e)),
        };
        let status = resp.status().as_u16();
        let hints = hint_headers(resp.headers());
        let body = read_body(body_of(resp), self.finish.caps.max_body).await;
        self.finish.answer(status, &hints, body, |e| fault(&e))
    }
}

impl Transport for Live {
    fn chat(&self, body: Bytes) -> BoxFuture<'_, Attempt> {
        Box::pin(self.attempt(body))
    }
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The body passed the cap.
    #[error("{}", too_large_message(*.0))]
    TooLarge(u64),
    /// The connection failed mid-body.
    #[error("{}", describe_transport(.0))]
    Transport(reqwest::Error),
}

/// Reads a response body, at most `max` bytes (an endless body fails, it never fills memory).
pub async fn read_capped(resp: reqwest::Response, max: u64) -> Result<Bytes, ReadError> {
    read_body(body_of(resp), max).await.map_err(|e| match e {
        BodyError::TooLarge(m) => ReadError::TooLarge(m),
        BodyError::Transport(e) => ReadError::Transport(e),
    })
}

/// The body of `resp` (its size hint and its timeouts kept).
fn body_of(resp: reqwest::Response) -> reqwest::Body {
    http::Response::<reqwest::Body>::from(resp).into_body()
}

/// A reqwest error as a [`Fault`]: its causes, never its URL.
fn fault(e: &reqwest::Error) -> Fault {
    let stage = if e.is_connect() {
        Stage::Connect
    } else if e.is_body() || e.is_decode() {
        Stage::Body
    } else {
        Stage::Send
    };
    let mut f = Fault::of(stage, std::error::Error::source(e));
    f.timed_out |= e.is_timeout();
    f
}

/// A transport error's chain, without the URL (which may name a private host or userinfo).
pub fn describe_transport(e: &reqwest::Error) -> String {
    fault(e).describe()
}
