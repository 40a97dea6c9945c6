//! Faults at rate 1.0, the RPM window, the credit limit, keys and bad requests.

use std::str::FromStr;
use std::time::{Duration, Instant};

use orbatch::mock::{MockConfig, MockServer};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{KEY, Reply, assert_error, chat, client, msgs, start};

fn body() -> Value {
    json!({"model": "openai/gpt-4o-mini", "messages": msgs("fault probe")})
}

fn last(srv: &MockServer) -> orbatch::mock::RequestRecord {
    srv.requests().pop().unwrap()
}

#[tokio::test]
async fn server_errors_rotate_500_502_503_unbilled() {
    let srv = start(MockConfig {
        error_rate: 1.0,
        ..Default::default()
    })
    .await;
    for want in [500, 502, 503, 500] {
        let v = assert_error(chat(&srv, &body()).await, want).await;
        assert!(v["error"]["metadata"]["error_type"].is_string());
        let rec = last(&srv);
        assert_eq!(
            (rec.status, rec.outcome.as_str(), rec.cost),
            (want, "server_error", None)
        );
    }
    assert_eq!(srv.spent(), Decimal::ZERO);
    srv.shutdown().await;
}

#[tokio::test]
async fn error_inside_a_200() {
    let srv = start(MockConfig {
        error200_rate: 1.0,
        ..Default::default()
    })
    .await;
    let res = chat(&srv, &body()).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert!(v["error"]["code"].is_u64() && v["error"]["message"].is_string());
    assert!(v.get("choices").is_none());
    assert_eq!(last(&srv).outcome, "error200");
    assert_eq!(srv.spent(), Decimal::ZERO);
    srv.shutdown().await;
}

#[tokio::test]
async fn finish_reason_error_is_billed_for_the_partial_reply() {
    let srv = start(MockConfig {
        finish_error_rate: 1.0,
        ..Default::default()
    })
    .await;
    let r: Reply = chat(&srv, &body()).await.json().await.unwrap();
    let c = &r.choices[0];
    assert_eq!(c["finish_reason"], "error");
    assert!(c["error"]["code"].is_u64());
    assert_eq!(c["error"]["metadata"]["error_type"], "provider_unavailable");
    let rec = last(&srv);
    assert_eq!(rec.outcome, "finish_error");
    assert_eq!(rec.cost, Some(r.usage.cost));
    assert_eq!(srv.spent(), r.usage.cost);
    srv.shutdown().await;
}

#[tokio::test]
async fn empty_cold_start_reply_bills_the_prompt() {
    let srv = start(MockConfig {
        empty_rate: 1.0,
        ..Default::default()
    })
    .await;
    let r: Reply = chat(&srv, &body()).await.json().await.unwrap();
    assert_eq!(r.choices[0]["message"]["content"], "");
    assert!(r.choices[0]["finish_reason"].is_null());
    assert_eq!(r.usage.completion_tokens, 0);
    let p = orbatch::mock::price("openai/gpt-4o-mini").unwrap();
    assert_eq!(
        r.usage.cost,
        p.prompt * Decimal::from(r.usage.prompt_tokens)
    );
    assert_eq!(last(&srv).outcome, "empty");
    srv.shutdown().await;
}

#[tokio::test]
async fn malformed_body_is_not_json() {
    let srv = start(MockConfig {
        malformed_rate: 1.0,
        ..Default::default()
    })
    .await;
    let res = chat(&srv, &body()).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    let rec = last(&srv);
    assert_eq!((rec.status, rec.outcome.as_str()), (200, "malformed"));
    assert!(rec.cost.is_some());
    srv.shutdown().await;
}

#[tokio::test]
async fn reset_drops_the_connection() {
    let srv = start(MockConfig {
        reset_rate: 1.0,
        ..Default::default()
    })
    .await;
    let sent = client()
        .post(format!("{}/chat/completions", srv.base_url()))
        .bearer_auth(KEY)
        .json(&body())
        .send()
        .await;
    let failed = match sent {
        Err(_) => true,
        Ok(res) => res.bytes().await.is_err(),
    };
    assert!(failed, "the client must see a connection or body error");
    let rec = last(&srv);
    assert_eq!((rec.status, rec.outcome.as_str()), (0, "reset"));
    assert_eq!(rec.cost, Some(srv.spent()));
    srv.shutdown().await;
}

#[tokio::test]
async fn hang_times_out_the_client_and_does_not_block_shutdown() {
    let srv = start(MockConfig {
        hang_rate: 1.0,
        ..Default::default()
    })
    .await;
    let c = super::client_with_timeout(Duration::from_millis(300));
    let res = c
        .post(format!("{}/chat/completions", srv.base_url()))
        .bearer_auth(KEY)
        .json(&body())
        .send()
        .await;
    assert!(res.unwrap_err().is_timeout());
    // a second request hangs, and is still hanging when the server shuts down
    let url = format!("{}/chat/completions", srv.base_url());
    let pending = tokio::spawn(async move {
        client()
            .post(url)
            .bearer_auth(KEY)
            .json(&body())
            .send()
            .await
    });
    let t = Instant::now();
    while srv.requests().len() < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the second request never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(srv.requests().iter().all(|r| r.outcome == "hang"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !pending.is_finished(),
        "the hung request ended before the shutdown"
    );
    let t = Instant::now();
    srv.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "shutdown waited {:?} for a hung request",
        t.elapsed()
    );
    // the hung request ends with the shutdown (its connection dropped), not after --hang-secs
    let done = tokio::time::timeout(Duration::from_secs(2), pending)
        .await
        .expect("the hung request outlived the shutdown")
        .unwrap();
    assert!(done.is_err() || done.unwrap().bytes().await.is_err());
}

#[tokio::test]
async fn hang_ends_after_hang_secs() {
    let srv = start(MockConfig {
        hang_rate: 1.0,
        hang_secs: 1,
        ..Default::default()
    })
    .await;
    let t = Instant::now();
    let sent = chat_raw(&srv).await;
    assert!(sent.is_err() || sent.unwrap().bytes().await.is_err());
    assert!(t.elapsed() >= Duration::from_millis(950) && t.elapsed() < Duration::from_secs(5));
    srv.shutdown().await;
}

async fn chat_raw(srv: &MockServer) -> reqwest::Result<reqwest::Response> {
    client()
        .post(format!("{}/chat/completions", srv.base_url()))
        .bearer_auth(KEY)
        .json(&body())
        .send()
        .await
}

#[tokio::test]
async fn latency_is_added() {
    let srv = start(MockConfig {
        latency_ms: 250,
        latency_jitter_ms: 50,
        ..Default::default()
    })
    .await;
    let t = Instant::now();
    assert_eq!(chat(&srv, &body()).await.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(250));
    srv.shutdown().await;
}

#[tokio::test]
async fn rpm_limit_gives_429_with_retry_after_then_recovers() {
    let cfg = MockConfig {
        rpm_limit: Some(3),
        rpm_window_ms: 1500,
        ..Default::default()
    };
    let srv = start(cfg).await;
    for _ in 0..3 {
        assert_eq!(chat(&srv, &body()).await.status(), 200);
    }
    let res = chat(&srv, &body()).await;
    let h = res.headers().clone();
    let v = assert_error(res, 429).await;
    assert_eq!(v["error"]["metadata"]["error_type"], "rate_limit_exceeded");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Rate limit exceeded")
    );
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(h["x-ratelimit-limit"], "3");
    assert_eq!(h["x-ratelimit-remaining"], "0");
    let reset: u128 = h["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(
        reset > now_ms && reset <= now_ms + 1600,
        "{reset} vs {now_ms}"
    );
    assert_eq!(last(&srv).outcome, "rate_limited");
    assert!(last(&srv).cost.is_none());
    tokio::time::sleep(Duration::from_millis(1550)).await;
    assert_eq!(chat(&srv, &body()).await.status(), 200);
    srv.shutdown().await;
}

#[tokio::test]
async fn credit_limit_gives_402_once_reached() {
    // one perplexity/sonar request costs a little over $0.005
    let limit = Decimal::from_str("0.006").unwrap();
    let srv = start(MockConfig {
        credit_limit: Some(limit),
        ..Default::default()
    })
    .await;
    let sonar = json!({"model": "perplexity/sonar", "messages": msgs("x")});
    assert_eq!(chat(&srv, &sonar).await.status(), 200);
    assert_eq!(chat(&srv, &sonar).await.status(), 200);
    assert!(srv.spent() >= limit);
    let v = assert_error(chat(&srv, &sonar).await, 402).await;
    assert_eq!(v["error"]["metadata"]["error_type"], "payment_required");
    assert_eq!(last(&srv).outcome, "credits");
    srv.shutdown().await;
}

#[tokio::test]
async fn keys_are_checked() {
    let srv = start(MockConfig::default()).await;
    let url = format!("{}/chat/completions", srv.base_url());
    let bad = client()
        .post(&url)
        .bearer_auth("sk-or-v1-0000")
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_error(bad, 401).await;
    let none = client().post(&url).json(&body()).send().await.unwrap();
    assert_error(none, 401).await;
    assert_error(
        client()
            .get(format!("{}/key", srv.base_url()))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    assert_eq!(last(&srv).outcome, "unauthorized");
    srv.shutdown().await;

    let srv = start(MockConfig {
        keys: vec!["only-this".into()],
        ..Default::default()
    })
    .await;
    let url = format!("{}/chat/completions", srv.base_url());
    let ok = client()
        .post(&url)
        .bearer_auth("only-this")
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_error(chat(&srv, &body()).await, 401).await;
    srv.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_400() {
    let srv = start(MockConfig::default()).await;
    let v = assert_error(
        chat(
            &srv,
            &json!({"model": "no/such-model", "messages": msgs("x")}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(
        v["error"]["message"],
        "no/such-model is not a valid model ID"
    );
    assert_eq!(last(&srv).outcome, "bad_request");
    for bad in [
        json!({"model": "openai/gpt-4o-mini"}),
        json!({"messages": []}),
        json!([1]),
        json!({"messages": msgs("x"), "max_tokens": -1}),
    ] {
        assert_error(chat(&srv, &bad).await, 400).await;
    }
    let raw = client()
        .post(format!("{}/chat/completions", srv.base_url()))
        .bearer_auth(KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(raw, 400).await;
    assert_eq!(srv.spent(), Decimal::ZERO);
    srv.shutdown().await;
}

#[tokio::test]
async fn moderation_403_flags_the_input_unbilled() {
    let srv = start(MockConfig {
        moderation_rate: 1.0,
        ..Default::default()
    })
    .await;
    let long = "x".repeat(150);
    let body = json!({"model": "openai/gpt-4o-mini", "messages": msgs(&long)});
    let v = assert_error(chat(&srv, &body).await, 403).await;
    let meta = &v["error"]["metadata"];
    assert_eq!(meta["reasons"], json!(["harassment"]));
    assert_eq!(meta["flagged_input"].as_str().unwrap().len(), 100);
    assert_eq!(meta["model_slug"], "openai/gpt-4o-mini");
    assert!(meta.get("error_type").is_none(), "{v}");
    let rec = last(&srv);
    assert_eq!(
        (rec.status, rec.outcome.as_str(), rec.cost),
        (403, "moderation", None)
    );
    assert_eq!(srv.spent(), Decimal::ZERO);
    srv.shutdown().await;
}
