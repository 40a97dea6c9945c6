//! Headless Chromium (Debian's `chromium`), isolated: a fresh profile, no network service
//! worth the name (every host resolves to nothing), no background traffic.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Chromium, or `None` after saying the test skips (a failure under `CI=true`).
pub fn chromium(test: &str) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("ORBATCH_CHROMIUM").map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/chromium")),
        Some(PathBuf::from("/usr/bin/chromium-browser")),
    ];
    if let Some(found) = candidates.into_iter().flatten().find(|p| p.is_file()) {
        return Some(found);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: chromium not found (apt-get install chromium, or set ORBATCH_CHROMIUM); required under CI=true"
    );
    eprintln!(
        "{test}: SKIPPED: chromium not found (apt-get install chromium, or set ORBATCH_CHROMIUM)"
    );
    None
}

/// What a headless run printed.
pub struct Page {
    /// stdout (the DOM for `--dump-dom`).
    pub dom: String,
    /// stderr (console messages with `--enable-logging=stderr`).
    pub log: String,
}

/// Opens `file` (with `fragment`) in headless Chromium with `extra` flags, waits for it.
pub fn open(chromium: &Path, file: &Path, fragment: &str, extra: &[String]) -> Page {
    let profile = tempfile::tempdir().unwrap();
    let url = format!(
        "file://{}{fragment}",
        file.canonicalize().unwrap().display()
    );
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(&url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).unwrap();
        s
    });
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("chromium did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Page {
        dom: reader.join().unwrap(),
        log: err_reader.join().unwrap(),
    }
}

/// The page's console messages (`CONSOLE` lines of Chromium's log).
pub fn console_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// The self-test's result (`<pre id="selftest-result">`), as JSON.
pub fn selftest(dom: &str) -> serde_json::Value {
    let start = dom.find("<pre id=\"selftest-result\">").unwrap_or_else(|| {
        panic!(
            "no self-test result in the DOM:\n{}",
            &dom[dom.len().saturating_sub(3000)..]
        )
    });
    let rest = &dom[start + "<pre id=\"selftest-result\">".len()..];
    let text = &rest[..rest.find("</pre>").unwrap()];
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap()
}
