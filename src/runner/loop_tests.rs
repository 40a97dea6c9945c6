//! The retry and budget loop of a worker, driven by a scripted [`Transport`] (no sockets, the
//! clock paused): what it sends, waits, counts and charges.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rust_decimal::Decimal;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::worker::{WorkItem, work};
use super::{Ctx, Lookups};
use crate::budget::Budget;
use crate::client::Client;
use crate::job::{Job, Overrides};
use crate::limits::{LimitSpec, Limiter};
use crate::output::{ErrorKind, RawJson, ResultLine, Status};
use crate::transport::{Attempt, BoxFuture, Completion, Failure, Transport};

/// Answers attempt `n` with `script[n]` and records when each attempt was made.
struct Scripted {
    script: Vec<Attempt>,
    sent: Mutex<Vec<Instant>>,
}

impl Transport for Scripted {
    fn chat(&self, _body: Bytes) -> BoxFuture<'_, Attempt> {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let n = sent.len();
        sent.push(Instant::now());
        let a = self.script[n.min(self.script.len() - 1)].clone();
        Box::pin(async move { a })
    }
}

fn failed(kind: ErrorKind, status: u16, retry_after: Option<Duration>) -> Attempt {
    Attempt::Failed(Failure {
        status: Some(status),
        retry_after,
        ..Failure::retryable(kind, format!("HTTP {status}"), false)
    })
}

fn answered(cost: Decimal) -> Attempt {
    Attempt::Answered(Completion {
        content: Some("hi".into()),
        finish_reason: Some("stop".into()),
        prompt_tokens: Some(3),
        completion_tokens: Some(1),
        cost: Some(cost),
        ..Default::default()
    })
}

/// Runs one pair through the real worker loop against `script`.
async fn run_pair(
    script: Vec<Attempt>,
    stop_after: Option<Duration>,
) -> (Option<ResultLine>, Arc<Ctx>, Arc<Scripted>) {
    let job = Job::resolve(
        None,
        Overrides {
            input: Some("in.csv".into()),
            models: vec!["m/x".into()],
            prompt: Some("{{ text }}".into()),
            budget_usd: Some(Decimal::ONE),
            base_url: Some("http://127.0.0.1:9/api/v1".into()),
            ..Default::default()
        },
        None,
    )
    .map_err(|e| e.0)
    .expect("a valid job");
    let fake = Arc::new(Scripted {
        script,
        sent: Mutex::new(Vec::new()),
    });
    let client = Client::for_job(&job, None)
        .expect("a client")
        .with_transport(fake.clone());
    let ctx = Arc::new(Ctx {
        limiter: Limiter::new(LimitSpec {
            concurrency: 1,
            rpm: None,
            tpm: None,
            window: Duration::from_secs(60),
        }),
        budget: Budget::new(job.limits.budget_usd, Decimal::ZERO),
        prices: Default::default(),
        job,
        client,
        stop: CancellationToken::new(),
        abort: CancellationToken::new(),
        stop_reason: Mutex::new(None),
        refused_worst: Mutex::new(None),
        lookups: Lookups::new(),
        deferred: Mutex::new(Vec::new()),
        lookup_scale: 1.0,
        cache: None,
        breakers: super::breaker::Breakers::new(super::breaker::TRIP_AFTER),
        sent: Default::default(),
        inflight: crate::output::inflight::Inflight::create(
            &tempfile::tempdir()
                .expect("a temp dir")
                .keep()
                .join("inflight.jsonl"),
        )
        .expect("an in-flight record"),
    });
    let worst = Decimal::new(1, 2);
    let item = WorkItem {
        id: "r1".into(),
        model: "m/x".into(),
        variant: None,
        body: Bytes::from_static(b"{}"),
        vars: RawJson::of(&serde_json::json!({})),
        prior: None,
        worst,
        tokens: 10,
        cache_key: None,
        cap: None,
    };
    let permit = ctx.limiter.slot().await;
    let first = ctx.budget.try_reserve("m/x", worst).expect("fits");
    if let Some(after) = stop_after {
        let stop = ctx.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            stop.cancel();
        });
    }
    let line = work(ctx.clone(), item, permit, first).await;
    (line, ctx, fake)
}

#[tokio::test(start_paused = true)]
async fn a_500_then_a_429_with_retry_after_then_an_answer() {
    let script = vec![
        failed(ErrorKind::Provider, 500, None),
        failed(ErrorKind::RateLimited, 429, Some(Duration::from_secs(7))),
        answered(Decimal::new(3, 3)),
    ];
    let (line, ctx, fake) = run_pair(script, None).await;
    let line = line.expect("a line");
    assert_eq!(line.status, Status::Ok);
    assert_eq!((line.attempts, line.rate_limited_attempts), (3, 1));
    assert_eq!(line.cost_usd, Some(Decimal::new(3, 3)));
    // The budget holds exactly the charge: every reservation settled.
    assert_eq!(ctx.budget.spent(), Decimal::new(3, 3));
    assert_eq!(ctx.budget.reserved(), Decimal::ZERO);
    let sent = fake.sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(sent.len(), 3);
    // The back-off after the 429 honoured its Retry-After.
    assert!(
        sent[2] - sent[1] >= Duration::from_secs(7),
        "{:?}",
        sent[2] - sent[1]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_a_back_off_leaves_the_pair_unsent() {
    let script = vec![failed(
        ErrorKind::RateLimited,
        429,
        Some(Duration::from_secs(200)),
    )];
    let (line, ctx, fake) = run_pair(script, Some(Duration::from_secs(5))).await;
    assert!(line.is_none(), "no line: {line:?}");
    assert_eq!(fake.sent.lock().unwrap_or_else(|e| e.into_inner()).len(), 1);
    assert_eq!(ctx.budget.reserved(), Decimal::ZERO);
}
