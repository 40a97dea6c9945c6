//! The official `openrouter` Python SDK against an in-process mock (shared/tools/sdk_fidelity.py).
//! Skipped (with a note, passing) when no Python with the SDK is found: set ORBATCH_SDK_PYTHON
//! (default /tmp/orvenv/bin/python; see scripts/sdk_fidelity.sh for the venv).

use std::path::PathBuf;

use orbatch::mock::MockConfig;

use super::{KEY, start};

/// The fidelity script: $ORBATCH_SDK_FIDELITY_SCRIPT, else shared/tools beside the checkout.
fn script() -> Option<PathBuf> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("ORBATCH_SDK_FIDELITY_SCRIPT")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            here.join("../shared/tools/sdk_fidelity.py"),
            PathBuf::from("/work/shared/tools/sdk_fidelity.py"),
        ])
        .find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_fidelity() {
    let python =
        std::env::var("ORBATCH_SDK_PYTHON").unwrap_or_else(|_| "/tmp/orvenv/bin/python".into());
    let has_sdk = std::process::Command::new(&python)
        .args(["-c", "import openrouter"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_sdk {
        eprintln!("sdk_fidelity skipped: no Python with the `openrouter` SDK at {python}");
        return;
    }
    let Some(script) = script() else {
        eprintln!("sdk_fidelity skipped: sdk_fidelity.py not found");
        return;
    };
    // a small generation lag, so that the SDK's 404-then-found path is exercised too
    let srv = start(MockConfig {
        generation_lag_ms: 300,
        ..Default::default()
    })
    .await;
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .args(["--base-url", &srv.base_url(), "--key", KEY])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "sdk_fidelity.py failed:\n{stdout}");
    assert!(stdout.contains("4/4 SDK calls parsed"), "{stdout}");
    srv.shutdown().await;
}
