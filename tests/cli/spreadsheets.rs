//! Spreadsheet users' files (issue 16, items 10-12 and 14): column names with spaces, input
//! columns named like result columns, BOM/CRLF/`;`/tab/gzip inputs mirrored in results.csv,
//! encoding hints, and the wide layout.

use std::io::Write;

use predicates::prelude::*;

use crate::common::*;

/// `run` of `input` with `prompt` against `mock`, into `out/x`, expecting exit 0.
fn run_ok(wd: &Workdir, mock: &Mock, input: &str, prompt: &str, extra: &[&str]) {
    let mut args = vec!["--input", input, "--model", MINI, "--prompt", prompt];
    args.extend_from_slice(&["--output-dir", "out/x"]);
    args.extend_from_slice(extra);
    wd.run(mock, &args).assert().code(0);
}

fn users(mock: &Mock) -> Vec<String> {
    let mut u: Vec<String> = mock.requests().into_iter().map(|r| r.user).collect();
    u.sort();
    u
}

#[test]
fn row_reads_a_column_whose_name_has_spaces() {
    let wd = Workdir::new();
    wd.create("in.csv", "id,Product Name\n1,Tea\n2,Coffee\n");
    let mock = Mock::plain();
    run_ok(
        &wd,
        &mock,
        "in.csv",
        "About {{ row[\"Product Name\"] }}",
        &[],
    );
    assert_eq!(users(&mock), ["About Coffee", "About Tea"]);
}

#[test]
fn a_missing_variable_is_reported_once_with_its_rows_a_suggestion_and_the_job_file() {
    let wd = Workdir::new();
    let rows: String = (1..=30).map(|i| format!("{i},p{i}\n")).collect();
    wd.create("data/in.csv", &format!("id,Product Name\n{rows}"));
    wd.create(
        "jobs/shop.toml",
        "input = \"../data/in.csv\"\n[request]\nmodels = [\"openai/gpt-4o-mini\"]\nprompt = \"{{ Product }}\"\n",
    );
    let mock = Mock::plain();
    for mut cmd in [
        wd.command(&["validate", "jobs/shop.toml"]),
        wd.run(&mock, &["jobs/shop.toml"]),
    ] {
        let out = cmd.assert().code(2).get_output().clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.matches("template variable").count(), 1, "{stderr}");
        for want in [
            "in.csv:2: template variable 'Product' is missing from 30 rows (line 2, 3, 4, 5, 6, ...)",
            "did you mean 'Product Name' (`{{ row[\"Product Name\"] }}`)?",
            "jobs/shop.toml",
        ] {
            assert!(stderr.contains(want), "{want:?} not in {stderr}");
        }
    }
    assert!(mock.requests().is_empty());
}

#[test]
fn input_columns_named_like_result_columns_are_kept_and_the_results_renamed() {
    let wd = Workdir::new();
    wd.create("in.csv", "id,model,status,text\n1,my-model,draft,a\n");
    let mock = Mock::plain();
    run_ok(&wd, &mock, "in.csv", "{{ text }} {{ model }}", &[]);
    let csv = wd.csv("out/x");
    let header = &csv[0];
    let unique: std::collections::HashSet<&String> = header.iter().collect();
    assert_eq!(unique.len(), header.len(), "a column twice: {header:?}");
    let cell = |name: &str| {
        let i = header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name}"));
        csv[1][i].clone()
    };
    assert_eq!(cell("model"), "my-model");
    assert_eq!(cell("status"), "draft");
    assert_eq!(cell("result.model"), MINI);
    assert_eq!(cell("result.status"), "ok");
    assert!(
        !cell("output").is_empty(),
        "`output` is not an input column"
    );
}

#[test]
fn results_csv_mirrors_the_inputs_bom_line_ending_and_delimiter() {
    let wd = Workdir::new();
    wd.write(
        "in.csv",
        "\u{feff}id;text\r\n1;Très bien ☕\r\n2;\"a;b\"\r\n".as_bytes(),
    );
    let mock = Mock::plain();
    run_ok(&wd, &mock, "in.csv", "{{ text }}", &[]);
    assert_eq!(users(&mock), ["Très bien ☕", "a;b"]);
    let bytes = std::fs::read(wd.path().join("out/x/results.csv")).unwrap();
    assert!(bytes.starts_with("\u{feff}id;text;model;".as_bytes()));
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(text.matches("\r\n").count(), 3, "{text}");
    assert_eq!(text.matches('\n').count(), 3, "{text}");
    // A plain input gives a plain file.
    wd.create("plain.csv", "id,text\n1,x\n");
    let mock = Mock::plain();
    wd.run(
        &mock,
        &[
            "--input",
            "plain.csv",
            "--model",
            MINI,
            "--prompt",
            "{{ text }}",
        ],
    )
    .assert()
    .code(0);
    let plain = wd.read("out/plain/results.csv");
    assert!(
        plain.starts_with("id,text,model,") && !plain.contains('\r'),
        "{plain}"
    );
}

#[test]
fn tsv_explicit_delimiter_and_gzip_inputs_are_read() {
    let wd = Workdir::new();
    wd.create("in.tsv", "id\ttext\n1\ta,b\n");
    let mock = Mock::plain();
    run_ok(&wd, &mock, "in.tsv", "{{ text }}", &[]);
    assert_eq!(users(&mock), ["a,b"]);
    assert!(
        wd.read("out/x/results.csv")
            .starts_with("id\ttext\tmodel\t")
    );

    // `|` is not guessed: --delimiter says it.
    wd.create("pipe.csv", "id|text\n1|x y\n");
    let mock = Mock::plain();
    let args = [
        "--input",
        "pipe.csv",
        "--model",
        MINI,
        "--prompt",
        "{{ text }}",
    ];
    wd.command(&["validate"])
        .args(args)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("'text' is missing"));
    wd.run(&mock, &args)
        .args(["--delimiter", "|"])
        .assert()
        .code(0);
    assert_eq!(users(&mock), ["x y"]);

    let gz = |text: &str| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    wd.write("c.csv.gz", &gz("id,text\n1,zipped csv\n"));
    wd.write("j.jsonl.gz", &gz("{\"id\":1,\"text\":\"zipped jsonl\"}\n"));
    for input in ["c.csv.gz", "j.jsonl.gz"] {
        let mock = Mock::plain();
        wd.run(
            &mock,
            &["--input", input, "--model", MINI, "--prompt", "{{ text }}"],
        )
        .assert()
        .code(0);
        assert_eq!(users(&mock).len(), 1, "{input}");
        assert!(users(&mock)[0].starts_with("zipped"), "{input}");
    }
}

#[test]
fn an_input_that_is_not_utf8_gets_the_encoding_and_an_iconv_command() {
    let wd = Workdir::new();
    wd.write("latin.csv", b"id,text\n1,Tr\xe8s bien\n2,caf\xe9\n");
    wd.write("win.csv", b"id,text\n1,it\x92s\n");
    wd.write("utf16.csv", b"\xff\xfei\x00d\x00\n\x00");
    wd.write("latin.jsonl", b"{\"id\":1,\"text\":\"caf\xe9\"}\n");
    for (file, want) in [
        (
            "latin.csv",
            "iconv -f ISO-8859-1 -t UTF-8 'latin.csv' > 'latin.utf8.csv'",
        ),
        ("win.csv", "looks like Windows-1252"),
        ("utf16.csv", "iconv -f UTF-16LE -t UTF-8"),
        ("latin.jsonl", "iconv -f ISO-8859-1 -t UTF-8 'latin.jsonl'"),
    ] {
        let out = wd
            .command(&[
                "validate",
                "--input",
                file,
                "--model",
                MINI,
                "--prompt",
                "{{ text }}",
            ])
            .assert()
            .code(2)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(want), "{file}: {want:?} not in {stderr}");
        assert!(
            stderr.matches("iconv").count() == 1,
            "{file}: one hint: {stderr}"
        );
    }
}

#[test]
fn the_wide_layout_has_one_record_per_input_row_and_columns_per_model() {
    let wd = Workdir::new();
    wd.create("in.csv", "id,text\n1,a\n2,b\n");
    let mock = Mock::plain();
    let args = [
        "--input",
        "in.csv",
        "--model",
        MINI,
        "--model",
        HAIKU,
        "--prompt",
        "{{ text }}",
        "--layout",
        "wide",
    ];
    wd.run(&mock, &args).assert().code(0);
    let csv = wd.csv("out/in");
    let mut want = vec!["id".to_string(), "text".to_string()];
    for m in [MINI, HAIKU] {
        for c in ["status", "output", "cost_usd"] {
            want.push(format!("{m}.{c}"));
        }
    }
    assert_eq!(csv[0], want);
    assert_eq!(csv.len(), 3, "one record per input row");
    for (i, record) in csv[1..].iter().enumerate() {
        assert_eq!(record[0], (i + 1).to_string());
        assert_eq!((&record[2][..], &record[5][..]), ("ok", "ok"));
        assert!(!record[3].is_empty() && !record[6].is_empty());
        assert!(record[4].parse::<f64>().unwrap() > 0.0);
    }
    let lines = wd.results("out/in");
    let cost_of = |id: &str, m: &str| {
        lines
            .iter()
            .find(|l| l.id == id && l.model == m)
            .unwrap()
            .cost_usd
            .unwrap()
    };
    assert_eq!(csv[1][7], cost_of("1", HAIKU).normalize().to_string());
}
