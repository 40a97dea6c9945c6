//! Input readers, templates and the scan against real files: every error's `FILE:LINE`.

use std::path::{Path, PathBuf};

use orbatch::input::{Row, RowBody, RowReader};
use orbatch::prompts::Prompts;
use orbatch::scan::{ScanOptions, ScanReport, scan};
use orbatch::template::Template;
use serde_json::json;
use tempfile::TempDir;

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Every item of the file: rows, or errors as their display text with the path replaced by `F`.
fn read(
    name: &str,
    bytes: &[u8],
    id_column: Option<&str>,
) -> Result<Vec<Result<Row, String>>, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, name, bytes);
    let dir_shown = dir.path().display().to_string();
    let shown = |e: orbatch::input::InputError| {
        e.to_string()
            .replace(&path.display().to_string(), "F")
            .replace(&dir_shown, "D")
    };
    let reader = RowReader::open(&path, id_column).map_err(shown)?;
    Ok(reader.map(|r| r.map_err(shown)).collect())
}

fn errors(items: &[Result<Row, String>]) -> Vec<&str> {
    items
        .iter()
        .filter_map(|r| r.as_ref().err().map(String::as_str))
        .collect()
}

fn ok_rows(items: &[Result<Row, String>]) -> Vec<&Row> {
    items.iter().filter_map(|r| r.as_ref().ok()).collect()
}

#[test]
fn csv_multiline_cells_keep_line_numbers_bom_and_non_ascii() {
    let text =
        "\u{feff}id,text,lang\n1,\"héllo\nwörld\n\",fr\n2,日本語,ja\n\n3,\"say \"\"hi\"\"\",en\n";
    let items = read("a.csv", text.as_bytes(), None).unwrap();
    let rows = ok_rows(&items);
    assert_eq!(errors(&items), Vec::<&str>::new());
    let lines: Vec<(u64, &str)> = rows.iter().map(|r| (r.line, r.id.as_str())).collect();
    assert_eq!(lines, [(2, "1"), (5, "2"), (7, "3")]);
    assert_eq!(rows[0].vars["text"], "héllo\nwörld\n");
    assert_eq!(rows[1].vars["text"], "日本語");
    assert_eq!(rows[2].vars["text"], "say \"hi\"");
    assert!(
        rows[0].vars.contains_key("id"),
        "BOM stripped from the first header name"
    );
    assert_eq!(rows[2].index, 2);
}

#[test]
fn csv_crlf_and_id_column() {
    let items = read(
        "a.csv",
        b"key,text\r\nk1,\"a\r\nb\"\r\n\r\nk2,c\r\n",
        Some("key"),
    )
    .unwrap();
    let rows = ok_rows(&items);
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].id.as_str(), rows[0].line), ("k1", 2));
    assert_eq!(rows[0].vars["text"], "a\r\nb");
    assert_eq!((rows[1].id.as_str(), rows[1].line), ("k2", 5));
}

#[test]
fn row_reader_can_move_to_a_reader_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<RowReader>();
}

#[test]
fn csv_header_only_is_an_empty_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "h.csv", b"id,text\n");
    let mut reader = RowReader::open(&path, None).unwrap();
    assert!(reader.next().is_none());
    assert_eq!(reader.columns(), ["id", "text"]);
}

#[test]
fn csv_file_errors() {
    let cases: &[(&[u8], Option<&str>, &str)] = &[
        (b"", None, "F: file is empty: a CSV needs a header row"),
        (
            b"\n\n",
            None,
            "F: no header row: the file holds only blank lines",
        ),
        (
            b"a,b,a\n1,2,3\n",
            None,
            "F:1: duplicate column name 'a' in header (columns 1 and 3)",
        ),
        (
            b"a,,c\n",
            None,
            "F:1: empty column name in header (column 2)",
        ),
        (
            b"a,b,c\n",
            Some("x"),
            "F:1: id column 'x' not found in header (a,b,c)",
        ),
        (
            b"a,\xffb\n",
            None,
            "F:1: invalid UTF-8 in header column 2 (byte 1 of the name): the file looks like \
             Latin-1 (ISO-8859-1) or Windows-1252, not UTF-8; convert it with: \
             iconv -f ISO-8859-1 -t UTF-8 'F' > 'D/e.utf8.csv'",
        ),
    ];
    for (bytes, id_column, want) in cases {
        assert_eq!(read("e.csv", bytes, *id_column).unwrap_err(), *want);
    }
    let e = read("e.csv", b"a,\"b\n1,2\n", None).unwrap_err();
    assert!(e.starts_with("F:1: unclosed quote in the header"), "{e}");
}

#[test]
fn csv_row_errors() {
    let text = b"id,text,lang\n1,a\n2,\"x\ny\xfe\",en\n,b,c\n4,a,b,c\n5,ok,en\n6,\"never closed,en\n7,z,en\n";
    let items = read("r.csv", text, None).unwrap();
    assert_eq!(
        errors(&items),
        [
            "F:2: expected 3 fields (id,text,lang), found 2",
            "F:4: invalid UTF-8 in column 'text' (byte 4 of the cell): the file looks like \
             Latin-1 (ISO-8859-1) or Windows-1252, not UTF-8; convert it with: \
             iconv -f ISO-8859-1 -t UTF-8 'F' > 'D/r.utf8.csv'",
            "F:5: empty id in column 'id'",
            "F:6: expected 3 fields (id,text,lang), found 4",
            "F:8: unclosed quote in column 'text': the quoted field that opens on this line never \
             closes (the rest of the file would become one cell)",
        ]
    );
    let ids: Vec<&str> = ok_rows(&items).iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["5"]);
}

#[test]
fn jsonl_shapes_and_batch_lines() {
    let text = concat!(
        "{\"id\":17,\"prompt\":\"Say hi\"}\r\n",
        "{\"id\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"héllo\"}]}\r\n",
        "{\"text\":\"日本\",\"n\":1.50}\n",
        "{\"custom_id\":\"req-1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",",
        "\"body\":{\"model\":\"openai/gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}}"
    );
    let items = read("s.jsonl", text.as_bytes(), None).unwrap();
    assert_eq!(errors(&items), Vec::<&str>::new());
    let rows = ok_rows(&items);
    let ids: Vec<(&str, u64)> = rows.iter().map(|r| (r.id.as_str(), r.line)).collect();
    assert_eq!(ids, [("17", 1), ("m", 2), ("3", 3), ("req-1", 4)]);
    assert_eq!(rows[0].body, RowBody::Vars);
    assert_eq!(
        rows[1].body,
        RowBody::Messages(vec![json!({"role":"user","content":"héllo"})])
    );
    assert_eq!(rows[2].vars["n"], json!(1.5));
    let RowBody::Batch(body) = &rows[3].body else {
        panic!("not a batch row")
    };
    assert_eq!(body["model"], "openai/gpt-4o-mini");
    let keys: Vec<&str> = rows[3].vars.keys().map(String::as_str).collect();
    assert_eq!(keys, ["body", "custom_id", "method", "url"]);
}

#[test]
fn jsonl_columns_union_in_first_seen_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "c.jsonl",
        b"{\"text\":\"a\",\"id\":1}\n{\"lang\":\"x\",\"id\":2,\"text\":\"b\"}\n",
    );
    let mut reader = RowReader::open(&path, None).unwrap();
    for item in reader.by_ref() {
        item.unwrap();
    }
    assert_eq!(reader.columns(), ["text", "id", "lang"]);
}

#[test]
fn jsonl_errors_name_line_and_continue() {
    let text: &[u8] =
        b"{\"id\":1}\n\n  \n[1,2]\n{\"id\":\n{\"id\":\"\xff\"}\n{\"id\":null}\n{\"id\":\"\"}\n\
{\"id\":9,\"messages\":{}}\n{\"id\":10,\"messages\":[{\"content\":\"x\"}]}\n\
{\"custom_id\":\"a\",\"url\":\"/v1/embeddings\",\"body\":{}}\n\
{\"custom_id\":\"b\",\"method\":\"GET\",\"body\":{}}\n\
{\"custom_id\":\"c\",\"body\":[]}\n{\"custom_id\":\"d\",\"body\":{\"model\":\"m\"}}\n\
{\"custom_id\":{},\"body\":{}}\n{\"id\":16}\n{\"custom_id\":\"e\",\"url\":\"/chat/completions\"}\n";
    let items = read("e.jsonl", text, None).unwrap();
    assert_eq!(
        errors(&items),
        [
            "F:2: blank line: every line must hold one JSON object",
            "F:3: blank line: every line must hold one JSON object",
            "F:4: not a JSON object: found an array; every line must hold one JSON object",
            "F:5: not valid JSON: EOF while parsing a value (column 6)",
            "F:6: invalid UTF-8 at column 8: the file looks like Latin-1 (ISO-8859-1) or \
             Windows-1252, not UTF-8; convert it with: iconv -f ISO-8859-1 -t UTF-8 'F' > \
             'D/e.utf8.jsonl'",
            "F:7: id field 'id' must be a string or a number, found null",
            "F:8: id field 'id' is empty",
            "F:9: `messages` must be an array of message objects, found an object",
            "F:10: `messages` item 1 must be an object with a string `role`",
            "F:11: batch line: `url` must be \"/v1/chat/completions\", found \"/v1/embeddings\"",
            "F:12: batch line: `method` must be \"POST\", found \"GET\"",
            "F:13: batch line: `body` must be an object (the chat completion request), found an array",
            "F:14: batch line: `body` has no `messages` array",
            "F:15: id field 'custom_id' must be a string or a number, found an object",
            "F:17: batch line: no `body` (the chat completion request)",
        ]
    );
    let ids: Vec<&str> = ok_rows(&items).iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["1", "16"]);
}

#[test]
fn jsonl_empty_file_and_missing_id_field() {
    assert_eq!(
        read("z.jsonl", b"", None).unwrap_err(),
        "F: file is empty: a JSONL file needs one JSON object per line"
    );
    let items = read("i.jsonl", b"{\"key\":\"a\"}\n{\"id\":\"b\"}\n", Some("key")).unwrap();
    assert_eq!(errors(&items), ["F:2: id field 'key' is missing"]);
    assert_eq!(
        read("x.txt", b"a", None).unwrap_err(),
        "F: unknown input format: the file name must end in .csv, .tsv or .jsonl (optionally \
         followed by .gz)"
    );
}

fn run_scan(path: &Path, prompts: &Prompts, limit: Option<u64>) -> ScanReport {
    let opts = ScanOptions {
        path,
        id_column: None,
        delimiter: None,
        job_file: None,
        prompts,
        need_batch_model: false,
        limit,
        max_errors: 20,
        shard: None,
    };
    scan(&opts).unwrap()
}

#[test]
fn scan_lists_template_and_duplicate_errors_with_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "s.csv",
        b"id,text,body\n1,\"a\nb\",x\n2,c,y\n1,d,z\n3,e\n",
    );
    let t = Prompts::single(Template::new(Some("sys"), Some("{{ text }} {{ lang }}")).unwrap());
    let r = run_scan(&path, &t, None);
    let p = path.display();
    let shown: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            format!(
                "{p}:2: template variable 'lang' is missing from 2 rows (line 2, 4); the columns \
                 are: body, id, text; any column can be read as `{{{{ row[\"Column Name\"] }}}}` \
                 (names with spaces or dots); the template is the --prompt/--system flag"
            ),
            format!("{p}:5: duplicate id '1' (first seen on line 2)"),
            format!("{p}:6: expected 3 fields (id,text,body), found 2"),
        ]
    );
    assert_eq!((r.rows, r.error_count), (4, 3));
    assert_eq!(r.columns, ["id", "text", "body"]);
}

#[test]
fn scan_limit_and_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        b"{\"id\":1,\"prompt\":\"a\"}\n{\"id\":2,\"prompt\":\"b\"}\n{\"id\":3,\"prompt\":null}\n";
    let path = write(&dir, "f.jsonl", text);
    let t = Prompts::single(Template::new(None, None).unwrap());
    let full = run_scan(&path, &t, None);
    assert_eq!(full.fingerprint, blake3::hash(text).to_hex().to_string());
    assert_eq!((full.rows, full.error_count), (3, 1));
    assert!(
        full.errors[0]
            .to_string()
            .ends_with(":3: the `prompt` field is null")
    );
    let limited = run_scan(&path, &t, Some(2));
    assert_eq!((limited.rows, limited.error_count), (2, 0));
    let missing = ScanOptions {
        path: &dir.path().join("nope.csv"),
        id_column: None,
        delimiter: None,
        job_file: None,
        prompts: &t,
        need_batch_model: false,
        limit: None,
        max_errors: 20,
        shard: None,
    };
    assert!(
        scan(&missing)
            .unwrap_err()
            .message
            .starts_with("cannot open the input")
    );
}

#[test]
fn scan_reports_a_file_level_error_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "e.csv", b"");
    let t = Prompts::single(Template::new(None, None).unwrap());
    let r = run_scan(&path, &t, None);
    assert_eq!((r.rows, r.error_count), (0, 1));
    assert_eq!(r.errors[0].line, 0);
}

#[test]
fn csv_large_file_lines_and_unclosed_quote_past_the_read_buffer() {
    let mut text = String::from("id,text\n");
    let mut want_lines = Vec::new();
    let mut line = 2;
    for i in 0..5000 {
        want_lines.push(line);
        text.push_str(&format!(
            "{i},\"cell {i}\nsecond line, with \"\"quotes\"\"\"\n"
        ));
        line += 2;
    }
    let good = read("big.csv", text.as_bytes(), None).unwrap();
    assert_eq!(errors(&good), Vec::<&str>::new());
    let lines: Vec<u64> = ok_rows(&good).iter().map(|r| r.line).collect();
    assert_eq!(lines, want_lines);

    text.push_str("x,\"never closed\n");
    for i in 0..3000 {
        text.push_str(&format!("y{i},plain\n"));
    }
    let bad = read("big.csv", text.as_bytes(), None).unwrap();
    assert_eq!(ok_rows(&bad).len(), 5000);
    let errs = errors(&bad);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(&format!("F:{line}: unclosed quote in column 'text'")),
        "{}",
        errs[0]
    );
}
