//! Guarantee 1: `run` validates the whole input before it sends anything. Every bad input is
//! reported as `FILE:LINE: message` on stderr, exit 2, and the mock sees zero requests.

use orbatch::mock::MockConfig;

use crate::common::*;

/// (case, file name, contents, expected `FILE:LINE:` prefix, words the message must contain)
fn bad_inputs() -> Vec<(
    &'static str,
    &'static str,
    Vec<u8>,
    &'static str,
    &'static str,
)> {
    // A bad row after many good ones: the scan must reach it before the first request.
    let mut late = csv(300).into_bytes();
    late.extend_from_slice(b"301,t301,extra\n");
    vec![
        (
            "wrong field count",
            "in.csv",
            b"id,text\n1,a\n2,b,c\n".to_vec(),
            "in.csv:3:",
            "field",
        ),
        (
            "wrong field count after 300 good rows",
            "in.csv",
            late,
            "in.csv:302:",
            "field",
        ),
        (
            "a quote that never closes",
            "in.csv",
            b"id,text\n1,\"abc\n2,def\n3,ghi\n".to_vec(),
            "in.csv:2:",
            "quote",
        ),
        (
            "invalid UTF-8",
            "in.csv",
            b"id,text\n1,ok\n2,\xff\xfe\n".to_vec(),
            "in.csv:3:",
            "UTF-8",
        ),
        (
            "JSONL line that is not JSON",
            "in.jsonl",
            b"{\"id\":1,\"text\":\"a\"}\nnot json\n".to_vec(),
            "in.jsonl:2:",
            "JSON",
        ),
        (
            "JSONL line that is not an object",
            "in.jsonl",
            b"{\"id\":1,\"text\":\"a\"}\n[1,2]\n".to_vec(),
            "in.jsonl:2:",
            "object",
        ),
        (
            "blank JSONL line",
            "in.jsonl",
            b"{\"id\":1,\"text\":\"a\"}\n\n{\"id\":2,\"text\":\"b\"}\n".to_vec(),
            "in.jsonl:2:",
            "blank",
        ),
        (
            "template variable missing",
            "in.csv",
            b"id,other\n1,x\n".to_vec(),
            "in.csv:2:",
            "text",
        ),
        (
            "template variable null",
            "in.jsonl",
            b"{\"id\":1,\"text\":\"a\"}\n{\"id\":2,\"text\":null}\n".to_vec(),
            "in.jsonl:2:",
            "text",
        ),
        (
            "duplicate id",
            "in.csv",
            b"id,text\n1,a\n2,b\n1,c\n".to_vec(),
            "in.csv:4:",
            "duplicate",
        ),
        ("0-byte file", "in.csv", Vec::new(), "in.csv:", "empty"),
    ]
}

#[tokio::test]
async fn bad_input_is_reported_with_file_and_line_and_nothing_is_sent() {
    let srv = mock(MockConfig::default()).await;
    for (case, name, bytes, at, word) in bad_inputs() {
        let s = Scratch::new();
        s.write(name, &bytes);
        let out = Orb::run(&s, &srv).args(["--input", name]).output().await;
        out.assert_code(2);
        assert!(
            out.stderr.lines().any(|l| l.contains(at)),
            "{case}: no `{at}` line in stderr:\n{}",
            out.stderr
        );
        assert!(
            out.stderr.to_lowercase().contains(&word.to_lowercase()),
            "{case}: stderr does not say `{word}`:\n{}",
            out.stderr
        );
        assert!(out.stderr.contains("nothing was sent"), "{case}");
        assert!(!s.out().join("results.jsonl").exists(), "{case}");
        assert_eq!(srv.requests().len(), 0, "{case}: the mock saw requests");
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn missing_file_and_job_file_typo_are_refused_before_sending() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::new();
    let out = Orb::run(&s, &srv)
        .args(["--input", "missing.csv"])
        .output()
        .await;
    out.assert_code(2);
    assert!(out.stderr.contains("missing.csv"), "{}", out.stderr);

    s.write("in.csv", csv(3).as_bytes());
    s.write(
        "job.toml",
        b"input = \"in.csv\"\noutput_dir = \"out\"\n\n[request]\nmodels = [\"openai/gpt-4o-mini\"]\npromt = \"Q: {{ text }}\"\n",
    );
    let out = Orb::run_job(&s, &srv).output().await;
    out.assert_code(2);
    assert!(
        out.stderr.contains("job.toml:6") && out.stderr.contains("promt"),
        "the typo is named with its file and line:\n{}",
        out.stderr
    );
    assert_eq!(srv.requests().len(), 0);
    srv.shutdown().await;
}

#[tokio::test]
async fn header_only_csv_is_an_empty_job() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::new();
    s.write("in.csv", b"id,text\n");
    let out = Orb::run(&s, &srv).output().await;
    out.assert_code(0);
    assert_eq!(srv.requests().len(), 0);
    assert_eq!(s.summary()["rows"]["total"], 0);
    srv.shutdown().await;
}

#[tokio::test]
async fn a_template_whose_loops_never_end_is_refused_with_its_row() {
    let srv = mock(MockConfig::default()).await;
    let s = Scratch::with_rows(3);
    let endless = "{% for a in range(100000) %}{% for b in range(100000) %}{{ text }}{% endfor %}{% endfor %}";
    for command in ["validate", "run"] {
        let out = Orb::new(&s)
            .args([
                command,
                "--input",
                "in.csv",
                "--output-dir",
                "out",
                "--model",
                MODEL,
                "--prompt",
                endless,
                "--base-url",
                &srv.base_url(),
            ])
            .output()
            .await;
        out.assert_code(2);
        assert!(
            out.stderr
                .contains("in.csv:2: prompt template: rendering this row passed the limit"),
            "{command}: {}",
            out.stderr
        );
    }
    assert_eq!(srv.requests().len(), 0);
    srv.shutdown().await;
}
