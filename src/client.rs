//! The OpenRouter HTTP client: chat completions (through a [`Transport`]), generation
//! look-ups, models, key and credits.
//!
//! One attempt = one HTTP request. [`Client::chat`] never retries: it turns every outcome into
//! an [`Attempt`] (an answer, or a classified [`Failure`]); retries live in the runner, where
//! the rate limiter and the budget see every attempt. Every body is read with a size cap and
//! every server message has the API key redacted.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::api::{ErrorBody, GenerationResponse, ModelEntry, ModelsResponse};
use crate::transport::direct::{Direct, Setup, Stack};
use crate::transport::live::{Caps, Live, ReadError, read_capped};
use crate::transport::parse::snippet;
pub use crate::transport::{Attempt, Completion, Failure, parse_chat};
use crate::transport::{Redactor, Transport};

/// The app name sent in the attribution headers.
pub const APP_TITLE: &str = "orbatch";
/// The app URL sent as `HTTP-Referer`.
pub const APP_URL: &str = "https://github.com/orbatch/orbatch";

/// A configured API client (cheap to clone).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    /// How chat attempts are made (the direct or reqwest HTTP transport unless replaced).
    transport: Arc<dyn Transport>,
    caps: Caps,
    redactor: Redactor,
    chat: ChatSetup,
}

/// What a chat transport is built from, besides the caps.
#[derive(Clone)]
struct ChatSetup {
    /// Every request's headers (the key's marked sensitive).
    headers: HeaderMap,
    timeout: Duration,
    max_idle: usize,
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
    /// marked sensitive, so it is redacted from reqwest's debug output, and it is redacted from
    /// every message a server sends back. Chat attempts go through the direct (hyper)
    /// transport unless [`Stack::choose`] picks reqwest (a proxy, userinfo, `ORBATCH_HTTP`);
    /// no redirect is followed on any endpoint.
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
            headers.insert(AUTHORIZATION, bearer(key, "API key")?);
        }
        headers.insert("HTTP-Referer", HeaderValue::from_static(APP_URL));
        headers.insert("X-OpenRouter-Title", HeaderValue::from_static(APP_TITLE));
        headers.insert("X-Title", HeaderValue::from_static(APP_TITLE));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("orbatch/", env!("CARGO_PKG_VERSION"))),
        );
        let base = base_url.trim_end_matches('/').to_string();
        if base.starts_with("https:") {
            // Fail here, not at the first request, when the system's roots cannot be read.
            crate::transport::roots::verifier()
                .verifier()
                .map_err(|e| anyhow::anyhow!("TLS setup failed: {e}"))?;
        }
        // One TLS configuration for the process: the roots are loaded at the first handshake.
        let mut tls = crate::transport::roots::tls_config()?;
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .default_headers(headers.clone())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(30)))
            .pool_max_idle_per_host(max_idle)
            .tcp_nodelay(true)
            // Every attempt is orbatch's own: seen by the limiter, the budget and the counts.
            .retry(reqwest::retry::never())
            // A 3xx is an answer (a failed attempt for chat), never a second request.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let redactor = Redactor::new(key);
        let caps = Caps::default();
        let chat = ChatSetup {
            headers,
            timeout,
            max_idle,
        };
        let transport = chat.transport(&http, &base, caps, &redactor)?;
        Ok(Client {
            http,
            base,
            transport,
            caps,
            redactor,
            chat,
        })
    }

    /// A client for a job: its base URL, per-attempt timeout, concurrency and caps.
    pub fn for_job(job: &crate::job::Job, key: Option<&SecretString>) -> anyhow::Result<Client> {
        Client::new(
            &job.base_url,
            key,
            job.limits.timeout,
            job.limits.concurrency,
        )?
        .with_caps(Caps {
            max_body: job.limits.max_response_bytes,
            max_wait: job.limits.max_retry_wait,
        })
    }

    /// The same client with other caps (body size, longest `Retry-After`) on every endpoint.
    pub fn with_caps(mut self, caps: Caps) -> anyhow::Result<Client> {
        self.transport = self
            .chat
            .transport(&self.http, &self.base, caps, &self.redactor)?;
        self.caps = caps;
        Ok(self)
    }

    /// The same client, making chat attempts through `transport` (a cache, a batch executor,
    /// a scripted fake in tests); the other endpoints stay on HTTP.
    pub fn with_transport(mut self, transport: Arc<dyn Transport>) -> Client {
        self.transport = transport;
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends one chat completion request (`body` is the JSON request) and classifies the outcome.
    pub async fn chat(&self, body: bytes::Bytes) -> Attempt {
        self.transport.chat(body).await
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
        let auth = bearer(management_key, "management key")
            .map_err(|e| CallError::Other(e.to_string()))?;
        let redactor = Redactor::new([management_key]);
        let v: Value = self
            .get_json(self.http.get(url).header(AUTHORIZATION, auth))
            .await
            .map_err(|e| redact_call(&redactor, e))?;
        Ok(v.get("data").cloned().unwrap_or(v))
    }

    /// `POST url` with a JSON body (a Batch API create), read like the other endpoints.
    pub(crate) async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        body: bytes::Bytes,
    ) -> Result<T, CallError> {
        let req = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.get_json(req).await
    }

    /// `GET url?query` (a Batch API status or results page), read like the other endpoints.
    pub(crate) async fn get_url<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        query: &[(&str, &str)],
    ) -> Result<T, CallError> {
        self.get_json(self.http.get(url).query(query)).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, CallError> {
        let resp = req
            .send()
            .await
            .map_err(|e| CallError::Other(crate::transport::live::describe_transport(&e)))?;
        let status = resp.status().as_u16();
        let bytes = read_capped(resp, self.caps.max_body)
            .await
            .map_err(|e: ReadError| CallError::Other(e.to_string()))?;
        // 202: a Batch API create ("stored").
        if status == 200 || status == 202 {
            return serde_json::from_slice(&bytes)
                .or_else(|e| {
                    crate::api::lenient::nulls_for_non_finite(&bytes)
                        .and_then(|fixed| serde_json::from_slice(&fixed).ok())
                        .ok_or(e)
                })
                .map_err(|e| CallError::Other(format!("unexpected answer: {e}")));
        }
        let msg = serde_json::from_slice::<ErrorBody>(&bytes)
            .ok()
            .and_then(|b| b.error)
            .map(|e| e.describe())
            .unwrap_or_else(|| snippet(&bytes));
        Err(redact_call(
            &self.redactor,
            match status {
                404 => CallError::NotFound,
                401 | 403 => CallError::Auth(status, msg),
                _ => CallError::Status(status, msg),
            },
        ))
    }
}

impl ChatSetup {
    /// The chat transport for `base` with `caps`: [`Direct`], or [`Live`] over `http` when
    /// [`Stack::choose`] says so.
    fn transport(
        &self,
        http: &reqwest::Client,
        base: &str,
        caps: Caps,
        redactor: &Redactor,
    ) -> anyhow::Result<Arc<dyn Transport>> {
        let chat_url = reqwest::Url::parse(&format!("{base}/chat/completions"))
            .map_err(|e| anyhow::anyhow!("invalid base URL {}: {e}", without_userinfo(base)))?;
        // The URL as reqwest normalised it; one hyper cannot take stays on reqwest.
        let uri = http::Uri::try_from(chat_url.as_str()).ok();
        let stack = match &uri {
            Some(uri) => Stack::choose(uri)?,
            None => Stack::Reqwest,
        };
        Ok(match (stack, uri) {
            (Stack::Direct, Some(chat_url)) => Arc::new(Direct::new(Setup {
                chat_url,
                headers: &self.headers,
                timeout: self.timeout,
                max_idle: self.max_idle,
                caps,
                redactor: redactor.clone(),
            })?),
            _ => Arc::new(Live::new(http.clone(), chat_url, caps, redactor.clone())),
        })
    }
}

/// An `Authorization: Bearer` header marked sensitive.
fn bearer(key: &SecretString, what: &str) -> anyhow::Result<HeaderValue> {
    let mut v =
        HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())).map_err(|_| {
            anyhow::anyhow!("the {what} contains characters not allowed in an HTTP header")
        })?;
    v.set_sensitive(true);
    Ok(v)
}

fn redact_call(r: &Redactor, e: CallError) -> CallError {
    match e {
        CallError::Auth(s, m) => CallError::Auth(s, r.clean(m)),
        CallError::Status(s, m) => CallError::Status(s, r.clean(m)),
        CallError::Other(m) => CallError::Other(r.clean(m)),
        CallError::NotFound => CallError::NotFound,
    }
}

/// A URL for an error message: `user:password@` removed (it may hold a secret).
pub fn without_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..scheme_end], &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_never_echoed() {
        assert_eq!(
            without_userinfo("https://user:pa@ss@host.example/api/v1?x=@"),
            "https://host.example/api/v1?x=@"
        );
        assert_eq!(
            without_userinfo("http://127.0.0.1:9/a@b"),
            "http://127.0.0.1:9/a@b"
        );
        let err = Client::new("https://user:s3cret@/api", None, Duration::from_secs(1), 1)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
