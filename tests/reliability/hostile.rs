//! A hostile server (a tiny axum app on 127.0.0.1 inside the test) and a hostile terminal:
//! bad optional fields, negative costs, endless bodies, hour-long `Retry-After`, an echoed key,
//! a closed stderr, and a mock asked to listen beyond loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use orbatch::output::{ErrorKind, Status};

use crate::common::*;
use crate::security::files_containing;

/// A chat endpoint answering hit `n` (0-based) with `chat(n)`; everything else is 404.
struct Hostile {
    url: String,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Hostile {
    async fn start(chat: impl Fn(usize) -> Response + Send + Sync + 'static) -> Hostile {
        let hits = Arc::new(AtomicUsize::new(0));
        let (h, chat) = (hits.clone(), Arc::new(chat));
        let app = Router::new().route(
            "/api/v1/chat/completions",
            post(move || {
                let n = h.fetch_add(1, Ordering::SeqCst);
                let chat = chat.clone();
                async move { chat(n) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v1", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hostile { url, hits, task }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A normal answer whose `usage.cost` is the raw JSON `cost`.
fn answer(cost: &str) -> Response {
    let body = format!(
        r#"{{"id":"gen-h","model":"{MODEL}","choices":[{{"index":0,"finish_reason":"stop","message":{{"role":"assistant","content":"hi"}}}}],"usage":{{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,"cost":{cost}}}}}"#
    );
    ([("content-type", "application/json")], body).into_response()
}

fn rate_limited(retry_after: &'static str) -> Response {
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        r#"{"error":{"code":429,"message":"slow down"}}"#,
    )
        .into_response();
    r.headers_mut()
        .insert("retry-after", HeaderValue::from_static(retry_after));
    r
}

fn job_file(s: &Scratch, limits: &str) {
    s.write(
        "job.toml",
        format!("input = \"in.csv\"\noutput_dir = \"out\"\n[request]\nmodels = [\"{MODEL}\"]\nprompt = \"Q: {{{{ text }}}}\"\nmax_tokens = 8\n[limits]\n{limits}\n").as_bytes(),
    );
}

#[tokio::test]
async fn a_bad_or_negative_usage_cost_keeps_the_answer_and_is_never_subtracted() {
    const COSTS: [&str; 6] = ["\"abc\"", "1e308", "-5", "true", "NaN", "-1e-30"];
    let srv = Hostile::start(|n| answer(COSTS[n % COSTS.len()])).await;
    let s = Scratch::with_rows(COSTS.len());
    let out = Orb::run_at(&s, &srv.url).output().await;
    out.assert_code(0);
    // Each answer was delivered once and kept: nothing bought twice.
    assert_eq!(srv.hits(), COSTS.len());
    let lines = s.lines();
    assert_eq!(lines.len(), COSTS.len());
    for l in &lines {
        assert_eq!(
            (l.status, l.attempts, l.output.as_deref()),
            (Status::Ok, 1, Some("hi"))
        );
        assert_eq!(l.cost_usd, None, "an unusable cost is unknown: {l:?}");
    }
    let total = &s.summary()["cost_usd"]["total"];
    assert!(total.is_null() || total.as_f64() == Some(0.0), "{total}");
}

#[tokio::test]
async fn an_endless_body_fails_the_attempt_as_invalid_response() {
    let srv = Hostile::start(|_| {
        let chunk = Bytes::from(vec![b' '; 1 << 16]);
        let endless = futures_util::StreamExt::map(
            futures_util::stream::repeat(chunk),
            Ok::<_, std::io::Error>,
        );
        (
            [("content-type", "application/json")],
            Body::from_stream(endless),
        )
            .into_response()
    })
    .await;
    let s = Scratch::with_rows(1);
    job_file(&s, "max_retries = 0\nmax_response_bytes = 1000000");
    let out = Orb::new(&s)
        .args(["run", "job.toml", "--base-url", &srv.url, "--no-progress"])
        .output()
        .await;
    out.assert_code(1);
    let l = &s.lines()[0];
    let e = l.error.as_ref().unwrap();
    assert_eq!(e.kind, ErrorKind::InvalidResponse, "{}", e.message);
    assert!(e.message.contains("max_response_bytes"), "{}", e.message);
    // It may have been billed: an unknown-cost attempt.
    assert_eq!(l.unknown_cost_attempts, 1);
}

/// A 200 whose head carries a 1 MiB header.
fn answer_with_a_megabyte_header(_: usize) -> Response {
    let mut r = answer("0.001");
    let junk = HeaderValue::from_str(&"x".repeat(1 << 20)).unwrap();
    r.headers_mut().insert("x-junk", junk);
    r
}

#[tokio::test]
async fn a_response_with_a_megabyte_of_headers_is_kept() {
    let srv = Hostile::start(answer_with_a_megabyte_header).await;
    let s = Scratch::with_rows(1);
    let out = Orb::run_at(&s, &srv.url).output().await;
    out.assert_code(0);
    // The paid answer is read and kept: one request, an ok line with its cost.
    assert_eq!(srv.hits(), 1);
    let l = &s.lines()[0];
    assert_eq!((l.status, l.attempts), (Status::Ok, 1), "{:?}", l.error);
    assert_eq!(l.cost_usd, Some(dec("0.001")));
}

#[tokio::test]
async fn a_response_head_larger_than_max_response_bytes_is_not_bought_twice() {
    let srv = Hostile::start(answer_with_a_megabyte_header).await;
    let s = Scratch::with_rows(1);
    job_file(&s, "max_response_bytes = 100000");
    let out = Orb::new(&s)
        .args(["run", "job.toml", "--base-url", &srv.url, "--no-progress"])
        .output()
        .await;
    out.assert_code(1);
    // The answer could not be read, but it is not bought again: one request, one failed line
    // counting a possibly-billed attempt.
    assert_eq!(srv.hits(), 1);
    let l = &s.lines()[0];
    let e = l.error.as_ref().unwrap();
    assert_eq!(e.kind, ErrorKind::InvalidResponse, "{}", e.message);
    assert!(e.message.contains("headers"), "{}", e.message);
    assert!(e.message.contains("max_response_bytes"), "{}", e.message);
    assert_eq!(l.unknown_cost_attempts, 1);
}

/// A 307 back to the chat URL would be a second purchase if it were followed: it is a failed
/// attempt (HTTP 307), on both HTTP stacks.
#[tokio::test]
async fn a_redirect_is_not_followed() {
    for stack in ["direct", "reqwest"] {
        let srv = Hostile::start(|n| {
            if n == 0 {
                let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
                r.headers_mut().insert(
                    "location",
                    HeaderValue::from_static("/api/v1/chat/completions"),
                );
                r
            } else {
                answer("0.001")
            }
        })
        .await;
        let s = Scratch::with_rows(1);
        let out = Orb::run_at(&s, &srv.url)
            .env("ORBATCH_HTTP", stack)
            .output()
            .await;
        out.assert_code(1);
        assert_eq!(srv.hits(), 1, "{stack}: the redirect was followed");
        let l = &s.lines()[0];
        let e = l.error.as_ref().unwrap();
        assert_eq!((e.kind, l.attempts), (ErrorKind::Http, 1), "{stack}");
        assert!(e.message.contains("307"), "{stack}: {}", e.message);
    }
}

/// A refused connection never reached the server: a network error, retried, and not counted
/// as a possibly-billed attempt.
#[tokio::test]
async fn a_refused_connection_is_not_ambiguous() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = Scratch::with_rows(1);
    let url = format!("http://127.0.0.1:{port}/api/v1");
    let out = Orb::run_at(&s, &url)
        .args(["--max-retries", "1"])
        .output()
        .await;
    out.assert_code(1);
    let l = &s.lines()[0];
    let e = l.error.as_ref().unwrap();
    assert_eq!(
        (e.kind, l.attempts),
        (ErrorKind::Network, 2),
        "{}",
        e.message
    );
    assert!(e.message.starts_with("connection failed"), "{}", e.message);
    assert!(!e.message.contains(&url), "{}", e.message);
    assert_eq!(l.unknown_cost_attempts, 0);
}

#[tokio::test]
async fn an_hour_long_retry_after_is_capped() {
    let srv = Hostile::start(|n| {
        if n == 0 {
            rate_limited("3600")
        } else {
            answer("0.001")
        }
    })
    .await;
    let s = Scratch::with_rows(1);
    job_file(&s, "max_retries = 2\nmax_retry_wait_secs = 1");
    let t = std::time::Instant::now();
    let out = Orb::new(&s)
        .args(["run", "job.toml", "--base-url", &srv.url, "--no-progress"])
        .output()
        .await;
    out.assert_code(0);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert_eq!((srv.hits(), s.lines()[0].attempts), (2, 2));
}

/// Ctrl-C during a back-off: the pair stays unsent (no line), nothing more is sent, exit 3;
/// with stderr closed too (the stop must not depend on a writable stderr).
#[tokio::test]
async fn ctrl_c_cuts_a_back_off_even_with_stderr_closed() {
    for close_stderr in [false, true] {
        let srv = Hostile::start(|_| rate_limited("3600")).await;
        let s = Scratch::with_rows(2);
        let mut child = Orb::run_at(&s, &srv.url)
            .args(["--concurrency", "1", "--max-retries", "5"])
            .spawn();
        if close_stderr {
            drop(child.stderr.take());
        }
        let t = std::time::Instant::now();
        while srv.hits() == 0 {
            assert!(t.elapsed() < Duration::from_secs(20), "no request");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        signal(child.id().unwrap(), "INT");
        let out = wait(child, Duration::from_secs(20)).await;
        out.assert_code(3);
        assert_eq!(srv.hits(), 1, "nothing sent after Ctrl-C");
        assert!(s.lines().is_empty(), "the unsent pair has no line");
    }
}

#[tokio::test]
async fn an_echoed_key_is_redacted_everywhere() {
    let echo =
        format!(r#"{{"error":{{"code":400,"message":"bad header Authorization: Bearer {KEY}"}}}}"#);
    let srv =
        Hostile::start(move |_| (StatusCode::BAD_REQUEST, echo.clone()).into_response()).await;
    let s = Scratch::with_rows(2);
    let out = Orb::run_at(&s, &srv.url).output().await;
    out.assert_code(1);
    let refused = format!(r#"{{"error":{{"code":401,"message":"key Bearer {KEY} refused"}}}}"#);
    let srv2 =
        Hostile::start(move |_| (StatusCode::UNAUTHORIZED, refused.clone()).into_response()).await;
    let s2 = Scratch::with_rows(1);
    let out2 = Orb::run_at(&s2, &srv2.url).output().await;
    out2.assert_code(4);
    let echoed = format!(
        r#"{{"id":"gen-e","choices":[{{"finish_reason":"stop","message":{{"role":"assistant","content":"your key: {KEY}"}}}}],"usage":{{"prompt_tokens":1,"completion_tokens":1,"cost":0.001}}}}"#
    );
    let srv3 = Hostile::start(move |_| {
        ([("content-type", "application/json")], echoed.clone()).into_response()
    })
    .await;
    let s3 = Scratch::with_rows(1);
    let out3 = Orb::run_at(&s3, &srv3.url).output().await;
    out3.assert_code(0);
    for (what, text) in [
        ("stdout", &out.stdout),
        ("stderr", &out.stderr),
        ("stderr (401)", &out2.stderr),
        ("stdout (answer)", &out3.stdout),
    ] {
        assert!(!text.contains(KEY), "{what} shows the key:\n{text}");
    }
    assert!(out2.stderr.contains("[REDACTED]"), "{}", out2.stderr);
    for dir in [&s, &s2, &s3] {
        assert_eq!(files_containing(dir.tmp.path(), KEY), Vec::<String>::new());
    }
    assert!(
        s.lines()[0]
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("[REDACTED]")
    );
}

/// `orbatch run ... 2>&1 | head -1`: stdout and stderr closed early; no panic (exit 101).
#[tokio::test]
async fn a_closed_stdout_and_stderr_do_not_panic() {
    let srv = Hostile::start(|_| answer("0.001")).await;
    let s = Scratch::with_rows(3);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut orb = Orb::run_at(&s, &srv.url);
    orb.cmd.stdout(writer.try_clone().unwrap()).stderr(writer);
    let out = orb.args(["--max-retries", "0"]).output().await;
    assert_eq!(out.code, Some(0), "exit code");
    assert_eq!(s.lines().len(), 3);
}

#[tokio::test]
async fn the_mock_server_refuses_a_non_loopback_address() {
    let s = Scratch::new();
    let out = Orb::new(&s)
        .args(["mock-server", "--addr", "0.0.0.0:0"])
        .output()
        .await;
    out.assert_code(2);
    assert!(out.stderr.contains("loopback only"), "{}", out.stderr);
}

/// Core dumps are off: a crash never writes the key in memory to disk.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn core_dumps_are_disabled() {
    let srv = Hostile::start(|_| rate_limited("3600")).await;
    let s = Scratch::with_rows(1);
    let child = Orb::run_at(&s, &srv.url).spawn();
    let pid = child.id().unwrap();
    while srv.hits() == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert!(
        core.split_whitespace().nth(4) == Some("0") && core.split_whitespace().nth(5) == Some("0"),
        "{core}"
    );
    signal(pid, "KILL");
    let _ = wait(child, Duration::from_secs(10)).await;
}
