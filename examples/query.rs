//! One prompt through OpenRouter with the library's client: prints the reply, the tokens and
//! the cost, from the response (`usage.cost`) and from `GET /generation` (whose record appears
//! with a delay, so a 404 is retried with back-off).
//!
//! ```text
//! cargo run --example query -- --mock                       # the built-in mock, no key
//! OPENROUTER_API_KEY=sk-or-... cargo run --example query -- "Name a colour." --model openai/gpt-4o-mini
//! ```
//!
//! `OPENROUTER_BASE_URL` points it at another OpenAI-compatible server.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use orbatch::client::{Attempt, CallError, Client};
use orbatch::mock::{MockConfig, MockServer};
use secrecy::SecretString;

/// Send one prompt and show what it cost.
#[derive(Parser)]
struct Args {
    /// The user message.
    #[arg(default_value = "Say hello in five words.")]
    prompt: String,
    /// The model slug.
    #[arg(long, default_value = "openai/gpt-4o-mini")]
    model: String,
    /// max_tokens of the request.
    #[arg(long, default_value_t = 64)]
    max_tokens: u64,
    /// Use the built-in mock OpenRouter (in-process, on 127.0.0.1; no key needed).
    #[arg(long)]
    mock: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match query(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn query(args: Args) -> anyhow::Result<()> {
    // Keeps the in-process mock alive until the end.
    let mut mock = None;
    let (base_url, key) = if args.mock {
        let server = MockServer::start(MockConfig::default()).await?;
        let url = server.base_url();
        mock = Some(server);
        (url, SecretString::from("sk-or-v1-mock-example".to_string()))
    } else {
        let key = std::env::var("OPENROUTER_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| anyhow::anyhow!("set OPENROUTER_API_KEY (or use --mock)"))?;
        let url = std::env::var("OPENROUTER_BASE_URL")
            .unwrap_or_else(|_| orbatch::endpoint::DEFAULT_BASE_URL.to_string());
        orbatch::endpoint::check_base_url(&url)?;
        (url, SecretString::from(key))
    };
    let client = Client::new(&base_url, Some(&key), Duration::from_secs(120), 1)?;

    let body = serde_json::json!({
        "model": args.model,
        "messages": [{"role": "user", "content": args.prompt}],
        "max_tokens": args.max_tokens,
        "usage": {"include": true},
    });
    let c = match client.chat(serde_json::to_vec(&body)?.into()).await {
        Attempt::Answered(c) => c,
        Attempt::Failed(f) => anyhow::bail!("{} ({})", f.message, f.kind.as_str()),
    };
    let or_unknown = |v: Option<u64>| v.map_or("?".to_string(), |n| n.to_string());
    println!("reply:    {}", c.content.as_deref().unwrap_or(""));
    println!(
        "model:    {} (provider {})",
        c.response_model.as_deref().unwrap_or("?"),
        c.provider.as_deref().unwrap_or("?")
    );
    println!(
        "tokens:   {} prompt + {} completion",
        or_unknown(c.prompt_tokens),
        or_unknown(c.completion_tokens)
    );
    println!(
        "cost:     {} (usage.cost of the response)",
        c.cost
            .map_or("unknown".to_string(), |v| format!("${}", v.normalize()))
    );

    let Some(id) = c.generation_id else {
        println!("generation: the response had no id to look up");
        return Ok(());
    };
    // The record appears a little after the answer: 404 means "not yet".
    for wait_ms in [0u64, 500, 1000, 2000, 4000, 8000] {
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        match client.generation(&id).await {
            Ok(g) => {
                println!(
                    "generation {id}: {} charged, provider {}, native tokens {} + {}",
                    g.total_cost
                        .map_or("unknown".to_string(), |v| format!("${}", v.normalize())),
                    g.provider_name.as_deref().unwrap_or("?"),
                    or_unknown(g.native_tokens_prompt),
                    or_unknown(g.native_tokens_completion)
                );
                drop(mock);
                return Ok(());
            }
            Err(CallError::NotFound) => continue,
            Err(e) => {
                println!("generation {id}: look-up failed: {e}");
                return Ok(());
            }
        }
    }
    println!("generation {id}: no record yet (it can take a minute to appear)");
    Ok(())
}
