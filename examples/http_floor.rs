//! The HTTP floor of the benchmark: bare POSTs of a chat request to a server, on one
//! current-thread runtime like `orbatch run`, with no orbatch work around them. The CPU per
//! request this costs is what orbatch's own overhead (validation, templates, accounting,
//! journal, results.csv, summary) comes on top of. The fourth argument picks the HTTP stack:
//! `reqwest` (the default) or `hyper` (hyper-util's pooled client, which orbatch's direct chat
//! transport uses).
//!
//! ```sh
//! cargo build --release --example http_floor
//! target/release/orbatch mock-server --addr 127.0.0.1:18095 --no-log &
//! /usr/bin/time -f '%e s wall, %U s user, %S s sys' \
//!     target/release/examples/http_floor http://127.0.0.1:18095/api/v1 10000 64 hyper
//! ```

use std::sync::Arc;

use bytes::Bytes;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const BODY: &[u8] = br#"{"messages":[{"role":"user","content":"Row 1: the quick brown fox jumps over the lazy dog"}],"model":"openai/gpt-4o-mini","max_tokens":16,"usage":{"include":true}}"#;
const KEY: &str = "sk-or-v1-mock-floor";

fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: http_floor BASE_URL REQUESTS CONCURRENCY [reqwest|hyper]";
    let base = args.next().ok_or(usage)?;
    let n: usize = args.next().ok_or(usage)?.parse()?;
    let c: usize = args.next().ok_or(usage)?.parse()?;
    let stack = args.next().unwrap_or_else(|| "reqwest".into());
    let url = format!("{}/chat/completions", base.trim_end_matches('/'));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let bytes = match stack.as_str() {
        "reqwest" => rt.block_on(with_reqwest(url, n, c))?,
        "hyper" => rt.block_on(with_hyper(url, n, c))?,
        _ => return Err(usage.into()),
    };
    eprintln!("{n} requests over {stack}, {bytes} bytes of answers");
    Ok(())
}

/// Runs `n` sends, `c` at a time, each made by `send`; the total answer bytes.
async fn drive<F, Fut>(n: usize, c: usize, send: F) -> Res<usize>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Res<usize>> + Send + 'static,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(c));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let slot = slots.clone().acquire_owned().await?;
        let answer = send();
        tasks.spawn(async move {
            let answer = answer.await;
            drop(slot);
            answer
        });
    }
    let mut bytes = 0;
    while let Some(done) = tasks.join_next().await {
        bytes += done??;
    }
    Ok(bytes)
}

async fn with_reqwest(url: String, n: usize, c: usize) -> Res<usize> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(c)
        .tcp_nodelay(true)
        .build()?;
    let url = reqwest::Url::parse(&url)?;
    drive(n, c, || {
        let req = client
            .post(url.clone())
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(Bytes::from_static(BODY));
        async move { Ok(req.send().await?.bytes().await?.len()) }
    })
    .await
}

async fn with_hyper(url: String, n: usize, c: usize) -> Res<usize> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::{Client, connect::HttpConnector};
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let client: Client<_, Full<Bytes>> = Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(c)
        .build(http);
    let uri: http::Uri = url.parse()?;
    let mut headers = http::HeaderMap::new();
    // Built once and cloned per request, as orbatch's direct transport does.
    let auth = http::HeaderValue::try_from(format!("Bearer {KEY}"))?;
    headers.insert("authorization", auth);
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    drive(n, c, || {
        let mut req = http::Request::new(Full::new(Bytes::from_static(BODY)));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = uri.clone();
        *req.headers_mut() = headers.clone();
        let answer = client.request(req);
        async move { Ok(answer.await?.into_body().collect().await?.to_bytes().len()) }
    })
    .await
}
