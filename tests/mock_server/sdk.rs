//! The official `openrouter` Python SDK against an in-process mock, through the repository's
//! `scripts/sdk_fidelity.py`. The Python is $ORBATCH_SDK_PYTHON, else the venv that
//! `scripts/sdk_venv.sh` sets up (`$TMPDIR/orbatch-sdk-venv`), else `python3`.
//! With no Python that has the SDK, the test says it skipped, except under `CI=true`, where it
//! fails (`.ci/run` sets the SDK up and runs with `CI=true`).

use std::path::{Path, PathBuf};

use orbatch::mock::MockConfig;

use super::{KEY, start};

/// The fidelity script, part of the repository.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sdk_fidelity.py")
}

/// The first Python that can `import openrouter`, and every candidate tried.
fn sdk_python() -> (Option<String>, Vec<String>) {
    let candidates: Vec<String> = match std::env::var("ORBATCH_SDK_PYTHON") {
        Ok(p) if !p.is_empty() => vec![p],
        _ => vec![
            std::env::temp_dir()
                .join("orbatch-sdk-venv/bin/python")
                .to_string_lossy()
                .into_owned(),
            "python3".to_string(),
        ],
    };
    let found = candidates.iter().find(|py| {
        std::process::Command::new(py)
            .args(["-c", "import openrouter"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    (found.cloned(), candidates)
}

/// True when the environment says this is CI (`CI=true` or `CI=1`, as CI services set it).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_fidelity() {
    let script = script();
    assert!(script.is_file(), "{} is missing", script.display());
    let (python, tried) = sdk_python();
    let Some(python) = python else {
        let why = format!(
            "no Python with the `openrouter` SDK (tried {}); run scripts/sdk_venv.sh or set \
             ORBATCH_SDK_PYTHON",
            tried.join(", ")
        );
        assert!(!in_ci(), "sdk_fidelity cannot run under CI=true: {why}");
        eprintln!("sdk_fidelity SKIPPED: {why}");
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
