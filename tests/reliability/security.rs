//! Guarantee 11: the key never leaks. Run with a known key, faults and `RUST_LOG=trace`, then
//! grep stdout, stderr and every file written for it; also `--help`, a refused key, a job file
//! holding a key, a non-loopback `http://` base URL, and `--api-key-file`.

use std::path::Path;

use orbatch::mock::MockConfig;

use crate::common::*;

const SECRET: &str = "sk-or-v1-mock-Zq7SECRETx91-do-not-print";

/// Every file under `dir` that contains `needle` (as bytes).
pub fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return hits;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if let Ok(bytes) = std::fs::read(&p)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            hits.push(p.display().to_string());
        }
    }
    hits
}

fn assert_no_key(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} shows the key");
    // Not even a large piece of it.
    assert!(
        !text.contains(&SECRET[8..28]),
        "{what} shows part of the key"
    );
}

#[tokio::test]
async fn the_key_never_appears_in_output_logs_or_files() {
    let srv = mock(MockConfig {
        keys: vec![SECRET.into()],
        seed: 5,
        error_rate: 0.2,
        reset_rate: 0.1,
        malformed_rate: 0.1,
        no_cost: true, // forces generation look-ups (more requests carrying the key)
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(8);
    let out = Orb::run(&s, &srv)
        .env("OPENROUTER_API_KEY", SECRET)
        .env("RUST_LOG", "trace")
        .args(["--max-retries", "6", "--budget", "1", "--yes"])
        .output()
        .await;
    assert!(matches!(out.code, Some(0) | Some(1)), "{}", out.stderr);
    assert!(
        out.stderr.len() > 10_000,
        "trace logging is on ({} bytes)",
        out.stderr.len()
    );
    assert_eq!(s.lines().len(), 8);
    assert_no_key("stdout", &out.stdout);
    assert_no_key("stderr (RUST_LOG=trace)", &out.stderr);
    assert_eq!(files_containing(s.tmp.path(), SECRET), Vec::<String>::new());
    // The key did reach the server (it accepts only this one) in the Authorization header.
    assert!(srv.requests().iter().all(|r| r.status != 401));

    // A refused key: its error names no key either.
    let other = mock(MockConfig {
        keys: vec!["sk-or-v1-mock-the-right-one".into()],
        ..Default::default()
    })
    .await;
    let s2 = Scratch::with_rows(2);
    let out = Orb::run(&s2, &other)
        .env("OPENROUTER_API_KEY", SECRET)
        .env("RUST_LOG", "trace")
        .output()
        .await;
    out.assert_code(4);
    assert_no_key("stderr of a refused key", &out.stderr);
    assert_eq!(
        files_containing(s2.tmp.path(), SECRET),
        Vec::<String>::new()
    );

    // --help, with the key in the environment.
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["credits", "--help"],
    ] {
        let out = Orb::new(&s)
            .env("OPENROUTER_API_KEY", SECRET)
            .args(args.clone())
            .output()
            .await;
        out.assert_code(0);
        assert_no_key(&format!("{args:?}"), &(out.stdout + &out.stderr));
    }
    srv.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn a_job_file_with_a_key_is_refused_without_echoing_it() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(2);
    for (case, line) in [
        ("api_key", format!("api_key = \"{SECRET}\"")),
        ("a key-looking value", format!("note = \"{SECRET}\"")),
    ] {
        s.write(
            "job.toml",
            format!(
                "input = \"in.csv\"\noutput_dir = \"out\"\n{line}\n[request]\nmodels = [\"{MODEL}\"]\nprompt = \"Q: {{{{ text }}}}\"\n"
            )
            .as_bytes(),
        );
        let out = Orb::run_job(&s, &srv).output().await;
        out.assert_code(2);
        assert!(
            out.stderr.contains("job.toml:3") && out.stderr.contains("does not belong"),
            "{case}: {}",
            out.stderr
        );
        assert_no_key(case, &(out.stdout + &out.stderr));
    }
    assert_eq!(srv.requests().len(), 0);
    srv.shutdown().await;
}

#[tokio::test]
async fn plain_http_is_refused_unless_loopback() {
    let s = Scratch::with_rows(2);
    for url in ["http://10.1.2.3:8080/api/v1", "http://example.com/api/v1"] {
        let out = Orb::run_at(&s, url).output().await;
        out.assert_code(2);
        assert!(
            out.stderr.contains("refusing plain http://"),
            "{}",
            out.stderr
        );
        assert!(!s.out().join("results.jsonl").exists());
    }
}

#[tokio::test]
async fn api_key_file_is_read_and_used() {
    let srv = mock(MockConfig {
        keys: vec![SECRET.into()],
        ..Default::default()
    })
    .await;
    let s = Scratch::with_rows(3);
    s.write("key.txt", format!("{SECRET}\n").as_bytes());
    let out = Orb::run(&s, &srv)
        .env_remove("OPENROUTER_API_KEY")
        .env("RUST_LOG", "debug")
        .args(["--api-key-file", "key.txt"])
        .output()
        .await;
    out.assert_code(0);
    assert_no_key("stderr", &out.stderr);
    assert_all_ok_once(&s.lines(), 3, &[MODEL]);
    srv.shutdown().await;
}
