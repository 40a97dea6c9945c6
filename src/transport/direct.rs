//! The direct [`Transport`]: chat attempts over hyper's pooled client, without reqwest's
//! per-request layers (URL re-parsing, redirect policy, proxy matching, header-map building).
//!
//! It keeps every guarantee of [`super::live::Live`]: the chat URL is parsed once and the
//! headers built once (the key marked sensitive) and cloned per request; the attempt's timeout
//! covers the send and the whole body, the connect timeout is min(timeout, 30 s); the body is
//! read with `limits.max_response_bytes` as its cap and the response head may be as large
//! (hyper's read buffer is sized from it, so a 1 MiB header is read and its paid answer kept);
//! faults are classified like reqwest's ([`Fault`]: a refused connection is not ambiguous) and
//! never name the URL; the key is redacted from every server text ([`Finish`]). Connections are
//! reused (idle per host = the job's concurrency), with TCP_NODELAY, HTTP/1.1 and HTTP/2
//! (ALPN) over rustls (ring) with the platform's root certificates, as reqwest does, and plain
//! HTTP for a loopback URL. No redirect is followed: a 3xx is a failed attempt
//! ([`super::parse_chat`]).
//!
//! **When reqwest is used instead** ([`Stack::choose`]): a proxy variable (`HTTPS_PROXY`,
//! `HTTP_PROXY`, `ALL_PROXY`, with `NO_PROXY` respected, read as reqwest reads them) applies to
//! the chat URL; the URL carries userinfo (reqwest turns it into a Basic header); or the hidden
//! environment variable `ORBATCH_HTTP=reqwest` asks for it (an escape hatch, and the
//! benchmark's comparison).

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::roots::tls_config;
use super::wire::{Caps, Fault, Finish, Stage, hint_headers, read_body};
use super::{Attempt, BoxFuture, Failure, Redactor, Transport};
use crate::output::ErrorKind;

/// The environment variable that picks the HTTP stack for chat attempts (`reqwest`, or
/// `direct`, the default).
pub const STACK_ENV: &str = "ORBATCH_HTTP";

/// How many response headers an HTTP/1 answer may carry (hyper's default is 100).
const MAX_HEADERS: usize = 1024;

/// The HTTP stack that makes chat attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// [`Direct`], over hyper.
    Direct,
    /// [`super::live::Live`], over reqwest.
    Reqwest,
}

impl Stack {
    /// The stack for `chat_url`: reqwest when `ORBATCH_HTTP=reqwest`, when a proxy variable
    /// applies to the URL, or when it carries userinfo; the direct one otherwise.
    pub fn choose(chat_url: &Uri) -> anyhow::Result<Stack> {
        let asked = match std::env::var(STACK_ENV) {
            Ok(v) => Some(v),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                anyhow::bail!("{STACK_ENV} is not valid UTF-8: expected `direct` or `reqwest`")
            }
        };
        let proxies = hyper_util::client::proxy::matcher::Matcher::from_system();
        Stack::choose_with(chat_url, asked.as_deref(), &proxies)
    }

    /// [`Stack::choose`] with the variable's value and the proxy settings given.
    fn choose_with(
        chat_url: &Uri,
        asked: Option<&str>,
        proxies: &hyper_util::client::proxy::matcher::Matcher,
    ) -> anyhow::Result<Stack> {
        match asked {
            Some("reqwest") => return Ok(Stack::Reqwest),
            None | Some("direct") | Some("") => {}
            Some(other) => anyhow::bail!("{STACK_ENV}={other}: expected `direct` or `reqwest`"),
        }
        let userinfo = chat_url
            .authority()
            .is_some_and(|a| a.as_str().contains('@'));
        let proxied = proxies.intercept(chat_url).is_some();
        Ok(if userinfo || proxied {
            Stack::Reqwest
        } else {
            Stack::Direct
        })
    }
}

/// The chat endpoint over hyper.
#[derive(Clone)]
pub struct Direct {
    pool: Pool<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: Uri,
    headers: HeaderMap,
    timeout: Duration,
    finish: Finish,
}

/// What a [`Direct`] is built from.
pub struct Setup<'a> {
    /// The chat completions URL, parsed once.
    pub chat_url: Uri,
    /// The headers of every request (the key's marked sensitive); content type and accept
    /// are added.
    pub headers: &'a HeaderMap,
    /// The attempt's timeout (send and whole body).
    pub timeout: Duration,
    /// Idle connections kept per host (the job's concurrency).
    pub max_idle: usize,
    /// The caps on an answer.
    pub caps: Caps,
    /// The key's redactor.
    pub redactor: Redactor,
}

/// The `Host` header hyper-util's pool sets on an HTTP/1 request to `uri`: the host, with the
/// port when it is not the scheme's default (computed once, not per request).
fn host_header(uri: &http::Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let default = match uri.scheme_str() {
        Some("http") => Some(80),
        Some("https") => Some(443),
        _ => None,
    };
    let text = match uri.port_u16() {
        Some(port) if Some(port) != default => format!("{host}:{port}"),
        _ => host.to_string(),
    };
    HeaderValue::from_str(&text).ok()
}

impl Direct {
    /// A transport posting to `setup.chat_url`.
    pub fn new(setup: Setup<'_>) -> anyhow::Result<Direct> {
        let head_max = usize::try_from(setup.caps.max_body)
            .unwrap_or(usize::MAX)
            .max(8192); // hyper's smallest read buffer
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(setup.timeout.min(Duration::from_secs(30))));
        // reqwest's defaults.
        http.set_keepalive(Some(Duration::from_secs(15)));
        http.set_keepalive_interval(Some(Duration::from_secs(15)));
        http.set_keepalive_retries(Some(3));
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        http.set_tcp_user_timeout(Some(Duration::from_secs(30)));
        let https = setup.chat_url.scheme() == Some(&http::uri::Scheme::HTTPS);
        // The roots are loaded at the first TLS handshake (never for a plain-HTTP URL).
        let tls = HttpsConnectorBuilder::new().with_tls_config(tls_config()?);
        let tls = if https {
            tls.https_only()
        } else {
            tls.https_or_http()
        };
        let connector = tls.enable_http1().enable_http2().wrap_connector(http);
        let pool = Pool::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(setup.max_idle)
            .http1_max_buf_size(head_max)
            .http1_max_headers(MAX_HEADERS)
            .http2_max_header_list_size(u32::try_from(head_max).unwrap_or(u32::MAX))
            .build(connector);
        let mut headers = setup.headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        if !https && let Some(host) = host_header(&setup.chat_url) {
            // Plain HTTP is HTTP/1, where the pool would format the same `Host` per request.
            headers.insert(http::header::HOST, host);
        }
        Ok(Direct {
            pool,
            uri: setup.chat_url,
            headers,
            timeout: setup.timeout,
            finish: Finish {
                caps: setup.caps,
                redactor: setup.redactor,
                head_limit: format!("limits.max_response_bytes ({head_max} bytes)"),
            },
        })
    }

    async fn attempt(&self, body: Bytes) -> Attempt {
        match tokio::time::timeout(self.timeout, self.exchange(body)).await {
            Ok(attempt) => attempt,
            // It may have reached the server (reqwest's total timeout is classified alike).
            Err(_) => self.finish.failed(Failure::retryable(
                ErrorKind::Timeout,
                "the attempt timed out".into(),
                true,
            )),
        }
    }

    async fn exchange(&self, body: Bytes) -> Attempt {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        let resp = match self.pool.request(req).await {
            Ok(r) => r,
            Err(e) => {
                let stage = if e.is_connect() {
                    Stage::Connect
                } else {
                    Stage::Send
                };
                return self.finish.fault(Fault::of(stage, Some(&e)));
            }
        };
        let status = resp.status().as_u16();
        let hints = hint_headers(resp.headers());
        let body = read_body(resp.into_body(), self.finish.caps.max_body).await;
        self.finish
            .answer(status, &hints, body, |e| Fault::of(Stage::Body, Some(&e)))
    }
}

impl Transport for Direct {
    fn chat(&self, body: Bytes) -> BoxFuture<'_, Attempt> {
        Box::pin(self.attempt(body))
    }
}

#[cfg(test)]
#[path = "direct_tests.rs"]
mod tests;
