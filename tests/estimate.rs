//! `orbatch estimate`, its pilot, `credits`, `run`'s pre-flight and cost reconciliation, driven
//! through the CLI against the in-process mock over 127.0.0.1. Each test isolates the price
//! cache (`ORBATCH_CACHE_DIR`) in its own temp dir.
//!
//! This file: helpers, token counts, the hard high bound, price unknown. The pilot is in
//! `estimate/pilot.rs`; credits, pre-flight and reconciliation in `estimate/account.rs`.

#[path = "estimate/account.rs"]
mod account;
#[path = "estimate/pilot.rs"]
mod pilot;
#[path = "support/mod.rs"]
mod support;

#[allow(unused_imports)]
pub use support::{HAIKU as CLAUDE, KEY, MINI as GPT, Scratch, expect_code, output};

use std::path::{Path, PathBuf};
use std::process::Output;

use orbatch::mock::{MockConfig, MockServer};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde::Deserialize;

pub const SYSTEM: &str = "You label product reviews.";
pub const PROMPT: &str = "Review: {{ text }}\nAnswer with one word: positive, negative or neutral.";

/// The estimate tests' name for the shared harness's temp dir.
pub type Dir = Scratch;

/// `orbatch` in `dir` with the test environment (the mock key, an isolated price cache).
pub fn orbatch(dir: &Dir) -> assert_cmd::Command {
    dir.command(&[])
}

const WORDS: [&str; 24] = [
    "great",
    "battery",
    "life",
    "but",
    "the",
    "screen",
    "cracked",
    "after",
    "two",
    "weeks",
    "café",
    "naïve",
    "delivery",
    "was",
    "late",
    "and",
    "support",
    "never",
    "answered",
    "my",
    "emails",
    "excellent",
    "value",
    "😀",
];

/// `n` review texts of varied length (1 to ~`max_words` words), deterministic for `seed`.
pub fn texts(n: usize, max_words: usize, seed: u64) -> Vec<String> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|_| {
            let words = 1 + (next() as usize) % max_words;
            (0..words)
                .map(|_| WORDS[(next() as usize) % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Writes `id,text` rows to `input.csv`.
pub fn write_csv(dir: &Dir, texts: &[String]) -> PathBuf {
    let path = dir.path("input.csv");
    let mut w = csv::Writer::from_path(&path).unwrap();
    w.write_record(["id", "text"]).unwrap();
    for (i, t) in texts.iter().enumerate() {
        w.write_record([format!("r{i}"), t.clone()]).unwrap();
    }
    w.flush().unwrap();
    path
}

/// The job flags: input, output dir, the mock, models, templates, max_tokens.
pub fn job(
    srv: &MockServer,
    input: &Path,
    out: &Path,
    models: &[&str],
    max_tokens: Option<u64>,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--input".into(),
        input.display().to_string(),
        "--output-dir".into(),
        out.display().to_string(),
        "--base-url".into(),
        srv.base_url(),
        "--system".into(),
        SYSTEM.into(),
        "--prompt".into(),
        PROMPT.into(),
    ];
    for m in models {
        a.extend(["--model".to_string(), m.to_string()]);
    }
    if let Some(n) = max_tokens {
        a.extend(["--max-tokens".to_string(), n.to_string()]);
    }
    a
}

/// The parts of `estimate --json` the tests read, money exactly.
#[derive(Deserialize, Debug)]
pub struct Estimate {
    pub rows: u64,
    pub models: Vec<ModelEst>,
    pub total: Total,
    pub pilot: Option<serde_json::Value>,
}

#[derive(Deserialize, Debug)]
pub struct ModelEst {
    pub model: String,
    pub rows: u64,
    pub prompt_tokens: u64,
    pub exact_tokens: bool,
    pub price_known: bool,
    pub cost_usd: Costs,
}

#[derive(Deserialize, Debug)]
pub struct Total {
    pub cost_usd: Costs,
    pub interval: Option<Interval>,
}

#[derive(Deserialize, Debug)]
pub struct Costs {
    #[serde(with = "orbatch::money::opt")]
    pub low: Option<Decimal>,
    #[serde(with = "orbatch::money::opt")]
    pub expected: Option<Decimal>,
    #[serde(with = "orbatch::money::opt")]
    pub high: Option<Decimal>,
}

#[derive(Deserialize, Debug)]
pub struct Interval {
    pub level: f64,
    #[serde(with = "orbatch::money")]
    pub low: Decimal,
    #[serde(with = "orbatch::money")]
    pub high: Decimal,
}

/// Runs `estimate --json` with `args`; expects exit 0.
pub async fn estimate(dir: &Dir, args: &[String]) -> Estimate {
    let mut cmd = orbatch(dir);
    cmd.arg("estimate").args(args).arg("--json");
    let out = output(cmd).await;
    expect_code(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `run` with `args`; returns the output.
pub async fn run(dir: &Dir, args: &[String]) -> Output {
    let mut cmd = orbatch(dir);
    cmd.arg("run").arg("--no-progress").args(args);
    output(cmd).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_tokens_match_tiktoken_exactly_for_an_openai_model() {
    use tiktoken_rs::ChatCompletionRequestMessage as Msg;
    let srv = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = Dir::new();
    let texts = texts(40, 120, 3);
    let input = write_csv(&dir, &texts);
    let est = estimate(&dir, &job(&srv, &input, &dir.out(), &[GPT], Some(8))).await;
    let msg = |role: &str, content: String| Msg {
        role: role.into(),
        content: Some(content),
        ..Default::default()
    };
    let expected: usize = texts
        .iter()
        .map(|t| {
            let user = PROMPT.replace("{{ text }}", t);
            let m = [msg("system", SYSTEM.into()), msg("user", user)];
            tiktoken_rs::num_tokens_from_messages("gpt-4o-mini", &m).unwrap()
        })
        .sum();
    assert_eq!(est.rows, 40);
    assert_eq!(est.models[0].model, GPT);
    assert!(est.models[0].exact_tokens);
    assert_eq!(est.models[0].prompt_tokens, expected as u64);
    // Nothing was sent.
    assert!(srv.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_missing_from_models_is_price_unknown() {
    let srv = MockServer::start(MockConfig {
        unlisted_models: vec!["acme/secret-1".into()],
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = Dir::new();
    let input = write_csv(&dir, &texts(5, 20, 1));
    let args = job(&srv, &input, &dir.out(), &[GPT, "acme/secret-1"], Some(8));
    let est = estimate(&dir, &args).await;
    let (known, unknown) = (&est.models[0], &est.models[1]);
    assert!(known.price_known && known.cost_usd.high.is_some());
    assert_eq!(unknown.model, "acme/secret-1");
    assert!(!unknown.price_known);
    assert_eq!(unknown.rows, 5);
    let c = &unknown.cost_usd;
    assert_eq!((c.low, c.expected, c.high), (None, None, None));
    assert_eq!(
        est.total.cost_usd.high, None,
        "never $0 for an unknown part"
    );

    let mut cmd = orbatch(&dir);
    cmd.arg("estimate").args(&args);
    let out = output(cmd).await;
    expect_code(&out, 0);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("price unknown"), "{table}");
    // Warned once, with the estimate (not again on stderr).
    assert!(table.contains("price unknown for acme/secret-1"), "{table}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("price unknown for acme/secret-1"));
}

/// One property case: estimate, then run everything; the high bound must cover the real cost.
async fn high_covers_a_full_run(
    srv: &MockServer,
    texts: Vec<String>,
    model: &str,
    max: Option<u64>,
) {
    let dir = Dir::new();
    let input = write_csv(&dir, &texts);
    let args = job(srv, &input, &dir.out(), &[model], max);
    let est = estimate(&dir, &args).await;
    let before = srv.spent();
    let out = run(&dir, &args).await;
    expect_code(&out, 0);
    let real = srv.spent() - before;
    let high = est.total.cost_usd.high.unwrap();
    assert!(
        high >= real,
        "{model} max_tokens {max:?}: high {high} < real {real}"
    );
    let low = est.total.cost_usd.low.unwrap();
    assert!(low <= high);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn the_high_estimate_is_never_below_a_full_run(
        texts in prop::collection::vec("[a-z0-9 .,!?éü日本😀]{0,300}", 1..12),
        model in prop::sample::select(vec![
            GPT, CLAUDE, "google/gemini-2.0-flash-001", "perplexity/sonar",
        ]),
        max in prop::option::of(1u64..80),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let srv = MockServer::start(MockConfig::default()).await.unwrap();
            high_covers_a_full_run(&srv, texts, model, max).await;
        });
    }
}
