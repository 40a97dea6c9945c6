//! Runs the built-in mock OpenRouter server until Ctrl-C (a stand-in for
//! `orbatch mock-server`, which takes the same flags).
//!
//! ```text
//! cargo run --example mock_server -- --addr 127.0.0.1:8787 --error-rate 0.1 --rpm-limit 600
//! ```

use clap::Parser;
use orbatch::mock::{MockConfig, serve};

/// Serve the mock OpenRouter API on loopback.
#[derive(Parser)]
#[command(about = "Serve the built-in mock OpenRouter API on loopback")]
struct Args {
    #[command(flatten)]
    cfg: MockConfig,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    serve(args.cfg, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
