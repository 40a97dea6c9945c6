use super::*;

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = "name = \"x\"\ninput = \"a.csv\"\n\n[limits]\nconcurency = 3\n";
    let err = parse_job_file(Path::new("jobs/x.toml"), text)
        .unwrap_err()
        .0;
    assert!(err.starts_with("jobs/x.toml:5:"), "{err}");
    assert!(err.contains("concurency"), "{err}");
}

#[test]
fn key_in_job_file_is_refused() {
    let err = parse_job_file(
        Path::new("j.toml"),
        "input = \"a.csv\"\napi_key = \"abc\"\n",
    )
    .unwrap_err()
    .0;
    assert!(err.starts_with("j.toml:2:"), "{err}");
    assert!(!err.contains("abc"), "{err}");
}

#[test]
fn flags_beat_file_beat_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j.toml");
    std::fs::write(&p, "input = \"d.csv\"\n[request]\nmodels=[\"a/b\"]\nmax_tokens=5\n[limits]\nconcurrency=3\nbudget_usd=5.25\n").unwrap();
    let o = Overrides {
        concurrency: Some(9),
        ..Default::default()
    };
    let job = Job::resolve(Some(&p), o, None).unwrap();
    assert_eq!(job.input, dir.path().join("d.csv"));
    assert_eq!(job.name, "d");
    assert_eq!(job.limits.concurrency, 9);
    assert_eq!(job.limits.max_retries, 6);
    assert_eq!(job.limits.budget_usd, Some(Decimal::new(525, 2)));
    assert_eq!(job.request.max_tokens, Some(5));
    assert_eq!(job.output_dir, Path::new("out/d"));
}

#[test]
fn a_job_from_stdin_is_named_after_its_output_dir() {
    let o = |dir: Option<&str>| Overrides {
        input: Some("-".into()),
        output_dir: dir.map(PathBuf::from),
        models: vec!["a/b".into()],
        ..Overrides::default()
    };
    let job = Job::resolve(None, o(Some("out/reviews")), None).unwrap();
    assert_eq!(job.name, "reviews");
    let job = Job::resolve(None, o(None), None).unwrap();
    assert_eq!(job.name, "stdin");
    assert_eq!(job.output_dir, Path::new("out/stdin"));
    assert_eq!(job.base_url, crate::endpoint::DEFAULT_BASE_URL);
}
