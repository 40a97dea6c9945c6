//! Property tests: no input makes the readers or the scan panic, and well-formed files
//! round-trip (values written == vars read, right row count and start lines).

use std::io::Cursor;
use std::path::Path;

use orbatch::input::{Format, RowReader};
use orbatch::prompts::Prompts;
use orbatch::scan::{ScanOptions, scan};
use orbatch::template::Template;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Bytes that favour what the parsers care about.
fn nasty_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => any::<u8>(),
        2 => Just(b'"'),
        2 => Just(b','),
        2 => Just(b'\n'),
        1 => Just(b'\r'),
        1 => Just(b'{'),
        1 => Just(b'}'),
        1 => Just(b':'),
        1 => Just(0xEF),
        1 => Just(b'a'),
    ];
    prop::collection::vec(byte, 0..400)
}

fn drain(format: Format, bytes: &[u8]) -> u64 {
    let path = Path::new("p");
    let mut n = 0;
    if let Ok(mut reader) =
        RowReader::from_reader(path, format, Cursor::new(bytes.to_vec()), None, None)
    {
        for item in reader.by_ref() {
            if let Ok(row) = item {
                assert!(row.line >= 1);
                assert!(!row.id.is_empty());
            }
            n += 1;
        }
        let _ = reader.columns();
    }
    n
}

/// A CSV cell: text with the characters that need quoting, and some non-ASCII.
fn cell() -> impl Strategy<Value = String> {
    "[a-z ,\"\n\r\u{e9}\u{65e5}]{0,10}"
}

/// One CSV record as bytes, written by the `csv` crate.
fn csv_record(fields: &[String]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(fields).unwrap();
    w.into_inner().unwrap()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z\"\\\\\n\u{e9}]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn readers_never_panic(bytes in nasty_bytes()) {
        drain(Format::Csv, &bytes);
        let lines = bytes.split(|&b| b == b'\n').count() as u64;
        prop_assert!(drain(Format::Jsonl, &bytes) <= lines);
    }

    #[test]
    fn scan_never_panics(bytes in nasty_bytes(), csv in any::<bool>(), limit in prop::option::of(0u64..5)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(if csv { "in.csv" } else { "in.jsonl" });
        std::fs::write(&path, &bytes).unwrap();
        let prompts = Prompts::single(Template::new(Some("s {{ a }}"), None).unwrap());
        let opts = ScanOptions { path: &path, id_column: None, delimiter: None, job_file: None, prompts: &prompts,
            need_batch_model: true, limit, max_errors: 3, shard: None };
        let report = scan(&opts).unwrap();
        prop_assert!(report.errors.len() as u64 <= report.error_count.min(3));
        prop_assert!(limit.is_none_or(|l| report.rows <= l));
        if limit.is_none() {
            prop_assert_eq!(report.fingerprint, blake3::hash(&bytes).to_hex().to_string());
        }
    }

    #[test]
    fn csv_round_trips(
        ncols in 1usize..4,
        cells in prop::collection::vec(cell(), 0..60),
        crlf_header in any::<bool>(),
    ) {
        let header: Vec<String> = (0..ncols).map(|i| format!("c{i}")).collect();
        let records: Vec<Vec<String>> = cells.chunks_exact(ncols).map(<[String]>::to_vec).collect();
        let mut bytes = header.join(",").into_bytes();
        bytes.extend_from_slice(if crlf_header { b"\r\n" } else { b"\n" });
        let mut want_lines = Vec::new();
        for record in &records {
            want_lines.push(1 + bytes.iter().filter(|&&b| b == b'\n').count() as u64);
            bytes.extend(csv_record(record));
        }
        let reader = RowReader::from_reader(Path::new("p.csv"), Format::Csv, Cursor::new(bytes), None, None).unwrap();
        let rows: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(rows.len(), records.len());
        for (i, (row, record)) in rows.iter().zip(&records).enumerate() {
            prop_assert_eq!(&row.id, &(i + 1).to_string());
            prop_assert_eq!(row.line, want_lines[i]);
            for (name, value) in header.iter().zip(record) {
                prop_assert_eq!(row.vars[name].as_str(), Some(value.as_str()));
            }
        }
    }

    #[test]
    fn csv_unclosed_quote_is_found_at_its_line(
        cells in prop::collection::vec(cell(), 0..20),
        tail in "[a-z,\n\r]{0,40}",
    ) {
        let mut bytes = b"a,b\n".to_vec();
        for pair in cells.chunks_exact(2) {
            bytes.extend(csv_record(pair));
        }
        let good = cells.len() / 2;
        let line = 1 + bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        bytes.extend_from_slice(b"x,\"open");
        bytes.extend_from_slice(tail.as_bytes());
        let reader = RowReader::from_reader(Path::new("p.csv"), Format::Csv, Cursor::new(bytes), None, None).unwrap();
        let items: Vec<_> = reader.collect();
        prop_assert_eq!(items.len(), good + 1);
        prop_assert!(items[..good].iter().all(Result::is_ok));
        let err = items[good].as_ref().unwrap_err();
        prop_assert_eq!(err.line, line);
        prop_assert!(err.message.starts_with("unclosed quote in column 'b'"));
    }

    #[test]
    fn jsonl_round_trips(
        objects in prop::collection::vec(prop::collection::btree_map("k[a-z]{0,3}", json_value(), 0..4), 0..30),
        crlf in any::<bool>(),
    ) {
        let mut bytes = Vec::new();
        let mut want = Vec::new();
        for (i, fields) in objects.iter().enumerate() {
            let mut obj: Map<String, Value> = fields.clone().into_iter().collect();
            obj.insert("id".into(), Value::String(format!("r{i}")));
            bytes.extend(serde_json::to_vec(&obj).unwrap());
            bytes.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            want.push(obj);
        }
        if want.is_empty() {
            return Ok(());
        }
        let reader = RowReader::from_reader(Path::new("p.jsonl"), Format::Jsonl, Cursor::new(bytes), None, None).unwrap();
        let rows: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(rows.len(), want.len());
        for (i, (row, obj)) in rows.iter().zip(&want).enumerate() {
            prop_assert_eq!(&row.vars, obj);
            prop_assert_eq!(&row.id, &format!("r{i}"));
            prop_assert_eq!(row.line, i as u64 + 1);
        }
    }
}
