//! The HTTP floor of the benchmark: bare reqwest POSTs of a chat request to a server, on one
//! current-thread runtime like `orbatch run`, with no orbatch work around them. The CPU per
//! request this costs is what orbatch's own overhead (validation, templates, accounting,
//! journal, results.csv, summary) comes on top of.
//!
//! ```sh
//! cargo build --release --example http_floor
//! target/release/orbatch mock-server --addr 127.0.0.1:18095 --no-log &
//! /usr/bin/time -f '%e s wall, %U s user, %S s sys' \
//!     target/release/examples/http_floor http://127.0.0.1:18095/api/v1 10000 64
//! ```

use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: http_floor BASE_URL REQUESTS CONCURRENCY";
    let base = args.next().ok_or(usage)?;
    let n: usize = args.next().ok_or(usage)?.parse()?;
    let c: usize = args.next().ok_or(usage)?.parse()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(c)
            .tcp_nodelay(true)
            .build()?;
        let url = reqwest::Url::parse(&format!("{}/chat/completions", base.trim_end_matches('/')))?;
        let body = bytes::Bytes::from_static(
            br#"{"messages":[{"role":"user","content":"Row 1: the quick brown fox jumps over the lazy dog"}],"model":"openai/gpt-4o-mini","max_tokens":16,"usage":{"include":true}}"#,
        );
        let slots = Arc::new(tokio::sync::Semaphore::new(c));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let slot = slots.clone().acquire_owned().await?;
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            tasks.spawn(async move {
                let answer = client
                    .post(url)
                    .bearer_auth("sk-or-v1-mock-floor")
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?
                    .bytes()
                    .await;
                drop(slot);
                answer.map(|b| b.len())
            });
        }
        let mut bytes = 0;
        while let Some(done) = tasks.join_next().await {
            bytes += done??;
        }
        eprintln!("{n} requests, {bytes} bytes of answers");
        Ok(())
    })
}
